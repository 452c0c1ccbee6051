"""NaN and Inf propagate as in PyTorch, per family (activations, max pooling, softmax/log_softmax,
norms, losses, conv), forward and backward.

Each case feeds inputs holding NaN, +Inf and -Inf. The test compares fastops' non-finite pattern
(per element: ``N`` NaN, ``+`` +Inf, ``-`` -Inf, ``.`` finite) with an explicit expected pattern
written below (the pattern PyTorch 2.x produces, so the test needs no torch), and, where torch is
installed, with torch's pattern and torch's finite values as well.
"""
import numpy as np
import pytest

import fastops
from fastops.testing import grad_entries

from .conftest import torch

N, P, M = np.nan, np.inf, -np.inf
ROW = np.array([N, P, M, -1.5, 0.0, 2.0])  # every activation sees NaN, +Inf, -Inf and finite values


def _pattern(a):
    a = np.asarray(a, np.float64).reshape(-1)
    return "".join("N" if np.isnan(v) else "+" if v == np.inf else "-" if v == -np.inf else "." for v in a)


# name -> (op name, positional args, kwargs, torch forward on the array args, differentiable positions)
CASES = {}
EXPECTED = {}  # name -> [forward pattern, gradient pattern per differentiable position]: filled below


def case(name, op, args, kwargs, tfwd, grads=(0,)):
    CASES[name] = (op, args, kwargs, tfwd, grads)


# ---------------------------------------------------------------- activations
_ACTS = {"relu": {}, "relu6": {}, "leaky_relu": {"negative_slope": 0.1}, "elu": {}, "sigmoid": {}, "tanh": {},
         "gelu": {}, "gelu_tanh": {"approximate": "tanh"}, "silu": {}, "softplus": {}, "hardsigmoid": {},
         "hardswish": {}, "mish": {}}
for _n, _kw in _ACTS.items():
    _op = _n.split("_tanh")[0]
    _tf = (lambda t, x, op=_op, kw=_kw: getattr(t.nn.functional, op)(x, **kw)) if _op not in ("sigmoid", "tanh") else \
        (lambda t, x, op=_op: getattr(t, op)(x))
    case(f"activation.{_n}", _op, (ROW,), _kw, _tf)

# ---------------------------------------------------------------- softmax / log_softmax
SM = np.array([[N, 1, 2], [P, 1, 2], [M, 1, 2], [P, P, 1], [M, M, M], [1, 2, 3], [M, M, 0]])
case("softmax", "softmax", (SM,), {"dim": 1}, lambda t, x: t.softmax(x, dim=1))
case("log_softmax", "log_softmax", (SM,), {"dim": 1}, lambda t, x: t.log_softmax(x, dim=1))

# ---------------------------------------------------------------- max pooling (NaN wins)
MP = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
MP[0, 0, 0, 0] = N  # window (0, 0): NaN beats 5.0
MP[0, 0, 1, 3] = P  # window (0, 1): +Inf
MP[0, 0, 2, 0] = M  # window (1, 0): -Inf loses
MP[0, 1, 2, 2], MP[0, 1, 3, 3] = N, P  # window (1, 1) of channel 1: NaN beats +Inf
case("max_pool2d", "max_pool2d", (MP,), {"kernel_size": 2}, lambda t, x: t.nn.functional.max_pool2d(x, 2))
case("max_pool2d.overlap", "max_pool2d", (MP,), {"kernel_size": 3, "stride": 1, "padding": 1},
     lambda t, x: t.nn.functional.max_pool2d(x, 3, 1, 1))
case("max_pool1d", "max_pool1d", (np.array([[[1.0, N, 2.0, M, M, M, P, 0.0]]]),), {"kernel_size": 3, "stride": 1, "padding": 1},
     lambda t, x: t.nn.functional.max_pool1d(x, 3, 1, 1))
case("adaptive_max_pool2d", "adaptive_max_pool2d", (MP,), {"output_size": 2},
     lambda t, x: t.nn.functional.adaptive_max_pool2d(x, 2))

# ---------------------------------------------------------------- norms
NX = np.arange(24, dtype=np.float64).reshape(2, 4, 3) / 7
NX[0, 1, 1] = N  # sample 0, channel 1 (group 0 of 2)
NX[1, 3, 0] = P  # sample 1, channel 3 (group 1 of 2)
W4, B4 = np.linspace(0.5, 1.5, 4), np.linspace(-1, 1, 4)
case("batch_norm", "batch_norm", (NX, None, None, W4, B4), {"training": True},
     lambda t, x, w, b: t.nn.functional.batch_norm(x, None, None, w, b, training=True), (0, 3, 4))
case("batch_norm.eval", "batch_norm", (NX, np.zeros(4), np.ones(4), W4, B4), {},
     lambda t, x, rm, rv, w, b: t.nn.functional.batch_norm(x, rm, rv, w, b), (0, 3, 4))
case("layer_norm", "layer_norm", (NX, (3,), W4[:3], B4[:3]), {},
     lambda t, x, w, b: t.nn.functional.layer_norm(x, (3,), w, b), (0, 2, 3))
case("group_norm", "group_norm", (NX, 2, W4, B4), {}, lambda t, x, w, b: t.nn.functional.group_norm(x, 2, w, b), (0, 2, 3))

# ---------------------------------------------------------------- losses (reduction="none" shows the pattern)
LX = np.array([N, P, M, 1.0, P, 0.5])
LY = np.array([1.0, 1.0, 1.0, N, P, 0.5])
for _n in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"):
    case(f"loss.{_n}", _n, (LX, LY), {"reduction": "none"},
         lambda t, x, y, n=_n: getattr(t.nn.functional, n)(x, y, reduction="none"), (0, 1))
    case(f"loss.{_n}.mean", _n, (LX, LY), {}, lambda t, x, y, n=_n: getattr(t.nn.functional, n)(x, y), (0, 1))
BX = np.array([N, P, M, P, M, 0.5])
BY = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.3])
case("loss.binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits", (BX, BY), {"reduction": "none"},
     lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"))
CX = np.array([[N, 1.0, 2.0], [M, 1.0, 2.0], [1.0, M, 2.0], [P, 1.0, 2.0], [1.0, 2.0, 3.0]])
CT = np.array([1, 1, 1, 0, 2])
case("loss.cross_entropy", "cross_entropy", (CX, CT), {"reduction": "none"},
     lambda t, x, y: t.nn.functional.cross_entropy(x, y, reduction="none"))
case("loss.cross_entropy.mean", "cross_entropy", (CX[1:], CT[1:]), {}, lambda t, x, y: t.nn.functional.cross_entropy(x, y))

# ---------------------------------------------------------------- conv
CI = np.arange(50, dtype=np.float64).reshape(1, 2, 5, 5) / 50
CI[0, 0, 0, 0] = N
CI[0, 1, 4, 4] = P
CW = np.linspace(0.1, 1.0, 3 * 2 * 3 * 3).reshape(3, 2, 3, 3)
CW[2, 0, 0, 0] = -0.5  # output channel 2 sums +Inf * positive and +Inf * negative: NaN
CW[1, 1, 2, 2] = 0.0  # 0 * Inf = NaN
case("conv2d", "conv2d", (CI, CW, None), {"padding": 1}, lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1), (0, 1))
WN = CW.copy()
WN[0, 1, 1, 1] = N
case("conv2d.nan_weight", "conv2d", (np.arange(50, dtype=np.float64).reshape(1, 2, 5, 5) / 50, WN, None), {},
     lambda t, x, w: t.nn.functional.conv2d(x, w), (0, 1))
case("conv1d", "conv1d", (np.array([[[1.0, N, 2.0, 3.0, P, 1.0, 0.0]]]), np.array([[[0.5, 1.0, 0.25]], [[1.0, -1.0, 0.0]]]),
                          np.array([0.5, -0.5])), {"padding": 1}, lambda t, x, w, b: t.nn.functional.conv1d(x, w, b, padding=1),
     (0, 1, 2))


# ---------------------------------------------------------------- triplet_margin_loss
# rows: NaN in anchor, positive, negative; +Inf in anchor (inf - inf: NaN); +Inf in negative (loss 0,
# but torch's gradient 0 * (inf / inf) is NaN)
TA = np.arange(15, dtype=np.float64).reshape(5, 3) / 5
TP, TN = TA + 0.1, TA - 0.2
TA[0, 0], TP[1, 1], TN[2, 2], TA[3, 0], TN[4, 1] = N, N, N, P, P
for _sw in (False, True):
    for _red in ("none", "mean"):
        case(f"loss.triplet_margin_loss{'.swap' if _sw else ''}{'.mean' if _red == 'mean' else ''}", "triplet_margin_loss",
             (TA, TP, TN), {"swap": _sw, "reduction": _red},
             lambda t, a, p, n, sw=_sw, red=_red: t.nn.functional.triplet_margin_loss(a, p, n, swap=sw, reduction=red),
             (0, 1, 2))


# ---------------------------------------------------------------- binary_cross_entropy_with_logits, infinite targets
# PyTorch: (1 - y) x - w_log * log_sigmoid(x), w_log = 1 without pos_weight (so +-inf targets give
# +-inf, not 0 * inf), (pos_weight - 1) y + 1 with it
BIX = np.array([-2.0, 0.0, 3.0, -2.0, 0.0, 3.0, P, M, 1.0])
BIY = np.array([P, P, P, M, M, M, P, P, 0.5])
case("loss.binary_cross_entropy_with_logits.inf_target", "binary_cross_entropy_with_logits", (BIX, BIY),
     {"reduction": "none"}, lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"),
     (0, 1))
case("loss.binary_cross_entropy_with_logits.inf_target.pos_weight", "binary_cross_entropy_with_logits", (BIX, BIY),
     {"reduction": "none", "pos_weight": np.full(9, 2.0)},
     lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none",
                                                                      pos_weight=t.full((9,), 2.0, dtype=t.float64)),
     (0, 1))

# ---------------------------------------------------------------- rnn_cell with relu: relu keeps NaN
RX = np.arange(12, dtype=np.float64).reshape(3, 4) / 12 - 0.3
RH = np.arange(15, dtype=np.float64).reshape(3, 5) / 15 - 0.4
RWI = np.linspace(-1, 1, 20).reshape(5, 4)
RWH = np.linspace(1, -1, 25).reshape(5, 5)
RX[0, 1], RH[1, 2] = N, N
RWH2 = RWH.copy()
RWH2[3, 0] = N  # hidden unit 3 of every sample
_rnn_relu = lambda t, x, h, wi, wh, bi, bh: t.relu(x @ wi.T + bi + h @ wh.T + bh)  # noqa: E731
case("rnn_cell.relu", "rnn_cell", (RX, RH, RWI, RWH, np.full(5, 0.1), np.full(5, -0.05)), {"nonlinearity": "relu"},
     _rnn_relu, (0, 1, 2, 3, 4, 5))
case("rnn_cell.relu.nan_weight", "rnn_cell", (np.abs(RX) + 0.1, np.abs(RH), RWI, RWH2, np.full(5, 0.1), np.full(5, -0.05)),
     {"nonlinearity": "relu"}, _rnn_relu, (0, 1, 2, 3, 4, 5))



# The expected patterns: PyTorch 2.x's (checked against torch below when it is installed)
EXPECTED.update({
    'activation.relu': ['N+....', '......'],
    'activation.relu6': ['N.....', '......'],
    'activation.leaky_relu': ['N+-...', '......'],
    'activation.elu': ['N+....', '......'],
    'activation.sigmoid': ['N.....', 'N.....'],
    'activation.tanh': ['N.....', 'N.....'],
    'activation.gelu': ['N+N...', 'NNN...'],
    'activation.gelu_tanh': ['N+N...', 'NNN...'],
    'activation.silu': ['N+N...', 'NNN...'],
    'activation.softplus': ['N+....', 'N.....'],
    'activation.hardsigmoid': ['N.....', '......'],
    'activation.hardswish': ['N+N...', '......'],
    'activation.mish': ['N+N...', 'NNN...'],
    'softmax': ['NNNNNN...NNNNNN......', 'NNNNNN...NNNNNN......'],
    'log_softmax': ['NNNNNN-..NNNNNN...--.', 'NNNNNN...NNNNNN......'],
    'max_pool2d': ['N+.....N', '................................'],
    'max_pool2d.overlap': ['NN++NN++..++.........NNN.NNN.NNN', '................................'],
    'max_pool1d': ['NNN.-+++', '........'],
    'adaptive_max_pool2d': ['N+.....N', '................................'],
    'batch_norm': ['...NNN...NNN...NNN...NNN', '...NNN...NNN...NNN...NNN', '.N.N', '....'],
    'batch_norm.eval': ['....N................+..', '........................', '.N.+', '....'],
    'layer_norm': ['...NNN...............NNN', '...NNN...............NNN', 'NNN', '...'],
    'group_norm': ['NNNNNN............NNNNNN', 'NNNNNN............NNNNNN', 'NNNN', '....'],
    'loss.mse_loss': ['N++NN.', 'N+-NN.', 'N-+NN.'],
    'loss.mse_loss.mean': ['N', 'N+-NN.', 'N-+NN.'],
    'loss.l1_loss': ['N++NN.', '......', '......'],
    'loss.l1_loss.mean': ['N', '......', '......'],
    'loss.smooth_l1_loss': ['N++NN.', 'N..NN.', 'N..NN.'],
    'loss.smooth_l1_loss.mean': ['N', 'N..NN.', 'N..NN.'],
    'loss.huber_loss': ['N++NN.', 'N..NN.', 'N..NN.'],
    'loss.huber_loss.mean': ['N', 'N..NN.', 'N..NN.'],
    'loss.binary_cross_entropy_with_logits': ['NNN+N.', 'N.....'],
    'loss.cross_entropy': ['N.+N.', 'NNN......NNN...'],
    'loss.cross_entropy.mean': ['N', '......NNN...'],
    'conv2d': ['NN...NN...........++...++NN...NN...........N+...++NN...NN...........++...++', '..................................................', 'NN.NN........++.++NN.NN........++.++NN.NN........++.++'],
    'conv2d.nan_weight': ['NNNNNNNNN..................', '...............................NNN..NNN..NNN......', '......................................................'],
    'conv1d': ['NNN+++.NNNN-+.', '.......', 'NNNNNN', '..'],
    'loss.binary_cross_entropy_with_logits.inf_target': ['+N--N+-+.', '---+++--.', '......-+.'],
    'loss.binary_cross_entropy_with_logits.inf_target.pos_weight': ['+NN-NNN+.', 'NNNNNNNN.', '......-+.'],
    'rnn_cell.relu': ['NNNNNNNNNN.....', '............', '...............', '.N...N...N...N...N..',
                      '..N....N....N....N....N..', '.....', '.....'],
    'rnn_cell.relu.nan_weight': ['NNNNNNNNNN...N.', '............', 'N....N....N....', '.N...N...N...N...N..',
                                 '..N....N....N....N....N..', '.....', '.....'],
    'loss.triplet_margin_loss': ['NNNN.', 'NNNNNNNNNN...N.', 'NNNNNN...N.....', 'NNN...NNNN...N.'],
    'loss.triplet_margin_loss.mean': ['N', 'NNNNNNNNNN...N.', 'NNNNNN...N.....', 'NNN...NNNN...N.'],
    'loss.triplet_margin_loss.swap': ['NNN+.', 'NNNNNNNNNN...N.', 'NNNNNNNNNN...N.', 'NNNNNNNNNN...N.'],
    'loss.triplet_margin_loss.swap.mean': ['N', 'NNNNNNNNNN...N.', 'NNNNNNNNNN...N.', 'NNNNNNNNNN...N.'],
})

# Known deviation (not fixed here: fastops/norm/_stats.py planes_backward is shared by the norms and
# is being reworked for speed in parallel): in eval mode batch_norm's input gradient g * w * rstd does
# not depend on x, but fastops' kernel multiplies a zero training term by x_hat, so a NaN/Inf input
# element gets a NaN gradient where PyTorch gives a finite one.
KNOWN = {}  # cases fastops does not match yet (xfail, strict): none


def _fastops_patterns(name):
    op, args, kwargs, _, grads = CASES[name]
    f = getattr(fastops, op)
    keep = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    out = np.asarray(f(*args, **kwargs))
    g = f.backward(np.ones_like(out), *args, **kwargs)
    assert all(not isinstance(a, np.ndarray) or np.array_equal(a, b, equal_nan=True) for a, b in zip(args, keep))
    g = [g[grad_entries(op, args)[i]] for i in grads]
    return [_pattern(out)] + [_pattern(gi) for gi in g], out, g


def _torch_results(name):
    _, args, kwargs, tfwd, grads = CASES[name]
    ts = {i: torch.from_numpy(np.array(a)).requires_grad_(i in grads) for i, a in enumerate(args) if isinstance(a, np.ndarray)}
    tout = tfwd(torch, *ts.values())
    tg = torch.autograd.grad(tout, [ts[i] for i in grads], torch.ones_like(tout), allow_unused=True)
    tg = [np.zeros(args[i].shape) if g is None else g.numpy() for i, g in zip(grads, tg)]
    out = tout.detach().numpy()
    return [_pattern(out)] + [_pattern(g) for g in tg], out, tg


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN[n], strict=True)) if n in KNOWN else n for n in CASES])
def test_nan_inf_pattern(name):
    got, out, gr = _fastops_patterns(name)
    assert got == EXPECTED[name], f"{name}: fastops {got}, expected (PyTorch's) {EXPECTED[name]}"
    if torch is None:
        return  # the torch half only
    expect, tout, tg = _torch_results(name)
    assert got == expect, f"{name}: fastops {got} vs torch {expect}"
    # finite values to 1e-7: ATen computes some float64 kernels with float constants (hardsigmoid's 1.0f / 6)
    fin = np.isfinite(tout)
    np.testing.assert_allclose(out[fin], tout[fin], rtol=1e-7, atol=1e-12, err_msg=name)
    for i, (a, b) in enumerate(zip(gr, tg)):
        fin = np.isfinite(b)
        np.testing.assert_allclose(a[fin], b[fin], rtol=1e-7, atol=1e-12, err_msg=f"{name} grad {i}")


# ---------------------------------------------------------------- scaled_dot_product_attention
# NaN or Inf in query or key: the scores q . k of that query row (query) or of every row of the head
# (key) hold NaN or +-Inf, and softmax over them is NaN (an Inf score gives inf - inf). Every path
# (blocked Numba kernels, BLAS, tiled) and both directions are compared with the mathematically
# defined result, softmax(q k^T * scale + mask) v and its gradients computed in float64 NumPy:
# torch's math path agrees (NaN for those rows), but its fused CPU kernel may return 0 for a query
# row of NaN, so the reference here is the formula itself.


def _sdpa_ref(q, k, v, m, scale, go):
    q, k, v, go = (a.astype(np.float64) for a in (q, k, v, go))
    with np.errstate(all="ignore"):
        s = q @ np.swapaxes(k, -1, -2) * scale + (0 if m is None else m)
        e = np.exp(s - np.max(s, -1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
        dp = go @ np.swapaxes(v, -1, -2)
        ds = p * (dp - (p * dp).sum(-1, keepdims=True))
        return p @ v, ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, np.swapaxes(p, -1, -2) @ go


def _sdpa_path(path):
    from fastops import _dispatch

    # the blocks of test_attention.py: score blocks of 16 rows
    return _dispatch.force(attention_path=path, **({} if path == "blocked" else {"attention_block_rows": 16}))


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("where,value", [("key", N), ("key", P), ("query", N), ("query", P)])
@pytest.mark.parametrize("path,dtype", [("blocked", np.float32), ("blocked", np.float64), ("rows", np.float32),
                                        ("rows", np.float64), ("tiled", np.float32)])
def test_sdpa_nan_inf(path, dtype, where, value, mask):
    with _sdpa_path(path):
        _check_sdpa_nan_inf(path, dtype, where, value, mask)


def _check_sdpa_nan_inf(path, dtype, where, value, mask):
    f = fastops.scaled_dot_product_attention
    E = 64 if path == "tiled" else 4
    rng = np.random.default_rng(3)
    q, k, v, go = (rng.standard_normal(s).astype(dtype) for s in ((1, 2, 40, E), (1, 2, 50, E), (1, 2, 50, E), (1, 2, 40, E)))
    m = rng.standard_normal((40, 50)).astype(dtype) if mask else None
    (q if where == "query" else k)[0, 0, 3, 1] = value
    assert f.explain(q.shape, np.dtype(dtype).name, key_shape=k.shape, value_shape=v.shape)["path"] == path
    with np.errstate(all="ignore"):  # BLAS warns about the NaN it multiplies
        got = (f(q, k, v, m),) + tuple(f.backward(go, q, k, v, m)[:3])
    ref = _sdpa_ref(q, k, v, m, 1 / np.sqrt(E), go)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, ref):
        assert _pattern(a) == _pattern(b), f"{name}: fastops {_pattern(a)} vs math {_pattern(b)}"
        fin = np.isfinite(b)
        np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=tol, err_msg=name)
    if where == "key" and np.isnan(value):  # NaN in key[0, 0, 3]: every query row of head 0 NaN
        assert np.isnan(got[0][0, 0]).any(axis=-1).all() and np.isfinite(got[0][0, 1]).all()
    if torch is not None and where == "key":  # torch agrees here (every path of it)
        t = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)),
                                                             attn_mask=None if m is None else torch.from_numpy(m))
        assert _pattern(t.numpy()) == _pattern(got[0])


def test_rnn_relu_sequence_keeps_nan():
    """``rnn(nonlinearity='relu')``: a NaN input at step 1 of sample 0 makes every later hidden state
    of sample 0 NaN (relu(NaN) = NaN, then h W_hh^T spreads it), the other samples stay finite."""
    rng = np.random.default_rng(4)
    L, B, I, H = 4, 3, 3, 5
    x = rng.standard_normal((L, B, I))
    x[1, 0, 2] = N
    params = [rng.standard_normal((H, I)) * 0.5, np.abs(rng.standard_normal((H, H))) * 0.3, np.full(H, 0.5), np.full(H, 0.5)]
    y, hn = fastops.rnn(x, None, params, nonlinearity="relu")
    assert np.isfinite(y[0]).all() and np.isnan(y[1:, 0]).all() and np.isfinite(y[:, 1:]).all()
    assert np.isnan(hn[0, 0]).all() and np.isfinite(hn[0, 1:]).all()
    g = fastops.rnn.backward((np.ones_like(y), np.ones_like(hn)), x, None, params, nonlinearity="relu")
    if torch is None:
        return
    m = torch.nn.RNN(I, H, nonlinearity="relu").double()
    with torch.no_grad():
        for tp, a in zip((m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0), params):
            tp.copy_(torch.from_numpy(a))
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty, th = m(tx)
    assert _pattern(ty.detach().numpy()) == _pattern(y) and _pattern(th.detach().numpy()) == _pattern(hn)
    fin = np.isfinite(y)
    np.testing.assert_allclose(y[fin], ty.detach().numpy()[fin], rtol=1e-12, atol=1e-12)
    (ty.sum() + th.sum()).backward()
    assert _pattern(g[0]) == _pattern(tx.grad.numpy())
