"""max/avg pooling, unpooling and adaptive max pooling: PyTorch's indices, ties, NaN, ceil_mode
shapes and divisors, unpool(pool) round trips, return_indices, dispatch. The generic checks
(forward vs NumPy, gradients, layouts, errors) run from the op table, and tests/test_paths.py runs
each dispatch path of the table's ``paths`` (against the reference and bitwise across thread
counts)."""
import itertools

import numpy as np
import pytest

import fastops
from fastops import _threads

from ..conftest import requires_torch, torch

F = torch.nn.functional if torch is not None else None

CASES = [
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
    (1, (3, 10), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    (2, (2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (2, 9, 8), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(2, 1))),
    (3, (1, 2, 5, 6, 5), dict(kernel_size=(2, 3, 2), stride=(2, 2, 1), padding=(1, 1, 0), ceil_mode=True)),
    (2, (1, 2, 10, 11), dict(kernel_size=(2, 3), stride=3, padding=1, dilation=(3, 2), ceil_mode=True)),
]


def _ties(rng, shape, dtype):
    # few distinct values: many windows hold several equal maxima
    return rng.integers(0, 3, size=shape).astype(dtype)


def _torch_pool(k, x, g, **kw):
    tx = torch.from_numpy(x).requires_grad_()
    out, idx = getattr(F, f"max_pool{k}d")(tx, return_indices=True, **kw)
    (gx,) = torch.autograd.grad(out, tx, torch.from_numpy(g))
    return out.detach().numpy(), idx.numpy(), gx.numpy()


@requires_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("data", ["random", "ties", "constant", "nan", "neginf"])
def test_max_pool_values_indices_and_gradient_equal_torch(dtype, data):
    rng = np.random.default_rng(0)
    for k, shape, kw in CASES:
        if data == "random":
            x = rng.standard_normal(shape).astype(dtype)
        elif data == "ties":
            x = _ties(rng, shape, dtype)
        elif data == "constant":
            x = np.full(shape, 1.5, dtype)
        elif data == "neginf":  # windows whose every element is -inf keep PyTorch's initial index
            x = rng.standard_normal(shape).astype(dtype)
            x[rng.random(shape) < 0.7] = -np.inf
        else:
            x = rng.standard_normal(shape).astype(dtype)
            x[rng.random(shape) < 0.3] = np.nan
        f = getattr(fastops, f"max_pool{k}d")
        out, idx = f(x, return_indices=True, **kw)
        g = rng.standard_normal(out.shape).astype(dtype)
        tout, tidx, tgx = _torch_pool(k, x, g, **kw)
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(idx, tidx, err_msg=f"{k}d {kw} {data}")
        np.testing.assert_array_equal(out, tout)
        np.testing.assert_array_equal(f(x, **kw), tout)  # the value-only kernel agrees
        (gx,) = f.backward(g, x, **kw)
        (gx_i,) = f.backward(g, x, **kw, indices=idx)
        (gx_r,) = f.backward(g, x, **kw, return_indices=True)
        np.testing.assert_allclose(gx, tgx, rtol=1e-6, atol=1e-6)
        assert np.array_equal(gx, gx_i) and np.array_equal(gx, gx_r)


def test_constant_input_sends_gradient_to_first_element_of_each_window():
    x = np.ones((1, 1, 4, 4), np.float32)
    out, idx = fastops.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])
    (gx,) = fastops.max_pool2d.backward(np.ones_like(out), x, 2)
    expect = np.zeros((4, 4), np.float32)
    expect[::2, ::2] = 1
    np.testing.assert_array_equal(gx[0, 0], expect)


def test_nan_is_the_maximum():
    x = np.array([[[1.0, np.nan, 3.0, 2.0, np.inf, -np.inf]]], np.float32)
    out, idx = fastops.max_pool1d(x, 2, return_indices=True)
    np.testing.assert_array_equal(out[0, 0], [np.nan, 3.0, np.inf])
    np.testing.assert_array_equal(idx[0, 0], [1, 2, 4])
    x = np.full((1, 1, 4), -np.inf, np.float64)
    out, idx = fastops.max_pool1d(x, 2, return_indices=True)
    assert np.all(out == -np.inf) and idx.tolist() == [[[0, 2]]]


@requires_torch
@pytest.mark.parametrize("data", ["random", "ties", "nan"])
def test_adaptive_max_pool_indices_and_gradient_equal_torch(data):
    rng = np.random.default_rng(1)
    for k, shape, osz in [(1, (2, 3, 7), 3), (1, (3, 5), 8), (1, (2, 3, 8), 4), (2, (2, 2, 7, 9), (3, 4)),
                          (2, (3, 5, 6), (4, None)), (2, (2, 2, 6, 8), (3, 2))]:
        x = rng.standard_normal(shape) if data != "ties" else _ties(rng, shape, np.float64)
        if data == "nan":
            x[rng.random(shape) < 0.3] = np.nan
        f = getattr(fastops, f"adaptive_max_pool{k}d")
        out, idx = f(x, osz, return_indices=True)
        tx = torch.from_numpy(x).requires_grad_()
        tout, tidx = getattr(F, f"adaptive_max_pool{k}d")(tx, osz, return_indices=True)
        g = rng.standard_normal(out.shape)
        (tgx,) = torch.autograd.grad(tout, tx, torch.from_numpy(g))
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_array_equal(out, tout.detach().numpy())
        (gx,) = f.backward(g, x, osz)
        np.testing.assert_allclose(gx, tgx.numpy(), rtol=1e-12, atol=1e-12)
        assert np.array_equal(f.backward(g, x, osz, indices=idx)[0], gx)


@requires_torch
def test_ceil_mode_shapes_and_avg_divisors_equal_torch():
    """Output sizes (ceil_mode windows that overhang the padded edge or would start in the right
    padding) and avg_pool's divisors, over a grid of 1-D geometries."""
    rng = np.random.default_rng(2)
    for L, k, s, p, d in itertools.product((5, 6, 8), (2, 3, 4), (1, 2, 3), (0, 1, 2), (1, 2)):
        if p > k // 2 or L + 2 * p < d * (k - 1) + 1:
            continue
        x = rng.standard_normal((1, 2, L))
        for ceil in (False, True):
            kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
            got = fastops.max_pool1d(x, dilation=d, **kw)
            assert got.shape == F.max_pool1d(torch.from_numpy(x), dilation=d, **kw).shape, (L, kw, d)
            if d == 1:
                for cip in (True, False):
                    ref = F.avg_pool1d(torch.from_numpy(x), count_include_pad=cip, **kw).numpy()
                    np.testing.assert_allclose(fastops.avg_pool1d(x, count_include_pad=cip, **kw), ref,
                                               rtol=1e-12, atol=1e-12, err_msg=f"{L} {kw} {cip}")


@requires_torch
@pytest.mark.parametrize("k,shape,kw,osz", [
    (1, (2, 3, 9), dict(kernel_size=2), (9,)),
    (2, (2, 3, 7, 5), dict(kernel_size=3, stride=2, padding=1), (7, 5)),
    (2, (3, 6, 6), dict(kernel_size=2), None),
    (3, (1, 2, 5, 4, 5), dict(kernel_size=2, stride=2), (5, 4, 5)),
])
def test_unpool_of_pool_round_trip_equals_torch(k, shape, kw, osz):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    out, idx = getattr(fastops, f"max_pool{k}d")(x, return_indices=True, **kw)
    up = getattr(fastops, f"max_unpool{k}d")
    y = up(out, idx, output_size=osz, **kw)
    tout = torch.from_numpy(out).requires_grad_()
    ty = getattr(F, f"max_unpool{k}d")(tout, torch.from_numpy(idx), output_size=osz, **kw)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    g = rng.standard_normal(y.shape).astype(np.float32)
    (tg,) = torch.autograd.grad(ty, tout, torch.from_numpy(g))
    gx, gi = up.backward(g, out, idx, output_size=osz, **kw)
    assert gi is None
    np.testing.assert_array_equal(gx, tg.numpy())
    if osz is not None:
        # every kept maximum lands where it came from
        np.testing.assert_array_equal(y[y != 0], x[y != 0])


def test_backward_rejects_bad_indices():
    x = np.random.default_rng(4).standard_normal((1, 2, 6, 6)).astype(np.float32)
    out, idx = fastops.max_pool2d(x, 2, return_indices=True)
    g = np.ones_like(out)
    with pytest.raises(ValueError, match="max_pool2d.*indices"):
        fastops.max_pool2d.backward(g, x, 2, indices=idx[..., :1])
    with pytest.raises(ValueError, match="max_pool2d.*invalid max index"):
        fastops.max_pool2d.backward(g, x, 2, indices=idx + 36)
    with pytest.raises(TypeError, match="adaptive_max_pool2d.*indices"):
        fastops.adaptive_max_pool2d.backward(g, x, 3, indices=idx.astype(np.float32))
    with pytest.raises(TypeError, match="max_pool2d.*return_indices"):
        fastops.max_pool2d(x, 2, return_indices=1)


def test_explain_names_the_kernel():
    with fastops.threads(1):
        d = fastops.max_pool2d.explain((1, 2, 8, 8), "float32", kernel_size=2)
        assert d["kernel"] == "pool_max_val_f32_serial" and d["backend"] == "serial"
        d = fastops.max_pool2d.explain((1, 2, 8, 8), "float64", kernel_size=2, return_indices=True)
        assert d["kernel"] == "pool_max_fwd_f64_serial"
    if _threads.max_threads() >= 2:
        with fastops.threads(2):
            assert fastops.avg_pool2d.explain((8, 64, 112, 112), "float32", kernel_size=2)["backend"] == "parallel"


def test_adaptive_max_divisible_sizes_use_the_window_kernels():
    with fastops.threads(1):
        d = fastops.adaptive_max_pool2d.explain((2, 4, 56, 56), "float32", output_size=7)
        assert d["kernel"] == "pool_max_val_f32_serial"
        d = fastops.adaptive_max_pool2d.explain((2, 4, 10, 10), "float32", output_size=(3, 4))
        assert d["kernel"] == "adaptive_max_fwd_f32_serial"
