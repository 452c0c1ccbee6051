"""fastops.networks.transformer.TransformerEncoder against the torch module with the same weights
(nn.Embedding x 2, nn.TransformerEncoder of post-norm GELU layers, nn.Linear), on small sizes."""
import numpy as np
import pytest

from fastops import optim
from fastops.networks import NETWORKS

torch = pytest.importorskip("torch")
F = torch.nn.functional

Net = NETWORKS["transformer"]
SIZES = dict(vocab=11, classes=5, d_model=16, nhead=2, dim_feedforward=32, num_layers=2, seq_len=7)
BATCH = 2
EPS32 = float(np.finfo(np.float32).eps)


def _rel(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _batch(net, seed=1, tokens=None):
    x, y = net.example_batch(BATCH, np.random.default_rng(seed))
    if tokens is not None:
        x = np.ascontiguousarray(x[:, :tokens])
    return x, y


def _torch_grads(module, x, y):
    """Torch's logits, loss and parameter gradients (training mode, autograd)."""
    module.train()
    module.zero_grad()
    logits = module(torch.from_numpy(x))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    return (logits.detach().numpy(), float(loss.detach()),
            {k: p.grad.numpy().copy() for k, p in module.named_parameters()})


def _fastops_grads(net, x, y):
    logits, tape = net.forward(x, training=True)
    loss, g = net.loss(logits, y)
    return logits, loss, net.backward(tape, g)


def test_registry_names_and_sizes():
    assert NETWORKS["transformer"].__name__ == "TransformerEncoder"
    assert Net().num_params() == 7_460_840  # the sizes, vocab and classes 1000
    net = Net(**SIZES)
    module = net.torch_module()
    assert set(net.params) == set(module.state_dict())  # torch's names: torch_names() is the identity
    assert "layers.0.self_attn.in_proj_weight" in net.params and "layers.1.norm2.bias" in net.params
    assert net.num_params() == sum(p.numel() for p in module.parameters())
    assert not net.buffers
    for v in net.params.values():
        assert v.dtype == np.float32 and v.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_and_loss_match_torch(dtype):
    net = Net(dtype, **SIZES)
    x, y = _batch(net)
    logits, _ = net.forward(x, training=True)
    loss, _ = net.loss(logits, y)
    t_logits, t_loss, _ = _torch_grads(net.torch_module(), x, y)
    assert logits.dtype == dtype and logits.shape == (BATCH, SIZES["classes"])
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert _rel(logits, t_logits) < tol
    assert abs(loss - t_loss) <= tol * abs(t_loss)


@pytest.mark.parametrize("tokens", [SIZES["seq_len"], 4])
def test_gradients_float64_match_torch(tokens):
    """Every parameter's gradient to ~1e-9 relative; 4 tokens: sequences shorter than the
    positional table (its unused rows get zero gradients, as in torch)."""
    net = Net(np.float64, **SIZES)
    x, y = _batch(net, tokens=tokens)
    logits, loss, grads = _fastops_grads(net, x, y)
    t_logits, t_loss, t_grads = _torch_grads(net.torch_module(), x, y)
    assert set(grads) == set(net.params) == set(t_grads)
    assert _rel(logits, t_logits) < 1e-10
    for k, g in grads.items():
        assert g.shape == net.params[k].shape and g.dtype == np.float64
        assert _rel(g, t_grads[k]) < 1e-9, k
    assert not grads["pos_embedding.weight"][tokens:].any()


def test_gradients_float32_within_torchs_own_error():
    """fastops float32 against the float64 reference (torch float64, same weights) within 10x
    torch float32's own error against it, plus a floor of a few float32 ulps of the gradient."""
    net32 = Net(np.float32, **SIZES)
    net64 = Net(np.float64, **SIZES)
    for k, v in net32.params.items():
        net64.params[k][...] = v
    x, y = _batch(net32)
    _, _, g32 = _fastops_grads(net32, x, y)
    _, _, g64 = _fastops_grads(net64, x, y)
    _, _, t32 = _torch_grads(net32.torch_module(), x, y)
    _, _, ref = _torch_grads(net64.torch_module(), x, y)
    for k in net32.params:
        assert g32[k].dtype == np.float32
        scale = np.abs(ref[k]).max()
        ours = np.abs(g32[k] - ref[k]).max()
        torchs = np.abs(t32[k] - ref[k]).max()
        assert ours <= 10 * torchs + 4 * EPS32 * scale, (k, ours, torchs, scale)
        assert _rel(g64[k], ref[k]) < 1e-9, k


def test_sgd_momentum_steps_match_torch():
    net = Net(np.float64, **SIZES)
    module = net.torch_module()
    opt = optim.SGD(list(net.params.values()), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    module.train()
    for step in range(2):  # the second step uses the momentum buffers
        x, y = _batch(net, seed=10 + step)
        loss = net.train_step(x, y, opt)
        t_opt.zero_grad()
        t_loss = F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()
        assert abs(loss - float(t_loss)) <= 1e-10 * abs(float(t_loss))
        t_params = dict(module.named_parameters())
        for k, v in net.params.items():
            assert np.allclose(v, t_params[k].detach().numpy(), rtol=1e-10, atol=1e-12), (step, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_forward_agrees_and_keeps_input_and_dtype(dtype):
    net = Net(dtype, **SIZES)
    x, _ = _batch(net)
    x_copy = x.copy()
    params = {k: v.copy() for k, v in net.params.items()}
    logits, _ = net.forward(x)
    np.testing.assert_array_equal(x, x_copy)
    assert logits.dtype == dtype
    assert all(np.array_equal(v, params[k]) for k, v in net.params.items())
    # no dropout, no batch statistics: training and eval forwards agree
    np.testing.assert_array_equal(net.forward(x, training=True)[0], logits)
    module = net.torch_module().eval()
    with torch.no_grad():  # torch's eval path (its fused encoder-layer kernel where it applies)
        t_logits = module(torch.from_numpy(x)).numpy()
    assert t_logits.dtype == dtype
    assert _rel(logits, t_logits) < (1e-10 if dtype == np.float64 else 1e-5)


def test_bad_tokens_are_refused():
    net = Net(**SIZES)
    x, _ = _batch(net)
    with pytest.raises(ValueError, match="outside"):
        net.forward(x + SIZES["vocab"])
    with pytest.raises(ValueError, match="seq_len"):
        net.forward(np.zeros((1, SIZES["seq_len"] + 1), np.int64))
    with pytest.raises(ValueError, match="integer"):
        net.forward(x.astype(np.float32))
    with pytest.raises(ValueError, match="multiple"):
        Net(d_model=10, nhead=3)
