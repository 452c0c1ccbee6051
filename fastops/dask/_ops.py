"""``fastops.dask`` ops: the fastops op of the same name mapped over the batch blocks of Dask arrays.

Each public object is a :class:`DaskOp`: ``fastops.dask.conv2d(x, w, b, padding=1)`` has the
signature of ``fastops.conv2d`` and ``fastops.dask.conv2d.backward(g, x, w, b, padding=1)`` that of
``fastops.conv2d.backward``. Array parameters have a *role*:

* ``B`` (batched): a Dask array chunked along axis 0 only (a NumPy array is wrapped with the
  primary operand's batch chunks); the op runs once per block (a task per block).
* ``W`` (weight): broadcast. A NumPy weight becomes one graph key (``broadcast``), which every
  block task references: the distributed scheduler sends it once to each worker, not once per
  task (``tests/test_dask.py`` checks the graph). Its gradient is the fixed-order pairwise tree
  sum of the per-block partial gradients.
* ``?``: batched if it has the input's rank and batch size, else a weight (broadcasting operands
  of ``add``/``mul``/..., the per-element ``weight`` of ``binary_cross_entropy``).

Before building the graph the op is called once on a one-sample batch of zeros (the probe): that
validates every argument with fastops' own errors, and gives the output's shape and dtype and
which gradients are ``None``, without computing anything on the cluster.
"""
import inspect

import numpy as np

import fastops
from fastops._op import REGISTRY

from . import _graph as g_


class DaskOp:
    """A fastops op over batch-chunked Dask arrays (see the module docstring)."""

    def __init__(self, name, roles, check=None, out_batched=True):
        self.name = name
        self.op = REGISTRY[name]
        self.roles = dict(roles)  # param -> "B" | "W" | "?", every array parameter in signature order
        self.check = check  # check(args) raises ValueError for arguments that mix the batch
        self.signature = inspect.signature(self.op._forward)
        self.__doc__ = (f"``fastops.{name}`` on Dask arrays chunked along the batch axis (roles: "
                        + ", ".join(f"{k}={v}" for k, v in self.roles.items()) + f").\n\n{self.op.__doc__ or ''}")
        self.__name__ = name

    def __repr__(self):
        return f"<fastops.dask op {self.name}>"

    def __reduce__(self):
        return (_lookup, (self.name,))

    # -- argument handling ---------------------------------------------------------------------
    def bind(self, args, kwargs):
        try:
            ba = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"fastops.dask.{self.name}: {e}") from None
        ba.apply_defaults()
        return dict(ba.arguments)

    def _resolve_roles(self, a):
        first = next(p for p, r in self.roles.items() if r == "B")
        x = a[first]
        roles = {}
        for p, r in self.roles.items():
            if r == "?":
                v = a[p]
                r = "B" if (v is not None and np.ndim(v) == np.ndim(x) and np.shape(v)[0] == np.shape(x)[0]
                            and np.shape(x)[0] > 1) else "W"
            roles[p] = r
        return first, roles

    def prepare(self, a):
        """(primary, roles, dask arrays by param, static hyper-parameters, probe arguments)."""
        if self.check is not None:
            self.check(self.name, a)
        if a.get("inplace"):
            raise ValueError(f"fastops.dask.{self.name}: inplace=True is not supported (Dask arrays are immutable)")
        first, roles = self._resolve_roles(a)
        x = g_.batched(self.name, first, a[first])
        chunks = x.chunks[0]
        arrs, probe = {}, {}
        for p, r in roles.items():
            v = a[p]
            if v is None:
                continue
            if r == "B":
                arrs[p] = x if p == first else g_.batched(self.name, p, v, chunks)
                probe[p] = np.zeros((1,) + arrs[p].shape[1:], arrs[p].dtype)
            else:
                arrs[p] = g_.broadcast(v)
                probe[p] = v if isinstance(v, np.ndarray) else np.zeros(arrs[p].shape, arrs[p].dtype)
        static = {k: v for k, v in a.items() if k not in arrs}
        return first, roles, arrs, static, probe

    def _args(self, arrs, roles, i):
        return [g_.block_key(v, i) if roles[p] == "B" else g_.weight_key(v) for p, v in arrs.items()]

    # -- forward -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        a = self.bind(args, kwargs)
        return self.forward_bound(a)

    def forward_bound(self, a):
        first, roles, arrs, static, probe = self.prepare(a)
        out1 = probe_call(self.op, static, probe)
        if isinstance(out1, tuple):
            raise ValueError(f"fastops.dask.{self.name}: arguments giving several outputs (return_indices=True, ...) "
                             "are not supported on Dask arrays")
        if out1.ndim == 0 or out1.shape[0] != 1:
            raise ValueError(f"fastops.dask.{self.name}: with these arguments the output has no batch axis "
                             f"(one-sample output shape {out1.shape}); use reduction='none' or the NumPy op")
        x = arrs[first]
        name = f"fastops-{self.name}-" + g_.token(self.name, static, *arrs.values())
        fn = g_.call(self.op, arrs.keys(), static)
        zeros = (0,) * (out1.ndim - 1)
        dsk = {(name, i) + zeros: (fn,) + tuple(self._args(arrs, roles, i)) for i in range(g_.nblocks(x))}
        return g_.array(name, dsk, arrs.values(), (x.chunks[0],) + tuple((s,) for s in out1.shape[1:]), out1.dtype)

    # -- backward ------------------------------------------------------------------------------
    def backward(self, grad_output, *args, **kwargs):
        """Gradients like ``fastops.OP.backward``: batched parameters get per-block gradients (Dask
        arrays with the operand's chunks), weights the tree sum of the per-block partials (one-chunk
        Dask arrays); ``None`` where fastops gives ``None``."""
        a = self.bind(args, kwargs)
        return self.backward_bound(grad_output, a)

    def backward_bound(self, grad_output, a, grad_scale=None):
        first, roles, arrs, static, probe = self.prepare(a)
        x = arrs[first]
        chunks = x.chunks[0]
        out1 = probe_call(self.op, static, probe)
        if grad_scale is None:
            g = g_.batched(self.name, "grad_output", grad_output, chunks)
            gprobe = np.zeros((1,) + g.shape[1:], g.dtype)
            if g.shape[1:] != out1.shape[1:]:
                raise ValueError(f"fastops.dask.{self.name}.backward: argument 'grad_output' must have the output's "
                                 f"shape {(x.shape[0],) + out1.shape[1:]}, got {g.shape}")
        else:  # reduced loss: grad_scale is the (0-d, Dask) gradient of each block's sum
            g = grad_scale
            gprobe = np.zeros((), out1.dtype)
        grads1 = probe_call(self.op.backward, static, probe, gprobe)
        tok = g_.token(self.name, "bwd", static, g, *arrs.values())
        bname = f"fastops-{self.name}-bwd-" + tok
        fn = g_.call(_Backward(self.op), ("grad_output",) + tuple(arrs.keys()), static)
        gkey = (lambda i: g_.block_key(g, i)) if grad_scale is None else (lambda i: g_.weight_key(g))
        dsk = {(bname, i): (fn, gkey(i)) + tuple(self._args(arrs, roles, i)) for i in range(g_.nblocks(x))}
        src = g_.array(bname, dsk, [g, *arrs.values()], ((1,) * g_.nblocks(x),), object)
        # one gradient per array parameter, in signature order: the roles' order
        out = []
        for j, (p, gr1) in enumerate(zip(self.roles, grads1)):
            if gr1 is None or p not in arrs:
                out.append(None)
            elif roles[p] == "B":
                v = arrs[p]
                out.append(g_.blocks_array(f"fastops-{self.name}-grad-{p}-{tok}", bname, j, [src],
                                           v.chunks, gr1.dtype))
            else:
                leaves = [(_getitem, (bname, i), j) for i in range(g_.nblocks(x))]
                out.append(g_.tree_sum(f"fastops-{self.name}-grad-{p}-{tok}", leaves, arrs[p].shape, gr1.dtype, [src]))
        return tuple(out)


class _Backward:
    """Picklable ``op.backward`` with the forward's keyword names."""

    def __init__(self, op):
        self.op = op

    def __call__(self, grad_output, **kw):
        return self.op.backward(grad_output, **kw)


def probe_call(fn, static, probe, *pos):
    """The one-sample probe call, on 1 thread: the serial kernels a single-threaded worker runs
    (so the probe compiles, or loads, the kernels the workers then load from the shared cache,
    and no parallel variant only the probe would use)."""
    with fastops.threads(1):
        return fn(*pos, **static, **probe)


def _getitem(t, j):
    return t[j]


DASK_OPS = {}


def _lookup(name):
    from fastops import dask as _  # noqa: F401  (registers every op)

    return DASK_OPS[name]


def register(dop):
    DASK_OPS[dop.name] = dop
    return dop


# ---------------------------------------------------------------------------------------------
# argument checks: hyper-parameters that would reach across the batch axis


def _ndim(v):
    return len(v.shape) if hasattr(v, "shape") else np.ndim(v)


def check_dim(name, a):
    nd = _ndim(a["input"])
    dim = a.get("dim")
    if dim is None:  # torch's legacy implicit dim: 0 for 0-D, 1-D and 3-D inputs
        dim = 0 if nd in (0, 1, 3) else 1
    if dim % max(nd, 1) == 0:
        raise ValueError(f"fastops.dask.{name}: dim={a.get('dim')} is the batch axis of input of shape "
                         f"{a['input'].shape}; fastops.dask needs ops independent along the batch axis 0")


def check_layer_norm(name, a):
    ns = a["normalized_shape"]
    ns = (ns,) if isinstance(ns, (int, np.integer)) else tuple(ns)
    if len(ns) >= _ndim(a["input"]):
        raise ValueError(f"fastops.dask.{name}: normalized_shape={ns} includes the batch axis of input of shape "
                         f"{a['input'].shape}")


def check_flatten(name, a):
    if a["start_dim"] % _ndim(a["input"]) == 0:
        raise ValueError(f"fastops.dask.{name}: start_dim={a['start_dim']} flattens the batch axis; use start_dim=1")


def check_pad(name, a):
    if len(a["pad"]) // 2 >= _ndim(a["input"]):
        raise ValueError(f"fastops.dask.{name}: pad={a['pad']} pads the batch axis of input of shape {a['input'].shape}")


def check_instance_norm(name, a):
    if a["running_mean"] is not None or a["running_var"] is not None:
        raise ValueError(f"fastops.dask.{name}: running statistics (updated in place across the batch) are not "
                         "supported on Dask arrays; pass running_mean=None, running_var=None")


def check_rrelu(name, a):
    if a["training"]:
        raise ValueError(f"fastops.dask.{name}: training=True (a random slope per element) is not supported on Dask "
                         "arrays; use training=False")


def check_sdpa(name, a):
    if a["dropout_p"]:
        raise ValueError(f"fastops.dask.{name}: dropout_p > 0 is not supported on Dask arrays")


def check_bn_eval(name, a):
    if a["training"]:  # pragma: no cover  (batch_norm dispatches training to the global-stats path)
        raise AssertionError


# ---------------------------------------------------------------------------------------------

_X = {"input": "B"}
_CONV = {"input": "B", "weight": "W", "bias": "W"}

_TABLE = [
    # activations
    *[(n, _X, None) for n in ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", "softplus",
                              "hardsigmoid", "hardswish", "mish")],
    ("prelu", {"input": "B", "weight": "W"}, None),
    ("rrelu", _X, check_rrelu),
    ("softmax", _X, check_dim),
    ("log_softmax", _X, check_dim),
    # arithmetic (the second operand batched or broadcast)
    ("add", {"input": "B", "other": "?"}, None),
    ("sub", {"input": "B", "other": "?"}, None),
    ("mul", {"input": "B", "other": "?"}, None),
    ("div", {"input": "B", "other": "?"}, None),
    ("bias_add", {"x": "B", "bias": "W"}, None),
    # linear and convolution
    ("linear", _CONV, None),
    *[(n, _CONV, None) for n in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                                 "conv_transpose3d")],
    ("separable_conv2d", {"x": "B", "depthwise_weight": "W", "pointwise_weight": "W", "bias": "W"}, None),
    ("deform_conv2d", {"input": "B", "offset": "B", "weight": "W", "bias": "W", "mask": "B"}, None),
    ("correlation", {"x1": "B", "x2": "B"}, None),
    # pooling
    *[(n, _X, None) for n in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                              "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                              "adaptive_max_pool1d", "adaptive_max_pool2d", "global_avg_pool2d")],
    *[(n, {"input": "B", "indices": "B"}, None) for n in ("max_unpool1d", "max_unpool2d", "max_unpool3d")],
    # normalization (batch_norm: eval mode here, training in _batch_norm)
    ("batch_norm", {"input": "B", "running_mean": "W", "running_var": "W", "weight": "W", "bias": "W"}, check_bn_eval),
    ("layer_norm", {"input": "B", "weight": "W", "bias": "W"}, check_layer_norm),
    ("group_norm", {"input": "B", "weight": "W", "bias": "W"}, None),
    ("instance_norm", {"input": "B", "running_mean": "W", "running_var": "W", "weight": "W", "bias": "W"},
     check_instance_norm),
    ("local_response_norm", _X, None),
    ("l2_normalize", {"x": "B", "scale": "W"}, None),
    # shape and resampling
    ("flatten", _X, check_flatten),
    ("channel_shuffle", _X, None),
    ("pixel_shuffle", _X, None),
    ("pad", _X, check_pad),
    ("interpolate", _X, None),
    ("upsample_nearest2d", {"x": "B"}, None),
    ("grid_sample", {"input": "B", "grid": "B"}, None),
    # recurrent cells
    ("rnn_cell", {"input": "B", "h": "B", "w_ih": "W", "w_hh": "W", "b_ih": "W", "b_hh": "W"}, None),
    ("gru_cell", {"input": "B", "h": "B", "w_ih": "W", "w_hh": "W", "b_ih": "W", "b_hh": "W"}, None),
    # attention (batch = dim 0 of query/key/value; a mask without that batch is broadcast)
    ("scaled_dot_product_attention", {"query": "B", "key": "B", "value": "B", "attn_mask": "?"}, check_sdpa),
]

for _name, _roles, _check in _TABLE:
    register(DaskOp(_name, _roles, _check))

# losses: reduction="none" is a plain batched op; "mean"/"sum" in _losses
LOSS_ROLES = {
    "mse_loss": {"input": "B", "target": "B"},
    "l1_loss": {"input": "B", "target": "B"},
    "smooth_l1_loss": {"input": "B", "target": "B"},
    "huber_loss": {"input": "B", "target": "B"},
    "kl_div": {"input": "B", "target": "B"},
    "binary_cross_entropy": {"input": "B", "target": "B", "weight": "?"},
    "binary_cross_entropy_with_logits": {"input": "B", "target": "B", "weight": "?", "pos_weight": "W"},
    "cross_entropy": {"input": "B", "target": "B", "weight": "W"},
    "nll_loss": {"input": "B", "target": "B", "weight": "W"},
    "triplet_margin_loss": {"anchor": "B", "positive": "B", "negative": "B"},
}


__all__ = ["DaskOp", "DASK_OPS", "register", "LOSS_ROLES"]
