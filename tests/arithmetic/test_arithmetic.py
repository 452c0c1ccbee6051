"""Tensor arithmetic beyond the generic table tests: dispatch decisions, pass-through gradients,
fastops._reduce against np.sum, eltwise details. The ops' parallel paths (the broadcast reductions
of add's backward among them) against the reference and bitwise across thread counts: the table's
``paths`` (tests/test_paths.py)."""
import itertools
import re

import numba
import numpy as np
import pytest

import fastops
from fastops import _config, _dispatch, _reduce, _threads
from fastops.arithmetic import binary
from fastops.testing.arithmetic import REDUCE_PATHS

from ..conftest import requires_torch, torch

MAX_THREADS = _threads.max_threads()


# ------------------------------------------------------------------ dispatch


@pytest.mark.parametrize(
    "sa,sb,expect",
    [
        ((2, 3, 4), (2, 3, 4), "same"),
        ((3,), (1, 3), "same"),  # differ by size-1 dims only: same element order
        ((2, 3, 4), (), "scalar_b"),
        ((2, 3, 4), (1, 1), "scalar_b"),
        ((1,), (2, 3), "scalar_a"),
        ((2, 3, 4), None, "scalar_b"),  # a Python scalar
        (None, (5,), "scalar_a"),
        ((2, 3, 4), (3, 1), "strided"),
        ((4,), (2, 3, 4), "strided"),
        ((2, 1, 4), (3, 1), "strided"),
        ((8, 16, 7, 7), (1, 16, 1, 1), "strided"),
    ],
)
def test_broadcast_backend(sa, sb, expect):
    out = np.broadcast_shapes(sa or (), sb or ())
    assert _dispatch.broadcast_backend(sa, sb, out) == expect


@pytest.mark.parametrize(
    "sa,sb,dims,st_a,st_b",
    [
        # bias over channels: (N, C, H*W), the bias read once per row of H*W
        ((8, 16, 7, 7), (1, 16, 1, 1), (8, 16, 49), (784, 49, 1), (0, 1, 0)),
        # a row bias: rows + one contiguous row
        ((4096, 4096), (4096,), (4096, 4096), (4096, 1), (0, 1)),
        ((2, 3, 4), (3, 1), (2, 3, 4), (12, 4, 1), (0, 1, 0)),
        ((2, 3, 4), (4,), (6, 4), (4, 1), (0, 1)),
        ((2, 1, 4), (3, 1), (2, 3, 4), (4, 0, 1), (0, 1, 0)),
        ((5, 1), (1, 6), (5, 6), (1, 0), (0, 1)),
        ((2, 1, 2, 1, 2), (1, 2, 1, 2, 1), (2, 2, 2, 2, 2), (4, 0, 2, 0, 1), (0, 2, 0, 1, 0)),
    ],
)
def test_broadcast_collapse(sa, sb, dims, st_a, st_b):
    out = np.broadcast_shapes(sa, sb)
    assert _dispatch.broadcast_collapse(out, sa, sb) == (dims, (st_a, st_b))


def test_explain_reports_kernel_backend_and_pattern():
    with fastops.threads(MAX_THREADS):
        d = fastops.add.explain((64, 256, 32, 32), "float32", other=(1, 256, 1, 1))
        assert d["pattern"] == "strided" and d["dims"] == (64, 256, 1024) and d["strides_b"] == (0, 1, 0)
        expect_be = "parallel" if MAX_THREADS > 1 else "serial"
        assert d["backend"] == expect_be and d["kernel"] == f"add_strided_f32_{expect_be}"
        assert fastops.mul.explain((10,), "float64", other=2.0)["kernel"] == "mul_scalar_b_f64_serial"
        assert fastops.div.explain((10,), "float32", rounding_mode="floor")["kernel"] == "div_floor_same_f32_serial"
        assert fastops.sub.explain((10,), "float32")["kernel"] == "add_same_f32_serial"
        assert fastops.add.explain((2, 3, 4), shapes=[(2, 3, 4), (3, 1)])["strides_b"] == (0, 1, 0)
        b = fastops.bias_add.explain((64, 256, 32, 32), "float32")
        assert [p["view"] for p in b["backward_reduce"]] == [(64 * 256, 1024, 1), (1, 64, 256)]
        a = fastops.axpy.explain((8, 16, 7, 7), "float32", a=(8, 16))
        assert a["dims"] == (128, 49) and a["inner"] == "a value per row"
        m = fastops.matmul.explain((8, 64, 32), other=(32, 16))
        assert m["kernel"] == "fastops._gemm (batch folded into M)" and (m["m"], m["n"], m["k"]) == (512, 16, 32)
        assert m["backend"] == _dispatch.parallel_backend(np.float32, 512 * 16 * 32, fastops.get_num_threads(), "gemm")
        assert fastops.matmul.explain((2, 8, 4), other=(2, 4, 3))["backend"] == "serial"  # 192 multiply-adds
        assert fastops.eltwise.explain((100,), op="max", shapes=[(100,)] * 3)["kernel"] == "eltwise_max_f32_serial"
    with fastops.threads(1):
        assert fastops.add.explain((1 << 20,), "float32")["backend"] == "serial"


def test_reduction_backend_threshold():
    n = _dispatch.PARALLEL_MIN_WORK["cheap"]
    assert _dispatch.parallel_backend(np.float32, n - 1, 2) == "serial"
    assert _dispatch.parallel_backend(np.float32, n, 2) == "parallel"
    assert _dispatch.parallel_backend(np.float32, 1 << 24, 1) == "serial"


# ------------------------------------------------------------------ pass-through gradients


def _is_readonly_view_of(v, g):
    return isinstance(v, np.ndarray) and not v.flags.writeable and np.shares_memory(v, g)


def test_add_backward_passes_grad_output_through_read_only():
    x = np.ones((64, 128), np.float32)
    y = np.ones((64, 128), np.float32)
    g = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    ga, gb = fastops.add.backward(g, x, y)
    assert _is_readonly_view_of(ga, g) and _is_readonly_view_of(gb, g)
    with pytest.raises(ValueError):
        ga[0, 0] = 1.0  # read-only
    assert g.flags.writeable  # the caller's array is untouched
    # same size, other shape: a reshaped view
    ga, gb = fastops.add.backward(np.ones((1, 3), np.float32), np.ones(3, np.float32), np.ones((1, 3), np.float32))
    assert ga.shape == (3,) and not ga.flags.writeable
    # alpha != 1: other's gradient is computed; a broadcast operand gets a new (writeable) array
    ga, gb = fastops.add.backward(g, x, np.ones(128, np.float32), alpha=2.0)
    assert _is_readonly_view_of(ga, g) and gb.flags.writeable and not np.shares_memory(gb, g)
    np.testing.assert_allclose(gb, 2 * g.sum(0, dtype=np.float64), rtol=1e-5, atol=1e-5)
    ga, gb = fastops.add.backward(g, x, y, alpha=-0.5)
    assert _is_readonly_view_of(ga, g) and gb.flags.writeable
    np.testing.assert_array_equal(gb, g * np.float32(-0.5))
    # a scalar operand gets None
    assert fastops.add.backward(g, x, 3.0)[1] is None and fastops.add.backward(g, 3.0, x)[0] is None


def test_sub_backward_first_passes_through_second_is_computed():
    x = np.ones((5, 7))
    g = np.random.default_rng(1).standard_normal((5, 7))
    ga, gb = fastops.sub.backward(g, x, x)
    assert _is_readonly_view_of(ga, g)
    assert gb.flags.writeable and not np.shares_memory(gb, g)
    np.testing.assert_array_equal(gb, -g)
    ga, gb = fastops.sub.backward(g, x, x, alpha=3.0)
    np.testing.assert_array_equal(gb, -3.0 * g)


def test_other_pass_through_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4))
    g = rng.standard_normal((2, 3, 4))
    gx, gbias = fastops.bias_add.backward(g, x, np.zeros(3))
    assert _is_readonly_view_of(gx, g) and gbias.flags.writeable
    np.testing.assert_allclose(gbias, g.sum((0, 2)), rtol=1e-13)
    ga, gx, gy = fastops.axpy.backward(g, rng.standard_normal((2, 3)), x, x)
    assert _is_readonly_view_of(gy, g) and gx.flags.writeable and ga.shape == (2, 3)
    grads = fastops.eltwise.backward(g, x, x, x, coeffs=[1.0, 2.0, 1.0])
    assert _is_readonly_view_of(grads[0], g) and _is_readonly_view_of(grads[2], g)
    assert grads[1].flags.writeable
    np.testing.assert_array_equal(grads[1], 2 * g)
    # bias_add with N == 1 and no spatial dims: the bias gradient is a copy, not a view
    g2 = rng.standard_normal((1, 3))
    gx, gbias = fastops.bias_add.backward(g2, g2, np.zeros(3))
    assert gbias.flags.writeable and not np.shares_memory(gbias, g2)


def test_mul_div_gradients_are_new_arrays():
    rng = np.random.default_rng(3)
    x, y, g = (rng.standard_normal((4, 5)) + 3 for _ in range(3))
    for op in (fastops.mul, fastops.div):
        for gr in op.backward(g, x, y):
            assert gr.flags.writeable and not np.shares_memory(gr, g)


# ------------------------------------------------------------------ the reductions of add's paths


@pytest.mark.parametrize("path,shape,target", REDUCE_PATHS, ids=[p[0] for p in REDUCE_PATHS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reduction_paths_parallel_and_against_a_float64_sum(path, shape, target, dtype):
    # the table's add paths (fastops.testing.arithmetic.REDUCE_PATHS) reduce grad_output to other's
    # shape with these plans; add.explain reports the forward only, so that they reach a parallel
    # reduction is checked here (bitwise across thread counts: tests/test_paths.py)
    if MAX_THREADS >= 2:
        with fastops.threads(2):
            assert any(p["backend"] == "parallel" for p in _reduce.explain(shape, target, dtype))
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    r = _reduce.sum_to_shape(x, target)
    assert r.dtype == dtype and r.shape == tuple(target)
    np.testing.assert_allclose(r, x.astype(np.float64).sum(axis=_axes(shape, target)).reshape(target),
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3 if dtype == np.float32 else 1e-9)


# ------------------------------------------------------------------ _reduce against np.sum


def _axes(shape, target):
    n = len(shape)
    t = (1,) * (n - len(target)) + tuple(target)
    return tuple(i for i in range(n) if t[i] == 1 and shape[i] != 1)


@pytest.mark.parametrize(
    "shape",
    [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 5), (7, 70, 3), (3, 200, 2), (1000, 3), (2, 3, 4, 5, 6), (70, 1000),
     (130, 3, 70), (4, 1, 65, 1, 3), (0, 3), (3, 0, 2)],
)
def test_sum_to_shape_matches_numpy_for_every_axis_set(shape):
    rng = np.random.default_rng(6)
    x64 = rng.standard_normal(shape)
    x32 = x64.astype(np.float32)
    n = len(shape)
    for r in range(n + 1):
        for axes in itertools.combinations(range(n), r):
            keep = tuple(1 if i in axes else s for i, s in enumerate(shape))
            ref = x64.sum(axis=axes, keepdims=True)
            for target in {keep, keep[next((i for i, s in enumerate(keep) if s != 1), n):]}:
                got = _reduce.sum_to_shape(x64, target)
                assert got.shape == target and got.dtype == np.float64
                np.testing.assert_allclose(got, ref.reshape(target), rtol=1e-12, atol=1e-12)
                got32 = _reduce.sum_to_shape(x32, target)
                assert got32.dtype == np.float32
                np.testing.assert_allclose(got32, ref.reshape(target), rtol=1e-5, atol=1e-5)


def test_sum_to_shape_views_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    v = _reduce.sum_to_shape(x, (1, 2, 3))  # nothing summed: a view
    assert v.shape == (1, 2, 3) and np.shares_memory(v, x)
    assert _reduce.sum_to_shape(x, ()).shape == () and _reduce.sum_to_shape(x, ()) == 15.0
    with pytest.raises(ValueError):
        _reduce.sum_to_shape(x, (4,))
    with pytest.raises(ValueError):
        _reduce.sum_to_shape(x, (2, 2, 3))
    assert _reduce.sum_to_shape(x, (1, 1, 1, 3)).tolist() == [[[[3.0, 5.0, 7.0]]]]


def test_reduce_plan_depends_on_shape_only():
    # the chunking is the same whatever the thread count (determinism)
    for shape, target in [((1 << 24,), ()), ((4096, 4096), (4096,)), ((64, 256, 32, 32), (256, 1, 1))]:
        with fastops.threads(1):
            p1 = [(p["view"], p["fold"], p["chunk"], p["chunks"]) for p in _reduce.explain(shape, target)]
        with fastops.threads(MAX_THREADS):
            p2 = [(p["view"], p["fold"], p["chunk"], p["chunks"]) for p in _reduce.explain(shape, target)]
        assert p1 == p2
    assert _reduce.reduce_passes((64, 256, 32, 32), (256, 1, 1)) == [(64 * 256, 1024, 1), (1, 64, 256)]
    assert _reduce.reduce_passes((2, 3), (2, 3)) == []


# ------------------------------------------------------------------ op details


def test_scalar_operand_takes_the_array_dtype():
    x = np.linspace(-1, 1, 11, dtype=np.float32)
    for s in (0.1, np.float64(0.1), 1, np.int64(3)):
        out = fastops.add(x, s)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, x + np.float32(s))
    assert fastops.mul(2, np.ones((), np.float64)).dtype == np.float64
    # no array at all: NumPy float scalars are 0-d arrays, Python numbers are refused
    r = fastops.add(np.float32(1), np.float32(2))
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float32 and r == 3
    with pytest.raises(TypeError, match="add"):
        fastops.add(1.0, 2)
    with pytest.raises(TypeError, match="mixed"):
        fastops.add(np.float32(1), np.float64(2))


def test_division_by_zero_and_rounding_modes_match_torch_semantics():
    a = np.array([7.0, -7.0, 7.0, -7.0, 1.0, -1.0, 0.0, 5.5, -0.5], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 0.0, 0.0, 0.0, 0.5, 3.0], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(fastops.div(a, b), a / b)
        np.testing.assert_array_equal(fastops.div(a, b, rounding_mode="trunc"), np.trunc(a / b))
        np.testing.assert_array_equal(fastops.div(a, b, rounding_mode="floor"), np.floor_divide(a, b))
    ga, gb = fastops.div.backward(np.ones(9, np.float32), a, b, rounding_mode="floor")
    assert not ga.any() and not gb.any() and ga.dtype == np.float32


@requires_torch
def test_floor_division_matches_torch_exactly():
    rng = np.random.default_rng(7)
    a = (rng.standard_normal(5000) * 10).astype(np.float32)
    b = (rng.standard_normal(5000) * 3).astype(np.float32)
    for mode in ("trunc", "floor"):
        expect = torch.div(torch.from_numpy(a), torch.from_numpy(b), rounding_mode=mode).numpy()
        np.testing.assert_array_equal(fastops.div(a, b, rounding_mode=mode), expect)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("mode", ["sum", "prod", "max"])
def test_eltwise_any_number_of_inputs(k, mode):
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((3, 70)) for _ in range(k)]
    coeffs = list(rng.standard_normal(k)) if mode == "sum" else None
    out = fastops.eltwise(*xs, op=mode, coeffs=coeffs)
    if mode == "sum":
        ref = sum(c * x for c, x in zip(coeffs, xs))
    elif mode == "prod":
        ref = np.prod(xs, axis=0)
    else:
        ref = np.max(xs, axis=0)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(out.shape)
    grads = fastops.eltwise.backward(g, *xs, op=mode, coeffs=coeffs)
    assert len(grads) == k
    eps = 1e-6
    for i in range(k):
        t = rng.standard_normal(xs[i].shape)
        plus = [x + eps * t if j == i else x for j, x in enumerate(xs)]
        minus = [x - eps * t if j == i else x for j, x in enumerate(xs)]
        fd = np.sum((fastops.eltwise(*plus, op=mode, coeffs=coeffs) - fastops.eltwise(*minus, op=mode, coeffs=coeffs)) / (2 * eps) * g)
        assert abs(fd - np.sum(grads[i] * t)) <= 1e-6 * np.sum(np.abs(grads[i] * t)) + 1e-8


def test_eltwise_max_gradient_goes_to_the_first_maximal_input():
    x0 = np.array([1.0, 2.0, 3.0, np.nan, 0.0], np.float32)
    x1 = np.array([1.0, 5.0, 3.0, 1.0, np.nan], np.float32)
    x2 = np.array([0.0, 5.0, 3.0, np.nan, 1.0], np.float32)
    out = fastops.eltwise(x0, x1, x2, op="max")
    np.testing.assert_array_equal(out, [1.0, 5.0, 3.0, np.nan, np.nan])
    g0, g1, g2 = fastops.eltwise.backward(np.ones(5, np.float32), x0, x1, x2, op="max")
    np.testing.assert_array_equal(g0, [1, 0, 1, 1, 0])  # ties: the first; NaN: the first NaN
    np.testing.assert_array_equal(g1, [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(g2, [0, 0, 0, 0, 0])


def test_axpy_caffe_shapes():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 3))
    x = rng.standard_normal((2, 3, 4, 5))
    y = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(fastops.axpy(a, x, y), a[:, :, None, None] * x + y, rtol=1e-14)
    g = rng.standard_normal(x.shape)
    ga, gx, gy = fastops.axpy.backward(g, a, x, y)
    np.testing.assert_allclose(ga, (g * x).sum((2, 3)), rtol=1e-12)
    np.testing.assert_allclose(gx, g * a[:, :, None, None], rtol=1e-14)
    assert fastops.axpy.backward(g, 0.5, x, y)[0] is None


def test_matmul_shapes_like_torch():
    f = np.float64
    assert fastops.matmul(np.ones(3, f), np.ones(3, f)).shape == ()
    assert isinstance(fastops.matmul(np.ones(3, f), np.ones(3, f)), np.ndarray)
    assert fastops.matmul(np.ones((2, 1, 4, 3), f), np.ones((5, 3, 6), f)).shape == (2, 5, 4, 6)
    assert fastops.matmul(np.ones(3, f), np.ones((2, 3, 6), f)).shape == (2, 6)
    ga, gb = fastops.matmul.backward(np.ones((2, 5, 4, 6)), np.ones((2, 1, 4, 3)), np.ones((5, 3, 6)))
    assert ga.shape == (2, 1, 4, 3) and gb.shape == (5, 3, 6)
    np.testing.assert_allclose(ga, 5 * 6 * np.ones((2, 1, 4, 3)))
    np.testing.assert_allclose(gb, 2 * 4 * np.ones((5, 3, 6)))


# ------------------------------------------------------------------ kernels


def _own_ir(k, *args):
    """LLVM IR of the kernel's own functions, recompiled uncached (cached code cannot be inspected)."""
    j = numba.njit(**_config.JIT_OPTIONS)(k.py_func)
    j(*args)
    ir = "\n".join(j.inspect_llvm().values())
    funcs = [f for f in ir.split("\ndefine ")[1:] if "@_ZN7fastops" in f.splitlines()[0]]
    return ir, "\n".join(funcs)


@pytest.mark.parametrize("fname", ["add", "mul", "div"])
@pytest.mark.parametrize("pattern", ["same", "scalar_b", "strided"])
def test_binary_float32_kernels_stay_float32_and_vectorize(fname, pattern):
    x = np.ones(64, np.float32)
    out = np.empty(64, np.float32)
    f = np.float32(1)
    k = binary.kernel(fname, pattern, np.float32, "serial")
    if pattern == "same":
        args = (x, x, out, f)
    elif pattern == "scalar_b":
        args = (x, f, out, f)
    else:
        args = (x, x[:8], out, (1, 1, 8, 8), (0, 0, 8, 1), (0, 0, 0, 1), f)
    ir, own = _own_ir(k, *args)
    assert not [line for line in own.splitlines() if "double" in line or "fpext" in line]
    assert re.search(r"<\d+ x float>", ir)


@pytest.mark.parametrize("kind", ["fold", "cols"])
def test_reduce_float32_kernels_stay_float32_and_vectorize(kind):
    k = _reduce.KERNELS.kernel(kind, np.float32, "serial")
    x = np.ones((2, 100, 128), np.float32)
    part = np.empty((2, 1, 128), np.float32)
    if kind == "cols":
        args = (x, part, 2, 100, 128, 100, 1)
    else:
        args = (x.reshape(2, -1), np.empty((2, 1, 1), np.float32), 2, 12800, 1, 64, 12800, 1, 1)
    ir, own = _own_ir(k, *args)
    assert not [line for line in own.splitlines() if "double" in line or "fpext" in line]
    assert re.search(r"<\d+ x float>", ir)
