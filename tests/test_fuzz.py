"""Property-based fuzzing (hypothesis) of 63 ops, from every op family (the folders of ``fastops/``).

- conv: conv1d/2d/3d, conv_transpose1d/2d/3d; pooling: max_pool/avg_pool 1d/2d/3d,
  adaptive_avg_pool1d/2d/3d, adaptive_max_pool1d/2d, max_unpool1d/2d/3d; shape: interpolate,
  grid_sample, pad, pixel_shuffle, channel_shuffle; norm: batch/layer/group norm, l2_normalize,
  local_response_norm; loss: cross_entropy, mse/l1/smooth_l1/huber loss, kl_div,
  binary_cross_entropy_with_logits; activation: relu, relu6, leaky_relu, elu, gelu, softplus,
  hardswish, hardsigmoid, mish, silu, sigmoid, tanh, prelu, softmax, log_softmax; arithmetic: add,
  sub, mul, div (broadcasting), matmul (1-D and batched operands); regularization: dropout,
  dropout2d (seeded masks); attention: scaled_dot_product_attention (bool/float masks, causal,
  scale, GQA); recurrent: rnn_cell (tanh/relu), lstm_cell, gru_cell (NumPy reference here: the op
  table has none).

Each op has a strategy drawing a tiny case: shapes and hyper-parameters (strides, padding,
dilation, groups, ceil_mode, count_include_pad, modes, align_corners, ...). The strategies of the
first 18 ops (conv, max/avg pool, interpolate, grid_sample, batch/layer/group norm, cross_entropy)
draw float64 arrays in non-contiguous layouts too (``_finish``: Fortran order, every other
element, negative strides); the others also draw size-0 axes where PyTorch accepts them and
float32 (forward checked at the op table's float32 tolerance against the float64 reference,
backward against the float64 backward, itself checked by finite differences). Valid draws leave
out 0 channels where torch raises for them (pad reflect/replicate, adaptive_avg_pool3d,
adaptive_max_pool1d/2d, max_unpool: tests/test_empty.py checks that fastops raises too). A *valid* draw is
compared with the op table's NumPy float64 reference (``fastops.testing``: forward) and with a
float64 finite-difference VJP in a random direction (backward: the table holds no reference
gradients). An *invalid* draw is a valid one with one mutation that PyTorch rejects (zero stride,
negative padding, channel/group mismatch, wrong rank, integer dtype (which PyTorch's pointwise ops
accept and fastops's float kernels reject everywhere), window larger than the padded input,
unknown mode, ...): it must raise TypeError or ValueError, never another exception (under
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
        self.op = self.ref = None  # default: fastops.<name> and the op table's reference
        self.dtype = np.float64

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
    # avg_pool3d (as torch) wants the unpadded input at least as large as the kernel
    lo = [kk if (kind == "avg" and k == 3) else max(1, d * (kk - 1) + 1 - 2 * p) for kk, d, p in zip(ks, dil, pad)]
    size = [m + data.draw(st.integers(0, 4), label="extra") for m in lo]
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


# ------------------------------------------------------------------ the other families
# (activation, arithmetic, loss, shape, pooling, norm, regularization, attention, recurrent): these
# strategies also draw size-0 axes where PyTorch accepts them, float32 as well as float64 (float32
# forward checked at the table's float32 tolerance against the float64 reference, backward against
# the float64 backward, which is itself checked by finite differences) and non-contiguous layouts
# (Fortran order, every other element, negative strides) of every array argument.


def _layout(data, a):
    kind = data.draw(st.sampled_from(["c", "c", "f", "strided", "reversed"]), label="layout")
    if a.ndim == 0 or kind == "c":
        return a
    if kind == "f":
        return np.asfortranarray(a)
    if kind == "strided":
        b = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        b[..., ::2] = a
        return b[..., ::2]
    return np.ascontiguousarray(a[..., ::-1])[..., ::-1]


def _finish(data, case, dtypes=(np.float64, np.float32)):
    """Draw the dtype (of ``dtypes``) and a layout per float array argument of a valid case."""
    dt = data.draw(st.sampled_from(dtypes), label="dtype") if len(dtypes) > 1 else dtypes[0]

    def conv(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return _layout(data, a.astype(dt))
        if isinstance(a, tuple):
            return tuple(conv(b) for b in a)
        return a

    case.args = [conv(a) for a in case.args]
    case.kwargs = {n: conv(v) for n, v in case.kwargs.items()}
    case.dtype = dt
    return case


def _shape(data, lo_rank=0, hi_rank=4, lo=0, hi=3, label="shape"):
    r = data.draw(st.integers(lo_rank, hi_rank), label=f"{label} rank")
    return tuple(data.draw(st.integers(lo, hi), label=label) for _ in range(r))


def _set_intdtype(case, i=0):
    case.args[i] = np.asarray(case.args[i]).astype(np.int64)


# activation ---------------------------------------------------------------

_POINTWISE_PARAMS = {
    "leaky_relu": lambda d: {"negative_slope": d.draw(st.sampled_from([0.01, 0.2, -0.5, 1.5]), label="negative_slope")},
    "elu": lambda d: {"alpha": d.draw(st.sampled_from([1.0, 0.5, 2.0]), label="alpha")},
    "gelu": lambda d: {"approximate": d.draw(st.sampled_from(["none", "tanh"]), label="approximate")},
    "softplus": lambda d: {"beta": d.draw(st.sampled_from([1.0, 0.5, 2.0]), label="beta"),
                           "threshold": d.draw(st.sampled_from([20.0, 1.0, 3.0]), label="threshold")},
}
_POINTWISE = ["relu", "relu6", "leaky_relu", "elu", "gelu", "softplus", "hardswish", "hardsigmoid", "mish", "silu",
              "sigmoid", "tanh"]


def _pointwise_case(data, name):
    x = _arr(data, _shape(data), -4.0, 7.0)  # covers the kinks at 0, +-3 and 6 (hit with probability ~1e-7)
    kw = _POINTWISE_PARAMS.get(name, lambda d: {})(data)
    return _finish(data, Case((x,), kw, (0,)))


def _pointwise_invalid(case, which, name):
    if which == "intdtype":
        _set_intdtype(case)
    elif which == "not_array":
        case.args[0] = [1.0, 2.0]
    elif which == "bad_param":
        if name == "gelu":
            case.kwargs["approximate"] = "erf"
        elif name == "softplus":
            case.kwargs["beta"] = "one"
        elif name == "leaky_relu":
            case.kwargs["negative_slope"] = "x"
        else:
            case.kwargs["alpha"] = None
    case.bad = which
    return case


def _softmax_case(data):
    shape = _shape(data, 0, 4)
    x = _arr(data, shape, -5.0, 5.0)
    nd = max(len(shape), 1)
    kw = {"dim": data.draw(st.integers(-nd, nd - 1), label="dim")}
    return _finish(data, Case((x,), kw, (0,)))


def _softmax_invalid(case, which, k):
    nd = max(case.args[0].ndim, 1)
    if which == "dim_range":
        case.kwargs["dim"] = nd
    elif which == "dim_neg_range":
        case.kwargs["dim"] = -nd - 1
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "dim_type":
        case.kwargs["dim"] = 0.5
    case.bad = which
    return case


# arithmetic ---------------------------------------------------------------


def _broadcast_pair(data):
    full = _shape(data, 0, 4)
    other = full[data.draw(st.integers(0, len(full)), label="dropped lead dims"):]
    other = tuple(1 if data.draw(st.booleans(), label="to 1") else s for s in other)
    if data.draw(st.booleans(), label="swap"):
        full, other = other, full
    return full, other


def _binary_case(data, name):
    a, b = _broadcast_pair(data)
    kw = {}
    if name in ("add", "sub") and data.draw(st.booleans(), label="alpha?"):
        kw["alpha"] = data.draw(st.sampled_from([2, -1, 0.5]), label="alpha")
    lo = 0.5 if name == "div" else -2.0
    y = _arr(data, b, lo, 2.0)
    if name == "div":
        y = np.asarray(y * np.where(_arr(data, b) > 0, 1, -1))  # (0-d: an array, not a NumPy scalar)
    return _finish(data, Case((_arr(data, a), y), kw, (0, 1)))


def _binary_invalid(case, which, k):
    a, b = case.args
    if which == "broadcast":
        s = max(a.shape[-1:] + b.shape[-1:] + (1,))
        case.args[0] = np.ones(a.shape[:-1] + (s + 1,))  # last dims s + 1 >= 2 and s + 2: no broadcast
        case.args[1] = np.ones(b.shape[:-1] + (s + 2,))
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "mixed_dtype":
        case.args[1] = b.astype(np.float32 if b.dtype == np.float64 else np.float64)
    case.bad = which
    return case


def _matmul_case(data):
    n, m, p = (data.draw(st.integers(0, 3), label=lab) for lab in ("n", "m", "p"))
    kind = data.draw(st.sampled_from(["1-1", "1-N", "N-1", "N-N"]), label="operand ranks")
    ba, bb = _broadcast_pair(data)
    ba, bb = ba[-2:], bb[-2:]  # batch dims (at most 2 each, broadcastable)
    a = (m,) if kind[0] == "1" else ba + (n, m)
    b = (m,) if kind[-1] == "1" else bb + (m, p)
    return _finish(data, Case((_arr(data, a), _arr(data, b)), {}, (0, 1)))


def _matmul_invalid(case, which, k):
    a, b = case.args
    if which == "inner":
        case.args[1] = np.ones(b.shape[:-2] + (b.shape[-2] + 1, b.shape[-1]) if b.ndim > 1 else (b.shape[0] + 1,))
    elif which == "scalar":
        case.args[0] = np.ones(())
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "mixed_dtype":
        case.args[1] = b.astype(np.float32 if b.dtype == np.float64 else np.float64)
    case.bad = which
    return case


def _prelu_case(data):
    shape = _shape(data, 0, 4, 0, 3)
    c = shape[1] if len(shape) >= 2 else 1
    w = _arr(data, (c if data.draw(st.booleans(), label="per channel") else 1,), -1, 1)
    return _finish(data, Case((_arr(data, shape, -3, 3), w), {}, (0, 1)))


def _prelu_invalid(case, which, k):
    x, w = case.args
    if which == "weight_size":
        case.args[0] = np.ones((2, 3))
        case.args[1] = np.ones(2)
    elif which == "weight_rank":
        case.args[1] = w.reshape(1, -1)
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


# loss ---------------------------------------------------------------------

_LOSS_PARAM = {"smooth_l1_loss": ("beta", [1.0, 0.5, 2.0, 0.0]), "huber_loss": ("delta", [1.0, 0.5, 2.0])}


def _pointwise_loss_case(data, name):
    shape = _shape(data, 0, 4)
    if data.draw(st.booleans(), label="nonempty"):
        shape = tuple(max(s, 1) for s in shape)  # a mean over 0 elements is NaN (checked less often)
    kw = {"reduction": data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")}
    if name in _LOSS_PARAM:
        p, vals = _LOSS_PARAM[name]
        kw[p] = data.draw(st.sampled_from(vals), label=p)
    x, y = _arr(data, shape, -3, 3), _arr(data, shape, -3, 3)
    args, grads = (x, y), (0, 1)
    if name == "binary_cross_entropy_with_logits":
        y = _arr(data, shape, 0.0, 1.0)
        w = _arr(data, shape[data.draw(st.integers(0, len(shape)), label="w dims"):], 0.5, 2.0) \
            if data.draw(st.booleans(), label="weight") else None
        pw = _arr(data, shape[-1:], 0.5, 2.0) if shape and data.draw(st.booleans(), label="pos_weight") else None
        args, grads = (x, y, w), (0, 1)
        if pw is not None:
            kw["pos_weight"] = pw
    return _finish(data, Case(args, kw, grads))


def _pointwise_loss_invalid(case, which, k):
    x = case.args[0]
    if which == "reduction":
        case.kwargs["reduction"] = "avg"
    elif which == "shape":
        case.args[1] = np.ones(x.shape[:-1] + (x.shape[-1] + 2,)) if x.ndim and x.shape[-1] != 1 else np.ones(x.shape + (2, 3))
        if x.ndim == 0 or x.shape[-1] == 1:
            case.args[0] = np.ones(x.shape + (2, 2))
        case.kwargs.pop("pos_weight", None)
        if len(case.args) > 2:
            case.args[2] = None
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "mixed_dtype":
        case.args[1] = case.args[1].astype(np.float32 if case.args[1].dtype == np.float64 else np.float64)
    case.bad = which
    return case


def _kl_div_case(data):
    shape = _shape(data, 1, 4, 1, 3)
    log_target = data.draw(st.booleans(), label="log_target")
    y = _arr(data, shape, -3, 0) if log_target else _arr(data, shape, 0.05, 1.0)
    kw = {"reduction": data.draw(st.sampled_from(["mean", "sum", "none", "batchmean"]), label="reduction"),
          "log_target": log_target}
    return _finish(data, Case((_arr(data, shape, -3, 0), y), kw, (0, 1)))


# shape --------------------------------------------------------------------


def _pad_case(data):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]), label="mode")
    k = data.draw(st.integers(1, 3), label="padded dims")
    if mode == "constant":
        lead = _shape(data, 0, 2, 0, 2, "lead")
        k = min(k, 4 - len(lead)) or 1
    else:
        lead = _shape(data, 1, 2, 1 if mode in ("reflect", "replicate") else 0, 2, "lead")
        # no 0 channels with reflect/replicate: torch raises (tests/test_empty.py)
        lead = lead[-2:] if len(lead) <= 2 else lead
    size = tuple(data.draw(st.integers(0 if mode == "constant" else 1, 4), label="size") for _ in range(k))
    pad = []
    for L in reversed(size):
        if mode == "reflect":
            lo, hi = (data.draw(st.integers(-(L // 2), L - 1), label="pad") for _ in range(2))
        elif mode == "circular":
            lo, hi = (data.draw(st.integers(-(L // 2), L), label="pad") for _ in range(2))
            if L - max(-lo, 0) - max(-hi, 0) <= 0:
                lo, hi = max(lo, 0), max(hi, 0)
        else:
            lo, hi = (data.draw(st.integers(-(L // 2), 3), label="pad") for _ in range(2))
        pad += [lo, hi]
    kw = {"mode": mode}
    if mode == "constant" and data.draw(st.booleans(), label="value?"):
        kw["value"] = data.draw(st.sampled_from([0.0, 1.5, -2.0]), label="value")
    x = _arr(data, lead + size)
    return _finish(data, Case((x, tuple(pad)), kw, (0,)))


def _pad_invalid(case, which, k):
    x, pad = case.args
    if which == "odd":
        case.args[1] = pad + (1,)
    elif which == "too_long":
        case.args[1] = (1, 1) * (x.ndim + 1)
    elif which == "negative_size":
        case.args[1] = (-x.shape[-1] - 1, 0) if x.ndim else (1, 1)
        case.kwargs["mode"] = "constant"
        case.kwargs.pop("value", None)
    elif which == "reflect_too_big":
        case.kwargs.pop("value", None)
        case.kwargs["mode"] = "reflect"
        case.args[1] = (x.shape[-1], 0) if 2 <= x.ndim <= 4 else (1,)
    elif which == "bad_mode":
        case.kwargs["mode"] = "symmetric"
    elif which == "float_pad":
        case.args[1] = tuple(float(p) for p in pad) or (1.0, 1.0)
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


def _pixel_shuffle_case(data):
    r = data.draw(st.integers(1, 3), label="upscale_factor")
    lead = _shape(data, 0, 2, 0, 2, "lead")
    c = data.draw(st.integers(0, 2), label="C") * r * r
    x = _arr(data, lead + (c, data.draw(st.integers(0, 3), label="H"), data.draw(st.integers(0, 3), label="W")))
    return _finish(data, Case((x,), {"upscale_factor": r}, (0,)))


def _pixel_shuffle_invalid(case, which, k):
    x = case.args[0]
    r = case.kwargs["upscale_factor"]
    if which == "channels":
        case.kwargs["upscale_factor"] = 2
        case.args[0] = np.ones(x.shape[:-3] + (4 * x.shape[-3] // (r * r) + 1,) + x.shape[-2:])
    elif which == "factor0":
        case.kwargs["upscale_factor"] = 0
    elif which == "rank":
        case.args[0] = np.ones(x.shape[-2:])
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


def _channel_shuffle_case(data):
    g = data.draw(st.integers(1, 3), label="groups")
    c = g * data.draw(st.integers(1, 3), label="C/g")
    x = _arr(data, (data.draw(st.integers(0, 2), label="N"), c) + _shape(data, 1, 2, 0, 3, "spatial"))
    return _finish(data, Case((x,), {"groups": g}, (0,)))


def _channel_shuffle_invalid(case, which, k):
    x = case.args[0]
    if which == "divide":
        case.kwargs["groups"] = x.shape[1] + 1
    elif which == "groups0":
        case.kwargs["groups"] = 0
    elif which == "rank":
        case.args[0] = np.ones(x.shape[1:2])
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


# pooling ------------------------------------------------------------------


def _adaptive_case(data, kind, k):
    size = tuple(data.draw(st.integers(1, 5), label="in size") for _ in range(k))
    # no 0 channels in adaptive_avg_pool3d, adaptive_max_pool1d/2d: torch raises (tests/test_empty.py)
    c_lo = 1 if (kind == "max" or k == 3) else 0
    x = _maybe_unbatched(data, _arr(data, (data.draw(st.integers(1, 2), label="N"), data.draw(st.integers(c_lo, 2), label="C"))
                                     + size, distinct=kind == "max"))
    # None (keep the input size) in a tuple
    out = tuple(data.draw(st.one_of(st.integers(1, 6), st.none()) if k > 1 else st.integers(1, 6),
                          label="output size") for _ in range(k))
    if k == 1:
        out = out[0]
    elif out[0] is not None and data.draw(st.booleans(), label="int size"):
        out = out[0]
    kw = {"output_size": out}
    if kind == "max" and data.draw(st.booleans(), label="return_indices"):
        kw["return_indices"] = True
    return _finish(data, Case((x,), kw, (0,)))


def _adaptive_invalid(case, which, k):
    x = case.args[0]
    if which == "size0":
        case.kwargs["output_size"] = 0
    elif which == "size_len":
        case.kwargs["output_size"] = (2,) * (k + 1)
    elif which == "rank":
        case.args[0] = np.ones(x.shape[-k:])
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


class _Unpool:
    """max_unpool{k}d with its indices from max_pool{k}d(return_indices=True): a differentiable
    function of the pooled values (the indices are fixed data)."""

    def __init__(self, k):
        self.k = k
        self.fn = getattr(fastops, f"max_unpool{k}d")

    def __call__(self, x, idx, **kw):
        return self.fn(x, idx, **kw)

    def backward(self, g, x, idx, **kw):
        return self.fn.backward(g, x, idx, **kw)


def _max_unpool_case(data, k):
    ks = _tup(_per_dim(data, k, 1, 3, "kernel_size"), k)
    # windows do not overlap: no index twice (the unpooled value of a repeated index is the last one
    # written, ill-defined, in PyTorch as well)
    stride = tuple(kk + data.draw(st.integers(0, 1), label="stride extra") for kk in ks)
    pad = tuple(data.draw(st.integers(0, kk // 2), label="padding") for kk in ks)
    size = [max(1, kk - 2 * p) + data.draw(st.integers(0, 3), label="extra") for kk, p in zip(ks, pad)]
    # the default output size (n_out - 1) * s - 2 p + k must hold every index
    for i, (kk, s, p) in enumerate(zip(ks, stride, pad)):
        while ((size[i] + 2 * p - kk) // s) * s - 2 * p + kk < size[i]:
            size[i] -= 1
        size[i] = max(size[i], 1)
    hypothesis.assume(all(((n + 2 * p - kk) // s) * s - 2 * p + kk >= max(n, 1) for n, kk, s, p in zip(size, ks, stride, pad)))
    # no 0 channels in max_unpool1d/2d/3d: torch raises (tests/test_empty.py)
    x = _arr(data, (data.draw(st.integers(1, 2), label="N"), data.draw(st.integers(1, 2), label="C"), *size),
             distinct=True)
    pooled, idx = getattr(fastops, f"max_pool{k}d")(x, ks, stride, pad, return_indices=True)
    kw = {"kernel_size": ks, "stride": stride, "padding": pad}
    if data.draw(st.booleans(), label="output_size?"):
        dflt = [(n - 1) * s - 2 * p + kk for n, s, p, kk in zip(pooled.shape[2:], stride, pad, ks)]
        kw["output_size"] = tuple(d + data.draw(st.integers(0, s - 1), label="extra out") for d, s in zip(dflt, stride))
    case = Case((pooled, idx), kw, (0,))
    case.op = _Unpool(k)
    return _finish(data, case)


def _max_unpool_invalid(case, which, k):
    x, idx = case.args
    if which == "indices_shape":
        case.args[1] = np.zeros(idx.shape[:-1] + (idx.shape[-1] + 1,), idx.dtype)
    elif which == "indices_dtype":
        case.args[1] = idx.astype(np.float64)
    elif which == "output_size":
        case.kwargs["output_size"] = tuple(s + 100 for s in x.shape[-k:])
    elif which == "kernel0":
        case.kwargs["kernel_size"] = 0
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


# norm ---------------------------------------------------------------------


def _l2_normalize_case(data):
    c = data.draw(st.integers(1, 3), label="C")
    x = _arr(data, (data.draw(st.integers(0, 2), label="N"), c) + _shape(data, 0, 2, 1, 3, "spatial"))
    shared = data.draw(st.booleans(), label="channel_shared")
    s = _arr(data, (1,) if shared else (c,), 0.5, 2.0) if data.draw(st.booleans(), label="scale") else None
    kw = {"across_spatial": data.draw(st.booleans(), label="across_spatial"), "channel_shared": shared,
          "eps": data.draw(st.sampled_from([1e-10, 1e-3]), label="eps")}
    return _finish(data, Case((x, s), kw, (0, 1)))


def _l2_normalize_invalid(case, which, k):
    x, s = case.args
    if which == "rank":
        case.args[0] = np.ones(3)
    elif which == "scale_shape":
        case.args[1] = np.ones(x.shape[1] + 1)
    elif which == "flag_type":
        case.kwargs["across_spatial"] = 1
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


def _lrn_case(data):
    x = _arr(data, (data.draw(st.integers(0, 2), label="N"), data.draw(st.integers(1, 5), label="C"))
             + _shape(data, 1, 3, 1, 3, "spatial"))
    kw = {"size": data.draw(st.integers(1, 6), label="size"),
          "alpha": data.draw(st.sampled_from([1e-4, 0.1, 1.0]), label="alpha"),
          "beta": data.draw(st.sampled_from([0.75, 0.5, 1.0, 2.0]), label="beta"),
          "k": data.draw(st.sampled_from([1.0, 2.0, 0.5]), label="k")}
    return _finish(data, Case((x,), kw, (0,)))


def _lrn_invalid(case, which, k):
    if which == "size0":
        case.kwargs["size"] = 0
    elif which == "rank":
        case.args[0] = np.ones(3)
    elif which == "intdtype":
        _set_intdtype(case)
    case.bad = which
    return case


# regularization -----------------------------------------------------------


def _dropout_case(data, name):
    lead = (data.draw(st.integers(0, 2), label="N"), data.draw(st.integers(1, 3), label="C"))
    x = _arr(data, lead + _shape(data, 0 if name == "dropout" else 1, 2, 0, 3, "spatial"))
    if name == "dropout" and data.draw(st.booleans(), label="any rank"):
        x = _arr(data, _shape(data, 0, 4))
    training = data.draw(st.booleans(), label="training")
    kw = {"p": data.draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), label="p"), "training": training}
    if training:
        kw["seed"] = data.draw(st.integers(0, 2**31), label="seed")  # the same mask for every call
    return _finish(data, Case((x,), kw, (0,)))


def _dropout_invalid(case, which, k):
    if which == "p_range":
        case.kwargs["p"] = 1.5
    elif which == "p_negative":
        case.kwargs["p"] = -0.1
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "training_type":
        case.kwargs["training"] = "yes"
    case.bad = which
    return case


# attention ----------------------------------------------------------------


def _sdpa_case(data):
    batch = _shape(data, 0, 2, 0, 2, "batch")
    L, S = data.draw(st.integers(0, 4), label="L"), data.draw(st.integers(0, 4), label="S")
    E, Ev = data.draw(st.integers(1, 4), label="E"), data.draw(st.integers(1, 4), label="Ev")
    kw = {}
    kvb = batch
    if len(batch) >= 1 and data.draw(st.booleans(), label="gqa"):
        g = data.draw(st.integers(1, 2), label="gqa groups")
        kvb = batch[:-1] + (batch[-1],)
        batch = batch[:-1] + (batch[-1] * g,)
        kw["enable_gqa"] = True
    q, kk, v = _arr(data, batch + (L, E)), _arr(data, kvb + (S, E)), _arr(data, kvb + (S, Ev))
    mask, grads = None, (0, 1, 2)
    how = data.draw(st.sampled_from(["none", "causal", "bool", "float"]), label="mask")
    mshape = tuple(1 if data.draw(st.booleans(), label="mask bcast") else s for s in batch + (L, S))
    mshape = mshape[data.draw(st.integers(0, len(batch)), label="mask dims dropped"):]
    if how == "causal":
        kw["is_causal"] = True
    elif how == "bool":
        mask = _arr(data, mshape) > -1.0  # fully masked rows too (0, as in PyTorch 2.13)
    elif how == "float":
        mask, grads = _arr(data, mshape), (0, 1, 2, 3)
    if data.draw(st.booleans(), label="scale?"):
        kw["scale"] = data.draw(st.sampled_from([0.5, 1.0, 2.0]), label="scale")
    if data.draw(st.booleans(), label="dropout?"):  # fastops' seeded mask: the same one in every call
        kw["dropout_p"], kw["seed"] = data.draw(st.sampled_from([0.2, 0.5]), label="dropout_p"), data.draw(
            st.integers(0, 2**31), label="seed")
    return _finish(data, Case((q, kk, v, mask), kw, grads))


def _sdpa_invalid(case, which, k):
    q, kk, v, m = case.args
    if which == "E_mismatch":
        case.args[1] = np.ones(kk.shape[:-1] + (kk.shape[-1] + 1,))
    elif which == "S_mismatch":
        case.args[2] = np.ones(v.shape[:-2] + (v.shape[-2] + 1, v.shape[-1]))
    elif which == "mask_and_causal":
        case.args[3] = np.ones((q.shape[-2], kk.shape[-2]), bool)
        case.kwargs["is_causal"] = True
    elif which == "mask_shape":
        case.args[3] = np.ones((q.shape[-2] + 1, kk.shape[-2] + 1))
    elif which == "rank":
        case.args[0] = q.reshape(-1)
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "dropout_p":
        case.kwargs["dropout_p"] = 1.5
    case.bad = which
    return case


# recurrent ----------------------------------------------------------------

def _sig(v):
    return 1 / (1 + np.exp(-v))


def _cell_ref(kind, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    H = h.shape[-1]
    if kind == "rnn":
        return np.tanh(gi + gh) if nonlinearity == "tanh" else np.maximum(gi + gh, 0)
    if kind == "lstm":
        g = gi + gh
        i, f, gg, o = _sig(g[..., :H]), _sig(g[..., H:2 * H]), np.tanh(g[..., 2 * H:3 * H]), _sig(g[..., 3 * H:])
        c2 = f * c + i * gg
        return o * np.tanh(c2), c2
    r, z = _sig(gi[..., :H] + gh[..., :H]), _sig(gi[..., H:2 * H] + gh[..., H:2 * H])
    return (1 - z) * np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:]) + z * h


class _Cell:
    """The recurrent cells with a flat signature (x, h, c, w_ih, w_hh, b_ih, b_hh): lstm_cell takes
    and returns its state as a pair."""

    def __init__(self, kind):
        self.kind, self.fn = kind, getattr(fastops, f"{kind}_cell")

    def _hx(self, h, c):
        return (h, c) if self.kind == "lstm" else h

    def __call__(self, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, **kw):
        return self.fn(x, self._hx(h, c), w_ih, w_hh, b_ih, b_hh, **kw)

    def backward(self, g, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, **kw):
        gr = self.fn.backward(tuple(g) if self.kind == "lstm" else g, x, self._hx(h, c), w_ih, w_hh, b_ih, b_hh, **kw)
        if self.kind == "lstm":
            return (gr[0], gr[1][0], gr[1][1]) + tuple(gr[2:])
        return (gr[0], gr[1], None) + tuple(gr[2:])

    def ref(self, *args, **kw):
        return _cell_ref(self.kind, *args, **kw)


_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _cell_case(data, kind):
    B, I, H = data.draw(st.integers(0, 3), label="B"), data.draw(st.integers(1, 4), label="I"), data.draw(st.integers(1, 4), label="H")
    G = _GATES[kind]
    unb = data.draw(st.booleans(), label="unbatched")
    bs = () if unb else (B,)
    x, h = _arr(data, bs + (I,)), _arr(data, bs + (H,), -1, 1)
    c = _arr(data, bs + (H,)) if kind == "lstm" else None
    w_ih, w_hh = _arr(data, (G * H, I), -1, 1), _arr(data, (G * H, H), -1, 1)
    bias = data.draw(st.booleans(), label="bias")
    b_ih, b_hh = (_arr(data, (G * H,)), _arr(data, (G * H,))) if bias else (None, None)
    kw = {}
    if kind == "rnn":
        kw["nonlinearity"] = data.draw(st.sampled_from(["tanh", "relu"]), label="nonlinearity")
    case = Case((x, h, c, w_ih, w_hh, b_ih, b_hh), kw, (0, 1, 2, 3, 4, 5, 6))
    case.op = _Cell(kind)
    case.ref = case.op.ref
    return _finish(data, case)


def _cell_invalid(case, which, k):
    x, h, c, w_ih, w_hh, b_ih, b_hh = case.args
    if which == "w_ih_shape":
        case.args[3] = np.ones((w_ih.shape[0], w_ih.shape[1] + 1))
    elif which == "w_hh_shape":
        case.args[4] = np.ones((w_hh.shape[0] + 1, w_hh.shape[1]))
    elif which == "h_shape":
        case.args[1] = np.ones(h.shape[:-1] + (h.shape[-1] + 1,))
    elif which == "bias_shape":
        case.args[5] = np.ones(w_ih.shape[0] + 1)
    elif which == "rank":
        case.args[0] = np.ones((1,) + x.shape + (1,))
    elif which == "intdtype":
        _set_intdtype(case)
    elif which == "mixed_dtype":
        case.args[3] = w_ih.astype(np.float32 if w_ih.dtype == np.float64 else np.float64)
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
# the first 18 ops: non-contiguous layouts too, float64 only (float32 would compile their many
# kernels a second time: CI cost)
for _n, (_draw, *_rest) in list(FUZZ.items()):
    FUZZ[_n] = (lambda d, f=_draw: _finish(d, f(d), (np.float64,)), *_rest)
for _n in _POINTWISE:
    FUZZ[_n] = (lambda d, n=_n: _pointwise_case(d, n), _pointwise_invalid,
                ["intdtype", "not_array"] + ["bad_param"] * (_n in _POINTWISE_PARAMS), _n)
for _n in ("softmax", "log_softmax"):
    FUZZ[_n] = (_softmax_case, _softmax_invalid, ["dim_range", "dim_neg_range", "intdtype", "dim_type"], 0)
for _n in ("add", "sub", "mul", "div"):
    FUZZ[_n] = (lambda d, n=_n: _binary_case(d, n), _binary_invalid, ["broadcast", "intdtype", "mixed_dtype"], 0)
FUZZ["matmul"] = (_matmul_case, _matmul_invalid, ["inner", "scalar", "intdtype", "mixed_dtype"], 0)
FUZZ["prelu"] = (_prelu_case, _prelu_invalid, ["weight_size", "weight_rank", "intdtype"], 0)
FUZZ["kl_div"] = (_kl_div_case, _pointwise_loss_invalid, ["reduction", "shape", "intdtype", "mixed_dtype"], 0)
for _n in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy_with_logits"):
    FUZZ[_n] = (lambda d, n=_n: _pointwise_loss_case(d, n), _pointwise_loss_invalid,
                ["reduction", "shape", "intdtype", "mixed_dtype"], 0)
FUZZ["pad"] = (_pad_case, _pad_invalid, ["odd", "too_long", "negative_size", "reflect_too_big", "bad_mode",
                                         "float_pad", "intdtype"], 0)
FUZZ["pixel_shuffle"] = (_pixel_shuffle_case, _pixel_shuffle_invalid, ["channels", "factor0", "rank", "intdtype"], 0)
FUZZ["channel_shuffle"] = (_channel_shuffle_case, _channel_shuffle_invalid, ["divide", "groups0", "rank", "intdtype"], 0)
for _k in (1, 2, 3):
    FUZZ[f"adaptive_avg_pool{_k}d"] = (lambda d, k=_k: _adaptive_case(d, "avg", k), _adaptive_invalid,
                                      ["size0", "size_len", "rank", "intdtype"], _k)
    if _k < 3:
        FUZZ[f"adaptive_max_pool{_k}d"] = (lambda d, k=_k: _adaptive_case(d, "max", k), _adaptive_invalid,
                                          ["size0", "size_len", "rank", "intdtype"], _k)
    FUZZ[f"max_unpool{_k}d"] = (lambda d, k=_k: _max_unpool_case(d, k), _max_unpool_invalid,
                               ["indices_shape", "indices_dtype", "output_size", "kernel0", "intdtype"], _k)
FUZZ["l2_normalize"] = (_l2_normalize_case, _l2_normalize_invalid, ["rank", "scale_shape", "flag_type", "intdtype"], 0)
FUZZ["local_response_norm"] = (_lrn_case, _lrn_invalid, ["size0", "rank", "intdtype"], 0)
for _n in ("dropout", "dropout2d"):
    FUZZ[_n] = (lambda d, n=_n: _dropout_case(d, n), _dropout_invalid, ["p_range", "p_negative", "intdtype",
                                                                      "training_type"], 0)
FUZZ["scaled_dot_product_attention"] = (_sdpa_case, _sdpa_invalid, ["E_mismatch", "S_mismatch", "mask_and_causal",
                                                                    "mask_shape", "rank", "intdtype", "dropout_p"], 0)
for _n in ("rnn", "lstm", "gru"):
    FUZZ[f"{_n}_cell"] = (lambda d, n=_n: _cell_case(d, n), _cell_invalid, ["w_ih_shape", "w_hh_shape", "h_shape",
                                                                          "bias_shape", "rank", "intdtype",
                                                                          "mixed_dtype"], 0)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


_DEFAULT_TOL = {np.float32: (2e-5, 2e-6), np.float64: (1e-10, 1e-12)}


def _op_ref_tol(name, case):
    info = REFS.get(name)
    return (case.op or getattr(fastops, name), case.ref or info.ref, info.tol if info is not None else _DEFAULT_TOL)


def _forward(name, case, dtype):
    """Run the op, check its outputs against the float64 reference at ``dtype``'s tolerance; return the
    float outputs (integer outputs, e.g. ``return_indices``, are compared exactly and get no cotangent)."""
    op, ref, tol = _op_ref_tol(name, case)
    args, kw = case.args, case.kwargs
    out = _as_list(op(*args, **kw))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        refs = _as_list(ref(*to_float64(args), **{n: to_float64(v) for n, v in kw.items()}))
    rtol, atol = tol[dtype]
    if dtype == np.float64:
        rtol, atol = max(rtol, 1e-9), max(atol, 1e-11)
    if kw.get("return_indices") and len(out) == 2 and len(refs) == 1:  # the reference gives the values only
        x = args[0]  # adaptive_max_pool{k}d: indices into the flattened k spatial dims
        lead = x.shape[:x.ndim - int(name[-2])]
        assert out[1].dtype == np.int64 and out[1].shape == out[0].shape, f"{name} indices {out[1].dtype} {case}"
        if x.size:
            at = np.take_along_axis(x.reshape(lead + (-1,)), out[1].reshape(lead + (-1,)), -1)
            np.testing.assert_array_equal(at.reshape(out[0].shape), out[0], err_msg=f"{name} indices {case}")
        out = out[:1]
    assert len(out) == len(refs), f"{name} {case}: {len(out)} outputs vs reference {len(refs)}"
    floats = []
    for o, r in zip(out, refs):
        assert o.shape == r.shape, f"{case}: {o.dtype} {o.shape} vs reference {r.shape}"
        if np.asarray(r).dtype.kind in "iub":
            np.testing.assert_array_equal(o, r, err_msg=f"{name} forward (integer output) {case}")
            continue
        assert o.dtype == dtype, f"{name} {case}: output dtype {o.dtype}"
        np.testing.assert_allclose(o, r, rtol=rtol, atol=atol, err_msg=f"{name} forward {case}")
        floats.append(o)
    return op, floats


def _entries(name, args):
    """Argument position -> backward entry (``grad_entries``), where pad's strategies pass the pad
    widths positionally (a tuple: no entry)."""
    pos = [i for i in grad_entries(name, args) if not isinstance(args[i], tuple)]
    return {i: k for k, i in enumerate(pos)}


def _check_float32(name, case):
    """float32: forward against the float64 reference, backward against the float64 backward, both at
    float32 tolerance; returns the float64 copy of the case (checked by finite differences next)."""
    case64 = Case(to_float64(case.args), {n: to_float64(v) for n, v in case.kwargs.items()}, case.grad_args)
    case64.op, case64.ref = case.op, case.ref
    op, out = _forward(name, case, np.float32)
    if sum(o.size for o in out):
        rng = np.random.default_rng(len(out) + out[0].size)
        cots = [np.where(np.isfinite(o), rng.standard_normal(o.shape), 0.0) for o in out]
        g32 = op.backward([c.astype(np.float32) for c in cots] if len(cots) > 1 else cots[0].astype(np.float32),
                          *case.args, **case.kwargs)
        g64 = op.backward(cots if len(cots) > 1 else cots[0], *case64.args, **case64.kwargs)
        rtol, atol = _op_ref_tol(name, case)[2][np.float32]
        entry = _entries(name, case.args)
        for i in case.grad_args:
            a = case.args[i]
            if isinstance(a, np.ndarray) and a.size:
                g, r = g32[entry[i]], g64[entry[i]]
                assert g is not None and g.dtype == np.float32 and g.shape == a.shape, \
                    f"{name} float32 backward: grad {i} {None if g is None else (g.dtype, g.shape)} {case}"
                scale = 1.0 + np.max(np.abs(r))
                np.testing.assert_allclose(g, r, rtol=10 * rtol, atol=10 * atol * scale,
                                           err_msg=f"{name} float32 backward, grad {i} {case}")
    return case64


def _check_valid(name, case):
    if case.dtype == np.float32:
        case = _check_float32(name, case)
    args, kw = case.args, case.kwargs
    op, out = _forward(name, case, np.float64)
    if sum(o.size for o in out) == 0:
        return
    rng = np.random.default_rng(len(out) + out[0].size)
    # a max-pooling window that holds only padding gives -inf (as in PyTorch): no finite difference
    # there, so such outputs get a zero cotangent
    cots = [np.where(np.isfinite(o), rng.standard_normal(o.shape), 0.0) for o in out]
    grads = op.backward(cots if len(cots) > 1 else cots[0], *args, **kw)
    entry = _entries(name, args)
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
    plus, minus = ([o for o in outs if o.dtype.kind == "f"] for outs in (plus, minus))
    with np.errstate(invalid="ignore"):  # -inf - -inf at all-padding windows (zero cotangent there)
        fd = sum(
            np.sum(np.where(c != 0, (p - m) / (2 * eps), 0.0) * c) for p, m, c in zip(plus, minus, cots))
    an = sum(np.sum(grads[i] * t) for i, t in dirs.items())
    scale = sum(np.sum(np.abs(grads[i] * t)) for i, t in dirs.items()) + 1e-12
    assert np.isfinite(an) and abs(fd - an) <= 1e-6 * scale + 1e-8, f"{name} backward {case}: finite difference {fd} vs backward {an}"


def _check_invalid(name, case):
    op = case.op or getattr(fastops, name)
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


# Found by the fuzzer (fixed): the l2_normalize reference (across_spatial) failed on an empty batch.
def test_l2_normalize_reference_on_an_empty_batch():
    x = np.ones((0, 2, 3))
    for across in (False, True):
        np.testing.assert_array_equal(fastops.l2_normalize(x, across_spatial=across),
                                      REFS["l2_normalize"].ref(x, across_spatial=across))


# Found by the fuzzer (fixed): the sdpa reference failed with no key (S = 0; fastops and PyTorch
# give zeros).
def test_sdpa_reference_with_no_key():
    q, k, v = np.ones((1, 2, 3)), np.ones((1, 0, 3)), np.ones((1, 0, 2))
    np.testing.assert_array_equal(REFS["scaled_dot_product_attention"].ref(q, k, v), np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(fastops.scaled_dot_product_attention(q, k, v), np.zeros((1, 2, 2)))
