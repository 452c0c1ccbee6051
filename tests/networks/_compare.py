"""Shared by the network tests: norm-wise relative errors, the float32/float64 network pair with
the same weights, one forward/loss/backward in fastops and in torch, and the checks every network
with batch norm runs against torch (float64 exactness, float32 judged against float64, SGD momentum
steps, eval mode)."""
import numpy as np
import pytest

from fastops import optim
from fastops.networks import NETWORKS

torch = pytest.importorskip("torch")
F = torch.nn.functional


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


def nets(name, sizes, batch):
    """The float32 network and a float64 one holding the same (float32-representable) values."""
    n32 = NETWORKS[name](np.float32, seed=1, **sizes)
    n64 = NETWORKS[name](np.float64, seed=1, **sizes)
    for k in n32.params:
        n64.params[k][...] = n32.params[k]
    for k in n32.buffers:
        n64.buffers[k][...] = n32.buffers[k]
    x, y = n32.example_batch(batch, np.random.default_rng(2))
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


def check_float64_with_batch_norm(name, sizes, batch, num_classes):
    """Logits, loss, running statistics (updated by the forward only) and every gradient in float64
    against torch float64, the input unmodified."""
    _, net, x, y = nets(name, sizes, batch)
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
    assert logits.dtype == np.float64 and logits.shape == (batch, num_classes)
    assert rel(logits, tl) < 1e-10 and abs(loss - tloss) < 1e-10 * abs(tloss)
    assert set(fg) == set(net.params)
    floor = grad_floor(tg)
    for k in net.params:
        assert fg[k].dtype == np.float64 and fg[k].shape == net.params[k].shape
        assert rel(fg[k], tg[k], floor) < 1e-9, k


def check_float32_with_batch_norm(name, sizes, batch):
    """Logits, running statistics and every gradient in float32: fastops' error against torch
    float64 (same weights and input) is within 10x torch float32's own error (plus a tiny floor)."""
    n32, n64, x, y = nets(name, sizes, batch)
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


def check_sgd_momentum_steps(name, sizes, batch):
    """Two SGD momentum steps (the second uses the buffer): losses, parameters and buffers."""
    _, net, x, y = nets(name, sizes, batch)
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


def check_eval_forward_and_backward(name, sizes, batch, dtype):
    """Eval mode (after a training forward so that the running statistics are not 0 and 1): the
    logits, the input left unmodified, the buffers unchanged, the dtype; float64 gradients."""
    n32, n64, x, y = nets(name, sizes, batch)
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


def check_folded_inference(name, sizes, batch, dtype):
    """``fold_batch_norm()``: the inference copy's logits equal the eval-mode logits of the
    original (float64 to rounding, float32 within float32 rounding of torch's eval logits), it holds
    one weight and bias per conv and no batch-norm state, the original is unchanged, and the copy
    refuses training."""
    n32, n64, x, y = nets(name, sizes, batch)
    net = n32 if dtype == np.float32 else n64
    x = x.astype(dtype)
    net.forward(x * 2 + 1, training=True)  # running statistics away from 0 and 1
    params = {k: v.copy() for k, v in net.params.items()}
    buffers = {k: v.copy() for k, v in net.buffers.items()}
    folded = net.fold_batch_norm()
    assert folded.folded and not net.folded
    assert all(np.array_equal(params[k], v) for k, v in net.params.items()) and set(params) == set(net.params)
    assert all(np.array_equal(buffers[k], v) for k, v in net.buffers.items()) and set(buffers) == set(net.buffers)
    units = net.conv_bn_units()
    assert units and not folded.buffers
    for conv, bn in units:
        assert f"{bn}.weight" not in folded.params and f"{bn}.bias" not in folded.params
        b = folded.params[f"{conv}.bias"]
        assert b.dtype == dtype and b.shape == (net.params[f"{conv}.weight"].shape[0],)
    ref, _ = net.forward(x)
    x0 = x.copy()
    out, _ = folded.forward(x)
    assert np.array_equal(x, x0) and out.dtype == dtype and out.shape == ref.shape
    tl, _, _ = torch_run(net.torch_module(), x, y, False)
    if dtype == np.float64:
        assert rel(out, ref) < 1e-12 and rel(out, tl) < 1e-10
    else:  # within 10x of how far fastops' own unfolded float32 eval logits are from torch's
        assert rel(out, tl) <= 10 * rel(ref, tl) + 1e-5
    with pytest.raises(ValueError, match="folded"):
        folded.forward(x, training=True)
    with pytest.raises(ValueError, match="folded"):
        folded.train_step(x, y, optim.SGD(list(folded.params.values()), lr=0.1))
    with pytest.raises(ValueError, match="already folded"):
        folded.fold_batch_norm()
