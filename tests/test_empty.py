"""Empty inputs as in PyTorch 2.x: where torch returns a result (an empty batch, an empty plane, an
empty reduction), fastops returns the same shape and values, gradients included; where torch raises
(0 channels for the kernels that need non-empty non-batch dims, sequence length 0, 0 output
channels, avg_pool3d's kernel larger than the input), fastops raises ValueError naming the op and
the argument. Each case states torch's behaviour and checks it when torch is installed."""
import numpy as np
import pytest

import fastops

from .conftest import torch

Z = np.zeros


def _i64(*s):
    return np.zeros(s, np.int64)


def _rnn_params(kind, I=3, H=4):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]


# name -> (fastops call, torch call or None, the argument the message names)
RAISES = {
    "interpolate.nearest.C0": (lambda: fastops.interpolate(Z((1, 0, 4, 4)), scale_factor=2),
                               lambda F: F.interpolate(F_t(1, 0, 4, 4), scale_factor=2), "input"),
    "interpolate.bilinear.C0": (lambda: fastops.interpolate(Z((1, 0, 4, 4)), scale_factor=2, mode="bilinear"),
                                lambda F: F.interpolate(F_t(1, 0, 4, 4), scale_factor=2, mode="bilinear"), "input"),
    "interpolate.linear.C0": (lambda: fastops.interpolate(Z((2, 0, 4)), size=3, mode="linear"),
                              lambda F: F.interpolate(F_t(2, 0, 4), size=3, mode="linear"), "input"),
    "pad.reflect.C0": (lambda: fastops.pad(Z((1, 0, 4, 4)), (1, 1, 1, 1), mode="reflect"),
                       lambda F: F.pad(F_t(1, 0, 4, 4), (1, 1, 1, 1), mode="reflect"), "input"),
    "pad.replicate.C0": (lambda: fastops.pad(Z((1, 0, 4, 4)), (1, 1, 1, 1), mode="replicate"),
                         lambda F: F.pad(F_t(1, 0, 4, 4), (1, 1, 1, 1), mode="replicate"), "input"),
    "pad.reflect1d.C0": (lambda: fastops.pad(Z((2, 0, 4)), (1, 1), mode="reflect"),
                         lambda F: F.pad(F_t(2, 0, 4), (1, 1), mode="reflect"), "input"),
    "adaptive_avg_pool3d.C0": (lambda: fastops.adaptive_avg_pool3d(Z((1, 0, 4, 4, 4)), 2),
                               lambda F: F.adaptive_avg_pool3d(F_t(1, 0, 4, 4, 4), 2), "input"),
    "adaptive_max_pool1d.C0": (lambda: fastops.adaptive_max_pool1d(Z((1, 0, 4)), 2),
                               lambda F: F.adaptive_max_pool1d(F_t(1, 0, 4), 2), "input"),
    "adaptive_max_pool2d.C0": (lambda: fastops.adaptive_max_pool2d(Z((1, 0, 4, 4)), 2),
                               lambda F: F.adaptive_max_pool2d(F_t(1, 0, 4, 4), 2), "input"),
    "max_unpool1d.C0": (lambda: fastops.max_unpool1d(Z((1, 0, 2)), _i64(1, 0, 2), 2),
                        lambda F: F.max_unpool1d(F_t(1, 0, 2), F_i(1, 0, 2), 2), "input"),
    "max_unpool2d.C0": (lambda: fastops.max_unpool2d(Z((1, 0, 2, 2)), _i64(1, 0, 2, 2), 2),
                        lambda F: F.max_unpool2d(F_t(1, 0, 2, 2), F_i(1, 0, 2, 2), 2), "input"),
    "max_unpool3d.C0": (lambda: fastops.max_unpool3d(Z((1, 0, 2, 2, 2)), _i64(1, 0, 2, 2, 2), 2),
                        lambda F: F.max_unpool3d(F_t(1, 0, 2, 2, 2), F_i(1, 0, 2, 2, 2), 2), "input"),
    "rnn.L0": (lambda: fastops.rnn(Z((0, 2, 3)), None, _rnn_params("rnn")),
               lambda F: torch.nn.RNN(3, 4).double()(F_t(0, 2, 3)), "input"),
    "lstm.L0": (lambda: fastops.lstm(Z((0, 2, 3)), None, _rnn_params("lstm")),
                lambda F: torch.nn.LSTM(3, 4).double()(F_t(0, 2, 3)), "input"),
    "gru.L0.batch_first": (lambda: fastops.gru(Z((2, 0, 3)), None, _rnn_params("gru"), batch_first=True),
                           lambda F: torch.nn.GRU(3, 4, batch_first=True).double()(F_t(2, 0, 3)), "input"),
    "conv2d.groups.O0": (lambda: fastops.conv2d(Z((1, 4, 5, 5)), Z((0, 2, 3, 3)), groups=2),
                         lambda F: F.conv2d(F_t(1, 4, 5, 5), F_t(0, 2, 3, 3), groups=2), "weight"),
    "conv2d.O0": (lambda: fastops.conv2d(Z((1, 4, 5, 5)), Z((0, 4, 3, 3))),
                  lambda F: F.conv2d(F_t(1, 4, 5, 5), F_t(0, 4, 3, 3)), "weight"),
    "conv3d.groups.O0": (lambda: fastops.conv3d(Z((1, 4, 5, 5, 5)), Z((0, 2, 3, 3, 3)), groups=2),
                         lambda F: F.conv3d(F_t(1, 4, 5, 5, 5), F_t(0, 2, 3, 3, 3), groups=2), "weight"),
    "conv1d.O0": (lambda: fastops.conv1d(Z((1, 4, 5)), Z((0, 4, 3))),
                  lambda F: F.conv1d(F_t(1, 4, 5), F_t(0, 4, 3)), "weight"),
    # torch checks the unpadded input against the kernel in avg_pool3d (not in avg_pool1d/2d)
    "avg_pool3d.padded_smaller_than_kernel": (lambda: fastops.avg_pool3d(Z((1, 2, 2, 4, 4)), 3, 1, padding=1),
                                              lambda F: F.avg_pool3d(F_t(1, 2, 2, 4, 4), 3, 1, padding=1), "input"),
    "avg_pool3d.ceil_smaller_than_kernel": (lambda: fastops.avg_pool3d(Z((1, 2, 2, 2, 2)), 3, ceil_mode=True),
                                            lambda F: F.avg_pool3d(F_t(1, 2, 2, 2, 2), 3, ceil_mode=True), "input"),
    "deform_conv2d.C0": (lambda: fastops.deform_conv2d(Z((1, 0, 5, 5)), Z((1, 18, 3, 3)), Z((3, 2, 3, 3))), None, "input"),
}


def F_t(*s):
    return torch.zeros(s, dtype=torch.float64)


def F_i(*s):
    return torch.zeros(s, dtype=torch.int64)


@pytest.mark.parametrize("name", list(RAISES))
def test_raises_like_torch(name):
    f, tf, arg = RAISES[name]
    op = name.split(".")[0]
    with pytest.raises(ValueError) as e:
        f()
    assert str(e.value).startswith(f"{op}:") and f"'{arg}'" in str(e.value), str(e.value)
    if torch is not None and tf is not None:
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            tf(torch.nn.functional)


# still an (empty) result in torch: an empty batch, and the ops that accept 0 channels
@pytest.mark.parametrize("name,f,shape", [
    ("pad.reflect.N0", lambda: fastops.pad(Z((0, 2, 4, 4)), (1, 1, 1, 1), mode="reflect"), (0, 2, 6, 6)),
    ("pad.constant.C0", lambda: fastops.pad(Z((1, 0, 4, 4)), (1, 1, 1, 1)), (1, 0, 6, 6)),
    ("interpolate.N0", lambda: fastops.interpolate(Z((0, 2, 4, 4)), scale_factor=2), (0, 2, 8, 8)),
    ("adaptive_avg_pool2d.C0", lambda: fastops.adaptive_avg_pool2d(Z((1, 0, 4, 4)), 2), (1, 0, 2, 2)),
    ("adaptive_max_pool2d.N0", lambda: fastops.adaptive_max_pool2d(Z((0, 2, 4, 4)), 2), (0, 2, 2, 2)),
    ("adaptive_max_pool2d.unbatched.C0", lambda: fastops.adaptive_max_pool2d(Z((0, 4, 4)), 2), (0, 2, 2)),
    ("max_unpool2d.N0", lambda: fastops.max_unpool2d(Z((0, 2, 2, 2)), _i64(0, 2, 2, 2), 2), (0, 2, 4, 4)),
    ("avg_pool3d.N0", lambda: fastops.avg_pool3d(Z((0, 2, 3, 3, 3)), 3), (0, 2, 1, 1, 1)),
    ("avg_pool2d.padded", lambda: fastops.avg_pool2d(Z((1, 2, 2, 2)), 3, 1, padding=1), (1, 2, 2, 2)),
])
def test_empty_results_still_returned(name, f, shape):
    assert np.shape(f()) == shape


# ------------------------------------------------------------------ norms on an empty batch / plane
_NORMS = {  # op name -> (fastops keyword arguments, torch's call)
    "batch_norm": ({"training": True},
                   lambda t, x, rm, rv, w, b: t.nn.functional.batch_norm(x, rm, rv, w, b, training=True)),
    "instance_norm": ({}, lambda t, x, rm, rv, w, b: t.nn.functional.instance_norm(x, rm, rv, w, b, use_input_stats=True)),
}


@pytest.mark.parametrize("name, shape", [("batch_norm", (0, 3, 4)), ("batch_norm", (2, 3, 0)), ("batch_norm", (0, 3)),
                                         ("instance_norm", (2, 3, 0)), ("instance_norm", (1, 3, 0, 4))])
def test_norm_on_empty_batch_or_plane(name, shape):
    """torch: an empty result, running statistics unchanged, grad_weight and grad_bias 0 (training
    batch_norm on an empty batch or plane; instance_norm on an empty plane)."""
    kw, tfn = _NORMS[name]
    op = getattr(fastops, name)
    x, rm, rv, w, b = Z(shape), Z(3), np.ones(3), np.linspace(0.5, 1.5, 3), np.linspace(-1, 1, 3)
    y = op(x, rm, rv, w, b, **kw)
    g = op.backward(np.ones(shape), x, rm, rv, w, b, **kw)
    assert y.shape == shape and g[0].shape == shape and g[1] is None and g[2] is None
    assert np.array_equal(rm, Z(3)) and np.array_equal(rv, np.ones(3))
    assert np.array_equal(g[3], Z(3)) and np.array_equal(g[4], Z(3))
    if torch is None:
        return
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    trm, trv = torch.from_numpy(Z(3)), torch.from_numpy(np.ones(3))
    ty = tfn(torch, tx, trm, trv, tw, tb)
    tg = torch.autograd.grad(ty, [tx, tw, tb], torch.ones_like(ty))
    assert tuple(ty.shape) == shape and np.array_equal(trm.numpy(), rm) and np.array_equal(trv.numpy(), rv)
    for a, t in zip((g[0], g[3], g[4]), tg):
        assert a.shape == tuple(t.shape) and np.array_equal(a, t.numpy())


# ------------------------------------------------------------------ empty reductions
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_triplet_margin_loss_empty_feature_dim(reduction):
    """D = 0: every distance is the norm of an empty vector, 0, so each row's loss is the margin
    (torch: 1.0 for margin 1); the gradients are empty."""
    a = Z((3, 0))
    out = fastops.triplet_margin_loss(a, a, a, margin=1.5, reduction=reduction)
    want = {"none": np.full(3, 1.5), "mean": 1.5, "sum": 4.5}[reduction]
    np.testing.assert_array_equal(out, want)
    g = fastops.triplet_margin_loss.backward(np.ones_like(out), a, a, a, margin=1.5, reduction=reduction)
    assert all(x.shape == (3, 0) for x in g)
    assert fastops.triplet_margin_loss(Z(0), Z(0), Z(0)) == 1.0
    if torch is not None:
        t = torch.zeros((3, 0), dtype=torch.float64)
        np.testing.assert_array_equal(torch.nn.functional.triplet_margin_loss(t, t, t, margin=1.5, reduction=reduction).numpy(), want)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("N", [1, 2])
def test_conv2d_zero_input_channels(N, k, groups):
    """0 input channels: an empty sum, so the output is the bias (0 without); the 1x1 (GEMM) path
    failed in a reshape, the 3x3 path already gave this. (torch 2.13 returns a (N, 0, H, W) result
    here, which drops the weight's output channels: fastops keeps (N, O, H, W).)"""
    x, w, b = Z((N, 0, 5, 5)), Z((4, 0, k, k)), np.arange(4.0)
    y = fastops.conv2d(x, w, b, groups=groups)
    assert y.shape == (N, 4, 6 - k, 6 - k)
    np.testing.assert_array_equal(y, np.broadcast_to(b[:, None, None], y.shape))
    gx, gw, gb = fastops.conv2d.backward(np.ones(y.shape), x, w, b, groups=groups)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_array_equal(gb, np.full(4, N * (6 - k) ** 2))


def test_deform_conv2d_empty_batch():
    """N = 0: an empty result (torchvision returns one), gradients empty, 0 for weight and bias."""
    x, off, w, b, m = Z((0, 2, 5, 5)), Z((0, 18, 3, 3)), np.ones((3, 2, 3, 3)), np.ones(3), Z((0, 9, 3, 3))
    y = fastops.deform_conv2d(x, off, w, b, mask=m)
    assert y.shape == (0, 3, 3, 3)
    gx, goff, gw, gb, gm = fastops.deform_conv2d.backward(np.ones(y.shape), x, off, w, b, mask=m)
    assert gx.shape == x.shape and goff.shape == off.shape and gm.shape == m.shape
    assert np.array_equal(gw, Z(w.shape)) and np.array_equal(gb, Z(3))
    assert fastops.deform_conv2d(x, off, w).shape == (0, 3, 3, 3)
