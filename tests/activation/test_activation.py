"""prelu, rrelu, softmax, log_softmax beyond the table-driven tests: the counter-based RNG,
rrelu's training mode, NaN/Inf semantics, dispatch. Each op's parallel paths against the reference
and bitwise across thread counts: the table's ``paths`` (tests/test_paths.py)."""
import math

import numba
import numpy as np
import pytest

import fastops
from fastops import _random
from fastops import _simd as lanes
from fastops.activation import prelu as prelu_mod
from fastops.activation import softmax as softmax_mod
from fastops.testing.activation import rrelu_slopes, splitmix_uniform

from ..conftest import requires_torch, torch

DTYPES = [np.float32, np.float64]


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


# ------------------------------------------------------------------ counter-based RNG


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 5, -1])
def test_uniform_matches_numpy_reference(seed, dtype):
    n = 10_007
    u = _random.uniform(seed, n, dtype)
    assert u.dtype == dtype
    assert np.array_equal(u, splitmix_uniform(seed, n, dtype))
    assert np.array_equal(_random.uniform(seed, 100, dtype, offset=500), u[500:600])


def test_negative_seed_is_seed_modulo_2_64():
    assert np.array_equal(_random.uniform(-1, 50), _random.uniform(2**64 - 1, 50))


def test_float32_uniform_is_float64_truncated_to_24_bits():
    u32, u64 = _random.uniform(99, 5000, np.float32), _random.uniform(99, 5000, np.float64)
    assert np.array_equal(u32.astype(np.float64), np.floor(u64 * 2**24) / 2**24)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
def test_uniform_statistics(seed, dtype):
    """Mean, variance, 1024-bin chi-square, lag-1 correlation and correlation with the next seed,
    each within 6 standard errors of its value for independent uniforms (a false alarm is a ~1e-9
    event; a broken generator, e.g. a constant low bit or a shifted copy, fails by far more)."""
    n = 1 << 22
    u = _random.uniform(seed, n, dtype).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    z = 6.0
    assert abs(u.mean() - 0.5) < z * math.sqrt(1 / 12 / n)
    # variance: sd of the sample variance of U(0,1) is sqrt((mu4 - sigma^4) / n), mu4 = 1/80
    assert abs(u.var() - 1 / 12) < z * math.sqrt((1 / 80 - 1 / 144) / n)
    bins = 1024
    counts = np.bincount((u * bins).astype(np.int64), minlength=bins)
    expect = n / bins
    chi2 = float(((counts - expect) ** 2 / expect).sum())
    dof = bins - 1
    assert abs(chi2 - dof) < z * math.sqrt(2 * dof), chi2
    c = u - 0.5
    lag1 = float(np.dot(c[:-1], c[1:]) / np.dot(c, c))
    assert abs(lag1) < z / math.sqrt(n)
    v = _random.uniform(seed + 1, n, dtype).astype(np.float64) - 0.5
    cross = float(np.dot(c, v) / math.sqrt(np.dot(c, c) * np.dot(v, v)))
    assert abs(cross) < z / math.sqrt(n)


def test_uniform_low_bits_are_uniform():
    # the lowest 8 of the 53 bits of the float64 uniform: chi-square over 256 values
    n = 1 << 20
    u = _random.uniform(7, n, np.float64)
    low = (u * 2.0**53).astype(np.int64) & 255
    counts = np.bincount(low, minlength=256)
    chi2 = float(((counts - n / 256) ** 2 / (n / 256)).sum())
    assert abs(chi2 - 255) < 6 * math.sqrt(2 * 255)


@pytest.mark.parametrize(
    "seed,exc", [(1.0, TypeError), ("1", TypeError), (True, TypeError), (None, TypeError), (2**64, ValueError), (-(2**63) - 1, ValueError)]
)
def test_seed_validation(seed, exc):
    with pytest.raises(exc, match="seed"):
        _random.key("rrelu", seed)


def test_seed_accepts_numpy_integers():
    assert _random.key("x", np.int64(5)) == _random.key("x", 5) == _random.key("x", np.uint64(5))


# ------------------------------------------------------------------ rrelu


def _neg_pos(rng, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    x[np.abs(x) < 1e-3] = dtype(0.5)
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_rrelu_training_slopes_in_range_and_from_the_seed(rng, dtype):
    x = _neg_pos(rng, 100_000, dtype)
    lower, upper = 0.1, 0.3
    y = fastops.rrelu(x, lower, upper, training=True, seed=11)
    pos = x > 0
    assert np.array_equal(y[pos], x[pos])
    a = y[~pos] / x[~pos]
    tol = 4 * np.finfo(dtype).eps
    assert a.min() >= lower - tol and a.max() <= upper + tol
    assert abs(a.mean() - 0.2) < 0.005  # the mean of U(0.1, 0.3)
    # exactly the slopes of the NumPy reference of the generator (up to the last rounding)
    ref = rrelu_slopes(11, x.shape, dtype, lower, upper)
    np.testing.assert_allclose(y[~pos], x[~pos] * ref[~pos], rtol=2 * np.finfo(dtype).eps, atol=0)


def test_rrelu_same_seed_same_output_different_seed_different(rng):
    x = _neg_pos(rng, 5000, np.float32)
    a = fastops.rrelu(x, training=True, seed=1)
    assert np.array_equal(a, fastops.rrelu(x, training=True, seed=1))
    b = fastops.rrelu(x, training=True, seed=2)
    neg = x < 0
    assert np.mean(a[neg] != b[neg]) > 0.99


def test_rrelu_mask_depends_on_flat_index_not_shape(rng):
    x = _neg_pos(rng, 600, np.float64)
    a = fastops.rrelu(x, training=True, seed=5)
    b = fastops.rrelu(x.reshape(20, 30), training=True, seed=5)
    assert np.array_equal(a, b.reshape(-1))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_rrelu_backward_consistent_with_forward(rng, dtype):
    x = _neg_pos(rng, 20_000, dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    kw = dict(lower=0.2, upper=0.6, training=True, seed=42)
    y = fastops.rrelu(x, **kw)
    (gx,) = fastops.rrelu.backward(g, x, **kw)
    # piecewise linear: grad_input = grad_output * dy/dx with dy/dx = y / x
    np.testing.assert_allclose(gx, g * (y / x), rtol=8 * np.finfo(dtype).eps)
    # finite differences (float64 arithmetic on the same mask)
    t = rng.standard_normal(x.shape)
    eps = 1e-4
    xd = x.astype(np.float64)
    x64 = lambda v: fastops.rrelu(v, **kw)  # noqa: E731
    fd = np.sum((x64(xd + eps * t) - x64(xd - eps * t)) / (2 * eps) * g)
    an = np.sum(fastops.rrelu.backward(g.astype(np.float64), xd, **kw)[0] * t)
    assert abs(fd - an) <= 1e-8 * np.sum(np.abs(g * t))


def test_rrelu_training_needs_seed_and_eval_ignores_it(rng):
    x = _neg_pos(rng, 100, np.float32)
    with pytest.raises(ValueError, match="seed="):
        fastops.rrelu(x, training=True)
    with pytest.raises(ValueError, match="seed="):
        fastops.rrelu.backward(np.ones_like(x), x, training=True)
    ev = fastops.rrelu(x, 0.1, 0.3)
    assert np.array_equal(ev, fastops.rrelu(x, 0.1, 0.3, seed=9))
    assert np.array_equal(ev, fastops.leaky_relu(x, 0.2))
    with pytest.raises(TypeError, match="seed"):
        fastops.rrelu(x, seed=1.5)


def test_rrelu_lower_equals_upper_gives_that_slope(rng):
    x = _neg_pos(rng, 1000, np.float64)
    assert np.array_equal(fastops.rrelu(x, 0.25, 0.25, training=True, seed=0), fastops.leaky_relu(x, 0.25))


def test_rrelu_inplace_training(rng):
    x = _neg_pos(rng, 1000, np.float32)
    expect = fastops.rrelu(x, training=True, seed=4)
    buf = x.copy()
    out = fastops.rrelu(buf, training=True, seed=4, inplace=True)
    assert out is buf and np.array_equal(out, expect)
    (g,) = fastops.rrelu.backward(np.ones_like(x), x, training=True, seed=4)  # needs the original input
    np.testing.assert_allclose(g, expect / x, rtol=1e-6)


def test_rrelu_nan_propagates():
    x = np.array([np.nan, -1.0, 1.0, -np.inf], np.float32)
    y = fastops.rrelu(x, training=True, seed=0)
    assert np.isnan(y[0]) and y[3] == -np.inf


def test_rrelu_explain_reports_mode():
    assert "training" in fastops.rrelu.explain((10,), "float32", training=True)["mode"]
    assert fastops.rrelu.explain((10,), "float32")["kernel"].startswith("leaky_relu")


# ------------------------------------------------------------------ prelu


@pytest.mark.parametrize(
    "shape,wsize,layout",
    [((), 1, "rows"), ((5,), 1, "rows"), ((4, 3), 3, "columns"), ((4, 3, 40), 3, "rows"), ((4, 3, 5, 6), 3, "columns"), ((4, 3, 8, 8), 1, "rows")],
)
def test_prelu_layout(shape, wsize, layout):
    assert prelu_mod.prelu_layout(shape, wsize)[0] == layout
    assert fastops.prelu.explain(shape, "float32", weight_shape=(wsize,))["layout"] == layout


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,wsize", [((8, 16, 33, 31), 16), ((20000, 12), 12), ((300_001,), 1), ((3, 5, 70_000), 5)])
def test_prelu_grad_weight_against_a_float64_sum(rng, dtype, shape, wsize):
    # the layouts' parallel paths (the table's paths); their thread-count independence: tests/test_paths.py
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0, 0.5, wsize).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gw = fastops.prelu.backward(g, x, w)[1]
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    contrib = np.where(x64 > 0, 0.0, x64 * g64)
    axes = tuple(i for i in range(x.ndim) if not (i == 1 and wsize > 1))
    ref = contrib.sum(axis=axes).reshape(-1)
    np.testing.assert_allclose(gw, ref, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3 if dtype == np.float32 else 1e-9)


@requires_torch
def test_prelu_nan_and_zero_like_torch():
    x = np.array([[np.nan, 0.0, -0.0, -2.0, 3.0, -np.inf]], np.float64).T.reshape(1, 1, 6).repeat(2, 1)
    w = np.array([0.25, -1.5])
    g = np.ones_like(x)
    tx, tw = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(w.copy()).requires_grad_()
    ty = torch.nn.functional.prelu(tx, tw)
    ty.backward(torch.from_numpy(g))
    y = fastops.prelu(x, w)
    gx, gw = fastops.prelu.backward(g, x, w)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(gx, tx.grad.numpy())
    np.testing.assert_array_equal(gw, tw.grad.numpy())


def test_prelu_zero_d_weight_gives_zero_d_grad(rng):
    x = rng.standard_normal((2, 3, 4))
    gx, gw = fastops.prelu.backward(np.ones_like(x), x, np.array(0.3))
    assert gw.shape == () and np.isclose(gw, np.where(x > 0, 0, x).sum())


# ------------------------------------------------------------------ softmax / log_softmax

OPS = ["softmax", "log_softmax"]


def _tref(name):
    return getattr(torch.nn.functional, name)


@pytest.mark.parametrize("name", OPS)
def test_dim_is_required(name):
    with pytest.raises(ValueError, match="dim"):
        getattr(fastops, name)(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="dim"):
        getattr(fastops, name).backward(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32))


@pytest.mark.parametrize("shape,dim,layout", [((4096, 1000), -1, "last"), ((2, 3, 1, 1), 1, "last"), ((4, 5), 0, "strided"), ((), 0, "last")])
def test_softmax_layout(shape, dim, layout):
    assert fastops.softmax.explain(shape, "float32", dim=dim)["layout"] == layout


def test_softmax_dispatch():
    with fastops.threads(2):
        big = fastops.softmax.explain((4096, 1000), "float32", dim=-1)
        assert big["backend"] == "parallel" and big["kernel"] == "softmax_last_fwd_f32_parallel"
        assert fastops.log_softmax.explain((3, 5), "float64", dim=1)["kernel"] == "log_softmax_last_fwd_f64_serial"
        st = fastops.softmax.explain((1, 64, 1000), "float32", dim=1)
        assert st["layout"] == "strided" and st["backend"] == "parallel" and st["columns_per_task"] * 2 <= 1000
    with fastops.threads(1):
        assert fastops.softmax.explain((4096, 1000), "float32", dim=-1)["backend"] == "serial"


@pytest.mark.parametrize(
    "outer,d,inner,threads,expect",
    [
        (1, 4096, 1000, 1, 1000),  # whole rows
        (1, 4096, 1000, 2, 1000),  # streaming from memory: never split (measured slower)
        (1, 64, 1000, 2, 128),  # cache-resident: split into 4 tasks per thread
        (64, 64, 64, 2, 64),  # enough tasks already
        (1, 21, 10**6, 1, 2048),  # very long rows: in pieces
        (3, 7, 5, 4, 5),
        (1, 3, 17, 16, 16),
        (3, 5, 0, 2, 0),  # empty columns (no kernel runs, but the plan is made)
    ],
)
def test_strided_width(outer, d, inner, threads, expect):
    w = softmax_mod.strided_width(outer, d, inner, 4, threads)
    assert w == expect
    assert w <= inner and (w == inner or w % 16 == 0)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_backward_with_saved_output_is_the_same(rng, name, dtype):
    f = getattr(fastops, name)
    for shape, dim in [((7, 300), 1), ((5, 6, 7), 1), ((5, 6, 7), 0)]:
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        y = f(x, dim)
        assert _same(f.backward(g, x, dim, output=y), f.backward(g, x, dim))


@pytest.mark.parametrize("name", OPS)
def test_backward_output_is_validated(name):
    f = getattr(fastops, name)
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="output"):
        f.backward(x, x, 1, output=np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="output"):
        f.backward(x, x, 1, output=np.ones((2, 3), np.float64))


@pytest.mark.parametrize("name", OPS)
def test_dtype_argument_casts_first(rng, name):
    f = getattr(fastops, name)
    x = rng.standard_normal((4, 50)).astype(np.float32)
    y = f(x, 1, dtype=np.float64)
    assert y.dtype == np.float64
    assert np.array_equal(y, f(x.astype(np.float64), 1))
    assert f(x, 1, dtype="float32").dtype == np.float32
    g = rng.standard_normal((4, 50))
    (gx,) = f.backward(g, x, 1, dtype=np.float64)
    assert gx.dtype == np.float32  # the input's dtype, as torch's autograd through the cast
    np.testing.assert_array_equal(gx, f.backward(g, x.astype(np.float64), 1)[0].astype(np.float32))
    with pytest.raises(TypeError):
        f.backward(g.astype(np.float32), x, 1, dtype=np.float64)  # grad_output has the output's dtype


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 64, 65, 130, 1000, 100_003])
def test_row_lengths_around_the_lanes(rng, name, dtype, n):
    x = (rng.standard_normal((3, n)) * 4).astype(dtype)
    y = getattr(fastops, name)(x, -1)
    p = y if name == "softmax" else np.exp(y.astype(np.float64))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=10 * n**0.5 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", OPS)
def test_large_inputs_do_not_overflow(name):
    x = np.array([[1e4, 1e4 - 1, -1e4], [3e38, 3e38, 0.0]], np.float32)
    y = getattr(fastops, name)(x, 1)
    assert np.all(np.isfinite(y[0])) and np.isfinite(y[1, :2]).all()


@pytest.mark.parametrize("name", OPS)
def test_strided_equals_transposed_last(rng, name):
    f = getattr(fastops, name)
    x = rng.standard_normal((37, 5, 11))
    a = f(x, 0)
    b = np.moveaxis(f(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1), -1, 0)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


_SPECIAL_ROWS = [
    [1.0, np.nan, 2.0],
    [-np.inf, 1.0, 2.0],
    [-np.inf, -np.inf, -np.inf],
    [np.inf, 1.0, 2.0],
    [np.inf, np.inf, 0.0],
    [np.nan, np.nan, np.nan],
    [-np.inf, -np.inf, 0.5],
    [0.0, 0.0, 0.0],
]


@requires_torch
@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["last", "strided"])
@pytest.mark.parametrize("pad", [0, 40])  # pad: longer rows, so the specials land in vector lanes too
def test_nan_inf_like_torch(name, dtype, layout, pad):
    rows = np.array(_SPECIAL_ROWS, dtype=dtype)
    if pad:
        rows = np.concatenate([np.full((len(rows), pad), -3.0, dtype), rows, np.full((len(rows), pad), -2.0, dtype)], axis=1)
    x, dim = (rows, 1) if layout == "last" else (np.ascontiguousarray(rows.T), 0)
    g = np.ones_like(x)
    t = torch.from_numpy(x.copy()).requires_grad_()
    ty = _tref(name)(t, dim)
    ty.backward(torch.from_numpy(g))
    y = getattr(fastops, name)(x, dim)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    (gx,) = getattr(fastops, name).backward(g, x, dim)
    np.testing.assert_allclose(gx, t.grad.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ lanes


def _lane_sum_reference(a, vl, masked_tail):
    """NumPy emulation of ``fastops._simd``' summation order: blocks of 4 vectors into 4 accumulators, then
    whole vectors into accumulator 0, the tail either as a masked vector into accumulator 1
    (``row_exp_sum``) or added after the lanes in index order (``row_sum``)."""
    n = a.size
    acc = np.zeros((4, vl), a.dtype)
    nb = n // (4 * vl)
    for b in range(nb):
        acc += a[b * 4 * vl : (b + 1) * 4 * vl].reshape(4, vl)
    for b in range(nb * 4, n // vl):
        acc[0] += a[b * vl : (b + 1) * vl]
    t = n - (n // vl) * vl
    if masked_tail and t:
        acc[1, :t] += a[n - t :]
    v = (acc[0] + acc[1]) + (acc[2] + acc[3])
    while v.size > 1:
        v = v[: v.size // 2] + v[v.size // 2 :]
    s = v[0]
    if not masked_tail:
        for i in range(n - t, n):
            s = s + a[i]
    return s


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_lane_sum_order(dtype):
    """row_sum adds in the documented order: verified bitwise against a NumPy emulation."""
    from fastops import _jit

    def k(x, out):
        for r in range(x.shape[0]):
            out[r] = lanes.row_sum(x[r])

    kern = _jit.jit(k)
    vl = 64 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(0)
    for n in [0, 1, vl - 1, vl, vl + 1, 4 * vl, 5 * vl + 3, 1001]:
        x = (rng.standard_normal((2, n)) * 1e3).astype(dtype)
        out = np.empty(2, dtype)
        kern(x, out)
        for r in range(2):
            assert out[r] == _lane_sum_reference(x[r], vl, masked_tail=False)


def _vec_kernels():
    from fastops import _jit

    def exp_rows(x, out):  # vexp over whole vectors, then the tail through the masked pair
        for r in range(x.shape[0]):
            a = x[r]
            o = out[r]
            vl = lanes.nlanes(a)
            n = a.size
            for b in range(n // vl):
                lanes.vstore(o, b * vl, lanes.vexp(lanes.vload(a, b * vl)))
            if n % vl:
                lanes.vstore_part(o, (n // vl) * vl, lanes.vexp(lanes.vload_part(a, (n // vl) * vl, 0.0)))

    def exp_sum_rows(x, scale, m, out, sums):
        for r in range(x.shape[0]):
            sums[r] = lanes.row_exp_sum(x[r], scale, m[r], out[r], x[(r + 1) % x.shape[0]])

    def part(a, i, fill, out):
        lanes.vstore_part(out, i, lanes.vload_part(a, i, fill))

    return _jit.jit(exp_rows), _jit.jit(exp_sum_rows), _jit.jit(part)


_VEC = {}


def _vec(name):
    if not _VEC:
        _VEC["exp"], _VEC["exp_sum"], _VEC["part"] = _vec_kernels()
    return _VEC[name]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_exponential_scalar_and_vector_bitwise(rng, dtype):
    """One exponential: the scalar ``_math.exp32``/``exp64`` that the kernels' loops call (LLVM
    vectorizes such a loop, or not: both are checked) gives exactly the bits of ``_simd.vexp``, so
    an op's rounding does not depend on the path a shape picks (e.g. attention's blocked kernels
    against its rows/tiled paths)."""
    from fastops import _config, _math

    fn = _math.exp32 if dtype == np.float32 else _math.exp64

    @numba.njit(**_config.JIT_OPTIONS)
    def flat(x, out):  # a plain loop: vectorized by LLVM
        for i in range(x.size):
            out[i] = fn(x[i])

    @numba.njit(**_config.JIT_OPTIONS)
    def scalar(x, out, step):  # strided start/step: a scalar loop
        for s in range(step):
            for i in range(s, x.size, step):
                out[i] = fn(x[i])

    fi = np.finfo(dtype)
    x = np.concatenate([np.linspace(-800, 800, 40001), rng.uniform(-90, 90, 20000), rng.standard_normal(5000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, fi.max, -fi.max, fi.tiny, -fi.tiny]]).astype(dtype)
    vec = np.empty_like(x)
    _vec("exp")(x[None], vec[None])
    a, b = np.empty_like(x), np.empty_like(x)
    flat(x, a)
    scalar(x, b, 7)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for got in (a, b):
        same = got.view(bits) == vec.view(bits)  # bit patterns, NaN included
        assert same.all(), x[~same][:5]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_vexp_against_float64_numpy(rng, dtype):
    fi = np.finfo(dtype)
    lo, hi = (-87.33654, 88.72283) if dtype == np.float32 else (-708.3964185322641, 709.782712893384)
    specials = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, lo, hi, lo - 0.01, hi + 0.01, np.log(2) / 2, -np.log(2) / 2,
                np.inf, -np.inf, np.nan, fi.max, -fi.max]
    x = np.concatenate([np.linspace(lo - 5, hi + 5, 20001), rng.uniform(-10, 10, 5000), specials]).astype(dtype)
    out = np.full_like(x, 7.0)
    _vec("exp")(x[None], out[None])
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64))
    normal = (x >= lo) & (x <= hi)
    ulp = np.abs(out[normal] - ref[normal]) / np.spacing(ref[normal].astype(dtype)).astype(np.float64)
    assert ulp.max() <= (1.0 if dtype == np.float32 else 2.0), ulp.max()
    assert np.all(out[x < lo] == 0.0)  # flushed below the smallest normal number, as _math.exp32/64
    assert np.all(out[x > hi] == np.inf)
    assert np.isnan(out[np.isnan(x)]).all() and not np.isnan(out[~np.isnan(x)]).any()
    # the value of a lane depends on its input only, never on the lane or the position
    perm = rng.permutation(x.size)
    outp = np.empty_like(x)
    _vec("exp")(x[perm][None], outp[None])
    np.testing.assert_array_equal(outp, out[perm])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 1001])
@pytest.mark.parametrize("scale", [1.0, 0.125, 0.3])
def test_row_exp_sum_order_and_values(rng, dtype, n, scale):
    """row_exp_sum stores vexp(a * scale - m) and sums in the documented order: checked bitwise
    against a NumPy emulation built on the stored values."""
    vl = 64 // np.dtype(dtype).itemsize
    x = (rng.standard_normal((3, n)) * 6).astype(dtype)
    m = (x.max(axis=1) * dtype(scale)).astype(dtype) if n else np.zeros(3, dtype)
    out = np.empty_like(x)
    sums = np.empty(3, dtype)
    _vec("exp_sum")(x, scale, m, out, sums)
    e_ref = np.empty_like(x)
    _vec("exp")((x * dtype(scale)).astype(dtype) - m[:, None], e_ref)
    np.testing.assert_array_equal(out, e_ref)
    if n:  # in place (out is a), as the attention kernels call it
        xi = x.copy()
        _vec("exp_sum")(xi, scale, m, xi, np.empty_like(sums))
        np.testing.assert_array_equal(xi, out)
    for r in range(3):
        assert sums[r] == _lane_sum_reference(out[r], vl, masked_tail=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_masked_tail_touches_nothing_past_the_end(dtype):
    vl = 64 // np.dtype(dtype).itemsize
    for n in range(1, vl):
        src = np.arange(1, vl + 1, dtype=dtype)
        buf = np.full(2 * vl, -5.0, dtype)
        _vec("part")(src[:n], 0, 9.0, buf[:n])
        np.testing.assert_array_equal(buf[:n], src[:n])
        assert np.all(buf[n:] == -5.0)  # masked store: nothing written past the view
        _vec("part")(src[:n], n, 9.0, buf[:n])  # i == size: an empty tail
        np.testing.assert_array_equal(buf[:n], src[:n])


@pytest.mark.skipif(not numba.config.BOUNDSCHECK, reason="needs NUMBA_BOUNDSCHECK=1")
def test_masked_tail_bounds_checked():
    a = np.ones(5, np.float32)
    with pytest.raises(IndexError):
        _vec("part")(a, 6, 0.0, a.copy())
    with pytest.raises(IndexError):
        _vec("part")(a, -1, 0.0, a.copy())


# ---------------------------------------------------------------- hardsigmoid float64 precision

def test_hardsigmoid_float64_gradient_is_exact():
    """float64 hardsigmoid backward is g / 6 to the last bit or so (a float32 1/6 would be off by
    3e-8 relative); the forward is x / 6 + 1/2 likewise."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-2.9, 2.9, 4096)
    g = rng.standard_normal(4096)
    (gx,) = fastops.hardsigmoid.backward(g, x)
    np.testing.assert_allclose(gx, g / 6, rtol=1e-15, atol=0)
    np.testing.assert_allclose(fastops.hardsigmoid(x), x / 6 + 0.5, rtol=0, atol=1e-15)  # values in [0, 1]
    assert not np.allclose(gx, g * np.float64(np.float32(1 / 6)), rtol=1e-9, atol=0)


@requires_torch
def test_torch_hardsigmoid_float64_gradient_uses_a_float32_constant():
    """Why the op table's torch comparison of hardsigmoid allows 1e-7 in float64: ATen multiplies by
    1.0f / 6.0f in every dtype. If a torch release fixes this, the allowance can go."""
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.uniform(-2.9, 2.9, 256)).requires_grad_(True)
    g = rng.standard_normal(256)
    torch.nn.functional.hardsigmoid(x).backward(torch.from_numpy(g))
    assert np.array_equal(x.grad.numpy(), g * np.float64(np.float32(1 / 6)))
