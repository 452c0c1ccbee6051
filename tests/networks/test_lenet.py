"""LeNet5 against the equivalent torch module with the same weights: logits, loss, every
parameter's gradient, one SGD momentum step, eval forward (small batch, default 28x28 input)."""
import numpy as np
import pytest

from fastops import optim

torch = pytest.importorskip("torch")
F = torch.nn.functional

from ._compare import fast_run, nets as _nets, rel, torch_run  # noqa: E402  (after the torch skip)

SIZES = dict()  # LeNet5 at its own size (61,706 parameters) is small enough
BATCH = 4


def nets():
    return _nets("lenet5", SIZES, BATCH)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_loss_and_gradients_match_torch(dtype):
    n32, n64, x, y = nets()
    net = n32 if dtype == np.float32 else n64
    x = x.astype(dtype)
    module = net.torch_module()
    tl, tloss, tg = torch_run(module, x, y, True)
    fl, floss, fg = fast_run(net, x, y, True)
    assert fl.dtype == dtype and fl.shape == (BATCH, 10)
    assert set(fg) == set(net.params) and all(fg[k].shape == net.params[k].shape for k in fg)
    assert all(fg[k].dtype == dtype for k in fg)
    names = net.torch_names()
    if dtype == np.float64:
        assert rel(fl, tl) < 1e-10 and abs(floss - tloss) < 1e-10 * abs(tloss)
        for k in net.params:
            assert rel(fg[k], tg[names[k]]) < 1e-9, k
    else:
        assert rel(fl, tl) < 1e-5 and abs(floss - tloss) < 1e-5 * abs(tloss)


def test_float32_gradients_as_accurate_as_torch_float32():
    """fastops float32's gradient error against torch float64 is within 10x torch float32's own."""
    n32, n64, x, y = nets()
    _, _, ref = torch_run(n64.torch_module(), x.astype(np.float64), y, True)
    _, _, t32 = torch_run(n32.torch_module(), x, y, True)
    _, _, f32 = fast_run(n32, x, y, True)
    names = n32.torch_names()
    for k in n32.params:
        r, ours, theirs = ref[names[k]], f32[k], t32[names[k]]
        assert rel(ours, r) <= 10 * rel(theirs, r) + 1e-6, (k, rel(ours, r), rel(theirs, r))


def test_sgd_momentum_steps_match_torch():
    _, net, x, y = nets()
    x = x.astype(np.float64)
    module = net.torch_module()
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
    for k, v in net.params.items():
        assert rel(v, state[net.torch_names()[k]].numpy()) < 1e-10, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_forward_keeps_input_and_dtype(dtype):
    n32, n64, x, y = nets()
    net = n32 if dtype == np.float32 else n64
    x = x.astype(dtype)
    x0 = x.copy()
    logits, _ = net.forward(x)
    assert logits.dtype == dtype
    assert np.array_equal(x, x0)
    module = net.torch_module().eval()
    with torch.no_grad():
        tl = module(torch.from_numpy(x)).numpy()
    assert rel(logits, tl) < (1e-5 if dtype == np.float32 else 1e-10)
    assert net.num_params() == sum(p.numel() for p in module.parameters()) == 61706
