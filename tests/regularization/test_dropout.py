"""dropout / dropout2d: mask statistics, scale, forward/backward agreement, seeds, edge cases
(p = 0, p = 1, eval mode) and dispatch. The generic table tests (tests/test_ops.py) compare both
ops with a NumPy reference built from the same counter RNG and with torch given that mask, and
tests/test_paths.py their parallel paths (the table's ``paths``) with it and bitwise across thread
counts."""
import numpy as np
import pytest

import fastops
from fastops import _threads


def _keep_fraction_bounds(n, q, z=6.0):
    sd = np.sqrt(n * q * (1 - q))
    return (n * q - z * sd) / n, (n * q + z * sd) / n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_fraction_and_scale(dtype, p):
    n = 1 << 15
    x = np.random.default_rng(0).uniform(1, 2, n).astype(dtype)
    y = fastops.dropout(x, p, seed=123)
    kept = y != 0
    lo, hi = _keep_fraction_bounds(n, 1 - p)
    assert lo <= kept.mean() <= hi
    np.testing.assert_array_equal(y[kept], x[kept] * dtype(1 / (1 - p)))
    # consecutive runs of kept elements look independent: P(keep_i and keep_{i+1}) ~ (1-p)^2
    both = (kept[1:] & kept[:-1]).mean()
    lo2, hi2 = _keep_fraction_bounds(n - 1, (1 - p) ** 2)
    assert lo2 <= both <= hi2


def test_dropout2d_zeroes_whole_planes_with_binomial_fraction():
    x = np.random.default_rng(1).uniform(1, 2, (64, 32, 3, 5)).astype(np.float32)
    y = fastops.dropout2d(x, 0.3, seed=9)
    zero = (y == 0).all(axis=(2, 3))
    assert np.array_equal(zero, (y == 0).any(axis=(2, 3)))  # a plane is all kept or all dropped
    lo, hi = _keep_fraction_bounds(zero.size, 0.7)
    assert lo <= 1 - zero.mean() <= hi
    np.testing.assert_array_equal(y[~zero], (x * np.float32(1 / 0.7))[~zero])
    # 3-D input is (N, C, L) as in torch today: one draw per (dim0, dim1) pair, same as 4-D's planes
    y3 = fastops.dropout2d(x.reshape(64, 32, 15), 0.3, seed=9)
    np.testing.assert_array_equal(y3, y.reshape(64, 32, 15))


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_backward_uses_the_forward_mask(name):
    f = getattr(fastops, name)
    x = np.random.default_rng(2).uniform(1, 2, (4, 8, 5, 5))
    y = f(x, 0.4, seed=77)
    (g,) = f.backward(np.ones_like(x), x, 0.4, seed=77)
    np.testing.assert_array_equal(g, f(np.ones_like(x), 0.4, seed=77))  # mask / (1 - p), same mask
    np.testing.assert_array_equal(g == 0, y == 0)
    np.testing.assert_array_equal(y, x * g)
    (g2,) = f.backward(np.ones_like(x), x, 0.4, seed=78)
    assert not np.array_equal(g, g2)
    # the input's values are not used: a forward with inplace=True keeps the backward valid
    z = x.copy()
    assert f(z, 0.4, inplace=True, seed=77) is z
    np.testing.assert_array_equal(f.backward(np.ones_like(x), z, 0.4, seed=77)[0], g)


def test_float32_and_float64_draw_nearly_the_same_mask():
    x = np.ones(1 << 12)
    m64 = fastops.dropout(x, 0.5, seed=4) != 0
    m32 = fastops.dropout(x.astype(np.float32), 0.5, seed=4) != 0
    assert (m64 != m32).sum() <= 1  # uniform32 is uniform64 truncated to 24 bits


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_edge_cases_p0_p1_and_eval(name):
    f = getattr(fastops, name)
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    y0 = f(x, 0.0)  # no seed needed: the mask does not depend on it
    assert np.array_equal(y0, x) and not np.shares_memory(y0, x)
    y1 = f(x, 1.0)
    assert np.all(y1 == 0) and np.all(np.isfinite(y1))
    assert np.array_equal(f.backward(np.ones_like(x), x, 1.0)[0], np.zeros_like(x))
    assert np.array_equal(f.backward(np.ones_like(x), x, 0.0)[0], np.ones_like(x))
    # eval: the identity; like torch, the input itself comes back
    assert f(x, 0.5, training=False) is x
    g = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    (gi,) = f.backward(g, x, 0.5, training=False)
    assert np.array_equal(gi, g) and gi is not g


@pytest.mark.parametrize("name", ["dropout", "dropout2d"])
def test_seed_none_draws_from_numpy_global_generator_and_backward_refuses_it(name):
    f = getattr(fastops, name)
    x = np.ones((8, 16, 4, 4), np.float32)
    np.random.seed(0)
    a = f(x, 0.5)
    b = f(x, 0.5)
    np.random.seed(0)
    assert np.array_equal(f(x, 0.5), a) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match=f"{name}.backward.*seed"):
        f.backward(np.ones_like(x), x, 0.5)


def test_seeds_give_independent_masks():
    x = np.ones(1 << 14, np.float32)
    masks = [fastops.dropout(x, 0.5, seed=s) != 0 for s in (0, 1, 2, -1)]
    for i in range(len(masks)):
        for j in range(i):
            agree = (masks[i] == masks[j]).mean()
            assert abs(agree - 0.5) < 6 * 0.5 / np.sqrt(x.size)


def test_explain_reports_the_dispatch():
    with fastops.threads(min(2, _threads.max_threads())):
        assert fastops.dropout.explain((100,), "float32")["backend"] == "serial"
        d = fastops.dropout.explain((1 << 24,), "float32")
        assert d["kernel"].startswith("dropout_mask_f32")
        if _threads.max_threads() >= 2:
            assert d["backend"] == "parallel"
        assert fastops.dropout.explain((4, 4), "float64", training=False)["kernel"] == "identity"
        assert fastops.dropout2d.explain((2, 3, 4, 4), "float64")["planes"] == 6


def test_float32_mask_kernel_stays_float32_and_vectorizes():
    """The fused RNG + multiply loop: no float64 in the float32 kernel, and vectorized (LLVM vector
    types; the 64-bit multiplies of SplitMix64 become vector multiplies)."""
    import re

    import numba

    from fastops import _config
    from fastops.regularization import dropout as mod

    x = np.ones(64, np.float32)
    thresh, scale = mod._threshold_scale(np.float32, 0.5)
    # recompiled uncached: Numba cannot inspect code loaded from its cache
    k = numba.njit(**_config.JIT_OPTIONS)(mod._KERNELS.kernel("mask", np.float32, "serial").py_func)
    k(x, np.empty_like(x), np.uint64(3), thresh, scale)
    ir = "\n".join(k.inspect_llvm().values())
    funcs = [f for f in ir.split("\ndefine ")[1:] if "@_ZN7fastops" in f.splitlines()[0]]
    body = "\n".join(funcs).splitlines()
    assert not [line for line in body if "double" in line or "fpext" in line]
    assert re.search(r"<\d+ x float>", ir) and re.search(r"mul <\d+ x i64>", ir)
