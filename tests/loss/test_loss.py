"""Loss-specific checks beyond the generic op-table tests."""
import numpy as np
import pytest

import fastops


def test_bce_with_logits_is_stable_for_large_logits():
    x = np.array([1e3, -1e3, 1e3, -1e3], np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    out = fastops.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(out, [0.0, 0.0, 1e3, 1e3])
    gx, gy, _, _ = fastops.binary_cross_entropy_with_logits.backward(np.ones(4, np.float32), x, y, reduction="none")
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))


def test_bce_log_clamped_at_minus_100():
    x = np.array([0.0, 1.0], np.float64)
    y = np.array([1.0, 0.0], np.float64)
    np.testing.assert_allclose(fastops.binary_cross_entropy(x, y, reduction="none"), [100.0, 100.0])


def test_smooth_l1_beta_zero_is_l1():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 50))
    assert fastops.smooth_l1_loss(x, y, beta=0.0) == fastops.l1_loss(x, y)


def test_cross_entropy_int32_targets_and_all_ignored():
    x = np.random.default_rng(2).standard_normal((4, 3))
    t = np.array([0, 2, 1, 1], np.int32)
    assert fastops.cross_entropy(x, t) == fastops.cross_entropy(x, t.astype(np.int64))
    out = fastops.cross_entropy(x, np.full(4, -100))
    assert np.isnan(out)  # 0 / 0, as in torch


def test_broadcast_targets_follow_torch():
    # mse/l1/smooth_l1/huber/kl_div broadcast input against target (torch warns, allows it);
    # the binary cross entropies require equal shapes (torch raises)
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    y = np.array([0.5, 1.0, 4.0])
    out = fastops.mse_loss(x, y, reduction="none")
    np.testing.assert_array_equal(out, (x - y) ** 2)
    gx, gy = fastops.mse_loss.backward(np.ones((2, 3)), x, y, reduction="none")
    assert gx.shape == (2, 3) and gy.shape == (3,)
    np.testing.assert_allclose(gy, (-2 * (x - y)).sum(axis=0))
    with pytest.raises(ValueError, match="target"):
        fastops.binary_cross_entropy_with_logits(x, y)
    with pytest.raises(ValueError, match="broadcast"):
        fastops.l1_loss(x, np.ones(2))
