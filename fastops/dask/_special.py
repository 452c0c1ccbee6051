"""``fastops.dask`` ops that need more than one fastops call per block: training-mode
``batch_norm`` (global statistics), reduced losses, random ops (global element offsets) and RoI
ops (boxes routed to the block of their batch index)."""
import math

import numpy as np

import dask
import dask.array as da

import fastops
from fastops import _random
from fastops.norm.batch_norm import update_running

from . import _graph as g_
from ._ops import DASK_OPS, LOSS_ROLES, DaskOp, probe_call, register

from fastops.regularization import dropout as _dropout_mod

# ---------------------------------------------------------------------------------------------
# batch_norm: eval mode is the plain batched op; training computes global per-channel statistics
# with a two-pass tree reduction (sum -> mean, then sum of squared deviations -> biased variance),
# then normalises every block with them (the eval kernel given mean and variance).


def _stat_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _chsum(x, axes):
    return x.sum(axis=axes)


def _chsq(x, mean, axes):
    d = x - mean.reshape((1, -1) + (1,) * (x.ndim - 2))
    return (d * d).sum(axis=axes)


def channel_stats(x):
    """Global per-channel mean and biased variance of a batch-chunked (N, C, ...) Dask array, as
    one-chunk Dask arrays: pass 1 tree-sums per-block sums, pass 2 the per-block sums of squared
    deviations from the global mean (two-pass: no cancellation as in E[x^2] - E[x]^2)."""
    T = x.dtype.type
    C = x.shape[1]
    n = x.shape[0] * math.prod(x.shape[2:])
    axes = _stat_axes(x.ndim)
    tok = g_.token("bnstats", x)
    s = g_.tree_sum(f"fastops-bn-sum-{tok}", [(_chsum, g_.block_key(x, i), axes) for i in range(g_.nblocks(x))],
                    (C,), x.dtype, [x])
    mean = s / T(n)
    sq = g_.tree_sum(f"fastops-bn-sq-{tok}",
                     [(_chsq, g_.block_key(x, i), g_.weight_key(mean), axes) for i in range(g_.nblocks(x))],
                     (C,), x.dtype, [x, mean])
    return mean, sq / T(n), n


_BN = DASK_OPS["batch_norm"]


class _BatchNorm(DaskOp):
    """``fastops.batch_norm`` over batch-chunked Dask arrays. ``training=False``: per block with the
    running statistics. ``training=True``: global batch statistics (:func:`channel_stats`); the
    running statistics (NumPy arrays) are updated in place, eagerly, as the single-array call does
    (this computes the statistics now: the input is persisted first so that the output does not
    recompute it)."""

    def __init__(self):
        super().__init__("batch_norm", _BN.roles, None)

    def __call__(self, *args, **kwargs):
        a = self.bind(args, kwargs)
        if not a["training"]:
            return _BN.forward_bound(a)
        x = self._train_input(a)
        mean, var, n = channel_stats(x)
        # optimize_graph=False: no low-level task fusion, which would give the keys shared with
        # later graphs of the same step another task spec (distributed warns: dask#9888)
        mean, var = dask.compute(mean, var, optimize_graph=False)
        m = a["momentum"]
        if a["running_mean"] is not None:
            update_running(a["running_mean"], mean, m)
        if a["running_var"] is not None:
            update_running(a["running_var"], var * var.dtype.type(n / (n - 1)), m)
        return _BN.forward_bound(dict(a, input=x, running_mean=mean, running_var=var, training=False))

    def _train_input(self, a):
        x = g_.batched(self.name, "input", a["input"])
        # fastops' own validation (shapes, momentum, eps, activation, writeable running stats)
        probe = np.zeros((2,) + x.shape[1:], x.dtype)
        with fastops.threads(1):
            fastops.batch_norm(probe, *(None if v is None else np.array(v) for v in
                                        (a["running_mean"], a["running_var"])), a["weight"], a["bias"],
                               training=True, momentum=a["momentum"], eps=a["eps"], activation=a["activation"],
                               activation_param=a["activation_param"])
        if x.shape[0] * math.prod(x.shape[2:]) <= 1:
            raise ValueError(f"fastops.dask.batch_norm: expected more than 1 value per channel when training, got "
                             f"input of shape {x.shape}")
        return x.persist(optimize_graph=False)

    def backward(self, grad_output, *args, **kwargs):
        a = self.bind(args, kwargs)
        if not a["training"]:
            return _BN.backward_bound(grad_output, a)
        x = g_.batched(self.name, "input", a["input"])
        mean, var, n = channel_stats(x)
        T = x.dtype.type
        C = x.shape[1]
        w = a["weight"] if a["weight"] is not None else np.ones(C, x.dtype)
        b = a["bias"] if a["bias"] is not None else np.zeros(C, x.dtype)
        # eval-mode backward with the batch statistics: grad_x' = g' * w * invstd per block, and
        # the tree sums gw = sum g' * xhat, gb = sum g' (g': through the activation)
        gx, _, _, gw, gb = _BN.backward_bound(grad_output, dict(a, input=x, running_mean=mean, running_var=var,
                                                                weight=w, bias=b, training=False))
        wk = g_.broadcast(w)
        tok = g_.token("bn-train-bwd", gx, gw, gb)
        name = f"fastops-batch_norm-gradx-{tok}"
        eps = T(a["eps"])
        zeros = (0,) * (x.ndim - 1)
        deps = [gx, x, mean, var, wk, gw, gb]
        dsk = {(name, i) + zeros: (_bn_train_gx, g_.block_key(gx, i), g_.block_key(x, i)) +
               tuple(g_.weight_key(d) for d in deps[2:]) + (eps, n) for i in range(g_.nblocks(x))}
        gxt = g_.array(name, dsk, deps, x.chunks, x.dtype)
        return (gxt, None, None, gw if a["weight"] is not None else None, gb if a["bias"] is not None else None)


def _bn_train_gx(gx_eval, x, mean, var, w, gw, gb, eps, n):
    """grad_x (training) = w * invstd * (g' - gb / n - xhat * gw / n) = grad_x' - w * invstd / n *
    (gb + xhat * gw), with xhat = (x - mean) * invstd."""
    T = x.dtype.type
    shape = (1, -1) + (1,) * (x.ndim - 2)
    invstd = T(1) / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    k = (w * invstd / T(n)).reshape(shape)
    return gx_eval - k * (gb.reshape(shape) + xhat * gw.reshape(shape))


register(_BatchNorm())

# ---------------------------------------------------------------------------------------------
# losses: reduction="none" is per block; "sum" tree-sums the blocks' sums; "mean" divides by the
# global denominator (element count, batch size, or the summed class weights of the targets)


def _class_weight_total(t, weight, ignore_index, dtype):
    valid = t != ignore_index
    if weight is None:
        return np.asarray(np.count_nonzero(valid), dtype)
    return np.asarray(weight[t[valid]].sum(dtype=dtype), dtype)


class DaskLoss(DaskOp):
    def __init__(self, name):
        super().__init__(name, LOSS_ROLES[name], None)

    def _reduced(self, a):
        red = a["reduction"]
        first, roles, arrs, static, probe = self.prepare(a)
        probe_call(self.op, static, probe)  # validates reduction and the rest
        return red, first, roles, arrs

    def _denominator(self, a, arrs, first):
        x = arrs[first]
        T = x.dtype.type
        if a["reduction"] == "batchmean" or self.name == "triplet_margin_loss":
            return T(x.shape[0])
        if self.name in ("cross_entropy", "nll_loss"):
            t = arrs["target"]
            if np.issubdtype(t.dtype, np.floating):  # class probabilities: one row per (sample, position)
                return T(x.size // x.shape[1])
            w = a["weight"]
            tok = g_.token("ce-denom", t, w, a["ignore_index"])
            leaves = [(_class_weight_total, g_.block_key(t, i), None if w is None else np.asarray(w),
                       a["ignore_index"], x.dtype) for i in range(g_.nblocks(t))]
            return g_.tree_sum(f"fastops-{self.name}-denom-{tok}", leaves, (), x.dtype, [t])
        return T(x.size)

    def forward_bound(self, a):
        if a["reduction"] == "none":
            return super().forward_bound(a)
        red, first, roles, arrs = self._reduced(a)
        a_sum = dict(a, reduction="sum")
        _, roles, arrs, static, probe = self.prepare(a_sum)
        fn = g_.call(self.op, arrs.keys(), static)
        tok = g_.token(self.name, static, *arrs.values())
        leaves = [(fn,) + tuple(self._args(arrs, roles, i)) for i in range(g_.nblocks(arrs[first]))]
        total = g_.tree_sum(f"fastops-{self.name}-sum-{tok}", leaves, (), arrs[first].dtype, arrs.values())
        if red == "sum":
            return total
        return total / self._denominator(a, arrs, first)

    def backward_bound(self, grad_output, a, grad_scale=None):
        if a["reduction"] == "none":
            return super().backward_bound(grad_output, a)
        red, first, roles, arrs = self._reduced(a)
        T = arrs[first].dtype
        if isinstance(grad_output, da.Array):
            gs = grad_output.astype(T)
        else:
            go = np.asarray(grad_output)
            if go.shape != ():
                raise ValueError(f"fastops.dask.{self.name}.backward: argument 'grad_output' must be a scalar for "
                                 f"reduction={red!r}, got shape {go.shape}")
            gs = g_.broadcast(go.astype(T))
        if red != "sum":
            gs = gs / self._denominator(a, arrs, first)
        return super().backward_bound(None, dict(a, reduction="sum"), grad_scale=gs)


for _name in LOSS_ROLES:
    register(DaskLoss(_name))

# ---------------------------------------------------------------------------------------------
# dropout / dropout2d: the mask of flat element (plane) index j is a function of (key, j) only
# (fastops._random): bits(key, j) = mix64(key + j * GAMMA). A block whose first element has
# global index `off` therefore uses the key `key + off * GAMMA` (mod 2**64) with local indices:
# exactly the single-array mask, with fastops' kernel unchanged.

_MASK64 = (1 << 64) - 1


def shifted_key(key, offset):
    return np.uint64((int(key) + int(offset) * _random._GAMMA) & _MASK64)


def _dropout_block(x, key, p, planes):
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, x.dtype)
    if planes:
        return _dropout_mod._apply_planes(x, out, key, p)
    return _dropout_mod._apply_mask(x, out, key, p)


class _Dropout(DaskOp):
    def __init__(self, name):
        super().__init__(name, {"input": "B"}, None)
        self.planes = name == "dropout2d"

    def _masked(self, v, a, backward):
        p, training, key = _dropout_mod._params(self.name, a["p"], a["training"], a["seed"], backward)
        if a["inplace"]:
            raise ValueError(f"fastops.dask.{self.name}: inplace=True is not supported (Dask arrays are immutable)")
        x = g_.batched(self.name, "input", a["input"])
        if self.planes:
            _dropout_mod._check_2d_rank(x)
        if backward:
            v = g_.batched(self.name, "grad_output", v, x.chunks[0])
            if v.shape != x.shape:
                raise ValueError(f"fastops.dask.{self.name}.backward: argument 'grad_output' must have shape "
                                 f"{x.shape}, got {v.shape}")
        else:
            v = x
        if not training:
            return v if not backward else v.copy()
        per_row = x.shape[1] if self.planes else math.prod(x.shape[1:])
        starts = np.concatenate([[0], np.cumsum(x.chunks[0])[:-1]])
        k0 = np.uint64(0) if key is None else key
        name = f"fastops-{self.name}-" + g_.token(self.name, v, p, int(k0), backward)
        zeros = (0,) * (x.ndim - 1)
        dsk = {(name, i) + zeros: (_dropout_block, g_.block_key(v, i), shifted_key(k0, starts[i] * per_row), p,
                                   self.planes) for i in range(g_.nblocks(x))}
        return g_.array(name, dsk, [v], v.chunks, v.dtype)

    def forward_bound(self, a):
        return self._masked(None, a, False)

    def backward_bound(self, grad_output, a, grad_scale=None):
        return (self._masked(grad_output, a, True),)


register(_Dropout("dropout"))
register(_Dropout("dropout2d"))

# ---------------------------------------------------------------------------------------------
# RoI ops: boxes (K, 5) = (batch index, x1, y1, x2, y2) are NumPy (they are small and their batch
# indices decide the routing). Boxes are sorted (stably) by batch index, each block gets its own
# boxes with the batch index made block-local, and the output rows are put back in the caller's
# order.


class _RoI(DaskOp):
    def __init__(self, name):
        super().__init__(name, {"input": "B", "boxes": "W"}, None)

    def _route(self, a):
        x = g_.batched(self.name, "input", a["input"])
        boxes = a["boxes"]
        if isinstance(boxes, da.Array):
            boxes = boxes.compute()
        if isinstance(boxes, (list, tuple)):  # per-image (K_i, 4) boxes, as torchvision accepts
            boxes = np.concatenate([np.concatenate([np.full((len(bb), 1), j, x.dtype), np.asarray(bb, x.dtype)], 1)
                                    for j, bb in enumerate(boxes)]) if len(boxes) else np.zeros((0, 5), x.dtype)
        boxes = np.asarray(boxes)
        static = {k: v for k, v in a.items() if k not in ("input", "boxes")}
        # fastops' validation on a one-image probe (shapes, dtypes, output_size, ...)
        pb = boxes.copy()
        if pb.ndim == 2 and pb.shape[1:] == (5,):
            pb[:, 0] = 0
        out1 = probe_call(self.op, static, {"input": np.zeros((1,) + x.shape[1:], x.dtype), "boxes": pb})
        bidx = boxes[:, 0]
        N = x.shape[0]
        if len(bidx) and (np.any(bidx != np.floor(bidx)) or bidx.min() < 0 or bidx.max() >= N):
            raise ValueError(f"fastops.dask.{self.name}: argument 'boxes' batch indices (column 0) must be integers in "
                             f"[0, {N}) for input of shape {x.shape}")
        order = np.argsort(bidx, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(x.chunks[0])])
        cuts = np.searchsorted(bidx[order], bounds, side="left")
        local = []
        for i in range(g_.nblocks(x)):
            bb = boxes[order[cuts[i]:cuts[i + 1]]].copy()
            bb[:, 0] -= bounds[i]
            local.append(bb)
        return x, order, local, static, out1.shape[1:]

    def forward_bound(self, a):
        x, order, local, static, tail = self._route(a)
        name = f"fastops-{self.name}-" + g_.token(self.name, x, local, static)
        fn = g_.call(_RoIBlock(self.op, tail), ("input", "boxes"), static)
        zeros = (0,) * len(tail)
        dsk = {(name, i) + zeros: (fn, g_.block_key(x, i), local[i]) for i in range(g_.nblocks(x))}
        out = g_.array(name, dsk, [x], (tuple(len(b) for b in local),) + tuple((s,) for s in tail), x.dtype)
        if np.any(order != np.arange(len(order))):
            out = out[np.argsort(order)]
        return out

    def backward_bound(self, grad_output, a, grad_scale=None):
        x, order, local, static, tail = self._route(a)
        counts = tuple(len(b) for b in local)
        g = grad_output if isinstance(grad_output, da.Array) else da.from_array(np.asarray(grad_output))
        if g.shape != (len(order),) + tuple(tail):
            raise ValueError(f"fastops.dask.{self.name}.backward: argument 'grad_output' must have shape "
                             f"{(len(order),) + tuple(tail)}, got {g.shape}")
        if np.any(order != np.arange(len(order))):
            g = g[order]
        g = g.rechunk((counts,) + tuple((s,) for s in tail))
        name = f"fastops-{self.name}-bwd-" + g_.token(self.name, x, g, local, static)
        fn = g_.call(_RoIBlockBackward(self.op), ("grad_output", "input", "boxes"), static)
        zeros = (0,) * (x.ndim - 1)
        dsk = {(name, i) + zeros: (fn, g_.block_key(g, i), g_.block_key(x, i), local[i]) for i in range(g_.nblocks(x))}
        return g_.array(name, dsk, [x, g], x.chunks, x.dtype), None


class _RoIBlock:
    def __init__(self, op, tail):
        self.op, self.tail = op, tuple(tail)

    def __call__(self, input, boxes, **kw):
        if len(boxes) == 0:
            return np.zeros((0,) + self.tail, input.dtype)
        return self.op(input, boxes, **kw)


class _RoIBlockBackward:
    def __init__(self, op):
        self.op = op

    def __call__(self, grad_output, input, boxes, **kw):
        if len(boxes) == 0:
            return np.zeros(input.shape, input.dtype)
        return self.op.backward(grad_output, input, boxes, **kw)[0]


for _name in ("roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool"):
    register(_RoI(_name))
