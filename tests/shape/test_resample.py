"""interpolate, affine_grid, grid_sample: dispatch, coordinate rules, edge cases the op table does
not cover (non-finite grids and inputs, the spatial transformer chain, 4-D and 5-D). The parallel
kernels of each mode run from the table's ``paths`` (tests/test_paths.py: against the reference
and bitwise across thread counts)."""
import numpy as np
import pytest

import fastops
from fastops.testing import shape as ref

from ..conftest import requires_torch, torch


@requires_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_5d_matches_torch_in_every_mode(mode, dtype):
    """Every padding x align_corners, forward and both gradients, on a random grid reaching past
    the borders (kinks included: PyTorch's one-sided conventions there are followed too)."""
    rng = np.random.default_rng(17)
    rtol, atol = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}[dtype]
    for padding in ("zeros", "border", "reflection"):
        for align in (False, True):
            x = rng.standard_normal((2, 3, 4, 5, 6)).astype(dtype)
            grid = rng.uniform(-1.4, 1.4, (2, 3, 4, 5, 3)).astype(dtype)
            grid[0, 0, 0, :3] = [[-1, -1, -1], [1, 1, 1], [0, 0, 0]]  # corners and the centre
            kw = {"mode": mode, "padding_mode": padding, "align_corners": align}
            y = fastops.grid_sample(x, grid, **kw)
            assert y.dtype == dtype and y.shape == (2, 3, 3, 4, 5)
            go = rng.standard_normal(y.shape).astype(dtype)
            gx, gg = fastops.grid_sample.backward(go, x, grid, **kw)
            tx, tg = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(grid).requires_grad_(True)
            ty = torch.nn.functional.grid_sample(tx, tg, **kw)
            tgx, tgg = torch.autograd.grad(ty, (tx, tg), torch.from_numpy(go))
            for a, b, what in [(y, ty, "forward"), (gx, tgx, "grad_input"), (gg, tgg, "grad_grid")]:
                assert a.dtype == dtype
                np.testing.assert_allclose(a, b.detach().numpy(), rtol=rtol, atol=atol * 10, err_msg=f"{what} {kw}")


def test_grid_sample_5d_identity_grid_reproduces_input():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, 3, 4, 5, 6))
    theta = np.tile(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]), (2, 1, 1))
    for align in (False, True):
        grid = fastops.affine_grid(theta, x.shape, align_corners=align)
        assert grid.shape == (2, 4, 5, 6, 3)
        for mode in ("bilinear", "nearest"):
            np.testing.assert_allclose(fastops.grid_sample(x, grid, mode=mode, align_corners=align), x, atol=1e-12)


@requires_torch
def test_spatial_transformer_chain_5d_matches_torch():
    """theta (N, 3, 4) -> affine_grid (5-D size) -> grid_sample -> loss: input and theta gradients
    as in PyTorch."""
    rng = np.random.default_rng(19)
    x = rng.standard_normal((2, 3, 5, 6, 7))
    theta = np.array([[0.9, 0.2, 0.1, 0.05], [-0.15, 1.1, -0.05, 0.1], [0.1, 0.05, 0.95, -0.1]])
    theta = theta + 0.1 * rng.standard_normal((2, 3, 4))
    size = (2, 3, 4, 5, 6)
    for padding in ("zeros", "border", "reflection"):
        for align in (False, True):
            grid = fastops.affine_grid(theta, size, align_corners=align)
            y = fastops.grid_sample(x, grid, padding_mode=padding, align_corners=align)
            go = rng.standard_normal(y.shape)
            gx, gg = fastops.grid_sample.backward(go, x, grid, padding_mode=padding, align_corners=align)
            (gt,) = fastops.affine_grid.backward(gg, theta, size, align_corners=align)

            tx = torch.from_numpy(x).requires_grad_(True)
            tt = torch.from_numpy(theta).requires_grad_(True)
            tgrid = torch.nn.functional.affine_grid(tt, size, align_corners=align)
            ty = torch.nn.functional.grid_sample(tx, tgrid, padding_mode=padding, align_corners=align)
            tgx, tgt = torch.autograd.grad(ty, (tx, tt), torch.from_numpy(go))
            np.testing.assert_allclose(grid, tgrid.detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(gx, tgx.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(gt, tgt.numpy(), rtol=1e-9, atol=1e-10)


def test_explain_serial_for_small_inputs():
    assert fastops.interpolate.explain((1, 2, 4, 4), "float32", size=8, mode="bilinear")["backend"] == "serial"
    assert fastops.grid_sample.explain((1, 2, 4, 4), "float64", grid_shape=(1, 3, 3, 2))["backend"] == "serial"
    d = fastops.grid_sample.explain((1, 2, 4, 4, 4), "float64", grid_shape=(1, 2, 3, 3, 3), mode="nearest")
    assert d["backend"] == "serial" and d["taps"] == 1
    assert fastops.grid_sample.explain((1, 2, 4, 4, 4), "float32")["taps"] == 8
    d = fastops.interpolate.explain((8, 64, 56, 56), "float32", scale_factor=2, mode="bilinear")
    assert d["output_spatial"] == (112, 112)
    assert fastops.affine_grid.explain((8, 2, 3), "float32")["backend"] == "numpy"


def test_scale_factor_maps_coordinates_with_its_inverse():
    """With scale_factor (and recompute_scale_factor not True) the source coordinate is
    (o + 0.5) / scale_factor - 0.5, not (o + 0.5) * in / out: the results differ."""
    x = np.random.default_rng(4).standard_normal((1, 1, 7)).astype(np.float64)
    by_scale = fastops.interpolate(x, scale_factor=1.7, mode="linear")
    by_size = fastops.interpolate(x, size=11, mode="linear")
    recomputed = fastops.interpolate(x, scale_factor=1.7, mode="linear", recompute_scale_factor=True)
    assert by_scale.shape == by_size.shape == (1, 1, 11)
    assert not np.allclose(by_scale, by_size)
    np.testing.assert_array_equal(recomputed, by_size)
    np.testing.assert_allclose(by_scale, ref._interp_ref(x, scale_factor=1.7, mode="linear"), rtol=1e-12)


def test_nearest_is_a_pure_copy_of_input_values():
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 7)).astype(np.float32)
    for mode in ("nearest", "nearest-exact"):
        y = fastops.interpolate(x, scale_factor=(1.7, 0.6), mode=mode)
        assert np.isin(y, x).all()


def test_grid_sample_identity_grid_reproduces_input():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 6))
    theta = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))
    for align in (False, True):
        grid = fastops.affine_grid(theta, x.shape, align_corners=align)
        for mode in ("bilinear", "nearest", "bicubic"):
            y = fastops.grid_sample(x, grid, mode=mode, align_corners=align)
            np.testing.assert_allclose(y, x, atol=1e-12)


def test_grid_sample_infinite_and_huge_coordinates_read_nothing():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    grid = np.array([[[[np.nan, 0.0], [np.inf, 0.0], [-np.inf, 0.5], [1e30, -1e30], [0.0, np.nan]]]], np.float32)
    for mode in ("bilinear", "nearest", "bicubic"):
        for padding in ("zeros", "border", "reflection"):
            y = fastops.grid_sample(x, grid, mode=mode, padding_mode=padding)
            gx, gg = fastops.grid_sample.backward(np.ones_like(y), x, grid, mode=mode, padding_mode=padding)
            assert y.shape == (1, 2, 1, 5) and gx.shape == x.shape and gg.shape == grid.shape
            assert np.isnan(y[..., [0, 4]]).all() and np.isfinite(gx).all()  # NaN: see below
            if padding == "zeros":
                assert not np.any(y[..., 1:4])


def test_grid_sample_nearest_has_zero_grid_gradient():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 4, 5))
    grid = rng.uniform(-1, 1, (1, 3, 3, 2))
    gx, gg = fastops.grid_sample.backward(np.ones((1, 2, 3, 3)), x, grid, mode="nearest")
    assert not np.any(gg) and gx.shape == x.shape


@requires_torch
def test_spatial_transformer_chain_matches_torch():
    """theta -> affine_grid -> grid_sample -> loss: input and theta gradients as in PyTorch."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 9, 11))
    theta = np.array([[0.9, 0.2, 0.1], [-0.15, 1.1, -0.05]]) + 0.1 * rng.standard_normal((2, 2, 3))
    size = (2, 3, 7, 8)
    for padding in ("zeros", "border", "reflection"):
        grid = fastops.affine_grid(theta, size)
        y = fastops.grid_sample(x, grid, padding_mode=padding)
        go = rng.standard_normal(y.shape)
        gx, gg = fastops.grid_sample.backward(go, x, grid, padding_mode=padding)
        (gt,) = fastops.affine_grid.backward(gg, theta, size)

        tx = torch.from_numpy(x).requires_grad_(True)
        tt = torch.from_numpy(theta).requires_grad_(True)
        ty = torch.nn.functional.grid_sample(
            tx, torch.nn.functional.affine_grid(tt, size, align_corners=False), padding_mode=padding, align_corners=False
        )
        tgx, tgt = torch.autograd.grad(ty, (tx, tt), torch.from_numpy(go))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gx, tgx.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gt, tgt.numpy(), rtol=1e-9, atol=1e-10)


@requires_torch
def test_interpolate_forward_matches_torch_where_torch_backward_is_not_its_adjoint():
    """Where ATen's backward kernels take a shortcut their forward does not (1-D/3-D nearest and
    bicubic when out == in but scale_factor != 1), fastops' forward matches torch and its backward
    is the exact adjoint of that forward (checked against the dense interpolation matrix)."""
    rng = np.random.default_rng(10)
    for shape, kw in [((1, 2, 9), {"scale_factor": 1.01, "mode": "nearest"}),
                      ((1, 2, 6, 7), {"scale_factor": 1.01, "mode": "bicubic"})]:
        x = rng.standard_normal(shape)
        y = fastops.interpolate(x, **kw)
        ty = torch.nn.functional.interpolate(torch.from_numpy(x), **kw).numpy()
        np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
        go = rng.standard_normal(y.shape)
        (gx,) = fastops.interpolate.backward(go, x, **kw)
        # <interpolate(e_i), go> for every unit input e_i
        expect = np.array([np.sum(fastops.interpolate(e.reshape(shape), **kw) * go)
                           for e in np.eye(x.size)]).reshape(shape)
        np.testing.assert_allclose(gx, expect, rtol=1e-12, atol=1e-12)


# --- non-finite values (the special-values issue) -------------------------------------------------


def _oob_grid(dtype, k=2):
    """Points whose taps (bicubic's 4x4 included) are all outside the input (x beyond the right
    edge, or above the top), and one whose taps are all inside and miss element [0, 0]."""
    far = [[1.9] + [0.1] * (k - 1), [0.2, -1.8] + [0.0] * (k - 2), [3.0] * k, [0.3] * k]
    shape = (1,) * (k - 1) + (1, len(far), k)
    return np.array(far, dtype).reshape(shape)


MODES_BY_RANK = [(2, "bilinear"), (2, "nearest"), (2, "bicubic"), (3, "bilinear"), (3, "nearest")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,mode", MODES_BY_RANK, ids=[f"{k + 2}d-{m}" for k, m in MODES_BY_RANK])
def test_grid_sample_zeros_padding_out_of_bounds_taps_ignore_non_finite_input(k, mode, dtype):
    """An out-of-bounds tap contributes nothing: a NaN/inf at x[..., 0, 0] (the element an
    out-of-bounds tap used to read, times a zero weight) leaves every output that does not read it
    finite and equal to the result with a finite value there (and to PyTorch's)."""
    rng = np.random.default_rng(11)
    grid = _oob_grid(dtype, k)
    for bad in (np.nan, np.inf, -np.inf):
        x = rng.standard_normal((2, 3, 5, 6, 7)[:k + 2]).astype(dtype)
        clean = x.copy()
        x.reshape(2, 3, -1)[:, :, 0] = bad
        g2 = np.concatenate([grid, grid])
        y = fastops.grid_sample(x, g2, mode=mode, padding_mode="zeros")
        assert np.isfinite(y).all(), (bad, y)
        np.testing.assert_array_equal(y, fastops.grid_sample(clean, g2, mode=mode, padding_mode="zeros"))
        np.testing.assert_allclose(y[..., :3], 0.0)
        go = rng.standard_normal(y.shape).astype(dtype)
        gx, gg = fastops.grid_sample.backward(go, x, g2, mode=mode, padding_mode="zeros")
        cgx, cgg = fastops.grid_sample.backward(go, clean, g2, mode=mode, padding_mode="zeros")
        assert np.isfinite(gx).all() and np.isfinite(gg).all()
        np.testing.assert_array_equal(gx, cgx)
        np.testing.assert_array_equal(gg, cgg)
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_(True)
            tg = torch.from_numpy(g2).requires_grad_(True)
            ty = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode="zeros", align_corners=False)
            tgx, tgg = torch.autograd.grad(ty, (tx, tg), torch.from_numpy(go))
            tol = ref._TOL[dtype]
            np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol[0], atol=tol[1])
            np.testing.assert_allclose(gx, tgx.numpy(), rtol=tol[0], atol=tol[1])
            np.testing.assert_allclose(gg, tgg.numpy(), rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,mode", MODES_BY_RANK, ids=[f"{k + 2}d-{m}" for k, m in MODES_BY_RANK])
def test_grid_sample_non_finite_grad_output_at_out_of_bounds_points(k, mode, dtype):
    """A grad_output of inf/NaN at a point that reads nothing adds nothing to grad_input."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 2, 5, 6, 7)[:k + 2]).astype(dtype)
    grid = _oob_grid(dtype, k)
    go = rng.standard_normal((1, 2) + (1,) * (k - 1) + (4,)).astype(dtype)
    clean = go.copy()
    go.reshape(2, 4)[0, 0], go.reshape(2, 4)[1, 1] = np.inf, np.nan
    gx, _ = fastops.grid_sample.backward(go, x, grid, mode=mode)
    cgx, _ = fastops.grid_sample.backward(clean, x, grid, mode=mode)
    np.testing.assert_array_equal(gx, cgx)
    assert np.isfinite(gx).all()


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("k,mode", MODES_BY_RANK[3:], ids=[f"5d-{m}" for _, m in MODES_BY_RANK[3:]])
def test_grid_sample_5d_nan_coordinate_gives_nan(k, mode, padding):
    """5-D as 4-D: NaN output, nothing to grad_input, grad_grid NaN in the slots of the other
    components (trilinear; 0 for nearest). (PyTorch's 5-D kernel gives 0 with zeros padding and a
    clipped voxel otherwise: not compared.)"""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 2, 3, 4, 5))
    nan = np.nan
    grid = np.array([[nan, 0.1, 0.2], [0.1, nan, 0.2], [0.1, 0.2, nan], [nan] * 3, [0.3, -0.2, 0.1]]).reshape(1, 1, 1, 5, 3)
    kw = {"mode": mode, "padding_mode": padding}
    y = fastops.grid_sample(x, grid, **kw)
    assert np.isnan(y[..., :4]).all() and np.isfinite(y[..., 4]).all()
    go = rng.standard_normal(y.shape)
    gx, gg = fastops.grid_sample.backward(go, x, grid, **kw)
    gx1, gg1 = fastops.grid_sample.backward(go[..., 4:], x, grid[..., 4:, :], **kw)
    np.testing.assert_array_equal(gx, gx1)
    np.testing.assert_array_equal(gg[..., 4:, :], gg1)
    want = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]], bool) if mode == "bilinear" else np.zeros((4, 3), bool)
    np.testing.assert_array_equal(np.isnan(gg[0, 0, 0, :4]), want)
    assert not np.any(np.nan_to_num(gg[0, 0, 0, :4]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample_nan_coordinate_gives_nan(mode, padding, dtype):
    """A NaN grid coordinate (either component) samples an undefined location: NaN in every channel
    (as PyTorch's bilinear-zeros and bicubic kernels give). It adds nothing to grad_input; its
    grad_grid follows PyTorch's (bilinear: NaN in the other component's slot, the NaN component's
    own slot 0; bicubic: NaN in both; nearest: 0). The other points are unaffected."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 2, 4, 5)).astype(dtype)
    grid = np.array([[[[np.nan, 0.1], [0.1, np.nan], [np.nan, np.nan], [0.3, -0.2]]]], dtype)
    kw = {"mode": mode, "padding_mode": padding}
    y = fastops.grid_sample(x, grid, **kw)
    assert np.isnan(y[..., :3]).all() and np.isfinite(y[..., 3]).all()
    np.testing.assert_array_equal(y[..., 3:], fastops.grid_sample(x, grid[:, :, 3:], **kw))
    go = rng.standard_normal(y.shape).astype(dtype)
    gx, gg = fastops.grid_sample.backward(go, x, grid, **kw)
    gx1, gg1 = fastops.grid_sample.backward(go[..., 3:], x, grid[:, :, 3:], **kw)
    np.testing.assert_array_equal(gx, gx1)
    np.testing.assert_array_equal(gg[:, :, 3:], gg1)
    nan = {"bilinear": [[0, 1], [1, 0], [1, 1]], "bicubic": [[1, 1]] * 3, "nearest": [[0, 0]] * 3}[mode]
    np.testing.assert_array_equal(np.isnan(gg[0, 0, :3]), np.array(nan, bool))
    assert not np.any(gg[0, 0, :3][~np.isnan(gg[0, 0, :3])])
    # PyTorch's CPU kernels: NaN for bilinear with zeros padding and for bicubic (grad_input too
    # with zeros padding); bilinear with border/reflection crashes (segfault) on a NaN coordinate,
    # nearest returns 0 (zeros) or a clipped pixel: not compared
    if torch is not None and (mode == "bicubic" or (mode, padding) == ("bilinear", "zeros")):
        tx = torch.from_numpy(x).requires_grad_(True)
        tg = torch.from_numpy(grid).requires_grad_(True)
        ty = torch.nn.functional.grid_sample(tx, tg, align_corners=False, **kw)
        tgx, tgg = torch.autograd.grad(ty, (tx, tg), torch.from_numpy(go))
        tol = ref._TOL[dtype]
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol[0], atol=tol[1])
        np.testing.assert_allclose(gg, tgg.numpy(), rtol=tol[0], atol=tol[1])
        if padding == "zeros":
            np.testing.assert_allclose(gx, tgx.numpy(), rtol=tol[0], atol=tol[1])
