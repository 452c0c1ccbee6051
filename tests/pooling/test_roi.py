"""RoI ops: dispatch, hand-checked torchvision semantics, edge cases.

The op table (fastops/testing/pooling.py) covers forward vs NumPy, finite differences, torch
compositions, layouts and errors, and its ``paths`` the parallel kernels (tests/test_paths.py:
against the reference and bitwise across thread counts); this file checks what a table cannot
express.
"""
import numpy as np
import pytest

import fastops

OPS = ["roi_pool", "roi_align", "ps_roi_pool", "ps_roi_align"]


def test_explain_serial_for_small_inputs():
    d = fastops.roi_align.explain((1, 4, 8, 8), "float64", output_size=2, num_boxes=2)
    assert d["backend"] == "serial" and d["kernel"].startswith("roi_align_fwd_f64")
    assert d["backward_kernel"].startswith("roi_align_bwd_f64")


def test_roi_align_hand_values():
    # 1 x 1 x 4 x 4 ramp x[h, w] = 4h + w: bilinear sampling of a linear function is exact
    x = (np.arange(16, dtype=np.float64) * 1.0).reshape(1, 1, 4, 4)
    # aligned=False, box (0.5, 0.5)-(2.5, 2.5), one bin, 2x2 samples at 1.0 and 2.0 -> mean 1.5
    out = fastops.roi_align(x, np.array([[0, 0.5, 0.5, 2.5, 2.5]]), 1, sampling_ratio=2)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == pytest.approx(4 * 1.5 + 1.5)
    # aligned=True shifts by -0.5: samples at 0.5 and 1.5 -> mean 1.0
    out = fastops.roi_align(x, np.array([[0, 0.5, 0.5, 2.5, 2.5]]), 1, sampling_ratio=2, aligned=True)
    assert out[0, 0, 0, 0] == pytest.approx(5.0)
    # a point beyond the last row/column (but <= H) is clamped to it; beyond H it counts as 0
    out = fastops.roi_align(x, np.array([[0, 3.2, 3.2, 3.8, 3.8]]), 1, sampling_ratio=1)
    assert out[0, 0, 0, 0] == pytest.approx(15.0)  # sample at 3.7 -> clamped to (3, 3)
    out = fastops.roi_align(x, np.array([[0, 4.5, 0.0, 5.0, 1.0]]), 1, sampling_ratio=1)
    assert out[0, 0, 0, 0] == 0.0  # x = 4.75 > W = 4


def test_roi_align_adaptive_grid_is_ceil_of_bin_size():
    # roi 6.2 wide, 2 bins -> bin 3.1 -> ceil -> 4 samples per bin; compare against explicit ratio 4
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 9, 9))
    b = np.array([[0, 1.0, 1.0, 7.2, 7.2]])
    np.testing.assert_array_equal(fastops.roi_align(x, b, 2), fastops.roi_align(x, b, 2, sampling_ratio=4))
    np.testing.assert_array_equal(fastops.roi_align(x, b, 2, sampling_ratio=0), fastops.roi_align(x, b, 2, sampling_ratio=4))
    assert not np.array_equal(fastops.roi_align(x, b, 2), fastops.roi_align(x, b, 2, sampling_ratio=3))


def test_roi_pool_hand_values_and_gradient_goes_to_the_argmax():
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 1, 3] = 7.0
    x[0, 0, 3, 1] = 5.0
    b = np.array([[0, 0.4, 0.4, 3.6, 3.6]], np.float32)  # rounds to 0..4 -> 5 px, 2 bins of 2.5
    out = fastops.roi_pool(x, b, 2)
    # bins rows [0, 3) and [2, 5): (0,1) holds (1,3) = 7, (1,0) holds (3,1) = 5
    np.testing.assert_array_equal(out[0, 0], [[0, 7], [5, 0]])
    (g, gb) = fastops.roi_pool.backward(np.ones_like(out), x, b, 2)
    assert gb is None
    assert g[0, 0, 1, 3] == 1 and g[0, 0, 3, 1] == 1
    # ties: the first maximum in row-major order of the bin takes the gradient
    assert g[0, 0, 0, 0] == 1 and g[0, 0, 2, 0] == 0 and g.sum() == 4


def test_round_half_away_from_zero():
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
    # 2.5 -> 3 (not banker's 2): one-pixel box at column 3 -> value x[0, 3]
    out = fastops.roi_pool(x, np.array([[0, 2.5, 0.0, 2.5, 0.0]]), 1)
    assert out[0, 0, 0, 0] == 3.0


def test_ps_channel_mapping():
    # channel c_in = (c_out * ph + i) * pw + j holds the constant c_in: output bin (i, j) of
    # channel c_out must read exactly that channel
    PH, PW, CO = 2, 3, 2
    C = CO * PH * PW
    x = np.broadcast_to(np.arange(C, dtype=np.float64)[None, :, None, None], (1, C, 8, 8)).copy()
    b = np.array([[0, 0.0, 0.0, 7.0, 7.0]])
    expect = np.arange(C, dtype=np.float64).reshape(1, CO, PH, PW)
    np.testing.assert_allclose(fastops.ps_roi_align(x, b, (PH, PW)), expect)
    np.testing.assert_allclose(fastops.ps_roi_pool(x, b, (PH, PW)), expect)


def test_ps_roi_pool_never_reads_the_last_row_and_column():
    # torchvision's forward clips bins to [0, H - 1]
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 3, :] = 100.0
    x[0, 0, :, 3] = 100.0
    out = fastops.ps_roi_pool(x, np.array([[0, 0.0, 0.0, 4.0, 4.0]]), 1)
    assert out[0, 0, 0, 0] == 0.0


@pytest.mark.parametrize("name", OPS)
def test_empty_box_list(name):
    x = np.ones((2, 8, 5, 5), np.float32)
    f = getattr(fastops, name)
    for boxes in (np.zeros((0, 5), np.float32), [], [np.zeros((0, 4), np.float32)]):
        out = f(x, boxes, 2)
        assert out.shape == (0, 2 if name.startswith("ps_") else 8, 2, 2) and out.dtype == np.float32
        g, gb = f.backward(out, x, boxes, 2)
        assert gb is None and g.shape == x.shape and g.dtype == np.float32 and not g.any()


@pytest.mark.parametrize("name", OPS)
def test_boxes_fully_outside_give_zero_and_zero_gradient(name):
    x = np.ones((1, 8, 5, 5))
    b = np.array([[0, 20.0, 20.0, 30.0, 30.0], [0, -30.0, -30.0, -20.0, -20.0]])
    f = getattr(fastops, name)
    out = f(x, b, 2)
    assert not out.any()
    assert not f.backward(np.ones_like(out), x, b, 2)[0].any()


@pytest.mark.parametrize("name", OPS)
def test_list_of_boxes_equals_batch_index_form(name):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 7, 7))
    b0, b1 = rng.uniform(0, 3, (3, 4)), rng.uniform(0, 3, (2, 4))
    b0[:, 2:] += 3
    b1[:, 2:] += 3
    rois = np.concatenate([np.c_[np.zeros(3), b0], np.c_[np.ones(2), b1]])
    f = getattr(fastops, name)
    out = f(x, [b0, b1], 2)
    np.testing.assert_array_equal(out, f(x, rois, 2))
    g = np.ones_like(out)
    np.testing.assert_array_equal(f.backward(g, x, [b0, b1], 2)[0], f.backward(g, x, rois, 2)[0])


def test_backward_accumulates_boxes_of_the_same_image_in_box_order():
    # same box twice: the gradient is exactly twice the single-box gradient
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 8))
    b = np.array([[1, 1.3, 0.7, 6.2, 5.9]])
    g1 = rng.standard_normal((1, 3, 2, 2))
    single = fastops.roi_align.backward(g1, x, b, 2)[0]
    double = fastops.roi_align.backward(np.concatenate([g1, g1]), x, np.concatenate([b, b]), 2)[0]
    np.testing.assert_allclose(double, 2 * single, rtol=1e-14, atol=0)
    assert not single[0].any()
