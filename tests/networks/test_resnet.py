"""ResNet18 (small: width 8, 10 classes, 64x64 images, batch 2) against the equivalent torch module
with the same weights: logits, loss, every parameter's gradient (training and eval mode), two SGD
momentum steps, the batch norms' running statistics, eval forward."""
import numpy as np
import pytest

from fastops.networks import NETWORKS

torch = pytest.importorskip("torch")
F = torch.nn.functional

from ._compare import (check_eval_forward_and_backward, check_float32_with_batch_norm, check_float64_with_batch_norm,
                       check_folded_inference,
                       check_sgd_momentum_steps)  # noqa: E402  (after the torch skip)

NAME = "resnet18"
SIZES = dict(width=8, num_classes=10, image_size=64)
BATCH = 2


def test_names_and_sizes():
    net = NETWORKS[NAME](np.float32, seed=1, **SIZES)
    module = net.torch_module()
    assert set(net.params) == {k for k, _ in module.named_parameters()}
    assert set(net.buffers) == {k for k in module.state_dict() if k.endswith(("running_mean", "running_var"))}
    for k in ("conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.weight", "layer4.1.bn2.bias", "fc.weight"):
        assert k in net.params
    assert "layer1.0.downsample.0.weight" not in net.params and "layer3.1.downsample.0.weight" not in net.params
    assert net.num_params() == sum(p.numel() for p in module.parameters())
    assert net.params["fc.weight"].shape == (10, 64)


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folded_batch_norm_inference(dtype):
    """``fold_batch_norm()``: one fused conv per unit, the eval logits of the original."""
    check_folded_inference(NAME, SIZES, BATCH, dtype)
