"""Op table: tensor arithmetic (docs/ops.md, "Tensor arithmetic")."""
import functools
import operator

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, away_from
from . import randn as _randn_scalar_or_array


def randn(rng, shape, dtype, scale=1.0):
    """Like ``fastops.testing.randn``, but shape ``()`` gives a 0-d array (not a NumPy scalar: the
    arithmetic ops take NumPy scalars as scalars)."""
    return np.asarray(_randn_scalar_or_array(rng, shape, dtype, scale))

SCALAR = "scalar"  # a Python float operand
NP_SCALAR = "np_scalar"  # a NumPy float64 scalar operand (takes the array's dtype)

# (input, other) shapes of the binary ops: same shape, the broadcasts of the contract, scalars,
# 0-d, empty, a size-1 array against a full one, a pattern needing 5 dims after merging (leading
# dims looped in Python), and samples above the parallel threshold (2**16 output elements) for
# each read pattern, including rows longer than a kernel chunk.
BINARY_SHAPES = [
    ((3, 5), (3, 5)),
    ((2, 3, 4), (3, 1)),
    ((4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1)),
    ((2, 3, 4), SCALAR),
    (SCALAR, (2, 3, 4)),
    ((5,), NP_SCALAR),
    ((), (3,)),
    ((), ()),
    ((), SCALAR),
    ((1,), (2, 3)),
    ((3,), (1, 3)),
    ((0, 3), (3,)),
    ((0,), (0,)),
    ((2, 0), (2, 1)),
    ((2, 1, 3, 1, 2), (1, 2, 1, 3, 1)),
    ((70001,), (70001,)),
    ((300, 300), (300, 1)),
    ((257, 300), (300,)),
    ((2, 40000), (2, 1)),
    ((70001,), SCALAR),
    ((1,), (200, 400)),
]
LARGE = 1 << 16


def _operand(rng, spec, dtype, nonzero):
    if spec == SCALAR:
        return 1.75 if not nonzero else -1.25
    if spec == NP_SCALAR:
        return np.float64(0.625)
    x = randn(rng, spec, np.float64, 2.0)
    if nonzero:
        x = away_from(x, (0.0,), 0.25)
    return np.asarray(x.astype(dtype))


def _rounded_pair(rng, sa, sb, dtype):
    """Operands for div with a rounding mode: quotients 0.2 to 0.8 away from any integer (so that
    float32 and float64, and finite differences, round them alike). None if the pair cannot be
    made so (the dividend broadcast along the output)."""
    sa_t = () if sa in (SCALAR, NP_SCALAR) else sa
    sb_t = () if sb in (SCALAR, NP_SCALAR) else sb
    out = np.broadcast_shapes(sa_t, sb_t)
    q = rng.integers(-4, 5, out) + rng.uniform(0.2, 0.8, out)
    if sa == SCALAR and sb_t == out:
        return 1.75, np.asarray((1.75 / q).astype(dtype))
    if sa_t != out or sa == NP_SCALAR:
        return None
    b = _operand(rng, sb, dtype, True)
    return np.asarray((q * np.asarray(b, np.float64)).astype(dtype)), b


def _binary_samples(kwargs_list, nonzero_b=False, large_kwargs=True):
    def samples(rng, dtype):
        out = []
        for kw in kwargs_list:
            for sa, sb in BINARY_SHAPES:
                big = any(isinstance(s, tuple) and int(np.prod(s)) >= LARGE for s in (sa, sb))
                if big and kw and not large_kwargs:
                    continue
                if "rounding_mode" in kw:
                    pair = _rounded_pair(rng, sa, sb, dtype)
                    if pair is None:
                        continue
                    a, b = pair
                else:
                    a = _operand(rng, sa, dtype, False)
                    b = _operand(rng, sb, dtype, nonzero_b)
                out.append(Sample((a, b), dict(kw), desc=f"{sa}+{sb}"))
        return out

    return samples


def _binary_errors(name, extra=()):
    def errors():
        f32 = np.ones((2, 3), np.float32)
        cases = [
            ErrorCase((f32, np.ones(4, np.float32)), {}, ValueError, r"\(2, 3\).*\(4,\).*broadcast"),
            ErrorCase((np.ones(3, np.int64), f32), {}, TypeError, "float32 or float64"),
            ErrorCase((f32, np.ones(3, np.int32)), {}, TypeError, "float32 or float64"),
            ErrorCase((f32, np.ones((2, 3), np.float64)), {}, TypeError, "mixed"),
            ErrorCase((1.0, 2.0), {}, TypeError, "at least one"),
            ErrorCase(([1.0, 2.0], f32), {}, TypeError, "ndarray or a real scalar"),
            ErrorCase((f32, True), {}, TypeError, "real scalar"),
            ErrorCase((f32, 1j), {}, TypeError, "real scalar"),
        ]
        cases.extend(ErrorCase((f32, f32), kw, exc, m) for kw, exc, m in extra)
        return cases

    return errors


def _binary_bench(rng, dtype, size):
    # x (rows, cols) + a bias broadcast along rows: 100 or 16M elements
    rows, cols = {"small": (10, 10), "large": (4096, 4096)}[size]
    return Sample((randn(rng, (rows, cols), dtype), away_from(randn(rng, (cols,), dtype), (0.0,), 0.25)))


def _arr(v):
    return np.asarray(v)


def _add_ref(a, b, alpha=1):
    return _arr(a + b if alpha == 1 else a + alpha * b)


def _sub_ref(a, b, alpha=1):
    return _arr(a - b if alpha == 1 else a - alpha * b)


def _div_ref(a, b, rounding_mode=None):
    if rounding_mode is None:
        return _arr(a / b)
    if rounding_mode == "trunc":
        return _arr(np.trunc(a / b))
    return _arr(np.floor_divide(a, b))


def _binary_entry(name, ref, torch_ref, kwargs_list=({},), nonzero_b=False, large_kwargs=True, extra_errors=(),
                  paths=None):
    return OpInfo(
        name=name,
        samples=_binary_samples(kwargs_list, nonzero_b, large_kwargs),
        ref=ref,
        torch_ref=torch_ref,
        grad_args=(0, 1),
        errors=_binary_errors(name, extra_errors),
        bench=_binary_bench,
        paths=paths,
    )


# ---------------------------------------------------------------------------------------------
# bias_add


def _bias_add_samples(rng, dtype):
    shapes = [((2, 3), 3), ((1, 3), 3), ((2, 3, 4, 5), 3), ((1, 4, 3), 4), ((2, 3, 7), 3), ((0, 3, 2), 3),
              ((2, 0, 4), 0), ((2, 3, 0), 3), ((8, 16, 24, 24), 16), ((700, 128), 128)]
    return [
        Sample((randn(rng, xs, dtype), randn(rng, (c,), dtype)), desc=str(xs))
        for xs, c in shapes
    ]


def _bias_view(x, b):
    return b.reshape((1, -1) + (1,) * (x.ndim - 2))


def _bias_add_errors():
    x = np.ones((2, 3, 4), np.float32)
    return [
        ErrorCase((x, np.ones(4, np.float32)), {}, ValueError, r"\(3,\).*\(4,\)"),
        ErrorCase((x, np.ones((1, 3), np.float32)), {}, ValueError, "bias"),
        ErrorCase((np.ones(3, np.float32), np.ones(3, np.float32)), {}, ValueError, "at least 2 dims"),
        ErrorCase((x, np.ones(3, np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x.astype(np.int64), np.ones(3, np.int64)), {}, TypeError, "float32 or float64"),
        ErrorCase((x, None), {}, TypeError, "bias"),
    ]


def _bias_add_bench(rng, dtype, size):
    shape = {"small": (1, 4, 5, 5), "large": (16, 64, 128, 128)}[size]
    return Sample((randn(rng, shape, dtype), randn(rng, (shape[1],), dtype)))


# ---------------------------------------------------------------------------------------------
# matmul


MATMUL_SHAPES = [
    ((3,), (3,)),
    ((4, 3), (3,)),
    ((3,), (3, 5)),
    ((4, 3), (3, 5)),
    ((2, 4, 3), (3, 5)),
    ((2, 4, 3), (2, 3, 5)),
    ((2, 1, 4, 3), (3, 3, 5)),
    ((4, 3), (2, 3, 5)),
    ((3,), (2, 3, 5)),
    ((2, 4, 3), (3,)),
    ((1, 4, 3), (2, 3, 2)),
    ((8, 64), (64, 8)),
    ((0, 3), (3, 4)),
    ((4, 0), (0, 5)),
    ((2, 0, 3), (3, 4)),
]


def _matmul_samples(rng, dtype):
    return [Sample((randn(rng, sa, dtype), randn(rng, sb, dtype)), desc=f"{sa}@{sb}") for sa, sb in MATMUL_SHAPES]


def _matmul_errors():
    f = np.float32
    return [
        ErrorCase((np.ones((2, 3), f), np.ones((4, 5), f)), {}, ValueError, r"inner.*\(2, 3\).*\(4, 5\)"),
        ErrorCase((np.ones(3, f), np.ones(4, f)), {}, ValueError, "inner"),
        ErrorCase((np.ones((2, 3, 4), f), np.ones((3, 4, 5), f)), {}, ValueError, "batch"),
        ErrorCase((np.ones((), f), np.ones(3, f)), {}, ValueError, "at least 1 dim"),
        ErrorCase((np.ones((2, 3), f), np.ones((3, 2))), {}, TypeError, "mixed"),
        ErrorCase((np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)), {}, TypeError, "float32 or float64"),
        ErrorCase(([[1.0]], np.ones((1, 1), f)), {}, TypeError, "ndarray"),
    ]


def _matmul_bench(rng, dtype, size):
    n = {"small": 10, "large": 2048}[size]
    return Sample((randn(rng, (n, n), dtype), randn(rng, (n, n), dtype)))


# ---------------------------------------------------------------------------------------------
# axpy


AXPY_SHAPES = [
    ((2, 3), (2, 3, 4, 5)),  # Caffe: a (N, C), x (N, C, H, W)
    (SCALAR, (3, 4)),
    ((), (2, 3)),
    ((2, 3, 4, 5), (2, 3, 4, 5)),
    ((2, 1), (2, 3, 4)),
    ((1, 3), (2, 3, 4)),
    ((3,), (3, 4)),
    ((0,), (0, 3)),
    ((2,), (2, 0)),
    (SCALAR, ()),
    ((2, 1, 2, 1, 2), (2, 3, 2, 3, 2)),  # 5 dims after merging: leading dims looped in Python
    ((4, 16), (4, 16, 32, 40)),
    ((2,), (2, 40000)),
    (SCALAR, (70001,)),
]


def _axpy_samples(rng, dtype):
    out = []
    for sa, sx in AXPY_SHAPES:
        a = 0.75 if sa == SCALAR else randn(rng, sa, dtype)
        out.append(Sample((a, randn(rng, sx, dtype), randn(rng, sx, dtype)), desc=f"a{sa} x{sx}"))
    return out


def _pad_a(a, x):
    if not isinstance(a, np.ndarray):
        return a
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


def _axpy_ref(a, x, y):
    return _arr(_pad_a(a, x) * x + y)


def _axpy_torch(t, a, x, y):
    if isinstance(a, t.Tensor):
        a = a.reshape(tuple(a.shape) + (1,) * (x.dim() - a.dim()))
    return a * x + y


def _axpy_errors():
    f = np.float32
    x = np.ones((2, 3, 4), f)
    return [
        ErrorCase((np.ones(3, f), x, x), {}, ValueError, r"\(3,\).*\(2, 3, 4\)"),
        ErrorCase((np.ones((2, 3, 4, 5), f), x, x), {}, ValueError, "more dims"),
        ErrorCase((1.0, x, np.ones((2, 3), f)), {}, ValueError, "same shape"),
        ErrorCase((np.ones(2, np.float64), x, x), {}, TypeError, "mixed"),
        ErrorCase((1.0, x, x.astype(np.float64)), {}, TypeError, "mixed"),
        ErrorCase((1.0, x.astype(np.int32), x), {}, TypeError, "float32 or float64"),
        ErrorCase(([1.0], x, x), {}, TypeError, "ndarray or a real scalar"),
    ]


def _axpy_bench(rng, dtype, size):
    shape = {"small": (1, 4, 5, 5), "large": (16, 64, 128, 128)}[size]
    return Sample((randn(rng, shape[:2], dtype), randn(rng, shape, dtype), randn(rng, shape, dtype)))


# ---------------------------------------------------------------------------------------------
# eltwise (every sample has 3 inputs, so grad_args (0, 1, 2) covers them all; 2 and 4 inputs are
# in tests/arithmetic/test_arithmetic.py)


ELTWISE_CASES = [
    ((3, 4), {}),
    ((2, 3, 4, 5), {"op": "sum", "coeffs": [1.0, -2.0, 0.5]}),
    ((3, 4), {"op": "prod"}),
    ((2, 3, 4, 5), {"op": "max"}),
    ((), {"op": "prod"}),
    ((), {"op": "max"}),
    ((0, 3), {"op": "max"}),
    ((0, 3), {"op": "sum", "coeffs": (2, 3, 4)}),
    ((30000,), {}),
    ((30000,), {"op": "sum", "coeffs": [0.5, 1.0, -1.0]}),
    ((30000,), {"op": "prod"}),
    ((30000,), {"op": "max"}),
]


def _eltwise_samples(rng, dtype):
    return [
        Sample(tuple(randn(rng, shape, dtype) for _ in range(3)), dict(kw), desc=str(shape))
        for shape, kw in ELTWISE_CASES
    ]


def _eltwise_ref(*xs, op="sum", coeffs=None):
    if op == "sum":
        cs = coeffs if coeffs is not None else [1.0] * len(xs)
        return _arr(functools.reduce(operator.add, [c * x for c, x in zip(cs, xs)]))
    if op == "prod":
        return _arr(functools.reduce(operator.mul, xs))
    return _arr(functools.reduce(np.maximum, xs))


def _eltwise_torch(t, *xs, op="sum", coeffs=None):
    if op == "sum":
        cs = coeffs if coeffs is not None else [1.0] * len(xs)
        return functools.reduce(operator.add, [c * x for c, x in zip(cs, xs)])
    if op == "prod":
        return functools.reduce(operator.mul, xs)
    return t.stack(xs).amax(0)


def _eltwise_errors():
    f = np.float32
    x = np.ones((2, 3), f)
    return [
        ErrorCase((x, x), {"op": "prod", "coeffs": [1.0, 2.0]}, ValueError, "coeffs.*sum"),
        ErrorCase((x, np.ones((3, 2), f)), {}, ValueError, "same shape"),
        ErrorCase((x, x), {"op": "min"}, ValueError, "op"),
        ErrorCase((x, x), {"coeffs": [1.0]}, ValueError, "coeffs"),
        ErrorCase((x, x), {"coeffs": 2.0}, TypeError, "coeffs"),
        ErrorCase((), {}, ValueError, "at least one"),
        ErrorCase((x, x.astype(np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x.astype(np.int16), x), {}, TypeError, "float32 or float64"),
    ]


def _eltwise_bench(rng, dtype, size):
    # 3 inputs, like the samples (grad_args covers 3 positions)
    n = {"small": 100, "large": 1 << 24}[size]
    return Sample(tuple(randn(rng, (n,), dtype) for _ in range(3)))


# ---------------------------------------------------------------------------------------------
# dispatch paths (tests/test_paths.py), each above the parallel threshold at 2 threads


def _sfx(dtype):
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


def _binary_expect(fname, pattern, dtype):
    return {"pattern": pattern, "kernel": f"{fname}_{pattern}_{_sfx(dtype)}_parallel", "backend": "parallel"}


# add's backward sums grad_output to other's shape (fastops._reduce.sum_to_shape): (path, input
# shape, other shape), one per plan of the reduction. add.explain reports the forward only, so
# tests/arithmetic checks that each of these reaches a parallel reduction.
REDUCE_PATHS = [
    ("reduce_one_sum", (1 << 20,), ()),  # one sum: chunks combined in order
    ("reduce_columns", (2048, 512), (512,)),  # bias of a linear layer: column sums
    ("reduce_two_passes", (16, 64, 32, 32), (1, 64, 1, 1)),  # conv bias
    ("reduce_short_rows", (300000, 3), (3,)),  # short rows, folded lanes
    ("reduce_long_rows", (3, 200000), (3, 1)),  # long row sums
    ("reduce_tiled_columns", (8, 1 << 17), (1 << 17,)),  # few long rows, tiled columns
]
# the broadcast ops' paths: x of this shape and a per-channel operand (3, 1, 1) (or (3,) for
# bias_add, (64, 3) for axpy)
_PATH_SHAPE = (64, 3, 40, 40)


def _channel_path(fname, nonzero=False, kwargs=None):
    def paths(rng, dtype):
        x, b = randn(rng, _PATH_SHAPE, dtype), randn(rng, (3, 1, 1), dtype)
        if nonzero:
            b = np.asarray(away_from(b + 3, (0.0,), 0.25), dtype=dtype)
        return [PathCase("strided", Sample((x, b), dict(kwargs or {}), desc=f"{_PATH_SHAPE}+(3, 1, 1)"),
                         expect=_binary_expect(fname, "strided", dtype), explain={"other": (3, 1, 1)})]

    return paths


def _add_paths(rng, dtype):
    out = _channel_path("add", kwargs={"alpha": 0.3})(rng, dtype)
    for path, xs, ts in REDUCE_PATHS:
        pattern = "scalar_b" if ts == () else "strided"
        out.append(PathCase(path, Sample((randn(rng, xs, dtype), randn(rng, ts, dtype)), desc=f"{xs}+{ts}"),
                            expect=_binary_expect("add", pattern, dtype), explain={"other": ts}))
    return out


def _bias_add_paths(rng, dtype):
    s = Sample((randn(rng, _PATH_SHAPE, dtype), randn(rng, (3,), dtype)), desc=str(_PATH_SHAPE))
    return [PathCase("strided", s, expect=_binary_expect("add", "strided", dtype))]


def _axpy_paths(rng, dtype):
    a, x, y = randn(rng, _PATH_SHAPE[:2], dtype), randn(rng, _PATH_SHAPE, dtype), randn(rng, _PATH_SHAPE, dtype)
    return [PathCase("value_per_row", Sample((a, x, y), desc=f"a{_PATH_SHAPE[:2]} x{_PATH_SHAPE}"),
                     expect={"kernel": f"axpy_{_sfx(dtype)}_parallel", "backend": "parallel", "inner": "a value per row"},
                     explain={"shapes": [_PATH_SHAPE[:2], _PATH_SHAPE]})]


def _matmul_paths(rng, dtype):
    """The GEMM engine's parallel build: a batched product (K across two K chunks of 256, edge
    tiles in M and N), and a 2-D one broadcast against a batch of right operands."""
    a, b = randn(rng, (4, 37, 300), dtype, 0.1), randn(rng, (4, 300, 70), dtype, 0.1)
    c, d = randn(rng, (90, 64), dtype), randn(rng, (3, 64, 75), dtype)
    return [PathCase("gemm batched", Sample((a, b), desc="(4, 37, 300) @ (4, 300, 70)"),
                     expect={"backend": "parallel"}, explain={"other": b.shape}),
            PathCase("gemm broadcast", Sample((c, d), desc="(90, 64) @ (3, 64, 75)"),
                     expect={"backend": "parallel"}, explain={"other": d.shape})]


# sum / mean: (shape, dim, keepdim) of the samples: every dim, one, several (adjacent or not),
# negative, keepdim, size-1 and empty dims, a 0-d input, dim=() (every dim, as torch's dim=[])
_REDUCE_CASES = [
    ((3, 4, 5), None, False), ((3, 4, 5), 1, False), ((3, 4, 5), (0, 2), True), ((3, 4, 5), -1, True),
    ((3, 4, 5), (2, 0), False), ((7,), 0, False), ((2, 1, 3), 1, False), ((), None, False),
    ((2, 3), (), False), ((0, 3), 0, False), ((0, 3), 1, True), ((2, 3, 4, 5), (1, 3), False),
]


def _reduce_samples(rng, dtype):
    return [Sample((randn(rng, shape, dtype),), {"dim": dim, "keepdim": keep}, desc=f"dim={dim}")
            for shape, dim, keep in _REDUCE_CASES]


def _np_axis(dim):
    return None if dim is None or dim == () else dim


def _reduce_ref(fn):
    def ref(x, dim=None, keepdim=False):
        import warnings

        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "Mean of empty slice"
            return _arr(fn(x, axis=_np_axis(dim), keepdims=keepdim))
    return ref


def _reduce_torch(name):
    def ref(t, x, dim=None, keepdim=False):
        if dim is None or dim == ():
            r = getattr(t, name)(x)
            return r.reshape((1,) * x.dim()) if keepdim else r
        return getattr(t, name)(x, dim=dim, keepdim=keepdim)
    return ref


def _reduce_errors(name):
    def errors():
        x = np.ones((2, 3), np.float32)
        return [ErrorCase((x,), {"dim": 2}, ValueError, f"{name}: argument 'dim' 2 is out of range"),
                ErrorCase((x,), {"dim": -3}, ValueError, "out of range"),
                ErrorCase((x,), {"dim": (0, -2)}, ValueError, "appears multiple times"),
                ErrorCase((x,), {"dim": 1.0}, TypeError, f"{name}: argument 'dim'"),
                ErrorCase((x,), {"keepdim": 1}, TypeError, f"{name}: argument 'keepdim'"),
                ErrorCase((np.ones((2, 3), np.int64),), {}, TypeError, f"{name}")]
    return errors


def _reduce_paths(rng, dtype):
    """The parallel kernels of ``_reduce``: rows folded into lanes (the last dim, rows shorter
    than the lanes summed across rows), long columns (the first dim) and two passes (dims 0 and 2)."""
    a, b = randn(rng, (300, 1000), dtype), randn(rng, (48, 40, 50), dtype)
    return [PathCase("last dim", Sample((a,), {"dim": 1}, desc="(300, 1000) dim 1"), expect={"backend": "parallel"},
                     explain={"dim": 1}),
            PathCase("first dim", Sample((a,), {"dim": 0}, desc="(300, 1000) dim 0"), expect={"backend": "parallel"},
                     explain={"dim": 0}),
            PathCase("every dim", Sample((a,), {}, desc="(300, 1000)"), expect={"backend": "parallel"}),
            PathCase("two passes", Sample((b,), {"dim": (0, 2)}, desc="(48, 40, 50) dims (0, 2)"),
                     expect={"backend": "parallel"}, explain={"dim": (0, 2)})]


def _reduce_bench(rng, dtype, size):
    shape = (10, 10) if size == "small" else (256, 4096)
    return Sample((randn(rng, shape, dtype),), {"dim": 1}, desc="dim=1")


def _reduce_info(name, fn):
    return OpInfo(
        name=name,
        samples=_reduce_samples,
        ref=_reduce_ref(fn),
        torch_ref=_reduce_torch(name),
        errors=_reduce_errors(name),
        # float32: a sum of up to 1000 terms rounds at ~sqrt(n) ulp of its terms
        tol={np.float32: (3e-5, 3e-5), np.float64: (1e-10, 1e-12)},
        bench=_reduce_bench,
        paths=_reduce_paths,
    )


def _no_ties(xs, h=1e-2):
    """Inputs of ``max`` no two of which are closer than h / 3 anywhere (input k on the grid
    h * (integer + k / 3)), so that the finite differences never step over a kink."""
    return tuple(np.asarray((np.round(x.astype(np.float64) / h) + k / 3) * h, x.dtype) for k, x in enumerate(xs))


def _eltwise_paths(rng, dtype):
    out = []
    for op in ("prod", "max"):
        xs = tuple(randn(rng, _PATH_SHAPE, dtype) for _ in range(3))  # 3 inputs, like the samples (grad_args)
        out.append(PathCase(op, Sample(_no_ties(xs) if op == "max" else xs, {"op": op}, desc=str(_PATH_SHAPE)),
                            expect={"kernel": f"eltwise_{op}_{_sfx(dtype)}_parallel", "backend": "parallel"},
                            explain={"op": op, "n_inputs": 3}))
    return out


# ---------------------------------------------------------------------------------------------

TABLE = [
    _binary_entry(
        "add",
        _add_ref,
        lambda t, a, b, **k: t.add(a, b, **k),
        kwargs_list=({}, {"alpha": -1.5}),
        extra_errors=[({"alpha": "a"}, TypeError, "alpha")],
        paths=_add_paths,
    ),
    _binary_entry(
        "sub",
        _sub_ref,
        lambda t, a, b, **k: t.sub(a, b, **k),
        kwargs_list=({}, {"alpha": 2.5}),
        extra_errors=[({"alpha": None}, TypeError, "alpha")],
        paths=_channel_path("add", kwargs={"alpha": 2.5}),  # sub runs add's kernels with -alpha
    ),
    _binary_entry("mul", lambda a, b: _arr(a * b), lambda t, a, b, **k: t.mul(a, b), paths=_channel_path("mul")),
    _binary_entry(
        "div",
        _div_ref,
        lambda t, a, b, **k: t.div(a, b, **k),
        kwargs_list=({}, {"rounding_mode": "trunc"}, {"rounding_mode": "floor"}),
        nonzero_b=True,
        large_kwargs=False,  # float32 and float64 quotients may round to different sides of an integer
        extra_errors=[({"rounding_mode": "round"}, ValueError, "rounding_mode")],
        paths=_channel_path("div", nonzero=True),
    ),
    OpInfo(
        name="bias_add",
        samples=_bias_add_samples,
        ref=lambda x, b: x + _bias_view(x, b),
        torch_ref=lambda t, x, b: x + _bias_view(x, b),
        grad_args=(0, 1),
        errors=_bias_add_errors,
        bench=_bias_add_bench,
        paths=_bias_add_paths,
    ),
    OpInfo(
        name="matmul",
        samples=_matmul_samples,
        ref=lambda a, b: _arr(np.matmul(a, b)),
        torch_ref=lambda t, a, b: t.matmul(a, b),
        grad_args=(0, 1),
        errors=_matmul_errors,
        # float32: a K-term dot product (K <= 64 here) is off by ~sqrt(K) ulp of its terms
        tol={np.float32: (2e-5, 1e-5), np.float64: (1e-10, 1e-12)},
        bench=_matmul_bench,
        paths=_matmul_paths,
    ),
    OpInfo(
        name="axpy",
        samples=_axpy_samples,
        ref=_axpy_ref,
        torch_ref=_axpy_torch,
        grad_args=(0, 1, 2),
        errors=_axpy_errors,
        bench=_axpy_bench,
        paths=_axpy_paths,
    ),
    _reduce_info("sum", np.sum),
    _reduce_info("mean", np.mean),
    OpInfo(
        name="eltwise",
        samples=_eltwise_samples,
        ref=_eltwise_ref,
        torch_ref=_eltwise_torch,
        grad_args=(0, 1, 2),
        errors=_eltwise_errors,
        bench=_eltwise_bench,
        paths=_eltwise_paths,
    ),
]
