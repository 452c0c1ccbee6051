"""Convolution family: dispatch decisions, path agreement, fusion, workspaces.

The generic table tests (tests/test_ops.py) cover forward/backward vs NumPy, torch and finite
differences for every parameter, and tests/test_paths.py each dispatch path (the table's ``paths``)
against the reference and bitwise across thread counts; this file covers what is specific to the
family."""
import numpy as np
import pytest

import fastops
from fastops import _dispatch, _threads


def test_dispatch_picks_path_per_shape():
    f32 = np.float32
    cb = _dispatch.conv_plan
    # 1x1, stride 1, unpadded: the input is the GEMM operand
    assert cb(f32, 8, 256, 64, 1, (1, 1, 1), (1, 1, 1), False, (1, 56, 56), 2) == ("gemm_1x1", "parallel")
    # a padded or strided 1x1 is not one GEMM: float32 runs the blocked kernels, float64 im2col
    assert cb(f32, 8, 256, 64, 1, (1, 1, 1), (1, 2, 2), False, (1, 28, 28), 2)[0] == "direct_blocked"
    assert cb(np.float64, 8, 256, 64, 1, (1, 1, 1), (1, 2, 2), False, (1, 28, 28), 2)[0] == "im2col_gemm"
    assert cb(np.float64, 8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2) == ("im2col_gemm", "parallel")
    # float32, groups 1, >= 32 outputs: the register-blocked direct kernel (measured
    # 1.2-2.2x faster than im2col + BLAS, see _dispatch); float64 and fewer outputs stay on im2col
    assert cb(f32, 8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2) == ("direct_blocked", "parallel")
    assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2)[0] == "direct_blocked"
    assert cb(np.float64, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2)[0] == "im2col_gemm"
    d = fastops.conv2d.explain((8, 3, 224, 224), "float32", weight_shape=(64, 3, 7, 7), stride=2, padding=3)
    assert d["path"] == "direct_blocked"
    # depthwise 1-D / 2-D (one channel in and out per group): the depthwise plane kernels, every
    # direction and both dtypes; channel multipliers, other small channel products per group and
    # 3-D depthwise: the direct kernel
    D = _dispatch.Direction
    for dt in (f32, np.float64):
        for d in D:
            assert cb(dt, 8, 128, 128, 128, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2, direction=d) == (
                "depthwise", "parallel")
        assert cb(dt, 8, 96, 96, 96, (1, 3, 3), (1, 2, 2), True, (1, 56, 56), 2)[0] == "depthwise"
    assert cb(f32, 8, 128, 256, 128, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2)[0] == "direct"
    assert cb(f32, 8, 128, 128, 128, (3, 3, 3), (1, 1, 1), True, (4, 8, 8), 2)[0] == "direct"
    assert cb(f32, 8, 64, 32, 32, (1, 3, 3), (1, 1, 1), True, (1, 28, 28), 2)[0] == "direct"
    # small problems or one thread: serial
    assert cb(f32, 1, 2, 3, 1, (1, 1, 3), (1, 1, 1), False, (1, 1, 5), 2) == ("direct", "serial")
    assert cb(f32, 8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 1) == ("direct_blocked", "serial")
    with fastops.threads(1):
        d = fastops.conv2d.explain((8, 128, 56, 56), "float32", weight_shape=(128, 1, 3, 3), groups=128, padding=1)
        assert d["path"] == "depthwise" and d["backend"] == "serial" and d["output_shape"] == (8, 128, 56, 56)
        d = fastops.conv_transpose2d.explain((8, 64, 28, 28), "float32", weight_shape=(64, 32, 4, 4), stride=2,
                                             padding=1)
        assert d["path"] == "direct_blocked" and d["output_shape"] == (8, 32, 56, 56)  # 4 stride phases


def test_dispatch_blocked_direct():
    """float32, groups 1, not a plain 1x1 GEMM, at least 32 output channels; never depends on
    the thread count (only serial / parallel does)."""
    f32 = np.float32
    cb = _dispatch.conv_plan
    assert cb(f32, 8, 256, 64, 1, (1, 1, 1), (1, 2, 2), False, (1, 28, 28), 2)[0] == "direct_blocked"  # 1x1 stride 2
    assert cb(f32, 8, 256, 64, 1, (1, 1, 1), (1, 1, 1), True, (1, 30, 30), 2)[0] == "direct_blocked"  # 1x1 padded
    assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2) == ("direct_blocked", "parallel")
    assert cb(f32, 8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2, dilation=(1, 2, 2))[0] == "direct_blocked"
    assert cb(f32, 2, 32, 32, 1, (3, 3, 3), (1, 1, 1), True, (16, 32, 32), 2)[0] == "direct_blocked"
    assert cb(f32, 8, 64, 16, 1, (1, 3, 3), (1, 2, 2), True, (1, 28, 28), 2)[0] == "im2col_gemm"
    assert cb(f32, 8, 64, 64, 2, (1, 3, 3), (1, 2, 2), True, (1, 28, 28), 2)[0] == "im2col_gemm"
    assert cb(np.float64, 8, 64, 64, 1, (1, 3, 3), (1, 2, 2), True, (1, 28, 28), 2)[0] == "im2col_gemm"
    for nt in (1, 2, 4):
        assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), nt)[0] == "direct_blocked"
    # the stem's gradients: the weight gradient has its blocked kernel; the data gradient (stride 2,
    # 3 input channels) runs im2col
    D, P = _dispatch.Direction, _dispatch.ConvPath
    assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2, direction=D.BACKWARD_WEIGHT)[0] is P.DIRECT_BLOCKED
    assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2, direction=D.BACKWARD_DATA)[0] is P.IM2COL_GEMM
    # a data gradient with >= 32 input channels runs the forward kernel (one call per stride phase),
    # at any map size (its pixel groups span rows), as do the forward and the weight gradient
    args = (4, 64, 64, 1, (1, 3, 3), (1, 1, 1), True)
    for sp in ((1, 56, 56), (1, 14, 14), (1, 7, 7), (1, 2, 2)):
        for d in D:
            assert cb(f32, *args, sp, 2, direction=d)[0] is P.DIRECT_BLOCKED
    assert cb(f32, 4, 64, 64, 1, (1, 3, 3), (1, 2, 2), True, (1, 7, 7), 2, direction=D.BACKWARD_DATA)[0] is P.DIRECT_BLOCKED
    assert cb(np.float64, *args, (1, 56, 56), 2, direction=D.BACKWARD_WEIGHT)[0] is P.IM2COL_GEMM
    assert cb(f32, 8, 3, 64, 1, (1, 7, 7), (1, 2, 2), True, (1, 112, 112), 2, direction="forward")[0] is _dispatch.ConvPath.DIRECT_BLOCKED


def test_forced_conv_paths():
    """``_dispatch.force(conv_path=...)`` picks the path (a path that cannot run the problem is
    refused), nests, and ends with its block."""
    f32 = np.float32
    cb = _dispatch.conv_plan
    args = (8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2)
    assert cb(f32, *args)[0] == "direct_blocked"
    with _dispatch.force(conv_path="direct"):
        assert cb(f32, *args) == ("direct", "parallel")
        with _dispatch.force(conv_path=_dispatch.ConvPath.IM2COL_GEMM):
            assert cb(f32, *args)[0] == "im2col_gemm"
        assert cb(f32, *args)[0] == "direct"
    assert cb(f32, *args)[0] == "direct_blocked"
    with _dispatch.force(conv_path="gemm_1x1"), pytest.raises(ValueError, match="gemm_1x1"):
        cb(f32, *args)
    with _dispatch.force(conv_path="direct_blocked"), pytest.raises(ValueError, match="float32"):
        cb(np.float64, *args)
    with _dispatch.force(conv_path="depthwise"), pytest.raises(ValueError, match="one input and one output"):
        cb(f32, *args)
    with pytest.raises(ValueError, match="conv_path"), _dispatch.force(conv_path="fast"):
        pass
    with pytest.raises(TypeError, match="unknown choice"), _dispatch.force(conv_kernel="direct"):
        pass
    d = fastops.conv2d.explain((8, 3, 224, 224), "float32", weight_shape=(64, 3, 7, 7), stride=2, padding=3)
    assert d["path"] == "direct_blocked" and d["backward_path"] == "im2col_gemm" and d["block_out_channels"] == 64
    assert d["backward_weight_path"] == "direct_blocked"  # 3 input channels: the data gradient stays on im2col


def test_direct_and_gemm_paths_agree():
    """The same convolution through the direct kernel and through im2col + GEMM (paths forced)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 7, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    kw = {"groups": 2, "stride": (2, 1), "padding": 1, "dilation": (1, 2), "activation": "elu"}
    g = rng.standard_normal(fastops.conv2d(x, w, b, **kw).shape)
    res = {}
    for forced in ("im2col_gemm", "direct"):
        with _dispatch.force(conv_path=forced):
            path = fastops.conv2d.explain(x.shape, "float64", weight_shape=w.shape, **kw)["path"]
            res[path] = [fastops.conv2d(x, w, b, **kw)] + list(fastops.conv2d.backward(g, x, w, b, **kw))
    assert set(res) == {"direct", "im2col_gemm"}
    for a, c in zip(res["direct"], res["im2col_gemm"]):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_fused_activation_equals_unfused():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    fused = fastops.conv2d(x, w, b, padding=1, activation="relu")
    unfused = fastops.relu(fastops.conv2d(x, w, b, padding=1))
    assert np.array_equal(fused, unfused)
    y = fastops.linear(x.reshape(12, 15), rng.standard_normal((4, 15)).astype(np.float32), None,
                       activation="leaky_relu", activation_param=0.3)
    assert y.dtype == np.float32 and y.shape == (12, 4)


def test_unbatched_and_bias_none():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6, 5))
    w = rng.standard_normal((4, 3, 2, 2))
    out = fastops.conv2d(x, w, padding="same")
    assert out.shape == (4, 6, 5)
    np.testing.assert_allclose(out, fastops.conv2d(x[None], w, padding="same")[0])
    gx, gw, gb = fastops.conv2d.backward(np.ones_like(out), x, w, padding="same")
    assert gx.shape == x.shape and gw.shape == w.shape and gb is None
    y = fastops.conv_transpose1d(rng.standard_normal((2, 5)), rng.standard_normal((2, 3, 3)), stride=2)
    assert y.shape == (3, 11)


def test_empty_batch():
    x = np.zeros((0, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    assert fastops.conv2d(x, w).shape == (0, 4, 3, 3)
    gx, gw, _ = fastops.conv2d.backward(np.zeros((0, 4, 3, 3), np.float32), x, w)
    assert gx.shape == x.shape and np.array_equal(gw, np.zeros_like(w))


def test_workspace_reuse_gives_same_results():
    """The per-thread GEMM workspace is reused across calls and shapes: results must not depend on
    what an earlier call left in it, and no returned array may alias it."""
    from fastops.conv import _core

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 5, 9, 8)).astype(np.float32)
    _core.release_workspace()
    y0 = fastops.conv2d(x, w, padding=1)
    b0 = fastops.conv2d.backward(g, x, w, padding=1)
    # a bigger call of another shape fills the workspace with other data
    x2 = rng.standard_normal((3, 6, 11, 10)).astype(np.float32)
    fastops.conv2d.backward(rng.standard_normal((3, 5, 9, 8)).astype(np.float32), x2, w)
    y1 = fastops.conv2d(x, w, padding=1)
    b1 = fastops.conv2d.backward(g, x, w, padding=1)
    assert np.array_equal(y0, y1)
    assert all(np.array_equal(p, q) for p, q in zip(b0[:2], b1[:2]))
    y1_copy = y1.copy()
    fastops.conv2d(x2, w)  # must not overwrite an earlier result
    assert np.array_equal(y1, y1_copy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deform_conv2d_out_of_image_samples_ignore_nan_at_origin(dtype):
    """Out-of-image bilinear corners contribute exactly 0 (torchvision skips them): a NaN at pixel
    (0, 0) must not reach samples that do not use it, in the forward or any gradient. Samples at
    y = oh - 3.5 (top rows outside, row -0.5 half inside) and x = ow + 1.25 (never column 0, the
    right ones half or fully outside): every corner kind (invalid y, invalid x, both) occurs."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 4)).astype(dtype)
    x[0, :, 0, 0] = np.nan
    clean = x.copy()
    clean[0, :, 0, 0] = 0
    w = rng.standard_normal((3, 2, 1, 1)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    off = np.empty((1, 2, 4, 4), dtype)
    off[0, 0] = -3.5
    off[0, 1] = 1.25
    mask = rng.uniform(0.5, 1.0, (1, 1, 4, 4)).astype(dtype)
    g = rng.standard_normal((1, 3, 4, 4)).astype(dtype)
    for m in (None, mask):
        out = fastops.deform_conv2d(x, off, w, b, mask=m)
        assert np.isfinite(out).all()
        assert np.array_equal(out, fastops.deform_conv2d(clean, off, w, b, mask=m))
        np.testing.assert_array_equal(out[0, :, :3], np.broadcast_to(b[:, None, None], (3, 3, 4)))  # all outside
        grads = fastops.deform_conv2d.backward(g, x, off, w, b, mask=m)
        ref = fastops.deform_conv2d.backward(g, clean, off, w, b, mask=m)
        for a, r in zip(grads, ref):
            if a is not None:
                assert np.isfinite(a).all()
                assert np.array_equal(a, r)


def test_blocked_direct_kernel_matches_gemm_path():
    """The register-blocked direct forward kernel (float32 only; forced on small shapes with
    ``_dispatch.force``) against the im2col + GEMM path: stride, dilation, 3-D, output
    channels not a multiple of the 64-wide block, output widths not a multiple of the 4-pixel tile
    and below it, fused activation; and bitwise the same for 1 and 2 threads (parallel build vs
    serial build)."""
    dtype = np.float32
    rng = np.random.default_rng(11)
    cases = [
        (fastops.conv1d, (3, 5, 4), (66, 5, 2), {"activation": "silu"}),
        (fastops.conv2d, (2, 3, 11, 37), (5, 3, 3, 3), {"stride": 2, "padding": 1, "activation": "silu"}),
        (fastops.conv2d, (1, 4, 9, 40), (70, 4, 3, 2), {"dilation": (2, 3), "padding": 2, "activation": "silu"}),
        (fastops.conv3d, (2, 3, 5, 6, 7), (6, 3, 2, 3, 2), {"stride": (1, 2, 1), "padding": 1, "activation": "silu"}),
    ]  # one activation throughout: 2 compiled kernels (serial, parallel)
    for f, xs, ws, kw in cases:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        with _dispatch.force(conv_path="im2col_gemm"):
            assert f.explain(xs, np.dtype(dtype).name, weight_shape=ws, **kw)["path"] == "im2col_gemm"
            ref = f(x, w, b, **kw)
        res = {}
        with _dispatch.force(conv_path="direct_blocked"):
            assert f.explain(xs, np.dtype(dtype).name, weight_shape=ws, **kw)["path"] == "direct_blocked"
            for n in (1, 2):
                with fastops.threads(n):
                    res[n] = f(x, w, b, **kw)
        tol = 1e-5
        np.testing.assert_allclose(res[1], ref, rtol=tol, atol=tol)
        assert np.array_equal(res[1], res[2])
    if _threads.max_threads() >= 2:
        with fastops.threads(2):
            assert f.explain(xs, np.dtype(dtype).name, weight_shape=ws, **kw)["backend"] == "parallel"


@pytest.mark.parametrize("k, xs, ws, kw", [
    (2, (2, 40, 5, 21), (33, 40, 3, 3), {"padding": 1}),
    (2, (3, 32, 9, 20), (64, 32, 3, 5), {"padding": (2, 1), "dilation": (2, 1)}),
    (2, (1, 36, 5, 20), (40, 36, 3, 3), {"padding": 1, "padding_mode": "circular", "activation": "relu"}),
    (1, (2, 32, 70), (32, 32, 7), {"padding": 3}),
    (3, (1, 32, 4, 5, 18), (32, 32, 3, 3, 3), {"padding": (1, 0, 1)}),
])
def test_blocked_gradients(k, xs, ws, kw):
    """The stride-1 data gradient that runs the blocked forward kernel on the flipped, transposed
    weight, and the blocked weight-gradient kernel: against the float64 gradients (im2col + GEMM)
    to float32 accuracy and no worse than the forced im2col float32 ones, on strided and offset
    operands."""
    rng = np.random.default_rng(11)
    f = getattr(fastops, f"conv{k}d")
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.2).astype(np.float32)
    d = f.explain(xs, "float32", weight_shape=ws, **{a: v for a, v in kw.items() if a != "padding_mode"})
    assert d["backward_data_path"] == "direct_blocked" and d["backward_weight_path"] == "direct_blocked"
    y = f(x, w, None, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    # strided, offset views of the same values
    xv = np.zeros((xs[0], xs[1] + 3) + xs[2:], np.float32)[:, 2:2 + xs[1]]
    xv[...] = x
    gv = np.zeros(y.shape[:-1] + (2 * y.shape[-1],), np.float32)[..., ::2]
    gv[...] = g
    gx, gw, _ = f.backward(gv, xv, w, None, **kw)
    with _dispatch.force(conv_path="im2col_gemm"):
        gx_ref32, gw_ref32, _ = f.backward(g, x, w, None, **kw)
    gx64, gw64, _ = f.backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), None, **kw)
    for got, ref32, ref64, n_terms in ((gx, gx_ref32, gx64, ws[0] * np.prod(ws[2:])), (gw, gw_ref32, gw64, g.size / ws[1])):
        scale = np.abs(ref64).max()
        # within a few float32 roundings of the float64 result, and no worse than im2col + GEMM's
        err, err_ref = np.abs(got - ref64).max(), np.abs(ref32 - ref64).max()
        assert err <= 1e-6 * scale * np.sqrt(n_terms) + 2 * err_ref, (err, err_ref, scale)
        assert got.dtype == np.float32 and got.shape == ref64.shape
    # a non-finite weight: the forward-kernel data gradient would meet the padding's zeros (NaN);
    # the gradient is im2col's, with torch's inf/NaN pattern
    w[0].flat[0] = np.inf
    gx_inf = f.backward(g, x, w, None, **kw)[0]
    with _dispatch.force(conv_path="im2col_gemm"):
        np.testing.assert_array_equal(gx_inf, f.backward(g, x, w, None, **kw)[0])


@pytest.mark.parametrize("k, xs, ws, kw", [
    (2, (2, 3, 30, 30), (64, 3, 7, 7), {"stride": 2, "padding": 3}),  # the stem: one unit per channel and tap group
    (2, (2, 20, 12, 12), (40, 20, 2, 2), {}),  # 4 taps: one group, no single taps
    (2, (2, 16, 11, 13), (70, 16, 3, 3), {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}),  # 2 channel blocks
    (3, (1, 5, 5, 6, 9), (32, 5, 3, 3, 3), {"padding": (1, 0, 1), "stride": (1, 2, 1)}),
    (1, (2, 24, 40), (33, 24, 5), {"stride": 3}),
    (2, (1, 36, 19, 17), (64, 36, 3, 3), {"padding": 1}),  # 323 pixels: two pixel blocks, the last partial
])
def test_blocked_weight_gradient(k, xs, ws, kw):
    """The blocked weight-gradient kernel on strided, dilated and few-channel convolutions, edge
    output-channel blocks and tap remainders: against float64, and bitwise at 1 and 2 threads."""
    rng = np.random.default_rng(12)
    f = getattr(fastops, f"conv{k}d")
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.2).astype(np.float32)
    assert f.explain(xs, "float32", weight_shape=ws, **kw)["backward_weight_path"] == "direct_blocked"
    y = f(x, w, None, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    with fastops.threads(1):
        gw1 = f.backward(g, x, w, None, needs=(False, True, False), **kw)[1]
    with fastops.threads(2):
        gx, gw, _ = f.backward(g, x, w, None, **kw)
    np.testing.assert_array_equal(gw1, gw)
    gx64, gw64, _ = f.backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), None, **kw)
    assert np.abs(gw - gw64).max() <= 1e-6 * np.abs(gw64).max() * np.sqrt(g.size / ws[1])
    np.testing.assert_allclose(gx, gx64, rtol=1e-4, atol=1e-4 * np.abs(gx64).max())


# the depthwise plane kernels (_kernels.dw_fwd / dw_bwd_data / dw_bwd_weight) against the direct
# kernel (an independent loop nest; both against torch in the table tests): strides 1-3 and mixed,
# dilation, padding modes, 1-D, kernels wider than the stride and smaller, odd widths, several row
# blocks of the weight gradient, strided / offset inputs, fused activations
_DW_CASES = [  # (input shape, kernel, kwargs)
    ((2, 8, 9, 11), (3, 3), {"padding": 1}),
    ((2, 6, 12, 7), (3, 3), {"stride": 2, "padding": 1, "activation": "relu6"}),
    ((1, 5, 13, 14), (5, 5), {"stride": 2, "padding": 2}),
    ((2, 4, 10, 9), (3, 3), {"stride": 3, "dilation": 2}),
    ((2, 3, 8, 8), (1, 1), {"stride": 2}),
    ((1, 3, 5, 6), (3, 2), {"stride": (3, 2), "padding": (1, 0)}),  # kernel shorter than the stride
    ((2, 7, 15, 6), (3, 5), {"stride": (2, 1), "dilation": (1, 2), "padding": (1, 2), "bias": False}),
    ((1, 4, 70, 100), (5, 5), {"padding": 2, "activation": "gelu"}),  # several weight-gradient row blocks
    ((2, 4, 9, 10), (3, 3), {"padding": 1, "padding_mode": "reflect"}),
    ((2, 6, 33), (7,), {"padding": 3, "stride": 2}),  # conv1d
]


def _dw_run(x, w, b, kw, g):
    op = fastops.conv1d if x.ndim == 3 else fastops.conv2d
    return [op(x, w, b, **kw)] + list(op.backward(g, x, w, b, **kw))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, k, kw", _DW_CASES)
def test_depthwise_kernels_match_direct(dtype, xs, k, kw):
    rng = np.random.default_rng(11)
    kw = dict(kw)
    has_bias = kw.pop("bias", True)
    C = xs[1]
    # a strided, offset view of a larger array as the input
    big = rng.standard_normal(xs[:2] + tuple(2 * s + 1 for s in xs[2:])).astype(dtype)
    x = big[(slice(None), slice(None)) + tuple(slice(1, None, 2) for _ in xs[2:])]
    assert x.shape == xs and not x.flags.c_contiguous
    w = rng.standard_normal((C, 1) + k).astype(dtype)
    b = rng.standard_normal(C).astype(dtype) if has_bias else None
    kw["groups"] = C
    op = fastops.conv1d if x.ndim == 3 else fastops.conv2d
    d = op.explain(x.shape, np.dtype(dtype).name, weight_shape=w.shape, **kw)
    assert d["path"] == d["backward_data_path"] == d["backward_weight_path"] == "depthwise"
    g = rng.standard_normal(op(x, w, b, **kw).shape).astype(dtype)
    x0, w0, g0 = x.copy(), w.copy(), g.copy()
    res = _dw_run(x, w, b, kw, g)
    assert np.array_equal(x, x0) and np.array_equal(w, w0) and np.array_equal(g, g0)
    with _dispatch.force(conv_path="direct"):
        ref = _dw_run(x, w, b, kw, g)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for a, r in zip(res, ref):
        if r is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == r.shape
        assert np.abs(a - r).max() <= tol * max(np.abs(r).max(), 1.0)
    with _threads.threads(1):
        one = _dw_run(x, w, b, kw, g)
    for a, r in zip(res, one):
        assert (a is None and r is None) or np.array_equal(a, r)


def test_depthwise_non_finite_values_as_direct():
    """inf / NaN in the input, the output gradient and the weight: the same non-finite pattern as
    the direct kernel (the data gradient of a non-finite weight runs the direct kernel: the plane
    kernel's garbage columns would add 0 * inf), and finite values elsewhere."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 9, 10))
    x[0, 1, 3, 4] = np.inf
    x[1, 2, 0, 9] = np.nan
    x[1, 3, 8, 9] = -np.inf
    w = rng.standard_normal((4, 1, 3, 3))
    kw = {"groups": 4, "padding": 1, "stride": 2}
    g = rng.standard_normal(fastops.conv2d(x, w, None, **kw).shape)
    g[0, 0, 2, 2] = np.nan
    for wv in (None, np.inf):
        ww = w.copy()
        if wv is not None:
            ww[2, 0, 1, 1] = wv
        res = _dw_run(x, ww, None, kw, g)
        with _dispatch.force(conv_path="direct"):
            ref = _dw_run(x, ww, None, kw, g)
        for a, r in zip(res[:3], ref[:3]):
            assert np.array_equal(np.isnan(a), np.isnan(r)) and np.array_equal(np.isinf(a), np.isinf(r))
            fin = np.isfinite(r)
            np.testing.assert_allclose(a[fin], r[fin], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("C, O, H, W", [(5, 40, 12, 13), (40, 5, 12, 13), (16, 24, 6, 7)])
def test_pointwise_per_image_and_packed_paths(dtype, C, O, H, W):
    """The 1x1 path: one GEMM per image straight on the arrays (>= CONV_1X1_BATCHED_MIN_PIXELS
    pixels; the weight gradient in either orientation) or the packed batch (smaller maps), against
    im2col + GEMM forced; bias + activation fused; a strided input; 1-vs-2 threads bitwise."""
    from fastops.conv import _core

    rng = np.random.default_rng(13)
    big = rng.standard_normal((3, C + 1, H, 2 * W)).astype(dtype)
    x = big[:, 1:, :, ::2]
    w = rng.standard_normal((O, C, 1, 1)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    kw = {"activation": "leaky_relu", "activation_param": 0.1}
    assert fastops.conv2d.explain(x.shape, np.dtype(dtype).name, weight_shape=w.shape, **kw)["path"] == "gemm_1x1"
    assert (H * W >= _core.CONV_1X1_BATCHED_MIN_PIXELS) == (H > 6)
    g = rng.standard_normal((3, O, H, W)).astype(dtype)

    def run():
        return [fastops.conv2d(x, w, b, **kw)] + list(fastops.conv2d.backward(g, x, w, b, **kw))

    res = run()
    with _dispatch.force(conv_path="im2col_gemm"):
        ref = run()
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for a, r in zip(res, ref):
        assert a.dtype == dtype and a.shape == r.shape
        assert np.abs(a - r).max() <= tol * max(np.abs(r).max(), 1.0)
    with _threads.threads(1):
        one = run()
    assert all(np.array_equal(a, r) for a, r in zip(res, one))


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 72, 19, 17), (40, 72, 3, 3), {"padding": 1}),  # 648 taps: two chunks; 323 pixels: 5 units, 3 singles
    ((2, 40, 5, 7), (70, 40, 3, 3), {"padding": 1, "dilation": (2, 1)}),  # a 7-wide map: groups span rows
    ((1, 64, 3, 3), (64, 64, 3, 3), {"padding": (1, 2)}),  # 9 x 3 pixels: no full chunk
])
def test_blocked_blocking_does_not_change_bits(monkeypatch, xs, ws, kw):
    """The blocked forward's tap chunks and pixel units, and the weight gradient's pixel blocks,
    change which pass or unit computes an element, never its value for the forward and the data
    gradient (a tap chunk's tile is saved and reloaded: the same operations in the same order), and
    the results match float64 whatever the blocking."""
    from fastops.conv import _core
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.2).astype(np.float32)
    assert fastops.conv2d.explain(xs, "float32", weight_shape=ws, **kw)["path"] == "direct_blocked"
    y = fastops.conv2d(x, w, None, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, _ = fastops.conv2d.backward(g, x, w, None, **kw)
    y64 = fastops.conv2d(x.astype(np.float64), w.astype(np.float64), None, **kw)
    gx64, gw64, _ = fastops.conv2d.backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), None, **kw)
    for taps, pixels, wpix in ((7, 8, 4), (100, 4, 17), (1 << 20, 1024, 1 << 20)):
        monkeypatch.setattr(_core, "BLOCKED_TAPS", taps)
        monkeypatch.setattr(_core, "BLOCKED_PIXELS", pixels)
        monkeypatch.setattr(_core, "WEIGHT_PIXEL_BLOCK", wpix)
        np.testing.assert_array_equal(fastops.conv2d(x, w, None, **kw), y)
        gx2, gw2, _ = fastops.conv2d.backward(g, x, w, None, **kw)
        np.testing.assert_array_equal(gx2, gx)
        for got, ref in ((y, y64), (gx2, gx64), (gw2, gw64)):
            assert np.abs(got - ref).max() <= 2e-6 * np.abs(ref).max() * np.sqrt(ref.size)


@pytest.mark.parametrize("xs, ws, kw", [
    ((2, 32, 13, 11), (40, 32, 3, 3), {"stride": 2, "padding": 1}),  # odd sizes: phases of unequal length
    ((1, 33, 15, 16), (32, 33, 5, 4), {"stride": (3, 2), "padding": (2, 1), "dilation": (1, 2)}),
    ((1, 32, 9, 10), (32, 32, 2, 2), {"stride": 2}),  # one tap per phase; the last row meets no output
    ((1, 32, 9, 10), (32, 32, 1, 3), {"stride": (1, 3), "padding": (0, 1)}),
    ((1, 32, 12, 12), (32, 32, 3, 3), {"stride": 2, "padding": 3, "dilation": 2}),  # phases without taps
    ((1, 32, 8, 8), (32, 32, 3, 3), {"stride": 4, "padding": 1}),  # stride > kernel: empty phases
    ((2, 32, 6, 8, 9), (32, 32, 3, 3, 3), {"stride": (2, 1, 2), "padding": 1}),
    ((2, 40, 31), (48, 40, 5), {"stride": 3, "padding": 2}),
])
def test_blocked_strided_data_gradient(xs, ws, kw):
    """The data gradient of a strided convolution as one blocked forward convolution per stride
    phase (``_core._data_by_forward``): against float64, bitwise at 1 and 2 threads, with phases of
    unequal length, phases without taps and input positions no output reads."""
    rng = np.random.default_rng(3)
    f = getattr(fastops, f"conv{len(xs) - 2}d")
    assert f.explain(xs, "float32", weight_shape=ws, **kw)["backward_data_path"] == "direct_blocked"
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.2).astype(np.float32)
    y = f(x, w, None, **kw)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = f.backward(g, x, w, None, needs=(True, False, False), **kw)[0]
    with fastops.threads(1):
        np.testing.assert_array_equal(f.backward(g, x, w, None, needs=(True, False, False), **kw)[0], gx)
    gx64 = f.backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), None,
                      needs=(True, False, False), **kw)[0]
    assert gx.dtype == np.float32 and gx.shape == x.shape
    assert np.abs(gx - gx64).max() <= 1e-6 * np.abs(gx64).max() * np.sqrt(g.shape[1] * np.prod(ws[2:]))
