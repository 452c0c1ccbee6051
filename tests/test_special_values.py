"""Generic op-table tests (fastops.testing): special values, empty axes, invalid dtype and rank.

Every op of the table gets every case by construction (a new op is covered the moment it has an
OpInfo). The cases come from the op's first two float64 samples with non-empty arrays, and change
its top-level array arguments (not the arrays inside a recurrent op's ``hx`` or ``params``):

* ``test_nan_inf``: NaN, +Inf or -Inf at one element (the first, and the middle one) of one float
  array argument. Forward: the non-finite pattern (NaN / +Inf / -Inf per element) equals torch's,
  the finite values are close at the table's float64 tolerance. Backward (a random cotangent on the
  outputs that are finite, 0 on the others): each gradient is finite, and close to torch's, where
  torch's is finite.
* ``test_empty_axis``: one axis of one array argument of size 0 (and, as a second case, that axis
  of every array argument of the same size there, e.g. the batch of input and target). Where torch
  raises, fastops raises ValueError/TypeError naming the op; where torch returns, fastops returns
  the same shapes and values (empty arrays; 0 or NaN for reductions) and a backward of the
  arguments' shapes (and torch's values).
* ``test_bad_dtype``: each float array argument as int64, bool and float16 raises TypeError naming
  the op and the argument.
* ``test_bad_rank``: each array argument with one more (a leading axis of 2) and one fewer (the
  first index of the leading axis) dimension: fastops raises ValueError/TypeError naming the op
  where torch raises, and gives torch's result (shapes and values) where torch accepts it.

Exceptions, each with its reason, in four tables: ``KNOWN`` (xfail, strict: cases that fail for a
known reason; once fixed they XPASS and fail, so the entry must be deleted), ``STRICTER`` (fastops
refuses, by design, an input torch or the torch reference lets through: the case asserts the
ValueError naming the op), ``NAN_REF`` and ``EMPTY_REF`` (torch's answer is an artifact: the case
compares with the mathematically defined result, computed as said there).
"""
import fnmatch
import inspect
import warnings

import numpy as np
import pytest

from fastops.testing import grad_entries, table, tree_leaves, tree_map

from .conftest import torch

# ``kind:case-id glob[|glob...]`` -> reason. Case ids: ``<op>-s<sample>-<argument>-<detail>`` (see the test ids).
KNOWN = {
    # ---- the torch side fails, not fastops: fastops returns the empty result torch gives without a
    # weight; the table's torch reference (per-sample select with a weight) raises IndexError
    "empty:instance_norm-s*-input-axis0": "instance_norm on an empty batch: the torch reference raises IndexError",
    # ---- real fastops bugs found by these tests (not fixed yet)
    "nan:deform_conv2d-s*-offset-nan-*": "deform_conv2d backward: a NaN offset (a NaN sampling location) scatters NaN "
                                         "into grad_input at an arbitrary pixel (an index computed from NaN); torch's "
                                         "grad_input is finite there",
    "empty:conv_transpose1d-s1-input+weight-axis0": "conv_transpose1d with 0 input channels: torch raises ('expected "
                                                    "weight to be at least 1 at dimension 0'), fastops returns the bias",
    "empty:conv_transpose1d-s1-weight-axis1": "conv_transpose1d with 0 output channels: torch raises ('non-empty 2D or "
                                              "4D weight tensor expected'), fastops returns an empty output",
    "empty:conv_transpose3d-s0-weight-axis1": "conv_transpose3d with 0 output channels: torch raises ('non-empty 5D "
                                              "tensor expected for weight'), fastops returns an empty output",
}

TABLE = table()
F64 = np.float64


def _ids():
    seen, out = {}, []
    for info in TABLE:
        n = seen.get(info.name, 0)
        seen[info.name] = n + 1
        out.append(info.name if n == 0 else f"{info.name}#{n}")
    return out


IDS = _ids()


def _as_list(out):
    """A result's arrays, flat (also inside a recurrent op's ``(output, (h_n, c_n))``)."""
    return tree_leaves(out)


def _structured(out, flat):
    """``flat`` (one array per leaf of ``out``) in the structure of ``out``: a cotangent."""
    it = iter(flat)
    return tree_map(lambda _: next(it), out)


def _short(info):
    return info.name.split(".")[-1]


def _argnames(info, n):
    """Names of the first ``n`` positional parameters (``xs[0], xs[1], ...`` for ``*xs``)."""
    params = list(inspect.signature(info.op).parameters.values())
    names = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}[{k}]" for k in range(n - len(names))]
            break
        names.append(p.name)
    return names[:n]


def _picked(info):
    """The first two float64 samples whose array arguments are all non-empty."""
    out = []
    for k, s in enumerate(info.samples(np.random.default_rng(0), F64)):
        arrays = [a for a in s.args if isinstance(a, np.ndarray)]
        if arrays and all(a.size for a in arrays) and any(a.ndim for a in arrays):
            out.append((k, s))
        if len(out) == 2:
            break
    return out


def _float_arrays(s):
    return [i for i, a in enumerate(s.args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def _mark(kind, cid):
    for pat, reason in KNOWN.items():
        k, _, globs = pat.partition(":")
        if k == kind and any(fnmatch.fnmatchcase(cid, g) for g in globs.split("|")):
            return [pytest.mark.xfail(strict=True, reason=reason)]
    return []


def _param(kind, info, opid, cid, *values):
    return pytest.param(info, *values, id=cid, marks=_mark(kind, cid))


requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed (optional: pip install torch)")


# ---------------------------------------------------------------- torch side

def _sdpa_math(t, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False, seed=None):
    """softmax(q k^T * scale + mask) v, written out, for the special-value cases: which of torch's CPU
    attention kernels runs depends on the build, shapes and dtype, and its fused (flash) kernel has
    been seen to give 0 for a NaN query row where the definition gives NaN. (For the samples used here
    torch 2.13's F.scaled_dot_product_attention gives the same pattern and values: checked.)"""
    assert dropout_p == 0.0
    if attn_mask is not None and not isinstance(attn_mask, t.Tensor):
        attn_mask = t.from_numpy(attn_mask)
    if enable_gqa:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], -3)
        v = v.repeat_interleave(q.shape[-3] // v.shape[-3], -3)
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale
    if is_causal:
        L, S = q.shape[-2], k.shape[-2]
        s = s.masked_fill(~t.ones(L, S, dtype=t.bool).tril(), -float("inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, -float("inf")) if attn_mask.dtype == t.bool else s + attn_mask
    return t.softmax(s, -1) @ v


SPECIAL_REF = {"scaled_dot_product_attention": _sdpa_math}  # torch references for test_nan_inf only


def _torch_run(ref, info, args, kwargs, cots=None):
    """torch's outputs (numpy) and gradients (numpy or None per positional argument; None for all if
    torch's backward raised). ``cots``: a function outputs -> cotangents."""
    # a tuple/list argument (a recurrent op's hx, params) goes to torch as tensors without a
    # gradient: the cases here change top-level array arguments only
    targs = [torch.from_numpy(a.copy()).requires_grad_(i in info.grad_args and a.dtype.kind == "f")
             if isinstance(a, np.ndarray) else tree_map(lambda v: torch.from_numpy(v.copy()), a)
             for i, a in enumerate(args)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tout = _as_list(ref(torch, *targs, **kwargs))
    outs = [o.detach().numpy() for o in tout]
    diff = [i for i, a in enumerate(targs) if isinstance(a, torch.Tensor) and a.requires_grad]
    grads = {}
    if diff and cots is not None:
        c = cots(outs)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tg = torch.autograd.grad([o for o in tout if o.requires_grad], [targs[i] for i in diff],
                                         [torch.from_numpy(x) for o, x in zip(tout, c) if o.requires_grad],
                                         allow_unused=True)
            grads = {i: (np.zeros(args[i].shape) if g is None else g.numpy()) for i, g in zip(diff, tg)}
        except RuntimeError:
            grads = None
    return outs, grads


def _pattern(a):
    a = np.asarray(a, np.float64)
    return np.where(np.isnan(a), 1, 0) + np.where(a == np.inf, 2, 0) + np.where(a == -np.inf, 3, 0)


def _tol(info):
    return info.torch_tol.get(F64, info.tol[F64])


def _lookup(table, cid):
    for glob, value in table.items():
        if fnmatch.fnmatchcase(cid, glob):
            return value
    return None


# ---------------------------------------------------------------- 1. NaN and +-Inf

# Where torch's answer is an artifact, the case compares with the mathematically defined result
# instead: ``numpy``: the table's NumPy reference (the formula, in float64); ``far``: torch with the
# infinite coordinate replaced by a finite one far outside the input (a sample at infinity with
# zero padding reads 0). The backward is still held to torch's finite gradients (of that version).
NAN_REF = {
    # y = w * x_hat + b: torch's CPU kernel folds the affine into x * (w * rstd) + (b - mean * w * rstd),
    # which is inf - inf = NaN for w = +-inf wherever the sign of x differs from mean's; the formula
    # gives +-inf (x_hat != 0)
    "batch_norm-s*-weight-*inf-*": ("torch folds w into scale/shift: NaN for w = inf", "numpy"),
    "group_norm-s*-weight-*inf-*": ("torch folds w into scale/shift: NaN for w = inf", "numpy"),
    "instance_norm-s*-weight-*inf-*": ("torch folds w into scale/shift: NaN for w = inf", "numpy"),
    # target * (log(target) - input) at target = +inf is +inf; torch computes xlogy(t, t) - t * input = inf - inf
    "kl_div-s*-target-inf-*": ("torch: xlogy(t, t) - t * x = inf - inf for t = inf", "numpy"),
    # a sampling location at +-inf lies outside the input: zero padding reads 0 (torch: NaN bilinear weights)
    "grid_sample-s*-grid-*inf-*": ("torch: NaN weights at an infinite location, zero padding reads 0", "far"),
    "deform_conv2d-s*-offset-*inf-*": ("torch: NaN weights at an infinite location, zero padding reads 0", "far"),
}


def _far(args):
    return [np.where(np.isinf(a), np.sign(a) * 1e6, a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args]


def _nan_cases():
    out = []
    for info, opid in zip(TABLE, IDS):
        if not info.torch_ref:
            continue
        for k, s in _picked(info):
            names = _argnames(info, len(s.args))
            for i in _float_arrays(s):
                pos = {"first": 0, "mid": s.args[i].size // 2} if s.args[i].size > 1 else {"first": 0}
                for vname, v in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
                    for pname, p in pos.items():
                        cid = f"{opid}-s{k}-{names[i]}-{vname}-{pname}"
                        out.append(_param("nan", info, opid, cid, s, i, v, p, cid))
    return out


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("info,s,i,v,p,cid", _nan_cases())
def test_nan_inf(info, s, i, v, p, cid):
    args = list(s.args)
    a = args[i].copy()
    a.flat[p] = v
    args[i] = a
    rtol, atol = _tol(info)
    ref = SPECIAL_REF.get(info.name, info.torch_ref)
    how = (_lookup(NAN_REF, cid) or (None, None))[1]
    what = f"{info.name} {s} with {v} in argument {i} at {p}"

    def cots(outs):
        return [np.where(np.isfinite(o), np.random.default_rng(11).standard_normal(o.shape), 0.0) for o in outs]

    if _lookup(STRICTER, cid):
        return _raises_naming_op(info, args, s.kwargs, f"{what} ({_lookup(STRICTER, cid)})")
    try:
        touts, tgrads = _torch_run(ref, info, _far(args) if how == "far" else args, s.kwargs, cots)
    except Exception as exc:  # noqa: BLE001 -- torch (or the reference's indexing) refuses the value
        if how != "numpy":
            return _raises_naming_op(info, args, s.kwargs, f"{what} (torch raises {type(exc).__name__}: {exc})")
        touts, tgrads = None, None
    if how == "numpy":
        touts = [np.asarray(o) for o in _as_list(info.ref(*args, **s.kwargs))]
    outs = [np.asarray(o) for o in _as_list(info.op(*args, **s.kwargs))]
    assert len(outs) == len(touts), what
    for o, t in zip(outs, touts):
        assert o.shape == t.shape, what
        np.testing.assert_array_equal(_pattern(o), _pattern(t), err_msg=f"{what}: non-finite pattern (1 NaN, 2 +inf, 3 -inf)")
        fin = np.isfinite(t)
        np.testing.assert_allclose(o[fin], t[fin], rtol=rtol, atol=atol, err_msg=what)
    if not tgrads:
        return  # nothing differentiable, or torch's backward raised
    out_tree = info.op(*args, **s.kwargs)
    grads = info.op.backward(_structured(out_tree, cots(touts)), *args, **s.kwargs)
    entry = grad_entries(info.name, args)
    for j, tg in tgrads.items():
        g = np.asarray(grads[entry[j]])
        assert g.shape == tg.shape, what
        fin = np.isfinite(tg)
        bad = fin & ~np.isfinite(g)
        assert not bad.any(), f"{what}: gradient of argument {j} not finite at {np.argwhere(bad)[:5].tolist()} where torch's is"
        np.testing.assert_allclose(g[fin], tg[fin], rtol=rtol * 10, atol=atol * 10, err_msg=f"{what}: gradient of argument {j}")


# ---------------------------------------------------------------- 2. axes of size 0

# fastops refuses, by design and with a ValueError naming the op and the argument, inputs that torch
# (or the table's torch reference) lets through; these cases assert that refusal instead.
STRICTER = {
    # a per-channel parameter of the wrong length: torch skips the check when the input is empty
    "batch_norm-s*-input-axis1": "weight/bias/running stats of length C != 0 for an input with C = 0",
    "instance_norm-s*-input-axis1": "weight/bias/running stats of length C != 0 for an input with C = 0",
    "deform_conv2d-s1-input+offset-axis0": "the mask keyword keeps batch 1 for input/offset of batch 0",
    "deform_conv2d-s*-offset-axis[23]": "offset's spatial shape must be the output's (torch's reference slices it)",
    "deform_conv2d-s*-weight+bias-axis0": "deform_conv2d rejects a weight with an empty dimension (0 output channels)",
    "correlation-s*-x1-axis*": "correlation needs x1 and x2 of one shape (the torch reference slices the smaller one)",
    "correlation-s*-x2-axis*": "correlation needs x1 and x2 of one shape (the torch reference slices the smaller one)",
    "correlation-s*-x1+x2-axis1": "correlation rejects C = 0 (it normalises by kernel_size**2 * C: 0/0)",
    "correlation-s*-x1+x2-axis[23]": "correlation rejects a padded input smaller than its displacement window",
    "roi_pool-s*-input-axis[23]": "RoI pooling rejects an empty feature map (the torch reference returns 0 per bin)",
    "ps_roi_pool-s*-input-axis[23]": "RoI pooling rejects an empty feature map (the torch reference returns 0 per bin)",
    "scaled_dot_product_attention-s0-value-axis[012]": "key/value batch and length must agree (torch skips the check "
                                                       "for an empty value)",
    "scaled_dot_product_attention-s1-value-axis[01]": "key/value batch and length must agree (torch skips the check "
                                                      "for an empty value)",
    # NaN/inf: a box with a non-finite coordinate has no bins (the torch reference returns garbage)
    "roi_align-s*-boxes-*inf-*": "roi_align rejects non-finite box coordinates",
    "roi_align-s*-boxes-nan-*": "roi_align rejects non-finite box coordinates",
    "ps_roi_align-s*-boxes-*inf-*": "ps_roi_align rejects non-finite box coordinates",
    "ps_roi_align-s*-boxes-nan-*": "ps_roi_align rejects non-finite box coordinates",
    # rank: the torch reference is an arithmetic expression or a rank-generic call; fastops' op is not
    "axpy-s*-*-more": "axpy needs x and y of one shape (Caffe Axpy; the torch reference a * x + y broadcasts)",
    "axpy-s*-*-fewer": "axpy needs x and y of one shape (Caffe Axpy; the torch reference a * x + y broadcasts)",
    "eltwise-s*-*-more": "eltwise needs inputs of one shape (Caffe Eltwise; the torch reference broadcasts)",
    "eltwise-s*-*-fewer": "eltwise needs inputs of one shape (Caffe Eltwise; the torch reference broadcasts)",
    "bias_add-s*-x-fewer": "bias_add needs x with at least 2 dims (N, C, ...) (the torch reference broadcasts)",
    "bias_add-s*-bias-fewer": "bias_add needs a bias of shape (C,) (the torch reference broadcasts a 0-d one)",
    "linear-s*-bias-fewer": "linear needs a bias of shape (out_features,) (torch broadcasts a 0-d one)",
    "rnn_cell-s*-b_[ih]h-fewer": "rnn_cell needs biases of shape (hidden_size,) (torch broadcasts a 0-d one)",
    "lstm_cell-s*-b_[ih]h-fewer": "lstm_cell needs biases of shape (4 * hidden_size,) (torch broadcasts a 0-d one)",
    "gru_cell-s*-b_[ih]h-fewer": "gru_cell needs biases of shape (3 * hidden_size,) (torch broadcasts a 0-d one)",
    "l2_normalize-s*-scale-fewer": "l2_normalize needs a scale of shape (C,) (the torch reference broadcasts a 0-d one)",
    "global_avg_pool2d-s*-input-more": "global_avg_pool2d takes 4-D input only (the torch reference x.mean((2, 3)) takes any)",
    "upsample_nearest2d-s*-x-more": "upsample_nearest2d takes 4-D input only (torch's interpolate does 3-D on 5-D input)",
}

# Where torch's answer on an empty axis is an artifact: the mathematically defined result is
# torch's on the same inputs with the empty axes (argument, axis) filled by one slice of zeros, the
# outputs sliced back to size 0 along ``out_axes`` (one per output, None: not sliced) with a 0
# cotangent there, and the gradients sliced back. (An empty sum is 0.)
EMPTY_REF = {
    # torch returns (N, 0, L) for conv with C_in = 0; the sum over no channels is 0: the output is the
    # bias, (N, C_out, L) (torch: ConvNd's empty-input shortcut uses the input's channel count)
    "conv1d-s*-input+weight-axis1": ((None,), "torch's empty-input shortcut keeps C_in = 0 as the output channels"),
    "conv2d-s*-input+weight-axis1": ((None,), "torch's empty-input shortcut keeps C_in = 0 as the output channels"),
    "conv3d-s*-input+weight-axis1": ((None,), "torch's empty-input shortcut keeps C_in = 0 as the output channels"),
    # mean over N samples of an empty sum: 0; torch divides by input.numel() / C = 0 / 0
    "cross_entropy#1-s*-input+target-axis1": ((None,), "torch's mean divides by numel / C = 0 / 0"),
    # sum over an empty extent of g * x_hat and of g: 0; torch forms them from NaN statistics
    "group_norm-s*-input-axis2": ((2,), "torch's weight/bias gradients use NaN statistics of the empty groups"),
    # the torch reference reshapes to (N, -1), ambiguous for N = 0
    "l2_normalize-s*-x-axis0": ((0,), "the torch reference's reshape(N, -1) fails for N = 0"),
}

def _empty_cases():
    out = []
    for info, opid in zip(TABLE, IDS):
        if not info.torch_ref:
            continue
        for k, s in _picked(info):
            names = _argnames(info, len(s.args))
            arrays = [i for i, a in enumerate(s.args) if isinstance(a, np.ndarray)]
            for i in arrays:
                for ax in range(s.args[i].ndim):
                    cid = f"{opid}-s{k}-{names[i]}-axis{ax}"
                    out.append(_param("empty", info, opid, cid, s, ((i, ax),), cid))
                    size = s.args[i].shape[ax]
                    same = [j for j in arrays if s.args[j].ndim > ax and s.args[j].shape[ax] == size]
                    if len(same) > 1 and same[0] == i:
                        cid = f"{opid}-s{k}-{'+'.join(names[j] for j in same)}-axis{ax}"
                        out.append(_param("empty", info, opid, cid, s, tuple((j, ax) for j in same), cid))
    return out


def _raises_naming_op(info, args, kwargs, what):
    with pytest.raises((ValueError, TypeError)) as e:
        info.op(*args, **kwargs)
    assert _short(info) in str(e.value), f"{what}: the error does not name the op: {e.value!r}"


def _filled_ref(info, args, kwargs, axes, out_axes):
    """torch's result with the empty axes filled by one slice of zeros (see EMPTY_REF)."""
    full = list(args)
    for i, ax in axes:
        shape = list(full[i].shape)
        shape[ax] = 1
        full[i] = np.zeros(shape, full[i].dtype)

    def cots(outs):
        return [np.zeros(o.shape) if oa is not None else np.ones(o.shape) for o, oa in zip(outs, out_axes)]

    touts, tgrads = _torch_run(info.torch_ref, info, full, kwargs, cots)
    touts = [o if oa is None else np.take(o, [], axis=oa) for o, oa in zip(touts, out_axes)]
    for i, ax in axes:
        if tgrads and i in tgrads:
            tgrads[i] = np.take(tgrads[i], [], axis=ax)
    return touts, tgrads


def _compare_to_torch(info, args, kwargs, what, tol, cid, axes=()):
    """torch raises -> fastops raises ValueError/TypeError naming the op; else same outputs and gradients."""
    if _lookup(STRICTER, cid):
        return _raises_naming_op(info, args, kwargs, f"{what} ({_lookup(STRICTER, cid)})")
    filled = _lookup(EMPTY_REF, cid)
    try:
        if filled:
            touts, tgrads = _filled_ref(info, args, kwargs, axes, filled[0])
        else:
            touts, tgrads = _torch_run(info.torch_ref, info, args, kwargs, lambda outs: [np.ones(o.shape) for o in outs])
    except Exception as exc:  # noqa: BLE001 -- torch's (or its wrapper's) refusal, whatever it is
        return _raises_naming_op(info, args, kwargs, f"{what} (torch raises {type(exc).__name__}: {exc})")
    rtol, atol = tol
    outs = [np.asarray(o) for o in _as_list(info.op(*args, **kwargs))]
    assert [o.shape for o in outs] == [t.shape for t in touts], f"{what}: shapes vs torch's"
    for o, t in zip(outs, touts):
        np.testing.assert_allclose(o, t, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    diff = [j for j in info.grad_args if j < len(args) and isinstance(args[j], np.ndarray) and args[j].dtype.kind == "f"]
    if not diff:
        return
    grads = info.op.backward(tree_map(lambda o: np.ones(o.shape, o.dtype), info.op(*args, **kwargs)), *args, **kwargs)
    entry = grad_entries(info.name, args)
    for j in diff:
        g = grads[entry[j]]
        assert isinstance(g, np.ndarray) and g.shape == args[j].shape, \
            f"{what}: gradient of argument {j}: {getattr(g, 'shape', g)} for {args[j].shape}"
        if tgrads:
            np.testing.assert_allclose(g, tgrads[j], rtol=rtol * 10, atol=atol * 10, equal_nan=True,
                                       err_msg=f"{what}: gradient of argument {j}")


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("info,s,axes,cid", _empty_cases())
def test_empty_axis(info, s, axes, cid):
    args = list(s.args)
    for i, ax in axes:
        args[i] = np.ascontiguousarray(np.take(args[i], [], axis=ax))
    _compare_to_torch(info, args, s.kwargs, f"{info.name} {s} with axes (argument, axis) {axes} of size 0", _tol(info),
                      cid, axes)


# ---------------------------------------------------------------- 3. invalid dtype and rank

# an int64 probability target is a class-index target (the other mode of cross_entropy): its shape is wrong
DTYPE_EXPECT = {"cross_entropy#1-s*-target-int64": ValueError}


def _dtype_cases():
    out = []
    for info, opid in zip(TABLE, IDS):
        for k, s in _picked(info)[:1]:
            names = _argnames(info, len(s.args))
            for i in _float_arrays(s):
                for dt in ("int64", "bool", "float16"):
                    cid = f"{opid}-s{k}-{names[i]}-{dt}"
                    out.append(_param("dtype", info, opid, cid, s, i, names[i], dt, cid))
    return out


@pytest.mark.parametrize("info,s,i,name,dt,cid", _dtype_cases())
def test_bad_dtype(info, s, i, name, dt, cid):
    args = list(s.args)
    a = args[i]
    args[i] = (a * 3).astype(np.int64) if dt == "int64" else (a > 0) if dt == "bool" else a.astype(np.float16)
    with pytest.raises(_lookup(DTYPE_EXPECT, cid) or TypeError) as e:
        info.op(*args, **s.kwargs)
    msg = str(e.value)
    assert _short(info) in msg, f"{info.name}: {dt} argument {name!r}: the error does not name the op: {msg!r}"
    assert name in msg, f"{info.name}: {dt} argument {name!r}: the error does not name the argument: {msg!r}"


def _rank_cases():
    out = []
    for info, opid in zip(TABLE, IDS):
        if not info.torch_ref:
            continue
        for k, s in _picked(info)[:1]:
            names = _argnames(info, len(s.args))
            for i, a in enumerate(s.args):
                if not isinstance(a, np.ndarray):
                    continue
                for change in ("more", "fewer") if a.ndim else ("more",):
                    cid = f"{opid}-s{k}-{names[i]}-{change}"
                    out.append(_param("rank", info, opid, cid, s, i, change, cid))
    return out


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("info,s,i,change,cid", _rank_cases())
def test_bad_rank(info, s, i, change, cid):
    args = list(s.args)
    a = args[i]
    args[i] = np.ascontiguousarray(np.stack([a, a]) if change == "more" else a[0])
    _compare_to_torch(info, args, s.kwargs, f"{info.name} {s} with argument {i} of shape {args[i].shape}", _tol(info), cid)


def test_exception_tables_match_cases():
    """Every entry of KNOWN, STRICTER, NAN_REF, EMPTY_REF and DTYPE_EXPECT names existing cases
    (a typo or a renamed sample would silently drop it)."""
    ids = {"nan": [p.id for p in _nan_cases()], "empty": [p.id for p in _empty_cases()],
           "dtype": [p.id for p in _dtype_cases()], "rank": [p.id for p in _rank_cases()]}
    every = [c for v in ids.values() for c in v]
    for key in KNOWN:
        kind, _, globs = key.partition(":")
        for g in globs.split("|"):
            assert any(fnmatch.fnmatchcase(c, g) for c in ids[kind]), f"KNOWN entry {key!r}: {g!r} matches no case"
    for name, table_ in (("STRICTER", STRICTER), ("NAN_REF", NAN_REF), ("EMPTY_REF", EMPTY_REF),
                         ("DTYPE_EXPECT", DTYPE_EXPECT)):
        for g in table_:
            assert any(fnmatch.fnmatchcase(c, g) for c in every), f"{name} entry {g!r} matches no case"
