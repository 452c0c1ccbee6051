"""local_response_norm and l2_normalize: torch agreement over every window size parity and rank,
Caffe's eps semantics, dispatch. (The generic table tests in tests/test_ops.py add NumPy
references, finite differences, layouts and error cases, and tests/test_paths.py runs the table's
``paths``, the parallel kernels, against the reference and bitwise across thread counts.)"""
import numpy as np
import pytest

import fastops
from fastops import _threads

from ..conftest import requires_torch, torch


@requires_torch
@pytest.mark.parametrize("shape", [(2, 9, 4), (2, 9, 3, 4), (1, 9, 2, 3, 2)], ids=["3d", "4d", "5d"])
def test_lrn_matches_torch_for_even_and_odd_sizes(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    for size in (1, 2, 3, 4, 5, 6, 11):
        kw = {"alpha": 0.7, "beta": 0.75, "k": 1.3}
        tx = torch.from_numpy(x).requires_grad_()
        ty = torch.nn.functional.local_response_norm(tx, size, **kw)
        (tg,) = torch.autograd.grad(ty, tx, torch.from_numpy(g))
        np.testing.assert_allclose(fastops.local_response_norm(x, size, **kw), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fastops.local_response_norm.backward(g, x, size, **kw)[0], tg.numpy(), rtol=1e-10, atol=1e-12)


def test_l2_normalize_adds_eps_before_the_square_root_like_caffe():
    x = np.zeros((1, 3, 2), np.float32)
    x[0, :, 1] = [3.0, 4.0, 0.0]
    y = fastops.l2_normalize(x, eps=1e-10)
    np.testing.assert_array_equal(y[0, :, 0], 0)  # all-zero position: 0 / sqrt(eps), no NaN
    np.testing.assert_allclose(y[0, :, 1], [0.6, 0.8, 0.0], rtol=1e-6)
    y = fastops.l2_normalize(x, eps=11.0)  # sqrt(25 + 11) = 6
    np.testing.assert_allclose(y[0, :, 1], [0.5, 4 / 6, 0.0], rtol=1e-6)
    gx, gs = fastops.l2_normalize.backward(np.ones_like(x), x)
    assert gs is None and np.all(np.isfinite(gx))


@requires_torch
def test_l2_normalize_equals_ssd_reference_f_normalize_times_scale():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 5, 5))
    s = np.full(16, 20.0)
    ref = torch.nn.functional.normalize(torch.from_numpy(x), dim=1) * torch.from_numpy(s).view(1, 16, 1, 1)
    np.testing.assert_allclose(fastops.l2_normalize(x, s), ref.numpy(), rtol=1e-9)
    gx, gs = fastops.l2_normalize.backward(np.ones_like(x), x, s[:1], channel_shared=True)
    assert gs.shape == (1,)


def test_explain_small_is_serial_and_blocks_depend_on_shape_only():
    with fastops.threads(min(2, _threads.max_threads())):
        assert fastops.local_response_norm.explain((1, 4, 3, 3), "float32", size=3)["backend"] == "serial"
        assert fastops.l2_normalize.explain((1, 4, 3, 3), "float64")["backend"] == "serial"
        d = fastops.l2_normalize.explain((16, 512, 38, 38), "float32")
        assert d["block"] == 128 and d["units"] == 16 * 12
        with pytest.raises(ValueError, match="local_response_norm"):
            fastops.local_response_norm.explain((4, 4), "float32", size=3)
