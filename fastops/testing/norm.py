"""Op table: normalization (docs/ops.md, "Normalization"): batch_norm, layer_norm, group_norm, instance_norm,
local_response_norm, l2_normalize.

In training, batch_norm / instance_norm update given running statistics in place; the generic
tests check that inputs are not modified, so the table's training samples pass ``None`` running
statistics (allowed by PyTorch) and the in-place updates are checked against torch over several
steps in tests/norm/test_norm.py.
"""
import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, activation_ref, activation_torch, randn

_TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}
_SPATIAL = {2: (), 3: (5,), 4: (3, 4), 5: (2, 3, 3)}


# Dispatch paths (tests/test_paths.py): per op, (path, input shape, the arguments after the input,
# kwargs, explain's own keywords), each large enough for the parallel kernels at 2 threads; the path
# is the forward kernel explain names (less its dtype and backend suffix). Arguments: "w", "b" the
# affine parameters, "rm", "rv" running statistics, "ramp" a scale from 0.5 to 2 over the channels,
# "one" a shared scale of 1, else as given. The mean/variance normalizations get inputs of mean 2
# and standard deviation 3, local_response_norm and l2_normalize standard normal ones.
_PATHS = {
    "batch_norm": [
        ("norm_affine_silu", (4, 16, 40, 40), (None, None, "w", "b"), {"training": True, "activation": "silu"}, {}),
        ("norm_affine_id", (4, 16, 40, 40), ("rm", "rv", "w", "b"), {"training": False}, {}),
    ],
    "layer_norm": [("norm_ln_fwd", (512, 200), (200, "w", "b"), {}, {"normalized_shape": 200})],
    "group_norm": [("norm_grp_fwd", (4, 16, 32, 32), (4, "w", "b"), {}, {"num_groups": 4})],
    "instance_norm": [("norm_grp_fwd", (4, 16, 32, 32), (None, None, "w", "b"), {}, {})],
    "local_response_norm": [("lrn_fwd", (4, 32, 24, 24), (), {"size": 5}, {})],
    "l2_normalize": [
        ("l2_normalize_fwd", (4, 64, 33, 35), ("ramp",), {}, {}),
        ("l2_normalize_fwd", (4, 64, 33, 35), ("ramp",), {"across_spatial": True}, {}),
        ("l2_normalize_fwd", (2, 8, 100, 100), ("one",), {"across_spatial": True, "channel_shared": True}, {}),
    ],
}
_UNIT_INPUT = ("local_response_norm", "l2_normalize")


def _paths(name):
    def paths(rng, dtype):
        sfx = "f32" if np.dtype(dtype) == np.float32 else "f64"
        out = []
        for path, shape, extra, kw, explain in _PATHS[name]:
            x = randn(rng, shape, dtype) if name in _UNIT_INPUT else randn(rng, shape, dtype, 3.0, 2.0)
            C = shape[-1] if name == "layer_norm" else shape[1]
            vals = {"w": lambda: randn(rng, (C,), dtype), "b": lambda: randn(rng, (C,), dtype),
                    "rm": lambda: randn(rng, (C,), dtype), "rv": lambda: rng.uniform(0.5, 2, C).astype(dtype),
                    "ramp": lambda: np.linspace(0.5, 2, C).astype(dtype), "one": lambda: np.ones(1, dtype)}
            args = (x,) + tuple(vals[a]() if isinstance(a, str) else a for a in extra)
            expect = {"kernel": f"{path}_{sfx}_parallel", "backend": "parallel"}
            if name == "batch_norm":
                expect["stats"] = "batch (shifted sums per plane)" if kw["training"] else "running"
            out.append(PathCase(path, Sample(args, dict(kw), str(shape)), expect=expect, explain={**kw, **explain}))
        return out

    return paths


def _bshape(rank, N=3, C=4):
    return (N, C) + _SPATIAL[rank]


def _param(rng, C, dtype, scale=1.0, shift=0.0):
    return randn(rng, C if isinstance(C, tuple) else (C,), dtype, scale, shift)


def _running(rng, C, dtype):
    return randn(rng, (C,), dtype, 0.3), (rng.uniform(0.5, 2.0, C)).astype(dtype)


def _norm_ref(x, axes, mean=None, var=None, eps=1e-5):
    if mean is None:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _chan(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# --- batch_norm ------------------------------------------------------------------------------------


def _bn_samples(rng, dtype):
    out = []
    for rank in (2, 3, 4, 5):
        shape = _bshape(rank)
        C = shape[1]
        w, b = _param(rng, C, dtype, 0.5, 1.0), _param(rng, C, dtype)
        rm, rv = _running(rng, C, dtype)
        out.append(Sample((randn(rng, shape, dtype, 2.0, 0.5), None, None, w, b), {"training": True}, f"train r{rank}"))
        out.append(Sample((randn(rng, shape, dtype), rm, rv, w, b), {"training": False}, f"eval r{rank}"))
    C = 4
    w, b = _param(rng, C, dtype, 0.5, 1.0), _param(rng, C, dtype)
    rm, rv = _running(rng, C, dtype)
    x = randn(rng, (3, C, 7), dtype)
    out += [
        Sample((x, None, None, None, None), {"training": True}, "no affine"),
        Sample((x, None, None, w, None), {"training": True, "eps": 1e-3, "momentum": 0.3}, "weight only"),
        Sample((x, rm, rv, None, b), {"eps": 0.1}, "eval bias only"),
        Sample((x, None, None, w, b), {"training": True, "activation": "gelu"}, "gelu"),
        Sample((x, None, None, w, b), {"training": True, "activation": "leaky_relu", "activation_param": 0.2}, "leaky"),
        Sample((x, rm, rv, w, b), {"training": False, "activation": "elu", "activation_param": 0.7}, "eval elu"),
        Sample((x, None, None, w, b), {"training": True, "activation": "relu"}, "relu"),
        Sample((randn(rng, (4, 8, 48, 48), dtype, 1.0, 3.0), None, None, w.repeat(2), b.repeat(2)),
               {"training": True}, "parallel"),
        Sample((randn(rng, (2, 1000), dtype), None, None, None, None), {"training": True}, "N=2"),
    ]
    return out


def _bn_ref(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
            activation=None, activation_param=None):
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        y = _norm_ref(x, axes, eps=eps)
    else:
        y = _norm_ref(x, axes, _chan(running_mean, x.ndim), _chan(running_var, x.ndim), eps)
    if weight is not None:
        y = y * _chan(weight, x.ndim)
    if bias is not None:
        y = y + _chan(bias, x.ndim)
    return activation_ref(y, activation, activation_param)


def _bn_torch(t, x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
              activation=None, activation_param=None):
    y = t.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    return activation_torch(t, y, activation, activation_param)


def _bn_errors():
    x = np.ones((2, 3, 4), np.float32)
    c3, c4 = np.ones(3, np.float32), np.ones(4, np.float32)
    return [
        ErrorCase((x, c4, c3), {}, ValueError, "running_mean"),
        ErrorCase((x, c3, c4), {}, ValueError, "running_var"),
        ErrorCase((x, c3, c3, c4), {}, ValueError, "weight"),
        ErrorCase((x, c3, c3, c3, c4), {}, ValueError, "bias"),
        ErrorCase((x, None, None), {"training": False}, ValueError, "eval"),
        ErrorCase((x, c3, c3), {"eps": -1.0}, ValueError, "eps"),
        ErrorCase((x, c3, c3), {"momentum": 1.5, "training": True}, ValueError, "momentum"),
        ErrorCase((x, c3, c3), {"momentum": None, "training": True}, TypeError, "momentum"),
        ErrorCase((x, c3, c3), {"activation": "swish"}, ValueError, "activation"),
        ErrorCase((np.ones((1, 3), np.float32), None, None), {"training": True}, ValueError, "more than 1"),
        ErrorCase((np.ones(3, np.float32), None, None), {"training": True}, ValueError, "input"),
        ErrorCase((x, c3.astype(np.float64), c3), {}, TypeError, "running_mean"),
        ErrorCase((x.astype(np.int32), c3, c3), {}, TypeError, "input"),
        ErrorCase((x, c3, c3), {"training": 1}, TypeError, "training"),
    ]


def _bn_bench(rng, dtype, size):
    shape = {"small": (4, 8, 16, 16), "large": (32, 64, 56, 56)}[size]
    C = shape[1]
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    return Sample((randn(rng, shape, dtype), rm, rv, _param(rng, C, dtype), _param(rng, C, dtype)),
                  {"training": True})


# --- layer_norm ------------------------------------------------------------------------------------


def _ln_samples(rng, dtype):
    out = []
    for shape, ns in [((3, 7), 7), ((2, 3, 10), (10,)), ((2, 3, 4, 5), (4, 5)), ((2, 2, 3, 4), (2, 3, 4)),
                      ((5,), (5,)), ((64, 300), 300), ((512, 200), (200,))]:
        k = 1 if isinstance(ns, int) else len(ns)
        nsh = shape[len(shape) - k:]
        x = randn(rng, shape, dtype, 1.5, 0.3)
        out.append(Sample((x, ns, _param(rng, nsh, dtype, 0.5, 1.0), _param(rng, nsh, dtype)), {}, f"{shape} {ns}"))
    x = randn(rng, (4, 6), dtype)
    out += [
        Sample((x, 6, None, None), {}, "no affine"),
        Sample((x, 6, _param(rng, 6, dtype), None), {"eps": 0.1}, "weight only"),
        Sample((x, (6,), None, _param(rng, 6, dtype)), {}, "bias only"),
    ]
    return out


def _ln_ref(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    y = _norm_ref(x, tuple(range(x.ndim - k, x.ndim)), eps=eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _ln_torch(t, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    return t.nn.functional.layer_norm(x, ns, weight, bias, eps)


def _ln_errors():
    x = np.ones((2, 3, 4), np.float32)
    return [
        ErrorCase((x, 3), {}, ValueError, "normalized_shape"),
        ErrorCase((x, (2, 3, 4, 1)), {}, ValueError, "normalized_shape"),
        ErrorCase((x, ()), {}, TypeError, "normalized_shape"),
        ErrorCase((x, 4.0), {}, TypeError, "normalized_shape"),
        ErrorCase((x, 4, np.ones(3, np.float32)), {}, ValueError, "weight"),
        ErrorCase((x, (3, 4), None, np.ones(4, np.float32)), {}, ValueError, "bias"),
        ErrorCase((x, 4), {"eps": -1e-5}, ValueError, "eps"),
        ErrorCase((x, 4, np.ones(4, np.float64)), {}, TypeError, "weight"),
        ErrorCase((x.astype(np.int64), 4), {}, TypeError, "input"),
    ]


def _ln_bench(rng, dtype, size):
    shape = {"small": (4, 16, 64), "large": (64, 512, 768)}[size]
    L = shape[-1]
    return Sample((randn(rng, shape, dtype), L, _param(rng, L, dtype), _param(rng, L, dtype)))


# --- group_norm ------------------------------------------------------------------------------------


def _gn_samples(rng, dtype):
    out = []
    for shape, G in [((2, 6), 3), ((2, 6, 5), 2), ((3, 4, 3, 4), 4), ((2, 6, 2, 3, 3), 1), ((2, 6, 5), 6),
                     ((4, 16, 32, 32), 4)]:
        C = shape[1]
        x = randn(rng, shape, dtype, 2.0, -0.5)
        out.append(Sample((x, G, _param(rng, C, dtype, 0.5, 1.0), _param(rng, C, dtype)), {}, f"{shape} G={G}"))
    x = randn(rng, (2, 4, 5), dtype)
    out += [
        Sample((x, 2, None, None), {}, "no affine"),
        Sample((x, 2, _param(rng, 4, dtype), None), {"eps": 0.01}, "weight only"),
        Sample((x, 4, None, _param(rng, 4, dtype)), {}, "bias only"),
    ]
    return out


def _gn_ref(x, num_groups, weight=None, bias=None, eps=1e-5):
    N, C = x.shape[:2]
    xg = x.reshape(N, num_groups, -1)
    y = _norm_ref(xg, (2,), eps=eps).reshape(x.shape)
    if weight is not None:
        y = y * _chan(weight, x.ndim)
    if bias is not None:
        y = y + _chan(bias, x.ndim)
    return y


def _gn_torch(t, x, num_groups, weight=None, bias=None, eps=1e-5):
    if weight is None and bias is not None:
        # torch 2.13's native group_norm backward fails ("tensor does not have a device") with a
        # bias and no weight: add the bias outside
        y = t.nn.functional.group_norm(x, num_groups, None, None, eps)
        return y + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    return t.nn.functional.group_norm(x, num_groups, weight, bias, eps)


def _gn_errors():
    x = np.ones((2, 6, 4), np.float32)
    return [
        ErrorCase((x, 4), {}, ValueError, "num_groups"),
        ErrorCase((x, 0), {}, ValueError, "num_groups"),
        ErrorCase((x, 2.0), {}, TypeError, "num_groups"),
        ErrorCase((x, 3, np.ones(3, np.float32)), {}, ValueError, "weight"),
        ErrorCase((x, 3, None, np.ones(2, np.float32)), {}, ValueError, "bias"),
        ErrorCase((x, 3), {"eps": -0.1}, ValueError, "eps"),
        ErrorCase((np.ones(6, np.float32), 3), {}, ValueError, "input"),
        ErrorCase((x.astype(np.int32), 3), {}, TypeError, "input"),
    ]


def _gn_bench(rng, dtype, size):
    shape, G = {"small": ((2, 16, 8, 8), 4), "large": ((16, 256, 28, 28), 32)}[size]
    C = shape[1]
    return Sample((randn(rng, shape, dtype), G, _param(rng, C, dtype), _param(rng, C, dtype)))


# --- instance_norm ---------------------------------------------------------------------------------


def _in_samples(rng, dtype):
    out = []
    for rank in (3, 4, 5):
        shape = _bshape(rank, 2, 3)
        C = shape[1]
        w, b = _param(rng, C, dtype, 0.5, 1.0), _param(rng, C, dtype)
        rm, rv = _running(rng, C, dtype)
        x = randn(rng, shape, dtype, 1.5, 0.5)
        out.append(Sample((x, None, None, w, b), {}, f"r{rank}"))
        out.append(Sample((x, rm, rv, w, b), {"use_input_stats": False}, f"running r{rank}"))
    x = randn(rng, (2, 3, 6), dtype)
    out += [
        Sample((x, None, None, None, None), {"eps": 1e-3}, "no affine"),
        Sample((x, None, None, _param(rng, 3, dtype), None), {}, "weight only"),
        Sample((randn(rng, (4, 16, 32, 32), dtype), None, None, None, _param(rng, 16, dtype)), {}, "parallel"),
    ]
    return out


def _in_ref(x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True, momentum=0.1,
            eps=1e-5):
    if use_input_stats:
        y = _norm_ref(x, tuple(range(2, x.ndim)), eps=eps)
    else:
        y = _norm_ref(x, None, _chan(running_mean, x.ndim), _chan(running_var, x.ndim), eps)
    if weight is not None:
        y = y * _chan(weight, x.ndim)
    if bias is not None:
        y = y + _chan(bias, x.ndim)
    return y


def _in_errors():
    x = np.ones((2, 3, 4), np.float32)
    c3, c4 = np.ones(3, np.float32), np.ones(4, np.float32)
    return [
        ErrorCase((x, c4, c3), {}, ValueError, "running_mean"),
        ErrorCase((x, c3, c4), {}, ValueError, "running_var"),
        ErrorCase((x, None, None, c4), {}, ValueError, "weight"),
        ErrorCase((x, None, None, None, c4), {}, ValueError, "bias"),
        ErrorCase((x, c3, None), {}, ValueError, "together"),
        ErrorCase((x,), {"use_input_stats": False}, ValueError, "use_input_stats"),
        ErrorCase((x,), {"momentum": -0.1}, ValueError, "momentum"),
        ErrorCase((x,), {"eps": -0.1}, ValueError, "eps"),
        ErrorCase((np.ones((2, 3), np.float32),), {}, ValueError, "input"),
        ErrorCase((np.ones((2, 3, 1), np.float32),), {}, ValueError, "more than 1"),
        ErrorCase((x.astype(np.float16),), {}, TypeError, "input"),
    ]


def _in_bench(rng, dtype, size):
    shape = {"small": (2, 8, 16, 16), "large": (16, 64, 56, 56)}[size]
    C = shape[1]
    return Sample((randn(rng, shape, dtype), None, None, _param(rng, C, dtype), _param(rng, C, dtype)))


TABLE = [
    OpInfo(name="batch_norm", samples=_bn_samples, ref=_bn_ref, torch_ref=_bn_torch, grad_args=(0, 3, 4),
           errors=_bn_errors, tol=_TOL, bench=_bn_bench, paths=_paths("batch_norm")),
    OpInfo(name="layer_norm", samples=_ln_samples, ref=_ln_ref, torch_ref=_ln_torch, grad_args=(0, 2, 3),
           hyper_args=(1,), errors=_ln_errors, tol=_TOL, bench=_ln_bench, paths=_paths("layer_norm")),
    OpInfo(name="group_norm", samples=_gn_samples, ref=_gn_ref,
           torch_ref=_gn_torch,
           grad_args=(0, 2, 3), hyper_args=(1,), errors=_gn_errors, tol=_TOL, bench=_gn_bench,
           paths=_paths("group_norm")),
    OpInfo(name="instance_norm", samples=_in_samples, ref=_in_ref,
           torch_ref=lambda t, x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
           momentum=0.1, eps=1e-5: t.nn.functional.instance_norm(
               x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps),
           grad_args=(0, 3, 4), errors=_in_errors, tol=_TOL, bench=_in_bench, paths=_paths("instance_norm")),
]


# === local_response_norm and l2_normalize (norm/lrn.py, norm/l2_normalize.py) ===

# ---------------------------------------------------------------------------------------------
# local_response_norm


def _lrn_ref(x, size, alpha=1e-4, beta=0.75, k=1.0):
    # torch: zero-pad size//2 channels in front, (size-1)//2 behind, average x**2 over `size`
    C = x.shape[1]
    sq = x * x
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    sqp = np.pad(sq, pad)
    win = sum(np.take(sqp, np.arange(j, j + C), axis=1) for j in range(size))
    d = k + alpha * win / size
    return (x / d**beta).astype(x.dtype)


def _lrn_samples(rng, dtype):
    out = []
    cases = [
        ((2, 7, 5), 3, {}),
        ((2, 7, 5), 4, {"alpha": 0.5, "beta": 0.6, "k": 2.0}),
        ((2, 6, 3, 4), 5, {"alpha": 1.0, "beta": 0.75, "k": 1.0}),
        ((2, 6, 3, 4), 2, {"alpha": 0.3, "beta": 1.5, "k": 0.5}),
        ((1, 5, 2, 3, 2), 1, {"alpha": 0.2}),
        ((1, 4, 2, 3, 2), 8, {"alpha": 2.0, "beta": 0.75, "k": 1.0}),  # window wider than C
        ((0, 3, 4), 3, {}),
    ]
    for shape, size, kw in cases:
        out.append(Sample((randn(rng, shape, dtype),), dict(size=size, **kw)))
    return out


def _lrn_errors():
    x = np.ones((2, 4, 3), np.float32)
    return [
        ErrorCase((np.ones((2, 4, 3), np.int64),), {"size": 3}, TypeError, "float32 or float64"),
        ErrorCase(([1.0],), {"size": 3}, TypeError, "numpy.ndarray"),
        ErrorCase((np.ones((2, 4), np.float32),), {"size": 3}, ValueError, "3 or more dims"),
        ErrorCase((x,), {"size": 0}, ValueError, "size"),
        ErrorCase((x,), {"size": 2.5}, TypeError, "size"),
        ErrorCase((x,), {"size": 3, "alpha": "a"}, TypeError, "alpha"),
        ErrorCase((x,), {"size": 3, "beta": None}, TypeError, "beta"),
        ErrorCase((x,), {"size": 3, "k": float("nan")}, ValueError, "'k'"),
    ]


def _lrn_bench(rng, dtype, size):
    shape = {"small": (2, 8, 5, 5), "large": (16, 96, 55, 55)}[size]  # AlexNet conv1
    return Sample((randn(rng, shape, dtype),), {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})


# ---------------------------------------------------------------------------------------------
# l2_normalize


def _l2_ref(x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    if across_spatial:
        # (an explicit row length: reshape(0, -1) of an empty batch is ambiguous)
        ss = (x * x).reshape(x.shape[0], int(np.prod(x.shape[1:]))).sum(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    else:
        ss = (x * x).sum(axis=1, keepdims=True)
    y = x / np.sqrt(ss + eps)
    if scale is not None:
        y = y * (scale[0] if channel_shared else scale.reshape((1, -1) + (1,) * (x.ndim - 2)))
    return y.astype(x.dtype)


def _l2_torch(t, x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    # Caffe's Normalize in torch ops (F.normalize clamps the norm at eps instead of adding eps)
    if across_spatial:
        ss = (x * x).reshape(x.shape[0], int(np.prod(x.shape[1:]))).sum(1).reshape((-1,) + (1,) * (x.dim() - 1))
    else:
        ss = (x * x).sum(1, keepdim=True)
    y = x / t.sqrt(ss + eps)
    if scale is not None:
        y = y * (scale if channel_shared else scale.reshape((1, -1) + (1,) * (x.dim() - 2)))
    return y


def _l2_samples(rng, dtype):
    out = []
    cases = [((2, 5, 3, 4), False, False), ((2, 5, 3, 4), True, False), ((2, 5, 3, 4), False, True),
             ((2, 5, 3, 4), True, True), ((3, 4), False, False), ((2, 3, 5), True, False), ((1, 3, 70), False, False)]
    for shape, across, shared in cases:
        x = randn(rng, shape, dtype)
        s = rng.uniform(0.5, 2.0, (1,) if shared else (shape[1],)).astype(dtype)
        out.append(Sample((x, s), {"across_spatial": across, "channel_shared": shared}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype), None), {}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype), None), {"across_spatial": True, "eps": 0.5}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype, scale=0.1), rng.uniform(1, 2, 4).astype(dtype)), {"eps": 0.01}))
    out.append(Sample((randn(rng, (0, 4, 3), dtype), np.ones(4, dtype)), {}, "empty"))
    return out


def _l2_errors():
    x = np.ones((2, 4, 3, 3), np.float32)
    s = np.ones(4, np.float32)
    return [
        ErrorCase((np.ones((2, 4), np.int32), None), {}, TypeError, "float32 or float64"),
        ErrorCase((np.ones(4, np.float32), None), {}, ValueError, "2 or more dims"),
        ErrorCase((x, np.ones(3, np.float32)), {}, ValueError, "scale"),
        ErrorCase((x, s), {"channel_shared": True}, ValueError, "scale"),
        ErrorCase((x, np.ones((4, 1), np.float32)), {}, ValueError, "scale"),
        ErrorCase((x, np.ones(4, np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x, s), {"eps": -1.0}, ValueError, "eps"),
        ErrorCase((x, s), {"across_spatial": 1}, TypeError, "across_spatial"),
        ErrorCase((x, s), {"channel_shared": "no"}, TypeError, "channel_shared"),
    ]


def _l2_bench(rng, dtype, size):
    shape = {"small": (2, 8, 4, 4), "large": (16, 512, 38, 38)}[size]  # SSD conv4_3
    return Sample((randn(rng, shape, dtype), np.full(shape[1], 20.0, dtype)), {})


_NORM_EXTRA_TABLE = [
    OpInfo(
        name="local_response_norm",
        samples=_lrn_samples,
        ref=_lrn_ref,
        torch_ref=lambda t, x, **k: t.nn.functional.local_response_norm(x, **k),
        grad_args=(0,),
        errors=_lrn_errors,
        tol={np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)},
        bench=_lrn_bench,
        paths=_paths("local_response_norm"),
    ),
    OpInfo(
        name="l2_normalize",
        samples=_l2_samples,
        ref=_l2_ref,
        torch_ref=_l2_torch,
        grad_args=(0, 1),
        errors=_l2_errors,
        tol={np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)},
        bench=_l2_bench,
        paths=_paths("l2_normalize"),
    ),
]

TABLE = _NORM_EXTRA_TABLE + TABLE
