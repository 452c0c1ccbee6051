"""Recurrent family: cells and sequence layers vs torch modules, NumPy references and finite differences."""
import numpy as np
import pytest

import fastops
from fastops import _threads

from ..conftest import requires_torch, torch

DT = [np.float32, np.float64]
TOL = {np.float32: 2e-5, np.float64: 1e-11}


def _sig(v):
    return 1 / (1 + np.exp(-v))


# --- independent NumPy float64 references -------------------------------------------------------


def ref_cell(kind, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if kind == "rnn_tanh":
        return np.tanh(gi + gh), None
    if kind == "rnn_relu":
        return np.maximum(gi + gh, 0), None
    H = h.shape[-1]
    if kind == "lstm":
        g = gi + gh
        i, f, gg, o = _sig(g[..., :H]), _sig(g[..., H : 2 * H]), np.tanh(g[..., 2 * H : 3 * H]), _sig(g[..., 3 * H :])
        c2 = f * c + i * gg
        return o * np.tanh(c2), c2
    r = _sig(gi[..., :H] + gh[..., :H])
    z = _sig(gi[..., H : 2 * H] + gh[..., H : 2 * H])
    n = np.tanh(gi[..., 2 * H :] + r * gh[..., 2 * H :])
    return (1 - z) * n + z * h, None


def ref_seq(kind, x, h0, c0, params, L, D):
    """Time-major (T, B, I) reference: a Python loop over time, layers and directions."""
    per = len(params) // (L * D)
    inp = x
    hn, cn = [], []
    for l in range(L):
        outs = []
        for d in range(D):
            k = (l * D + d) * per
            w = params[k : k + 2] + (params[k + 2 : k + 4] if per == 4 else [None, None])
            h = h0[l * D + d]
            c = None if c0 is None else c0[l * D + d]
            ys = [None] * len(inp)
            for t in (range(len(inp) - 1, -1, -1) if d else range(len(inp))):
                h, c = ref_cell(kind, inp[t], h, c, *w)
                ys[t] = h
            outs.append(np.stack(ys))
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, axis=-1)
    return inp, np.stack(hn), (np.stack(cn) if c0 is not None else None)


G = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def make_params(rng, kind, I, H, L, D, bias, dtype):
    ps = []
    for l in range(L):
        for _ in range(D):
            isz = I if l == 0 else D * H
            ps += [rng.uniform(-0.5, 0.5, (G[kind] * H, isz)), rng.uniform(-0.5, 0.5, (G[kind] * H, H))]
            if bias:
                ps += [rng.uniform(-0.5, 0.5, G[kind] * H), rng.uniform(-0.5, 0.5, G[kind] * H)]
    return [p.astype(dtype) for p in ps]


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


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("kind,kw,bias,with_h0", SEQ_CASES, ids=SEQ_IDS)
def test_sequence_matches_numpy_reference(kind, kw, bias, with_h0, dtype):
    x, h0, c0, params, L, D = _setup(kind, kw, bias, with_h0, dtype)
    copies = [a.copy() for a in [x] + params + ([h0] if h0 is not None else [])]
    out = call(kind, x, h0, c0, params, **kw)
    y, state = out
    hn, cn = state if kind == "lstm" else (state, None)
    x64 = x.astype(np.float64)
    xt = np.swapaxes(x64, 0, 1) if kw.get("batch_first") else x64
    B, H = xt.shape[1], params[1].shape[1]
    h064 = np.zeros((L * D, B, H)) if h0 is None else h0.astype(np.float64)
    c064 = None if kind != "lstm" else (np.zeros((L * D, B, H)) if c0 is None else c0.astype(np.float64))
    ry, rh, rc = ref_seq(kind, xt, h064, c064, [p.astype(np.float64) for p in params], L, D)
    if kw.get("batch_first"):
        ry = np.swapaxes(ry, 0, 1)
    assert y.dtype == dtype and hn.dtype == dtype
    np.testing.assert_allclose(y, ry, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(hn, rh, rtol=TOL[dtype], atol=TOL[dtype])
    if kind == "lstm":
        np.testing.assert_allclose(cn, rc, rtol=TOL[dtype], atol=TOL[dtype])
    for a, b in zip(copies, [x] + params + ([h0] if h0 is not None else [])):
        assert np.array_equal(a, b)  # inputs unmodified


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


@pytest.mark.parametrize("kind,kw,bias,with_h0", SEQ_CASES, ids=SEQ_IDS)
def test_sequence_backward_finite_differences(kind, kw, bias, with_h0):
    _flat_fd_check(kind, kw, bias, with_h0)


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


CELLS = [("rnn_tanh", True), ("rnn_relu", False), ("lstm", True), ("gru", True), ("gru", False)]


def _cell(kind, x, h, c, w, bwd=None):
    if kind == "lstm":
        hx = None if h is None else (h, c)
        if bwd is not None:
            return fastops.lstm_cell.backward(bwd, x, hx, *w)
        return fastops.lstm_cell(x, hx, *w)
    f = fastops.gru_cell if kind == "gru" else fastops.rnn_cell
    kw = {} if kind == "gru" else {"nonlinearity": kind[4:]}
    if bwd is not None:
        return f.backward(bwd, x, h, *w, **kw)
    return f(x, h, *w, **kw)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("kind,bias", CELLS, ids=[f"{k}-{b}" for k, b in CELLS])
def test_cells_reference_and_fd(kind, bias, dtype):
    rng = np.random.default_rng(2)
    B, I, H = 3, 5, 4
    w = make_params(rng, kind, I, H, 1, 1, bias, dtype)
    w = w + [None, None] if not bias else w
    x = rng.standard_normal((B, I)).astype(dtype)
    h = rng.standard_normal((B, H)).astype(dtype)
    c = rng.standard_normal((B, H)).astype(dtype)
    out = _cell(kind, x, h, c, w)
    r, rc = ref_cell(kind, *(a if a is None else a.astype(np.float64) for a in (x, h, c if kind == "lstm" else None)), *[None if a is None else a.astype(np.float64) for a in w])
    got_h = out[0] if kind == "lstm" else out
    np.testing.assert_allclose(got_h, r, rtol=TOL[dtype], atol=TOL[dtype])
    if kind == "lstm":
        np.testing.assert_allclose(out[1], rc, rtol=TOL[dtype], atol=TOL[dtype])
    # unbatched input and h=None give the batched result's first row / zero state
    u = _cell(kind, x[0], None, None, w)
    z = _cell(kind, x[:1], np.zeros((1, H), dtype), np.zeros((1, H), dtype), w)
    np.testing.assert_allclose(u[0] if kind == "lstm" else u, (z[0] if kind == "lstm" else z)[0], rtol=1e-6)
    if dtype == np.float64:  # finite differences over x, h (c) and the weights
        g = rng.standard_normal((B, H))
        gc = rng.standard_normal((B, H))
        grads = _cell(kind, x, h, c, w, bwd=(g, gc) if kind == "lstm" else g)
        dirs = [rng.standard_normal(a.shape) for a in (x, h, c)]
        wd = [None if a is None else rng.standard_normal(a.shape) for a in w]

        def f(s):
            o = _cell(kind, x + s * dirs[0], h + s * dirs[1], c + s * dirs[2],
                      [None if a is None else a + s * t for a, t in zip(w, wd)])
            return np.sum(o[0] * g) + np.sum(o[1] * gc) if kind == "lstm" else np.sum(o * g)

        fd = (f(1e-6) - f(-1e-6)) / 2e-6
        an = np.sum(grads[0] * dirs[0])
        an += np.sum(grads[1][0] * dirs[1]) + np.sum(grads[1][1] * dirs[2]) if kind == "lstm" else np.sum(grads[1] * dirs[1])
        an += sum(np.sum(a * t) for a, t in zip(grads[2:], wd) if a is not None)
        assert abs(fd - an) <= 1e-6 * (abs(an) + 1)
        if not bias:
            assert grads[4] is None and grads[5] is None


@requires_torch
@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
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
    out = _cell(kind, x, h, c, w)
    tout = m(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)) if kind == "lstm" else torch.from_numpy(h))
    for a, b in zip(out if kind == "lstm" else [out], tout if kind == "lstm" else [tout]):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_bitwise_same_for_one_and_two_threads():
    if _threads.max_threads() < 2:
        pytest.skip("needs 2 threads")
    rng = np.random.default_rng(0)
    for kind, H in (("lstm", 1024), ("gru", 1024)):
        params = make_params(rng, kind, 8, H, 1, 1, True, np.float32)
        x = rng.standard_normal((3, 8, 8)).astype(np.float32)
        assert fastops.lstm.explain(x.shape, "float32", hidden_size=H)["gate_kernel"] == "parallel"
        res = []
        for n in (1, 2):
            with fastops.threads(n):
                y, st = call(kind, x, None, None, params)
                gy = np.ones_like(y)
                res.append((y, call_bwd(kind, gy, None, None, x, None, None, params)))
        assert np.array_equal(res[0][0], res[1][0])
        assert np.array_equal(res[0][1][0], res[1][1][0])
        assert all(np.array_equal(a, b) for a, b in zip(res[0][1][2], res[1][1][2]))


def test_errors():
    rng = np.random.default_rng(0)
    p = make_params(rng, "lstm", 4, 3, 1, 1, True, np.float32)
    x = np.zeros((5, 2, 4), np.float32)
    with pytest.raises(ValueError, match="expected 4 .* or 2 params"):
        fastops.lstm(x, None, p[:3])
    with pytest.raises(ValueError, match="w_ih_l0"):
        fastops.lstm(np.zeros((5, 2, 6), np.float32), None, p)
    with pytest.raises(ValueError, match="h0 must have shape"):
        fastops.lstm(x, (np.zeros((1, 3, 3), np.float32), np.zeros((1, 3, 3), np.float32)), p)
    with pytest.raises(TypeError, match="mixed"):
        fastops.lstm(x.astype(np.float64), None, p)
    with pytest.raises(ValueError, match="nonlinearity"):
        fastops.rnn(x, None, make_params(rng, "rnn_tanh", 4, 3, 1, 1, True, np.float32), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        fastops.gru(x, None, make_params(rng, "gru", 4, 3, 1, 1, True, np.float32), dropout=1.5)
    with pytest.raises(TypeError, match="grad_output"):
        fastops.lstm.backward(np.zeros((5, 2, 3), np.float32), x, None, p)
    with pytest.raises(ValueError, match="w_hh"):
        fastops.gru_cell(np.zeros((2, 4), np.float32), None, np.zeros((9, 4), np.float32), np.zeros((9, 4), np.float32))
    with pytest.raises(ValueError, match="input must be"):
        fastops.rnn_cell(np.zeros((1, 2, 4), np.float32), None, p[0][:3], p[1][:3])


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
