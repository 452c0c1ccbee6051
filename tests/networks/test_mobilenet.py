"""MobileNetV2 (small: width_mult 0.25, 10 classes, 64x64 images, batch 2, all 17 inverted residual
blocks) against the equivalent torch module with the same weights: logits, loss, every parameter's
gradient (training and eval mode), two SGD momentum steps, the batch norms' running statistics, eval
forward; dropout 0 for the comparisons, and a test of the dropout path with fastops' mask applied in
torch."""
import numpy as np
import pytest

from fastops.networks import NETWORKS

torch = pytest.importorskip("torch")
F = torch.nn.functional

from ._compare import (check_eval_forward_and_backward, check_float32_with_batch_norm, check_float64_with_batch_norm,
                       check_folded_inference,
                       check_sgd_momentum_steps, grad_floor, rel)  # noqa: E402  (after the torch skip)

NAME = "mobilenet_v2"
SIZES = dict(width_mult=0.25, num_classes=10, image_size=64, dropout=0.0)
BATCH = 2


def test_names_and_sizes():
    net = NETWORKS[NAME](np.float32, seed=1, **SIZES)
    module = net.torch_module()
    assert set(net.params) == {k for k, _ in module.named_parameters()}
    assert set(net.buffers) == {k for k in module.state_dict() if k.endswith(("running_mean", "running_var"))}
    for k in ("features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
              "features.1.conv.2.bias", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
              "features.2.conv.3.weight", "features.18.0.weight", "classifier.1.weight"):
        assert k in net.params
    assert net.num_params() == sum(p.numel() for p in module.parameters())
    assert net.params["features.2.conv.1.0.weight"].shape == (48, 1, 3, 3)  # depthwise: 8 * 6 channels
    assert [residual for _, residual in net.blocks].count(True) == 11  # 10, and the t = 1 block (8 -> 8 here)
    assert net.params["classifier.1.weight"].shape == (10, 1280)


def test_float64_logits_loss_gradients_and_running_stats_match_torch():
    check_float64_with_batch_norm(NAME, SIZES, BATCH, 10)


def test_float32_as_accurate_as_torch_float32():
    """Logits, running statistics and every gradient in float32: fastops' error against torch
    float64 (same weights and input) is within 10x torch float32's own error (plus a tiny floor)."""
    check_float32_with_batch_norm(NAME, SIZES, BATCH)


def test_sgd_momentum_steps_match_torch():
    check_sgd_momentum_steps(NAME, SIZES, BATCH)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_forward_and_backward(dtype):
    """Eval mode (after a training forward so that the running statistics are not 0 and 1): the
    logits, the input left unmodified, the buffers unchanged, the dtype; float64 gradients."""
    check_eval_forward_and_backward(NAME, SIZES, BATCH, dtype)


def test_dropout_backward_with_the_forwards_mask():
    """dropout 0.2 in training: fastops' mask (read off the tape) applied in torch gives the same
    logits and gradients (float64); the same seed gives the same mask; eval mode has no dropout."""
    net = NETWORKS[NAME](np.float64, seed=1, **dict(SIZES, dropout=0.2))
    x, y = net.example_batch(BATCH, np.random.default_rng(2))
    module = net.torch_module()
    logits, tape = net.forward(x, training=True, seed=7)
    loss, gl = net.loss(logits, y)
    fg = net.backward(tape, gl)
    f, d = tape["dropout"], tape["classifier.1"]
    scale = np.where(f != 0, d / np.where(f != 0, f, 1), 0)
    kept = scale != 0
    assert 0 < kept.sum() < kept.size and np.allclose(scale[kept], 1 / 0.8, rtol=1e-12)
    assert np.array_equal(net.forward(x, training=True, seed=7)[0], logits)
    module.train()
    h = torch.flatten(F.adaptive_avg_pool2d(module.features(torch.from_numpy(x)), 1), 1)
    tl = module.classifier[1](h * torch.from_numpy(scale))
    F.cross_entropy(tl, torch.from_numpy(y)).backward()
    assert rel(logits, tl.detach().numpy()) < 1e-10
    tg = {k: v.grad.numpy() for k, v in module.named_parameters()}
    floor = grad_floor(tg)
    for k in net.params:
        assert rel(fg[k], tg[k], floor) < 1e-9, k
    e1, t1 = net.forward(x)
    assert "dropout" not in t1
    module = net.torch_module().eval()  # the running statistics after the net's two training forwards
    with torch.no_grad():
        assert rel(e1, module(torch.from_numpy(x)).numpy()) < 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folded_batch_norm_inference(dtype):
    """``fold_batch_norm()``: one fused conv per unit, the eval logits of the original."""
    check_folded_inference(NAME, SIZES, BATCH, dtype)
