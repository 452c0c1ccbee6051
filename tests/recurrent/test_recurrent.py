"""Recurrent family beyond the op table (fastops/testing/recurrent.py: every op against its float64
NumPy reference, torch and finite differences, the backward contract, layouts, errors; each path at
1 and 2 threads in tests/test_paths.py): dropout between layers, torch's nn modules (their parameter
order), the chunked input projection, the backward's grad_output structure."""
import numpy as np
import pytest

import fastops
from fastops.testing.recurrent import make_params

from ..conftest import requires_torch, torch


def call(kind, x, h0, c0, params, **kw):
    if kind == "lstm":
        return fastops.lstm(x, None if h0 is None else (h0, c0), params, **kw)
    if kind == "gru":
        return fastops.gru(x, h0, params, **kw)
    return fastops.rnn(x, h0, params, nonlinearity=kind[4:], **kw)


def call_bwd(kind, gy, gh, gc, x, h0, c0, params, **kw):
    if kind == "lstm":
        return fastops.lstm.backward((gy, (gh, gc)), x, None if h0 is None else (h0, c0), params, **kw)
    if kind == "gru":
        return fastops.gru.backward((gy, gh), x, h0, params, **kw)
    return fastops.rnn.backward((gy, gh), x, h0, params, nonlinearity=kind[4:], **kw)


SEQ_CASES = [
    ("lstm", dict(num_layers=1), True, True),
    ("lstm", dict(num_layers=2, bidirectional=True, batch_first=True), True, False),
    ("gru", dict(num_layers=2, bidirectional=True), True, True),
    ("gru", dict(num_layers=1, batch_first=True), False, True),
    ("rnn_tanh", dict(num_layers=2), True, True),
    ("rnn_relu", dict(num_layers=1, bidirectional=True), True, False),
]
SEQ_IDS = [f"{k}-{i}" for i, (k, *_rest) in enumerate(SEQ_CASES)]


def _setup(kind, kw, bias, with_h0, dtype, T=5, B=3, I=4, H=6, seed=0):
    rng = np.random.default_rng(seed)
    L, D = kw.get("num_layers", 1), 2 if kw.get("bidirectional") else 1
    params = make_params(rng, kind, I, H, L, D, bias, dtype)
    x = rng.standard_normal((B, T, I) if kw.get("batch_first") else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((L * D, B, H)).astype(dtype) if with_h0 else None
    c0 = rng.standard_normal((L * D, B, H)).astype(dtype) if (with_h0 and kind == "lstm") else None
    return x, h0, c0, params, L, D


def _flat_fd_check(kind, kw, bias, with_h0, dropout=False):
    x, h0, c0, params, L, D = _setup(kind, kw, bias, with_h0, np.float64, T=4, B=2, I=3, H=4, seed=1)
    if dropout:
        kw = dict(kw, dropout=0.3, training=True, seed=11)
    rng = np.random.default_rng(5)
    y, state = call(kind, x, h0, c0, params, **kw)
    hn, cn = state if kind == "lstm" else (state, None)
    gy, gh = rng.standard_normal(y.shape), rng.standard_normal(hn.shape)
    gc = rng.standard_normal(cn.shape) if kind == "lstm" else None
    grads = call_bwd(kind, gy, gh, gc, x, h0, c0, params, **kw)
    dx, dstate, dparams = grads
    # random direction over every differentiable input
    tx = rng.standard_normal(x.shape)
    tps = [rng.standard_normal(p.shape) for p in params]
    th = rng.standard_normal(h0.shape) if h0 is not None else None
    tc = rng.standard_normal(c0.shape) if c0 is not None else None

    def f(s):
        p2 = [p + s * t for p, t in zip(params, tps)]
        h2 = None if h0 is None else h0 + s * th
        c2 = None if c0 is None else c0 + s * tc
        yy, st = call(kind, x + s * tx, h2, c2, p2, **kw)
        hh, cc = st if kind == "lstm" else (st, None)
        v = np.sum(yy * gy) + np.sum(hh * gh)
        return v + (np.sum(cc * gc) if kind == "lstm" else 0)

    eps = 1e-6
    fd = (f(eps) - f(-eps)) / (2 * eps)
    an = np.sum(dx * tx) + sum(np.sum(g * t) for g, t in zip(dparams, tps))
    if h0 is not None:
        if kind == "lstm":
            an += np.sum(dstate[0] * th) + np.sum(dstate[1] * tc)
        else:
            an += np.sum(dstate * th)
    else:
        assert dstate is None
    assert abs(fd - an) <= 1e-6 * (abs(an) + 1), (fd, an)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers(kind):
    kw = dict(num_layers=3, bidirectional=True)
    _flat_fd_check(kind, kw, True, True, dropout=True)  # the backward sees the forward's masks
    x, h0, c0, params, L, D = _setup(kind, kw, True, True, np.float32)
    a = call(kind, x, h0, c0, params, dropout=0.5, training=True, seed=3, **kw)[0]
    b = call(kind, x, h0, c0, params, dropout=0.5, training=True, seed=3, **kw)[0]
    c = call(kind, x, h0, c0, params, dropout=0.5, training=True, seed=4, **kw)[0]
    e = call(kind, x, h0, c0, params, dropout=0.5, training=False, **kw)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, e)
    with pytest.raises(ValueError, match="seed"):
        call(kind, x, h0, c0, params, dropout=0.5, training=True, **kw)


@requires_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind,kw,bias,with_h0", SEQ_CASES, ids=SEQ_IDS)
def test_sequence_matches_torch(kind, kw, bias, with_h0, dtype):
    x, h0, c0, params, L, D = _setup(kind, kw, bias, with_h0, dtype)
    H = params[1].shape[1]
    Mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(kind, torch.nn.RNN)
    extra = {} if kind in ("lstm", "gru") else {"nonlinearity": kind[4:]}
    m = Mod(x.shape[-1], H, bias=bias, **kw, **extra).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for n, p in zip(m._flat_weights_names, params):
            getattr(m, n).copy_(torch.from_numpy(p))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    targs = []
    if with_h0:
        th = torch.from_numpy(h0.copy()).requires_grad_(True)
        targs = [th]
        if kind == "lstm":
            tc = torch.from_numpy(c0.copy()).requires_grad_(True)
            targs.append(tc)
    ty, tstate = m(tx, (tuple(targs) if kind == "lstm" else targs[0]) if with_h0 else None)
    y, state = call(kind, x, h0, c0, params, **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    touts = [ty] + (list(tstate) if kind == "lstm" else [tstate])
    rng = np.random.default_rng(9)
    cots = [rng.standard_normal(t.shape).astype(dtype) for t in touts]
    wrt = [tx] + targs + [getattr(m, n) for n in m._flat_weights_names]
    tg = torch.autograd.grad(touts, wrt, [torch.from_numpy(c) for c in cots])
    dx, dstate, dparams = call_bwd(kind, cots[0], cots[1], cots[2] if kind == "lstm" else None, x, h0, c0, params, **kw)
    np.testing.assert_allclose(dx, tg[0].numpy(), rtol=tol * 10, atol=tol * 10)
    k = 1
    if with_h0:
        ds = list(dstate) if kind == "lstm" else [dstate]
        for d in ds:
            np.testing.assert_allclose(d, tg[k].numpy(), rtol=tol * 10, atol=tol * 10)
            k += 1
    for a, b in zip(dparams, tg[k:]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b.numpy(), rtol=tol * 10, atol=tol * 10)


@requires_torch
@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_cells_match_torch(kind):
    rng = np.random.default_rng(4)
    B, I, H = 3, 5, 7
    w = make_params(rng, kind, I, H, 1, 1, True, np.float32)
    x = rng.standard_normal((B, I)).astype(np.float32)
    h = rng.standard_normal((B, H)).astype(np.float32)
    c = rng.standard_normal((B, H)).astype(np.float32)
    Mod = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn_tanh": torch.nn.RNNCell}[kind]
    m = Mod(I, H)
    with torch.no_grad():
        for n, p in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
            getattr(m, n).copy_(torch.from_numpy(p))
    out = fastops.lstm_cell(x, (h, c), *w) if kind == "lstm" else \
        (fastops.gru_cell(x, h, *w) if kind == "gru" else fastops.rnn_cell(x, h, *w))
    tout = m(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)) if kind == "lstm" else torch.from_numpy(h))
    for a, b in zip(out if kind == "lstm" else [out], tout if kind == "lstm" else [tout]):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_grad_output_structure_errors():
    """The table's error cases cover the forward's arguments; here the backward's grad_output
    structure (a pair for the LSTM's state, not an array)."""
    rng = np.random.default_rng(0)
    p = make_params(rng, "lstm", 4, 3, 1, 1, True, np.float32)
    x = np.zeros((5, 2, 4), np.float32)
    with pytest.raises(TypeError, match="lstm: .*grad_output"):
        fastops.lstm.backward(np.zeros((5, 2, 3), np.float32), x, None, p)
    h = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="lstm_cell: grad_output"):
        fastops.lstm_cell.backward(h, x[0], (h, h), *p)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_projection_chunks_and_forward_buffers(kind, bidirectional, monkeypatch):
    """The input projection over chunks of steps (a chunk boundary inside the sequence, in both
    directions) and the plain forward's reused step buffers give bitwise the results of one
    projection over the whole sequence, and the backward (which keeps every step) the same
    gradients."""
    from fastops.recurrent import _layers

    rng = np.random.default_rng(3)
    T, B, I, H = 7, 3, 5, 4
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    D = 2 if bidirectional else 1
    params = []
    for _ in range(D):
        params += [rng.standard_normal(s) * 0.5 for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    x = rng.standard_normal((T, B, I))
    x0 = x.copy()
    f = getattr(fastops, kind)
    h0 = (np.zeros((D, B, H)), np.zeros((D, B, H))) if kind == "lstm" else None
    g = (rng.standard_normal((T, B, D * H)), None)

    def run():
        y, hn = f(x, h0, params, bidirectional=bidirectional)
        return y, hn, f.backward(g, x, h0, params, bidirectional=bidirectional)

    whole = run()
    monkeypatch.setattr(_layers, "XP_CHUNK_ELEMENTS", 2 * B * G * H)  # 2 steps per chunk: 4 chunks
    chunked = run()

    def flat(v):
        if isinstance(v, np.ndarray):
            return [v]
        if v is None:
            return [None]
        return [a for e in v for a in flat(e)]

    fw, fc = flat(whole), flat(chunked)
    assert len(fw) == len(fc)
    for a, b in zip(fw, fc):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(x, x0)


@requires_torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bench_runs(kind):
    """``python -m fastops.recurrent.bench``'s measurement, at a tiny shape: it runs and reports."""
    from fastops.recurrent import bench

    r = bench.run(kind=kind, T=3, B=2, I=4, H=8, rounds=1, threads=1)
    assert r["fwd_ratio"] > 0 and r["fwdbwd_ratio"] > 0
