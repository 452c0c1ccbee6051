"""MobileNetV2 (small: width_mult 0.25, 10 classes, 64x64 images, batch 2, all 17 inverted residual
blocks) against the equivalent torch module with the same weights: logits, loss, every parameter's
gradient (training and eval mode), two SGD momentum steps, the batch norms' running statistics, eval
forward; dropout 0 for the comparisons, and a test of the dropout path with fastops' mask applied in
torch."""
import numpy as np
import pytest

from fastops import optim
from fastops.networks import NETWORKS

torch = pytest.importorskip("torch")
F = torch.nn.functional

NAME = "mobilenet_v2"
SIZES = dict(width_mult=0.25, num_classes=10, image_size=64, dropout=0.0)
BATCH = 2


def rel(a, b, floor=0.0):
    """max |a - b| / max(max |b|, floor) (norm-wise relative error; ``floor`` for values that are
    zero up to rounding, such as a running mean of batch-normalised data)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor, 1e-300))


def grad_floor(ref):
    """A gradient's error is measured against at least 1e-3 of the largest gradient: the biases of
    batch norms followed (through convolutions and residual adds) only by other batch norms in
    training have a zero gradient, which torch and fastops both give as rounding noise."""
    return 1e-3 * max(np.max(np.abs(v)) for v in ref.values())


def nets():
    """The float32 network and a float64 one holding the same (float32-representable) values."""
    n32 = NETWORKS[NAME](np.float32, seed=1, **SIZES)
    n64 = NETWORKS[NAME](np.float64, seed=1, **SIZES)
    for k in n32.params:
        n64.params[k][...] = n32.params[k]
    for k in n32.buffers:
        n64.buffers[k][...] = n32.buffers[k]
    x, y = n32.example_batch(BATCH, np.random.default_rng(2))
    return n32, n64, x, y


def torch_run(module, x, y, training):
    module.train(training)
    logits = module(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    return logits.detach().numpy(), float(loss.detach()), {k: v.grad.numpy() for k, v in module.named_parameters()}


def fast_run(net, x, y, training):
    logits, tape = net.forward(x, training=training)
    loss, g = net.loss(logits, y)
    return logits, loss, net.backward(tape, g)


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
    _, net, x, y = nets()
    x = x.astype(np.float64)
    x0 = x.copy()
    module = net.torch_module()
    tl, tloss, tg = torch_run(module, x, y, True)
    logits, tape = net.forward(x, training=True)
    loss, gl = net.loss(logits, y)
    buffers = {k: v.copy() for k, v in net.buffers.items()}
    fg = net.backward(tape, gl)
    assert np.array_equal(x, x0)
    # the running statistics: updated once, by the forward, not by the backward
    assert all(np.array_equal(buffers[k], v) for k, v in net.buffers.items())
    state = module.state_dict()
    for k, v in net.buffers.items():  # floor 1: running variance's scale (the means can be 0 + rounding)
        assert v.dtype == np.float64 and rel(v, state[k].numpy(), 1.0) < 1e-10, k
    assert logits.dtype == np.float64 and logits.shape == (BATCH, 10)
    assert rel(logits, tl) < 1e-10 and abs(loss - tloss) < 1e-10 * abs(tloss)
    assert set(fg) == set(net.params)
    floor = grad_floor(tg)
    for k in net.params:
        assert fg[k].dtype == np.float64 and fg[k].shape == net.params[k].shape
        assert rel(fg[k], tg[k], floor) < 1e-9, k


def test_float32_as_accurate_as_torch_float32():
    """Logits, running statistics and every gradient in float32: fastops' error against torch
    float64 (same weights and input) is within 10x torch float32's own error (plus a tiny floor)."""
    n32, n64, x, y = nets()
    m64, m32 = n64.torch_module(), n32.torch_module()
    rl, _, ref = torch_run(m64, x.astype(np.float64), y, True)
    tl, _, t32 = torch_run(m32, x, y, True)
    buffers = {k: v.copy() for k, v in n32.buffers.items()}
    fl, _, f32 = fast_run(n32, x, y, True)
    assert fl.dtype == np.float32 and all(v.dtype == np.float32 for v in f32.values())
    assert set(f32) == set(n32.params) and all(f32[k].shape == n32.params[k].shape for k in f32)
    assert not all(np.array_equal(buffers[k], v) for k, v in n32.buffers.items())
    assert rel(fl, rl) <= 10 * rel(tl, rl) + 1e-6
    s64, s32 = m64.state_dict(), m32.state_dict()
    for k, v in n32.buffers.items():
        r = s64[k].numpy()
        assert v.dtype == np.float32 and rel(v, r, 1.0) <= 10 * rel(s32[k].numpy(), r, 1.0) + 1e-6, k
    floor = grad_floor(ref)
    for k in n32.params:
        ours, theirs = rel(f32[k], ref[k], floor), rel(t32[k], ref[k], floor)
        assert ours <= 10 * theirs + 1e-6, (k, ours, theirs)


def test_sgd_momentum_steps_match_torch():
    _, net, x, y = nets()
    x = x.astype(np.float64)
    module = net.torch_module().train()
    opt = optim.SGD(list(net.params.values()), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):  # the second step uses the momentum buffer
        loss = net.train_step(x, y, opt)
        topt.zero_grad()
        tloss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert abs(loss - float(tloss.detach())) < 1e-10 * abs(float(tloss.detach()))
    state = module.state_dict()
    for k, v in list(net.params.items()) + list(net.buffers.items()):  # floor 1: BN weights' scale
        assert rel(v, state[k].numpy(), 1.0) < 1e-9, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_forward_and_backward(dtype):
    """Eval mode (after a training forward so that the running statistics are not 0 and 1): the
    logits, the input left unmodified, the buffers unchanged, the dtype; float64 gradients."""
    n32, n64, x, y = nets()
    net = n32 if dtype == np.float32 else n64
    x = x.astype(dtype)
    net.forward(x * 2 + 1, training=True)
    module = net.torch_module()
    buffers = {k: v.copy() for k, v in net.buffers.items()}
    x0 = x.copy()
    tl, _, tg = torch_run(module, x, y, False)
    fl, _, fg = fast_run(net, x, y, False)
    assert np.array_equal(x, x0)
    assert all(np.array_equal(buffers[k], v) for k, v in net.buffers.items())
    assert fl.dtype == dtype and all(v.dtype == dtype for v in fg.values())
    assert rel(fl, tl) < (1e-5 if dtype == np.float32 else 1e-10)
    if dtype == np.float64:
        floor = grad_floor(tg)
        for k in net.params:
            assert rel(fg[k], tg[k], floor) < 1e-9, k


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
