"""deform_conv2d and correlation: mask gradients, cross-checks with torch, edge cases (the thread-count property: the table's ``paths``, tests/test_paths.py)."""
import numpy as np
import pytest

import fastops
from fastops import _dispatch
from fastops.testing.conv import _deform_case, correlation_ref, deform_conv2d_ref, deform_conv2d_torch

from ..conftest import requires_torch, torch


def _args(s):
    x, off, w, b = s.args
    return x, off, w, b, s.kwargs


def test_mask_and_all_gradients_match_finite_differences():
    """check_vjp in float64 over all five array parameters at once (mask included)."""
    rng = np.random.default_rng(11)
    s = _deform_case(rng, np.float64, 2, 4, 6, 5, 4, 3, 2, G=2, OG=2, stride=(1, 2), padding=1, dilation=(2, 1),
                     use_mask=True)
    x, off, w, b, kw = _args(s)
    m = kw.pop("mask")
    out = fastops.deform_conv2d(x, off, w, b, mask=m, **kw)
    c = rng.standard_normal(out.shape)
    grads = fastops.deform_conv2d.backward(c, x, off, w, b, mask=m, **kw)
    assert len(grads) == 5 and all(g.shape == a.shape for g, a in zip(grads, (x, off, w, b, m)))
    dirs = [rng.standard_normal(a.shape) for a in (x, off, w, b, m)]
    eps = 1e-6

    def f(sign):
        a = [v + sign * eps * d for v, d in zip((x, off, w, b, m), dirs)]
        return fastops.deform_conv2d(a[0], a[1], a[2], a[3], mask=a[4], **kw)

    fd = np.sum((f(1) - f(-1)) / (2 * eps) * c)
    an = sum(np.sum(g * d) for g, d in zip(grads, dirs))
    scale = sum(np.sum(np.abs(g * d)) for g, d in zip(grads, dirs))
    assert abs(fd - an) <= 1e-6 * scale


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_mask_gradient_matches_torch_composition(dtype):
    rng = np.random.default_rng(12)
    s = _deform_case(rng, dtype, 2, 4, 7, 6, 6, 3, 3, G=2, OG=2, padding=1, use_mask=True)
    x, off, w, b, kw = _args(s)
    m = kw.pop("mask")
    ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, off, w, b, m)]
    tout = deform_conv2d_torch(torch, *ts[:4], mask=ts[4], **kw)
    out = fastops.deform_conv2d(x, off, w, b, mask=m, **kw)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=tol, atol=tol)
    c = rng.standard_normal(out.shape).astype(dtype)
    tg = torch.autograd.grad(tout, ts, torch.from_numpy(c))
    grads = fastops.deform_conv2d.backward(c, x, off, w, b, mask=m, **kw)
    for name, g, t in zip(("input", "offset", "weight", "bias", "mask"), grads, tg):
        np.testing.assert_allclose(g, t.numpy(), rtol=10 * tol, atol=10 * tol, err_msg=name)


@requires_torch
@pytest.mark.torch
def test_zero_offsets_and_unit_mask_equal_conv2d():
    """With zero offsets (and a mask of ones) deform_conv2d is F.conv2d, groups/stride/dilation included."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), groups=2, **kw)
    Ho, Wo = ref.shape[2:]
    off = np.zeros((2, 2 * 6, Ho, Wo))
    out = fastops.deform_conv2d(x, off, w, b, **kw)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-12, atol=1e-12)
    out_m = fastops.deform_conv2d(x, off, w, b, mask=np.ones((2, 6, Ho, Wo)), **kw)
    np.testing.assert_allclose(out_m, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_samples_outside_the_image_are_zero_and_mask_none_matches_ones():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    off = np.full((1, 18, 2, 3), 50.5, np.float32)  # every sample far outside
    assert np.array_equal(fastops.deform_conv2d(x, off, w), np.zeros((1, 3, 2, 3), np.float32))
    off[:, ::2] = -1.0  # y exactly -1: torchvision's rule gives 0
    off[:, 1::2] = 0.25
    out = fastops.deform_conv2d(x, off, w)
    np.testing.assert_allclose(out, deform_conv2d_ref(x.astype(np.float64), off.astype(np.float64), w.astype(np.float64)),
                               rtol=1e-5, atol=1e-5)
    off2 = rng.uniform(-3, 3, (1, 18, 2, 3)).astype(np.float32)
    a = fastops.deform_conv2d(x, off2, w, padding=0)
    bm = fastops.deform_conv2d(x, off2, w, padding=0, mask=np.ones((1, 9, 2, 3), np.float32))
    assert np.array_equal(a, bm)


def test_non_finite_offsets_do_not_crash():
    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 3, 3))
    off = np.zeros((1, 18, 2, 2))
    off[0, 0, 0, 0] = np.nan
    off[0, 3, 1, 1] = np.inf
    off[0, 4, 0, 1] = -np.inf
    out = fastops.deform_conv2d(x, off, w)
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 0, 1, 0])
    grads = fastops.deform_conv2d.backward(np.ones_like(out), x, off, w)
    assert grads[0].shape == x.shape and grads[3] is None and grads[4] is None


def test_correlation_known_values():
    """x1 == x2 == 1 inside the image: the centre channel is 1 everywhere inside, displaced channels
    count the overlap of the shifted image with the padded border."""
    x = np.ones((1, 3, 4, 5))
    out = fastops.correlation(x, x, kernel_size=1, max_displacement=1, pad_size=1)
    assert out.shape == (1, 9, 4, 5)
    np.testing.assert_array_equal(out[0, 4], np.ones((4, 5)))
    np.testing.assert_array_equal(out[0, 5][:, -1], np.zeros(4))  # dx = +1 at the right border
    np.testing.assert_array_equal(out[0, 1][0], np.zeros(5))  # dy = -1 at the top border
    y = np.random.default_rng(15).standard_normal((2, 4, 6, 7))
    z = fastops.correlation(y, y, kernel_size=3, max_displacement=2, stride2=2, pad_size=3)
    np.testing.assert_allclose(z, correlation_ref(y, y, kernel_size=3, max_displacement=2, stride2=2, pad_size=3),
                               rtol=1e-12, atol=1e-12)


def test_dispatch_is_pure_and_explain_reports_it():
    assert _dispatch.parallel_backend("float32", 10**9, 2, "transcendental", units=1) == "serial"
    assert _dispatch.parallel_backend("float32", 10, 2, "transcendental", units=64) == "serial"
    assert _dispatch.parallel_backend("float64", 10**7, 1, "transcendental", units=64) == "serial"
    assert _dispatch.parallel_backend("float32", 10**7, 2, "transcendental", units=64) == "parallel"
    with fastops.threads(1):
        d = fastops.deform_conv2d.explain((8, 64, 56, 56), "float32", weight_shape=(64, 64, 3, 3), padding=1)
        assert d["backend"] == "serial" and d["output_shape"] == (8, 64, 56, 56)
        assert d["kernel"] == "deform_conv2d_im2col_f32_serial"
        c = fastops.correlation.explain((4, 256, 48, 64), "float64")
        assert c["output_shape"] == (4, 81, 48, 64) and c["kernel"] == "correlation_fwd_f64_serial"
    assert fastops.correlation.explain((1, 2, 5, 5), "float32", max_displacement=0, pad_size=0)["backend"] == "serial"
    # `python -m fastops explain deform_conv2d --shape INPUT OFFSET WEIGHT` passes all shapes
    d = fastops.deform_conv2d.explain((2, 4, 9, 9), "float64", shapes=[(2, 4, 9, 9), (2, 36, 7, 7), (6, 2, 3, 3)])
    assert d["output_shape"] == (2, 6, 7, 7) and d["backend"] == "serial"
    with pytest.raises(ValueError, match="deform_conv2d"):
        fastops.deform_conv2d.explain((2, 4, 9), "float32")


def test_noncontiguous_mask_and_grad_output():
    rng = np.random.default_rng(17)
    s = _deform_case(rng, np.float64, 1, 2, 5, 5, 2, 3, 3, padding=1, use_mask=True)
    x, off, w, b, kw = _args(s)
    m = kw.pop("mask")
    mt = np.asfortranarray(m)
    out = fastops.deform_conv2d(x, off, w, b, mask=m, **kw)
    assert np.array_equal(fastops.deform_conv2d(x, off, w, b, mask=mt, **kw), out)
    g = rng.standard_normal(out.shape)
    g1 = fastops.deform_conv2d.backward(g, x, off, w, b, mask=m, **kw)
    g2 = fastops.deform_conv2d.backward(np.asfortranarray(g), x, off, w, b, mask=mt, **kw)
    assert all(np.array_equal(a, c) for a, c in zip(g1, g2))
    assert np.array_equal(m, mt)  # unmodified
