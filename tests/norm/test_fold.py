"""``fastops.fold_batch_norm``: conv/linear followed by an eval-mode batch norm equals the folded
layer (float64 to rounding; float32 to float32 rounding), for conv1d/2d/3d with groups and linear,
with and without the layer's bias and the batch norm's affine parameters; the inputs unmodified,
the dtype kept, bad arguments refused with the function and argument named; torch's
``fuse_conv_bn_weights`` as an independent reference."""
import numpy as np
import pytest

import fastops

CASES = [  # (layer, weight shape, input shape, groups)
    ("conv1d", (6, 4, 3), (2, 4, 9), 1),
    ("conv2d", (8, 2, 3, 3), (2, 4, 7, 6), 2),
    ("conv2d", (8, 1, 3, 3), (2, 8, 6, 6), 8),  # depthwise
    ("conv3d", (4, 3, 2, 2, 2), (1, 3, 4, 5, 4), 1),
    ("linear", (5, 7), (3, 7), 1),
]


def _stats(rng, C, dt):
    return (rng.standard_normal(C).astype(dt), rng.uniform(0.2, 3.0, C).astype(dt),
            rng.standard_normal(C).astype(dt), rng.standard_normal(C).astype(dt))


def _layer(kind, x, w, b, groups):
    if kind == "linear":
        return fastops.linear(x, w, b)
    return getattr(fastops, kind)(x, w, b, padding=1, groups=groups)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,wshape,xshape,groups", CASES)
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_folded_layer_equals_layer_then_batch_norm(dtype, kind, wshape, xshape, groups, has_bias, affine):
    rng = np.random.default_rng(3)
    C = wshape[0]
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(C).astype(dtype) if has_bias else None
    x = rng.standard_normal(xshape).astype(dtype)
    mean, var, gamma, beta = _stats(rng, C, dtype)
    if not affine:
        gamma = beta = None
    args = [a.copy() if a is not None else None for a in (w, b, mean, var, gamma, beta)]
    fw, fb = fastops.fold_batch_norm(w, b, mean, var, gamma, beta, eps=1e-3)
    for a, a0 in zip((w, b, mean, var, gamma, beta), args):
        assert a is None or np.array_equal(a, a0)
    assert fw.dtype == dtype and fb.dtype == dtype and fw.shape == w.shape and fb.shape == (C,)
    assert fw.flags.c_contiguous and fb.flags.c_contiguous
    ref = fastops.batch_norm(_layer(kind, x, w, b, groups), mean, var, gamma, beta, training=False, eps=1e-3)
    out = _layer(kind, x, fw, fb, groups)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert err < (1e-12 if dtype == np.float64 else 1e-5)


def test_matches_torch_fuse_conv_bn_weights():
    torch = pytest.importorskip("torch")
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    mean, var, gamma, beta = _stats(rng, 6, np.float64)
    tw, tb = fuse_conv_bn_weights(*(torch.from_numpy(a) for a in (w, b, mean, var)), 1e-5,
                                  *(torch.from_numpy(a) for a in (gamma, beta)))
    fw, fb = fastops.fold_batch_norm(w, b, mean, var, gamma, beta)
    assert np.allclose(fw, tw.detach().numpy(), rtol=1e-13, atol=0)
    assert np.allclose(fb, tb.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_float32_folds_in_float64_and_rounds_once():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 2, 3)).astype(np.float32)
    mean, var, gamma, beta = _stats(rng, 4, np.float32)
    fw, fb = fastops.fold_batch_norm(w, None, mean, var, gamma, beta)
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-5)
    assert np.array_equal(fw, (w * s[:, None, None]).astype(np.float32))
    assert np.array_equal(fb, (beta + (-mean.astype(np.float64)) * s).astype(np.float32))


def test_bad_arguments():
    w = np.ones((4, 2, 3), np.float32)
    v = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="fold_batch_norm: argument 'weight'"):
        fastops.fold_batch_norm([[1.0]], None, v, v)
    with pytest.raises(TypeError, match="fold_batch_norm: argument 'running_mean'"):
        fastops.fold_batch_norm(w, None, None, v)
    with pytest.raises(TypeError, match="fold_batch_norm: argument 'running_var'"):
        fastops.fold_batch_norm(w, None, v, v.astype(np.float64))
    with pytest.raises(ValueError, match="fold_batch_norm: argument 'weight'"):
        fastops.fold_batch_norm(v, None, v, v)
    with pytest.raises(ValueError, match="fold_batch_norm: argument 'bn_bias'.*\\(4,\\)"):
        fastops.fold_batch_norm(w, None, v, v, v, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="fold_batch_norm: argument 'eps'"):
        fastops.fold_batch_norm(w, None, v, v, eps=-1.0)
    with pytest.raises(ValueError, match="fold_batch_norm: argument 'eps'"):
        fastops.fold_batch_norm(w, None, v, v, eps=float("inf"))
