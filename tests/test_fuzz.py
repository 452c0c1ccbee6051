"""Property-based fuzzing (hypothesis) of the ops with the most hyper-parameters.

Each op has a strategy drawing a tiny float64 case: shapes and hyper-parameters (strides, padding,
dilation, groups, ceil_mode, count_include_pad, modes, align_corners, ...). A *valid* draw is
compared with the op table's NumPy float64 reference (``fastops.testing``: forward) and with a
float64 finite-difference VJP in a random direction (backward: the table holds no reference
gradients). An *invalid* draw is a valid one with one mutation that PyTorch rejects (zero stride,
negative padding, channel/group mismatch, wrong rank, integer dtype, window larger than the padded
input, unknown mode, ...): it must raise TypeError or ValueError, never another exception (under
``NUMBA_BOUNDSCHECK=1`` an out-of-bounds access would surface as IndexError and fail).

CI: fixed seed (``derandomize``), ``FASTOPS_FUZZ_EXAMPLES`` (default 50) examples per op.
Long run (the figures in the README's "Reliability" section)::

    NUMBA_BOUNDSCHECK=1 FASTOPS_FUZZ_EXAMPLES=10000 FASTOPS_FUZZ_LOG=fuzz.log python -m pytest -n 2 tests/test_fuzz.py

(``FASTOPS_FUZZ_LOG`` appends per op the number of valid and invalid draws checked.)

``FASTOPS_FUZZ_SEED=<int>`` replaces the fixed derandomized stream by a seeded random one.
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastops  # noqa: E402
from fastops.testing import grad_entries, table, to_float64  # noqa: E402

EXAMPLES = int(os.environ.get("FASTOPS_FUZZ_EXAMPLES", "50"))
_SEED = os.environ.get("FASTOPS_FUZZ_SEED")
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=_SEED is None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)

pytestmark = pytest.mark.slow

# the op table's references: first OpInfo of each name (cross_entropy: the class-index entry, whose
# reference also handles probability targets)
REFS = {}
for _info in table():
    REFS.setdefault(_info.name, _info)


class Case:
    """One drawn call: ``args`` (arrays positional), ``kwargs``, the differentiable positions, and
    ``bad``: the name of the mutation that makes it invalid (None for a valid draw)."""

    def __init__(self, args, kwargs, grad_args, bad=None):
        self.args, self.kwargs, self.grad_args, self.bad = list(args), dict(kwargs), grad_args, bad

    def __repr__(self):
        shapes = [getattr(a, "shape", a) for a in self.args]
        return f"Case(bad={self.bad}, args={shapes}, kwargs={self.kwargs})"


def _arr(data, shape, lo=-2.0, hi=2.0, distinct=False):
    seed = data.draw(st.integers(0, 2**32 - 1), label="array seed")
    rng = np.random.default_rng(seed)
    if distinct:  # values 0.01 apart (max pooling: no ties, no argmax change under a 1e-6 shift)
        n = int(np.prod(shape))
        return ((rng.permutation(n) - n / 2) * 0.01).reshape(shape)
    return rng.uniform(lo, hi, shape)


def _tup(v, k):
    return (v,) * k if np.isscalar(v) else tuple(v)


def _per_dim(data, k, lo, hi, label):
    """An int or a k-tuple of ints in [lo, hi]."""
    if data.draw(st.booleans(), label=f"{label} scalar"):
        return data.draw(st.integers(lo, hi), label=label)
    return tuple(data.draw(st.integers(lo, hi), label=label) for _ in range(k))


def _maybe_unbatched(data, x):
    return x[0] if data.draw(st.booleans(), label="unbatched") else x


# ------------------------------------------------------------------ conv


def _conv_case(data, k):
    g = data.draw(st.integers(1, 2), label="groups")
    cin, cout = g * data.draw(st.integers(1, 2)), g * data.draw(st.integers(1, 2))
    ks = tuple(data.draw(st.integers(1, 3), label="kernel") for _ in range(k))
    dil = _per_dim(data, k, 1, 2, "dilation")
    mode = data.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]), label="padding_mode")
    strpad = data.draw(st.sampled_from([None, "same", "valid"]), label="string padding")
    if strpad is not None:
        pad, stride = strpad, 1
    else:
        pad, stride = _per_dim(data, k, 0, 2, "padding"), _per_dim(data, k, 1, 3, "stride")
    dd = _tup(dil, k)
    pp = (0,) * k if pad == "valid" else tuple((d * (kk - 1)) // 2 + 1 for d, kk in zip(dd, ks)) if pad == "same" else _tup(pad, k)
    size = []
    for kk, d, p in zip(ks, dd, pp):
        n = max(1, d * (kk - 1) + 1 - (0 if isinstance(pad, str) else 2 * p))
        if mode != "zeros":
            n = max(n, p + 1)  # reflect needs padding < size; circular and replicate accept it too
        size.append(n + data.draw(st.integers(0, 3), label="extra"))
    x = _maybe_unbatched(data, _arr(data, (data.draw(st.integers(1, 2)), cin, *size)))
    w = _arr(data, (cout, cin // g, *ks))
    b = _arr(data, (cout,)) if data.draw(st.booleans(), label="bias") else None
    kw = {"stride": stride, "padding": pad, "dilation": dil, "groups": g, "padding_mode": mode}
    return Case((x, w, b), kw, (0, 1, 2))


def _conv_invalid(case, which, k):
    x, w, b = case.args
    kw = case.kwargs
    if which == "stride0":
        kw["stride"], kw["padding"] = 0, 0
    elif which == "negpad":
        kw["padding"] = -1
    elif which == "dilation0":
        kw["dilation"] = 0
    elif which == "channels":
        case.args[1] = np.ones((w.shape[0], w.shape[1] + 1) + w.shape[2:])
    elif which == "groups":
        kw["groups"] = w.shape[0] + 1  # divides neither out_channels nor (here) in_channels
        case.args[1] = np.ones((w.shape[0], 1) + w.shape[2:])
    elif which == "rank":
        case.args[0] = x.reshape(-1)
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "mixed_dtype":
        case.args[1] = w.astype(np.float32)
    elif which == "bias_shape":
        case.args[2] = np.ones(w.shape[0] + 1)
    elif which == "too_small":
        kw["padding"], kw["dilation"], kw["stride"] = 0, 1, 1
        case.args[1] = np.ones(w.shape[:2] + tuple(s + 1 for s in x.shape[-k:]))
    elif which == "bad_mode":
        kw["padding_mode"] = "mirror"
    elif which == "same_strided":
        kw["padding"], kw["stride"] = "same", 2
    case.bad = which
    return case


_CONV_BAD = ["stride0", "negpad", "dilation0", "channels", "groups", "rank", "intdtype", "mixed_dtype",
             "bias_shape", "too_small", "bad_mode", "same_strided"]


def _conv_transpose_case(data, k):
    g = data.draw(st.integers(1, 2), label="groups")
    cin, coutpg = g * data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    ks = tuple(data.draw(st.integers(1, 3), label="kernel") for _ in range(k))
    stride, dil = _tup(_per_dim(data, k, 1, 3, "stride"), k), _tup(_per_dim(data, k, 1, 2, "dilation"), k)
    size = tuple(data.draw(st.integers(1, 4), label="size") for _ in range(k))
    opad = tuple(data.draw(st.integers(0, max(s, d) - 1), label="output_padding") for s, d in zip(stride, dil))
    pad = tuple(
        data.draw(st.integers(0, min(2, ((n - 1) * s + d * (kk - 1) + op) // 2)), label="padding")
        for n, s, d, kk, op in zip(size, stride, dil, ks, opad)
    )
    x = _maybe_unbatched(data, _arr(data, (data.draw(st.integers(1, 2)), cin, *size)))
    w = _arr(data, (cin, coutpg, *ks))
    b = _arr(data, (coutpg * g,)) if data.draw(st.booleans(), label="bias") else None
    kw = {"stride": stride, "padding": pad, "output_padding": opad, "groups": g, "dilation": dil}
    return Case((x, w, b), kw, (0, 1, 2))


def _conv_transpose_invalid(case, which, k):
    x, w, b = case.args
    kw = case.kwargs
    if which == "output_padding":
        kw["output_padding"] = max(max(kw["stride"]), max(kw["dilation"]))
    elif which == "channels":
        case.args[1] = np.ones((w.shape[0] + 1,) + w.shape[1:])
    elif which in ("stride0", "negpad", "dilation0", "rank", "intdtype", "mixed_dtype", "bias_shape"):
        kw.pop("padding_mode", None)
        if which == "stride0":
            kw["stride"], kw["output_padding"] = 0, 0
        elif which == "dilation0":
            kw["dilation"], kw["output_padding"] = 0, 0
        elif which == "negpad":
            kw["padding"] = -1
        elif which == "rank":
            case.args[0] = x.reshape(-1)
        elif which == "intdtype":
            case.args[0] = x.astype(np.int32)
        elif which == "mixed_dtype":
            case.args[1] = w.astype(np.float32)
        else:
            case.args[2] = np.ones(w.shape[1] * kw["groups"] + 1)
    elif which == "groups":
        kw["groups"] = w.shape[0] + 1
    elif which == "too_small":  # output size <= 0
        kw["padding"], kw["output_padding"], kw["stride"], kw["dilation"] = 5, 0, 1, 1
        case.args[0] = x[..., :1] if k == 1 else x[..., :1, :1] if k == 2 else x[..., :1, :1, :1]
        case.args[1] = w[..., :1] if k == 1 else w[..., :1, :1] if k == 2 else w[..., :1, :1, :1]
    case.bad = which
    return case


_CONVT_BAD = ["output_padding", "channels", "stride0", "negpad", "dilation0", "rank", "intdtype", "mixed_dtype",
              "bias_shape", "groups", "too_small"]


# ------------------------------------------------------------------ pooling


def _pool_case(data, k, kind):
    ks = _tup(_per_dim(data, k, 1, 3, "kernel_size"), k)
    stride = data.draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * k)), label="stride")
    pad = tuple(data.draw(st.integers(0, kk // 2), label="padding") for kk in ks)
    dil = _tup(_per_dim(data, k, 1, 2, "dilation"), k) if kind == "max" else (1,) * k
    ceil = data.draw(st.booleans(), label="ceil_mode")
    size = [max(1, d * (kk - 1) + 1 - 2 * p) + data.draw(st.integers(0, 4), label="extra") for kk, d, p in zip(ks, dil, pad)]
    x = _maybe_unbatched(data, _arr(data, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), *size),
                                    distinct=kind == "max"))
    kw = {"kernel_size": ks, "stride": stride, "padding": pad, "ceil_mode": ceil}
    if kind == "max":
        kw["dilation"] = dil
    else:
        kw["count_include_pad"] = data.draw(st.booleans(), label="count_include_pad")
        if k > 1 and data.draw(st.booleans(), label="divisor_override?"):
            kw["divisor_override"] = data.draw(st.integers(1, 5), label="divisor_override")
    return Case((x,), kw, (0,))


def _pool_invalid(case, which, k):
    x = case.args[0]
    kw = case.kwargs
    if which == "kernel0":
        kw["kernel_size"] = 0
    elif which == "stride0":
        kw["stride"] = 0
    elif which == "negpad":
        kw["padding"] = -1
    elif which == "pad_gt_half":
        kw["kernel_size"], kw["padding"] = 2, 2
    elif which == "too_small":
        kw.update(kernel_size=tuple(s + 1 for s in x.shape[-k:]), padding=0, stride=1, ceil_mode=False)
        if "dilation" in kw:
            kw["dilation"] = 1
    elif which == "rank":
        case.args[0] = x.reshape(-1)
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "dilation0":
        if "dilation" in kw:
            kw["dilation"] = 0
        else:
            kw["kernel_size"] = -1
    elif which == "divisor0":
        if k > 1 and "count_include_pad" in kw:
            kw["divisor_override"] = 0
        else:
            kw["stride"] = -2
    case.bad = which
    return case


_POOL_BAD = ["kernel0", "stride0", "negpad", "pad_gt_half", "too_small", "rank", "intdtype", "dilation0", "divisor0"]


# ------------------------------------------------------------------ resampling


# mode="area" is not implemented by fastops.interpolate (ValueError; adaptive_avg_pool computes it)
_MODES = {1: ["nearest", "nearest-exact", "linear"], 2: ["nearest", "nearest-exact", "bilinear", "bicubic"],
          3: ["nearest", "nearest-exact", "trilinear"]}


def _interpolate_case(data):
    k = data.draw(st.integers(1, 3), label="spatial dims")
    mode = data.draw(st.sampled_from(_MODES[k]), label="mode")
    size = tuple(data.draw(st.integers(1, 5), label="in size") for _ in range(k))
    x = _arr(data, (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), *size))
    kw = {"mode": mode}
    if mode in ("linear", "bilinear", "bicubic", "trilinear"):
        kw["align_corners"] = data.draw(st.sampled_from([None, False, True]), label="align_corners")
    if data.draw(st.booleans(), label="by size"):
        out = tuple(data.draw(st.integers(1, 7), label="size") for _ in range(k))
        kw["size"] = out[0] if data.draw(st.booleans(), label="int size") else out
    else:
        sf = tuple(data.draw(st.sampled_from([0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0]), label="scale") for _ in range(k))
        sf = tuple(max(s, 1.0 / n) for s, n in zip(sf, size))  # floor(n * s) >= 1
        kw["scale_factor"] = sf[0] if len(set(sf)) == 1 and data.draw(st.booleans(), label="float sf") else sf
        if data.draw(st.booleans(), label="recompute?"):
            kw["recompute_scale_factor"] = data.draw(st.booleans(), label="recompute_scale_factor")
    return Case((x,), kw, (0,))


def _interpolate_invalid(case, which, k):
    kw = case.kwargs
    x = case.args[0]
    if which == "both":
        kw["size"], kw["scale_factor"] = 2, 2.0
    elif which == "neither":
        kw.pop("size", None), kw.pop("scale_factor", None)
    elif which == "size0":
        kw.pop("scale_factor", None), kw.pop("recompute_scale_factor", None)
        kw["size"] = 0
    elif which == "bad_mode":
        kw["mode"] = "cubic"
    elif which == "align_nearest":
        kw["mode"], kw["align_corners"] = "nearest", True
    elif which == "rank":
        case.args[0] = x.reshape(-1)
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "mode_rank":  # bicubic needs 4-D input
        kw["mode"] = "trilinear" if x.ndim != 5 else "bicubic"
        kw.pop("align_corners", None)
    elif which == "size_len":
        kw.pop("scale_factor", None), kw.pop("recompute_scale_factor", None)
        kw["size"] = (2,) * (x.ndim - 1)
    elif which == "neg_scale":
        kw.pop("size", None)
        kw["scale_factor"] = -1.5
    case.bad = which
    return case


_INTERP_BAD = ["both", "neither", "size0", "bad_mode", "align_nearest", "rank", "intdtype", "mode_rank", "size_len",
               "neg_scale"]


def _grid_sample_case(data):
    k = data.draw(st.sampled_from([2, 3]), label="spatial rank")  # 4-D or 5-D (volumetric) input
    mode = data.draw(st.sampled_from(["bilinear", "nearest", "bicubic"] if k == 2 else ["bilinear", "nearest"]), label="mode")
    n = data.draw(st.integers(1, 2))
    x = _arr(data, (n, data.draw(st.integers(1, 2)), *[data.draw(st.integers(1, 5), label="in size") for _ in range(k)]))
    g = _arr(data, (n, *[data.draw(st.integers(1, 4), label="out size") for _ in range(k)], k), -1.3, 1.3)
    kw = {"mode": mode, "padding_mode": data.draw(st.sampled_from(["zeros", "border", "reflection"]), label="padding_mode"),
          "align_corners": data.draw(st.booleans(), label="align_corners")}
    # nearest: the gradient wrt grid is zero (PyTorch) and a finite difference is zero as well away
    # from the rounding boundaries a 1e-6 shift almost never crosses
    return Case((x, g), kw, (0, 1))


def _grid_sample_invalid(case, which, k):
    x, g = case.args
    kw = case.kwargs
    if which == "batch":
        case.args[1] = np.concatenate([g, g])
    elif which == "last_dim":
        case.args[1] = g[..., :1]
    elif which == "rank":
        case.args[1] = g[0]
    elif which == "bad_mode":
        kw["mode"] = "linear"
    elif which == "bad_padding":
        kw["padding_mode"] = "reflect"
    elif which == "bicubic_5d":
        kw["mode"] = "bicubic"
        case.args[0] = x.reshape(x.shape + (1,) * (5 - x.ndim))
        case.args[1] = np.zeros((x.shape[0], 1, 1, 1, 3))
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "mixed_dtype":
        case.args[1] = g.astype(np.float32)
    elif which == "grid_other_rank":  # a 4-D grid for 5-D input, a 5-D one for 4-D input
        k = x.ndim - 2
        case.args[1] = np.zeros((x.shape[0],) + (2,) * (5 - k) + (5 - k,))
    case.bad = which
    return case


_GS_BAD = ["batch", "last_dim", "rank", "bad_mode", "bad_padding", "bicubic_5d", "intdtype", "mixed_dtype",
           "grid_other_rank"]


# ------------------------------------------------------------------ norms and loss


def _spatial(data, lo=0, hi=3):
    return tuple(data.draw(st.integers(1, 3), label="spatial") for _ in range(data.draw(st.integers(lo, hi), label="rank")))


def _batch_norm_case(data):
    c = data.draw(st.integers(1, 3), label="C")
    training = data.draw(st.booleans(), label="training")
    x = _arr(data, (data.draw(st.integers(2 if training else 1, 3), label="N"), c, *_spatial(data)), -2, 3)
    rm, rv = (None, None) if training else (_arr(data, (c,)), _arr(data, (c,), 0.5, 2.0))
    w = _arr(data, (c,), 0.5, 1.5) if data.draw(st.booleans(), label="weight") else None
    b = _arr(data, (c,)) if data.draw(st.booleans(), label="bias") else None
    kw = {"training": training, "eps": data.draw(st.sampled_from([1e-5, 1e-3, 0.1]), label="eps"),
          "momentum": data.draw(st.sampled_from([0.1, 0.5]), label="momentum")}
    return Case((x, rm, rv, w, b), kw, (0, 3, 4))


def _batch_norm_invalid(case, which, k):
    x, rm, rv, w, b = case.args
    if which == "weight_shape":
        case.args[3] = np.ones(x.shape[1] + 1)
    elif which == "rank":
        case.args[0] = x.reshape(-1)
    elif which == "eval_no_stats":
        case.kwargs["training"] = False
        case.args[1] = case.args[2] = None
    elif which == "one_value":
        case.kwargs["training"] = True
        case.args[0] = np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], -1)[:1, :, 0])  # (1, C)
        case.args[1] = case.args[2] = None
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "negative_eps":
        case.kwargs["eps"] = -1.0
    case.bad = which
    return case


def _layer_norm_case(data):
    shape = (data.draw(st.integers(1, 3), label="lead"),) + _spatial(data, 1, 3)
    nd = data.draw(st.integers(1, len(shape)), label="normalized dims")
    ns = shape[len(shape) - nd:]
    affine = data.draw(st.booleans(), label="affine")
    w, b = (_arr(data, ns, 0.5, 1.5), _arr(data, ns)) if affine else (None, None)
    ns_arg = ns[0] if nd == 1 and data.draw(st.booleans(), label="int shape") else ns
    kw = {"eps": data.draw(st.sampled_from([1e-5, 1e-2]), label="eps")}
    return Case((_arr(data, shape, -2, 3), ns_arg, w, b), kw, (0, 2, 3))


def _layer_norm_invalid(case, which, k):
    x = case.args[0]
    if which == "shape_mismatch":
        case.args[1] = (x.shape[-1] + 1,)
        case.args[2] = case.args[3] = None
    elif which == "too_long":
        case.args[1] = (1,) + x.shape
        case.args[2] = case.args[3] = None
    elif which == "weight_shape":
        case.args[2] = np.ones(x.shape[-1] + 1)
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "empty_shape":
        case.args[1] = ()
        case.args[2] = case.args[3] = None
    case.bad = which
    return case


def _group_norm_case(data):
    g = data.draw(st.integers(1, 3), label="G")
    c = g * data.draw(st.integers(1, 2), label="C/G")
    x = _arr(data, (data.draw(st.integers(1, 2)), c, *_spatial(data)), -2, 3)
    affine = data.draw(st.booleans(), label="affine")
    w, b = (_arr(data, (c,), 0.5, 1.5), _arr(data, (c,))) if affine else (None, None)
    kw = {"eps": data.draw(st.sampled_from([1e-5, 1e-2]), label="eps")}
    return Case((x, g, w, b), kw, (0, 2, 3))


def _group_norm_invalid(case, which, k):
    x = case.args[0]
    if which == "groups_divide":
        case.args[1] = x.shape[1] + 1
    elif which == "groups0":
        case.args[1] = 0
    elif which == "rank":
        case.args[0] = x.reshape(-1)
    elif which == "weight_shape":
        case.args[2] = np.ones(x.shape[1] + 1)
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    case.bad = which
    return case


def _cross_entropy_case(data):
    c = data.draw(st.integers(1, 4), label="C")
    rank = data.draw(st.integers(0, 3), label="rank")  # 0: (C,), 1: (N, C), 2-3: (N, C, d...)
    n = data.draw(st.integers(1, 3), label="N")
    extra = tuple(data.draw(st.integers(1, 2)) for _ in range(max(0, rank - 1)))
    shape = (c,) if rank == 0 else (n, c, *extra)
    tshape = () if rank == 0 else (n, *extra)
    x = _arr(data, shape, -3, 3)
    kw = {"reduction": data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction"),
          "label_smoothing": data.draw(st.sampled_from([0.0, 0.1, 0.3]), label="label_smoothing")}
    w = _arr(data, (c,), 0.5, 2.0) if data.draw(st.booleans(), label="weight") else None
    if data.draw(st.booleans(), label="probabilities"):
        p = _arr(data, shape, 0.05, 1.0)
        t = p / p.sum(axis=0 if rank == 0 else 1, keepdims=True)
        grads = (0, 1)
    else:
        seed = data.draw(st.integers(0, 2**32 - 1))
        t = np.random.default_rng(seed).integers(0, c, tshape)
        if t.size > 1 and data.draw(st.booleans(), label="ignore_index"):
            ii = data.draw(st.sampled_from([-100, -1, c + 2]), label="ignore_index value")
            t.reshape(-1)[0] = ii  # one ignored target, at least one kept (mean never divides by 0)
            kw["ignore_index"] = ii
        grads = (0,)
    return Case((x, t, w), kw, grads)


def _cross_entropy_invalid(case, which, k):
    x, t, w = case.args
    c = x.shape[0] if x.ndim == 1 else x.shape[1]
    if which == "target_range":
        if t.dtype.kind == "f":
            case.args[1] = np.full(x.shape[:1] + x.shape[2:] if x.ndim > 1 else (), c, np.int64)
        else:
            case.args[1] = np.full(t.shape, c, np.int64)
        case.kwargs.pop("ignore_index", None)
    elif which == "target_shape":
        case.args[1] = np.zeros((x.shape[0] + 1,) if x.ndim > 1 else (2,), np.int64)
    elif which == "weight_shape":
        case.args[2] = np.ones(c + 1)
    elif which == "reduction":
        case.kwargs["reduction"] = "avg"
    elif which == "smoothing":
        case.kwargs["label_smoothing"] = 1.5
    elif which == "intdtype":
        case.args[0] = x.astype(np.int64)
    elif which == "float_target_dtype":
        case.args[1] = np.ones(x.shape, np.float32)
    case.bad = which
    return case


# ------------------------------------------------------------------ the fuzz targets

FUZZ = {}
for _k in (1, 2, 3):
    FUZZ[f"conv{_k}d"] = (lambda d, k=_k: _conv_case(d, k), _conv_invalid, _CONV_BAD, _k)
    FUZZ[f"conv_transpose{_k}d"] = (lambda d, k=_k: _conv_transpose_case(d, k), _conv_transpose_invalid, _CONVT_BAD, _k)
    FUZZ[f"max_pool{_k}d"] = (lambda d, k=_k: _pool_case(d, k, "max"), _pool_invalid, _POOL_BAD, _k)
    FUZZ[f"avg_pool{_k}d"] = (lambda d, k=_k: _pool_case(d, k, "avg"), _pool_invalid, _POOL_BAD, _k)
FUZZ["interpolate"] = (_interpolate_case, _interpolate_invalid, _INTERP_BAD, 0)
FUZZ["grid_sample"] = (_grid_sample_case, _grid_sample_invalid, _GS_BAD, 0)
FUZZ["batch_norm"] = (_batch_norm_case, _batch_norm_invalid, ["weight_shape", "rank", "eval_no_stats", "one_value",
                                                             "intdtype", "negative_eps"], 0)
FUZZ["layer_norm"] = (_layer_norm_case, _layer_norm_invalid, ["shape_mismatch", "too_long", "weight_shape", "intdtype",
                                                             "empty_shape"], 0)
FUZZ["group_norm"] = (_group_norm_case, _group_norm_invalid, ["groups_divide", "groups0", "rank", "weight_shape",
                                                             "intdtype"], 0)
FUZZ["cross_entropy"] = (_cross_entropy_case, _cross_entropy_invalid, ["target_range", "target_shape", "weight_shape",
                                                                      "reduction", "smoothing", "intdtype",
                                                                      "float_target_dtype"], 0)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check_valid(name, case):
    op, info = getattr(fastops, name), REFS[name]
    args, kw = case.args, case.kwargs
    out = _as_list(op(*args, **kw))
    with np.errstate(invalid="ignore"):
        ref = _as_list(info.ref(*to_float64(args), **kw))
    rtol, atol = info.tol[np.float64]
    rtol, atol = max(rtol, 1e-9), max(atol, 1e-11)
    for o, r in zip(out, ref):
        assert o.dtype == np.float64 and o.shape == r.shape, f"{case}: {o.dtype} {o.shape} vs reference {r.shape}"
        np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, err_msg=f"{name} forward {case}")
    if sum(o.size for o in out) == 0:
        return
    rng = np.random.default_rng(len(out) + out[0].size)
    # a max-pooling window that holds only padding gives -inf (as in PyTorch): no finite difference
    # there, so such outputs get a zero cotangent
    cots = [np.where(np.isfinite(o), rng.standard_normal(o.shape), 0.0) for o in out]
    grads = op.backward(cots if len(cots) > 1 else cots[0], *args, **kw)
    entry = grad_entries(name, args)
    assert isinstance(grads, tuple) and len(grads) >= len(entry), f"{name} backward: {len(grads)} entries {case}"
    grads = {i: grads[e] for i, e in entry.items()}  # by argument position
    dirs = {}
    for i in case.grad_args:
        if isinstance(args[i], np.ndarray) and args[i].size:
            assert grads[i] is not None and grads[i].shape == args[i].shape and grads[i].dtype == np.float64, \
                f"{name} backward: grad {i} {None if grads[i] is None else grads[i].shape} {case}"
            dirs[i] = rng.standard_normal(args[i].shape)
    eps = 1e-6

    def shifted(sign):
        a = list(args)
        for i, t in dirs.items():
            a[i] = args[i] + sign * eps * t
        return _as_list(op(*a, **kw))

    plus, minus = shifted(1), shifted(-1)
    with np.errstate(invalid="ignore"):  # -inf - -inf at all-padding windows (zero cotangent there)
        fd = sum(
            np.sum(np.where(c != 0, (p - m) / (2 * eps), 0.0) * c) for p, m, c in zip(plus, minus, cots))
    an = sum(np.sum(grads[i] * t) for i, t in dirs.items())
    scale = sum(np.sum(np.abs(grads[i] * t)) for i, t in dirs.items()) + 1e-12
    assert np.isfinite(an) and abs(fd - an) <= 1e-6 * scale + 1e-8, f"{name} backward {case}: finite difference {fd} vs backward {an}"


def _check_invalid(name, case):
    op = getattr(fastops, name)
    try:
        op(*case.args, **case.kwargs)
    except (TypeError, ValueError):
        return
    except Exception as e:  # noqa: BLE001  (any other exception is the failure being looked for)
        raise AssertionError(f"{name} {case}: raised {type(e).__name__}: {e} (expected TypeError/ValueError)") from e
    raise AssertionError(f"{name} {case}: accepted an invalid call")


@pytest.mark.parametrize("name", list(FUZZ))
def test_fuzz(name):
    draw_valid, mutate, bad, k = FUZZ[name]
    counts = {"valid": 0, "invalid": 0}

    @SETTINGS
    @given(data=st.data())
    def run(data):
        case = draw_valid(data)
        which = data.draw(st.sampled_from([None, None, *bad]), label="invalid mutation")
        if which is None:
            counts["valid"] += 1
            _check_valid(name, case)
        else:
            counts["invalid"] += 1
            _check_invalid(name, mutate(case, which, k))

    if _SEED is not None:
        run = hypothesis.seed(int(_SEED))(run)
    try:
        run()
    finally:
        log = os.environ.get("FASTOPS_FUZZ_LOG")  # the long run's figures (calls include shrinking)
        if log:
            with open(log, "a") as f:
                f.write(f"{name} valid={counts['valid']} invalid={counts['invalid']}\n")


# Found by the fuzzer (fixed): a 1-wide kernel with stride <= output_padding < dilation read out of
# bounds in the 1x1 GEMM path.
@pytest.mark.parametrize("k", [1, 2, 3])
def test_conv_transpose_output_padding_with_a_1_wide_kernel(k):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 1) + (2,) * k), rng.standard_normal((1, 1) + (1,) * k)
    kw = {"stride": 1, "output_padding": 1, "dilation": 2}
    np.testing.assert_allclose(getattr(fastops, f"conv_transpose{k}d")(x, w, **kw),
                               REFS[f"conv_transpose{k}d"].ref(x, w, **kw), rtol=1e-12, atol=1e-14)
