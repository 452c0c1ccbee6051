"""Op table: activations (docs/ops.md, "Activations and elementwise")."""
import math

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, away_from, randn

# Shapes every pointwise op is sampled at: scalar (0-d), empty, odd 1-D, 2-D, 4-D, and one above the
# parallel threshold of the transcendental class (2**15) so both kernels of each op are exercised;
# the cheap class's parallel kernel is reached by the 70000-element sample.
POINTWISE_SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4, 5), (33000,), (70001,)]


def _pointwise_samples(kinks=(), scale=3.0, kwargs_list=({},), shapes=POINTWISE_SHAPES):
    def samples(rng, dtype):
        out = []
        for kw in kwargs_list:
            for shape in shapes:
                x = away_from(randn(rng, shape, np.float64, scale), kinks, 1e-2).astype(dtype)
                out.append(Sample((x,), dict(kw), desc=str(shape)))
        return out

    return samples


def _pointwise_paths(name, kinks, scale, kwargs_list):
    """The parallel build (70001 elements: above both cost classes' thresholds), with each kwargs
    variant of the samples; the same sizes as the samples, so no kernel compiles for it alone."""
    def paths(rng, dtype):
        return [PathCase("parallel", s, expect={"backend": "parallel"})
                for s in _pointwise_samples(kinks, scale, kwargs_list, ((70001,),))(rng, dtype)]

    return paths


def _pointwise_errors(op_name, extra=()):
    def errors():
        x = np.ones((2, 3), np.float32)
        cases = [
            ErrorCase((np.ones(3, np.int64),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.ones(3, np.complex64),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.ones(3, np.float16),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.array(["a"], dtype=object),), {}, TypeError, "float32 or float64"),
            ErrorCase(([1.0, 2.0],), {}, TypeError, "numpy.ndarray"),
        ]
        cases.extend(ErrorCase((x,), kw, exc, m) for kw, exc, m in extra)
        return cases

    return errors


def _bench(rng, dtype, size):
    n = {"small": 100, "large": 1 << 24}[size]
    return Sample((randn(rng, (n,), dtype),))


def _erf(x):
    # float64 reference erf (math.erf is correctly rounded enough; vectorized over the array)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype) if x.size else x.copy()


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus_ref(x, beta=1.0, threshold=20.0):
    z = x * beta
    with np.errstate(over="ignore"):
        return np.where(z > threshold, x, np.log1p(np.exp(np.minimum(z, threshold))) / beta).astype(x.dtype)


def _entry(name, ref, torch_ref, kinks=(), scale=3.0, kwargs_list=({},), extra_errors=(), tol=None, torch_tol=None):
    info = OpInfo(
        name=name,
        samples=_pointwise_samples(kinks, scale, kwargs_list),
        ref=ref,
        torch_ref=torch_ref,
        grad_args=(0,),
        errors=_pointwise_errors(name, extra_errors),
        bench=_bench,
        paths=_pointwise_paths(name, kinks, scale, kwargs_list),
    )
    if tol:
        info.tol = tol
    if torch_tol:
        info.torch_tol = torch_tol
    return info


def _dt(x, v):
    return np.asarray(v, dtype=x.dtype)


TABLE = [
    _entry("relu", lambda x, inplace=False: np.maximum(x, _dt(x, 0)), lambda t, x, **k: t.nn.functional.relu(x), (0.0,)),
    _entry(
        "leaky_relu",
        lambda x, negative_slope=0.01, inplace=False: np.where(x > 0, x, x * _dt(x, negative_slope)),
        lambda t, x, **k: t.nn.functional.leaky_relu(x, **k),
        (0.0,),
        kwargs_list=({}, {"negative_slope": 0.2}, {"negative_slope": -1.5}),
        extra_errors=[({"negative_slope": "a"}, TypeError, "negative_slope")],
    ),
    _entry(
        "relu6",
        lambda x, inplace=False: np.clip(x, _dt(x, 0), _dt(x, 6)),
        lambda t, x, **k: t.nn.functional.relu6(x),
        (0.0, 6.0),
        scale=5.0,
    ),
    _entry(
        "elu",
        lambda x, alpha=1.0, inplace=False: np.where(x > 0, x, _dt(x, alpha) * np.expm1(np.minimum(x, 0))),
        lambda t, x, **k: t.nn.functional.elu(x, **k),
        (0.0,),
        kwargs_list=({}, {"alpha": 0.5}),
        extra_errors=[({"alpha": None}, TypeError, "alpha")],
    ),
    _entry("sigmoid", _sig, lambda t, x, **k: t.sigmoid(x), scale=5.0),
    _entry("tanh", np.tanh, lambda t, x, **k: t.tanh(x)),
    _entry(
        "gelu",
        lambda x, approximate="none": (
            0.5 * x * (1 + _erf(x / np.sqrt(2)))
            if approximate == "none"
            else 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
        ).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.gelu(x, **k),
        kwargs_list=({}, {"approximate": "tanh"}),
        extra_errors=[({"approximate": "erf"}, ValueError, "approximate")],
    ),
    _entry("silu", lambda x, inplace=False: x * _sig(x), lambda t, x, **k: t.nn.functional.silu(x)),
    _entry(
        "softplus",
        _softplus_ref,
        lambda t, x, **k: t.nn.functional.softplus(x, **k),
        kwargs_list=({}, {"beta": 2.0, "threshold": 3.0}, {"beta": 0.5}),
        extra_errors=[({"beta": 0.0}, ValueError, "beta")],
    ),
    _entry(
        "hardsigmoid",
        lambda x, inplace=False: np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.hardsigmoid(x),
        (-3.0, 3.0),
        scale=4.0,
        # ATen's hardsigmoid_backward multiplies by the float constant 1.0f / 6.0f in every dtype:
        # torch's float64 gradient is float32-precise (3e-8 relative); fastops' is g / 6 in float64
        # (tests/activation/test_activation.py::test_hardsigmoid_float64_gradient_is_exact)
        torch_tol={np.float64: (1e-7, 1e-9)},
    ),
    _entry(
        "hardswish",
        lambda x, inplace=False: (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.hardswish(x),
        (-3.0, 3.0),
        scale=4.0,
    ),
    _entry(
        "mish",
        lambda x, inplace=False: (x * np.tanh(np.logaddexp(0, x))).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.mish(x),
        scale=4.0,
    ),
]


# ---------------------------------------------------------------------------------------------
# prelu, rrelu, softmax, log_softmax


def _prelu_ref(x, weight):
    if weight.size == 1 or x.ndim < 2:
        a = weight.reshape(())
    else:
        a = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, a * x).astype(x.dtype)


_PRELU_SHAPES = [
    ((), (1,)),
    ((7,), (1,)),
    ((3, 5), (5,)),
    ((3, 5), (1,)),
    ((2, 3, 4, 5), (3,)),  # "columns" layout (rows of 20 < 32 elements)
    ((2, 4, 40), (4,)),  # "rows" layout
    ((2, 3, 8, 8), ()),  # 0-d weight
    ((0, 3), (3,)),
    ((2, 0), (1,)),
    ((4, 16, 40, 40), (16,)),  # above the parallel threshold, "rows"
    ((3000, 30), (30,)),  # above the parallel threshold, "columns"
]


def _prelu_samples(rng, dtype):
    out = []
    for xs, ws in _PRELU_SHAPES:
        x = np.asarray(away_from(randn(rng, xs, np.float64, 3.0), (0.0,), 1e-2), dtype=dtype)
        w = np.asarray(rng.uniform(-0.5, 1.5, ws), dtype=dtype)
        out.append(Sample((x, w), {}, desc=f"{xs} w{ws}"))
    return out


def _prelu_errors():
    x, w = np.ones((2, 3, 4), np.float32), np.ones(3, np.float32)
    return [
        ErrorCase((x.astype(np.int64), w), {}, TypeError, "float32 or float64"),
        ErrorCase((x, w.astype(np.int32)), {}, TypeError, "float32 or float64"),
        ErrorCase((x, w.astype(np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x.tolist(), w), {}, TypeError, "numpy.ndarray"),
        ErrorCase((x, np.ones(4, np.float32)), {}, ValueError, "weight"),
        ErrorCase((x, np.ones((1, 3), np.float32)), {}, ValueError, "weight"),
        ErrorCase((np.ones(3, np.float32), w), {}, ValueError, "weight"),
        ErrorCase((np.ones((), np.float32), w), {}, ValueError, "weight"),
    ]


def _prelu_bench(rng, dtype, size):
    shape = {"small": (2, 4, 8, 8), "large": (32, 64, 56, 56)}[size]
    return Sample((randn(rng, shape, dtype), np.asarray(rng.uniform(0, 0.5, shape[1]), dtype=dtype)))


# rrelu's training slopes, computed here independently of fastops._random (NumPy uint64 arithmetic
# wraps modulo 2**64): SplitMix64 output i of the state key(seed), top 24/53 bits as a float.
_SM_GAMMA, _SM_M1, _SM_M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _splitmix_mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_SM_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_SM_M2)
    return z ^ (z >> np.uint64(31))


def splitmix_uniform(seed, n, dtype):
    """The uniforms fastops' random ops draw for flat indices 0 .. n-1 (NumPy reference)."""
    state = np.array([((int(seed) & (2**64 - 1)) + _SM_GAMMA) & (2**64 - 1)], np.uint64)
    key = _splitmix_mix(state)
    z = _splitmix_mix(key + np.arange(n, dtype=np.uint64) * np.uint64(_SM_GAMMA))
    if np.dtype(dtype) == np.float32:
        return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def rrelu_slopes(seed, shape, dtype, lower=1.0 / 8, upper=1.0 / 3):
    """The slopes ``rrelu(..., training=True, seed=seed)`` uses, element by element."""
    dt = np.dtype(dtype).type
    u = splitmix_uniform(seed, int(np.prod(shape)), dt).reshape(shape)
    return np.asarray(dt(lower) + dt(upper - lower) * u, dtype=dt)


def _rrelu_ref(x, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, seed=None):
    if training:
        a = rrelu_slopes(seed, x.shape, x.dtype, lower, upper)
    else:
        a = _dt(x, (lower + upper) / 2)
    return np.where(x > 0, x, x * a).astype(x.dtype)


def _rrelu_torch(t, x, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, seed=None):
    if not training:
        return t.nn.functional.rrelu(x, lower, upper, training=False)
    # PyTorch draws its own slopes; given fastops' slopes, the op is where(x > 0, x, a * x)
    np_dtype = np.float32 if x.dtype == t.float32 else np.float64
    a = t.from_numpy(rrelu_slopes(seed, tuple(x.shape), np_dtype, lower, upper))
    return t.where(x > 0, x, x * a)


def _softmax_ref(x, dim=None, _stacklevel=3, dtype=None, log=False):
    if dtype is not None:
        x = x.astype(dtype)
    a = x.reshape(1) if x.ndim == 0 else x
    if a.size == 0:
        return np.empty(x.shape, x.dtype)
    z = a - a.max(axis=dim, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=dim, keepdims=True)
    out = z - np.log(s) if log else e / s
    return out.reshape(x.shape).astype(x.dtype)


_SOFTMAX_CASES = [
    ((), 0),
    ((), -1),
    ((0,), 0),
    ((0, 5), 1),
    ((3, 0), 1),
    ((3, 0), 0),
    ((7,), 0),
    ((3, 5), 0),
    ((3, 5), 1),
    ((5, 70), -1),  # row of 4 vectors + 1 vector + a scalar tail (float32 lanes), 8 + 6 (float64)
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
    ((2, 3, 4, 5), 1),
    ((2, 3, 4, 5), 2),
    ((2, 3, 4, 5), 3),
    ((2, 3, 1, 1), 1),  # trailing size-1 dims: contiguous rows
    ((64, 200), -1),  # above the parallel threshold: contiguous rows
    ((20, 300, 3), 1),  # above the parallel threshold: strided
]


def _softmax_samples(rng, dtype):
    return [
        Sample((np.asarray(randn(rng, shape, dtype, 3.0)),), {"dim": d}, desc=f"{shape} dim={d}") for shape, d in _SOFTMAX_CASES
    ]


def _softmax_errors(name):
    def errors():
        x = np.ones((2, 3), np.float32)
        return [
            ErrorCase((x.astype(np.int64),), {"dim": 0}, TypeError, "float32 or float64"),
            ErrorCase((x.astype(np.float16),), {"dim": 0}, TypeError, "float32 or float64"),
            ErrorCase((x.tolist(),), {"dim": 0}, TypeError, "numpy.ndarray"),
            ErrorCase((x,), {}, ValueError, "dim"),
            ErrorCase((x,), {"dim": 2}, ValueError, "dim"),
            ErrorCase((x,), {"dim": -3}, ValueError, "dim"),
            ErrorCase((x,), {"dim": 1.0}, TypeError, "dim"),
            ErrorCase((x,), {"dim": 1, "dtype": np.int32}, TypeError, "dtype"),
            ErrorCase((x,), {"dim": 1, "dtype": "float16"}, TypeError, "dtype"),
        ]

    return errors


def _softmax_bench(rng, dtype, size):
    shape = {"small": (16, 100), "large": (4096, 1000)}[size]
    return Sample((randn(rng, shape, dtype, 3.0),), {"dim": -1})


def _sfx(dtype):
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


# Dispatch paths (tests/test_paths.py), each above the parallel threshold at 2 threads.
# prelu: (path, input shape, weight size); the first word of the path is the layout
# (fastops/activation/prelu.py: rows shorter than a piece are grouped per task, longer ones split).
_PRELU_PATHS = [
    ("rows_grouped", (8, 16, 33, 31), 16),
    ("columns", (20000, 12), 12),
    ("rows_one_weight", (300_001,), 1),  # one row (one slope), in pieces
    ("rows_in_pieces", (3, 5, 70_000), 5),
]


def _prelu_paths(rng, dtype):
    out = []
    for path, xs, ws in _PRELU_PATHS:
        x = np.asarray(away_from(randn(rng, xs, np.float64), (0.0,), 1e-2), dtype=dtype)
        w = np.asarray(rng.uniform(0, 0.5, ws), dtype=dtype)
        layout = path.split("_")[0]
        out.append(PathCase(path, Sample((x, w), {}, desc=f"{xs} w({ws},)"),
                            expect={"layout": layout, "kernel": f"prelu_{layout}_fwd_{_sfx(dtype)}_parallel",
                                    "backend": "parallel"},
                            explain={"weight_shape": (ws,)}))
    return out


def _rrelu_paths(rng, dtype):
    x = randn(rng, (300_001,), dtype)
    x[np.abs(x) < 1e-3] = dtype(0.5)  # away from the kink at 0
    return [PathCase("training", Sample((x,), {"training": True, "seed": 3}, desc="(300001,) training"),
                     expect={"kernel": f"rrelu_train_fwd_{_sfx(dtype)}_parallel", "backend": "parallel"},
                     explain={"training": True})]


# softmax / log_softmax: (path, shape, dim); the first word of the path is the layout. "strided"
# reduces along a non-last dim, the columns of a task whole (long columns) or split so that each
# thread has tasks (fastops/activation/softmax.py, strided_width).
_SOFTMAX_PATHS = [
    ("last", (300, 1000), -1),
    ("strided_whole_columns", (1, 2000, 300), 1),
    ("strided_split", (4, 37, 500), 1),
    ("strided_split_dim0", (600, 70), 0),
]


def _softmax_paths(name):
    def paths(rng, dtype):
        out = []
        for path, shape, dim in _SOFTMAX_PATHS:
            layout = path.split("_")[0]
            out.append(PathCase(path, Sample((randn(rng, shape, dtype, 3.0),), {"dim": dim}, desc=f"{shape} dim={dim}"),
                                expect={"layout": layout, "kernel": f"{name}_{layout}_fwd_{_sfx(dtype)}_parallel",
                                        "backend": "parallel"},
                                explain={"dim": dim}))
        return out

    return paths


TABLE += [
    OpInfo(
        name="prelu",
        samples=_prelu_samples,
        ref=_prelu_ref,
        torch_ref=lambda t, x, w, **k: t.nn.functional.prelu(x, w),
        grad_args=(0, 1),
        errors=_prelu_errors,
        bench=_prelu_bench,
        paths=_prelu_paths,
        nondiff_kinks=True,
    ),
    OpInfo(
        name="rrelu",
        samples=_pointwise_samples(
            (0.0,),
            3.0,
            (
                {},
                {"lower": 0.05, "upper": 0.5},
                {"training": True, "seed": 7},
                {"training": True, "seed": 2**40 + 3, "lower": 0.2, "upper": 0.4},
            ),
        ),
        ref=_rrelu_ref,
        torch_ref=_rrelu_torch,
        grad_args=(0,),
        errors=_pointwise_errors(
            "rrelu",
            [
                ({"lower": 0.5, "upper": 0.1}, ValueError, "lower"),
                ({"lower": "a"}, TypeError, "lower"),
                ({"training": True}, ValueError, "seed"),
                ({"training": True, "seed": 1.5}, TypeError, "seed"),
                ({"training": True, "seed": "1"}, TypeError, "seed"),
                ({"training": True, "seed": 2**64}, ValueError, "seed"),
                ({"training": True, "seed": -(2**63) - 1}, ValueError, "seed"),
                ({"training": "yes", "seed": 1}, TypeError, "training"),
            ],
        ),
        bench=_bench,
        paths=_rrelu_paths,
        nondiff_kinks=True,
    ),
    OpInfo(
        name="softmax",
        samples=_softmax_samples,
        ref=_softmax_ref,
        torch_ref=lambda t, x, **k: t.nn.functional.softmax(x, **k),
        grad_args=(0,),
        errors=_softmax_errors("softmax"),
        bench=_softmax_bench,
        paths=_softmax_paths("softmax"),
    ),
    OpInfo(
        name="log_softmax",
        samples=_softmax_samples,
        ref=lambda x, **k: _softmax_ref(x, log=True, **k),
        torch_ref=lambda t, x, **k: t.nn.functional.log_softmax(x, **k),
        grad_args=(0,),
        errors=_softmax_errors("log_softmax"),
        bench=_softmax_bench,
        paths=_softmax_paths("log_softmax"),
    ),
]
