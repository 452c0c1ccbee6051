"""Op table: recurrent (docs/ops.md, "Recurrent"), and the calls of the recurrent ops that warmup and
the benchmarks share.

The cells take their state as an array (``rnn_cell``, ``gru_cell``: ``h``) or a pair (``lstm_cell``:
``hx = (h, c)``); the sequence ops take ``h0`` (``lstm``: ``hx = (h0, c0)``) and their weights as a
list ``params`` (PyTorch's ``_flat_weights`` order: per layer and direction ``w_ih, w_hh[, b_ih,
b_hh]``). The table's generic tests treat such a tuple or list as one differentiable argument whose
gradient has the same structure (``fastops.testing.tree_leaves``). References: a Python loop over
time, layers and directions in float64 (``ref_cell``, ``ref_seq``); torch: ``torch.rnn_tanh_cell``
and friends, ``torch.lstm``/``torch.gru``/``torch.rnn_tanh`` (the functions behind ``nn.LSTM``...).

``SIZES["bench"]``: the recurrent issue's shape (batch 32, input 256, hidden 512, sequences of 50
steps, one layer), shared by ``asv_benches/bench_recurrent.py`` and ``python -m fastops.recurrent.bench``.
"""
import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, randn

OPS = ("rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SIZES = {"bench": dict(T=50, B=32, I=256, H=512)}


def case(name, dtype, size="bench", scale=0.05):
    """``(args, grad_output)`` of one call of recurrent op ``name``: the forward's positional
    arguments (weights in PyTorch's order: w_ih, w_hh, b_ih, b_hh; states random, one layer) and an
    output gradient of ones (None for the final states of the sequence ops)."""
    T, B, I, H = (SIZES[size][k] for k in "TBIH")
    rng = np.random.default_rng(0)
    kind = name.split("_")[0]
    G = GATES[kind] * H

    def r(*shape):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    w = [r(G, I), r(G, H), r(G), r(G)]
    if name.endswith("_cell"):
        x, h = r(B, I), r(B, H)
        if kind == "lstm":
            return (x, (h, r(B, H)), *w), (np.ones((B, H), dtype), np.ones((B, H), dtype))
        return (x, h, *w), np.ones((B, H), dtype)
    x, h = r(T, B, I), r(1, B, H)
    g_out = np.ones((T, B, H), dtype)
    if kind == "lstm":
        return (x, (h, r(1, B, H)), w), (g_out, None)
    return (x, h, w), (g_out, None)


# --- independent NumPy float64 references -------------------------------------------------------


def _sig(v):
    return 1 / (1 + np.exp(-v))


def ref_cell(kind, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of ``kind`` ("rnn_tanh", "rnn_relu", "lstm", "gru"): ``(h', c')`` (c' None but for lstm)."""
    gi = np.matmul(x, w_ih.T) + (0 if b_ih is None else b_ih)
    gh = np.matmul(h, w_hh.T) + (0 if b_hh is None else b_hh)
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
            w = list(params[k : k + 2]) + (list(params[k + 2 : k + 4]) if per == 4 else [None, None])
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


def _cell_ref(kind):
    def ref(input, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        k = f"rnn_{nonlinearity}" if kind == "rnn" else kind
        hh, cc = (None, None) if h is None else ((h, None) if kind != "lstm" else h)
        x = input[None] if input.ndim == 1 else input
        B, H = x.shape[0], w_hh.shape[1]
        hh = np.zeros((B, H)) if hh is None else hh.reshape(B, H)
        cc = np.zeros((B, H)) if cc is None else cc.reshape(B, H)
        h2, c2 = ref_cell(k, x, hh, cc, w_ih, w_hh, b_ih, b_hh)
        if input.ndim == 1:
            h2, c2 = h2[0], (None if c2 is None else c2[0])
        return (h2, c2) if kind == "lstm" else h2

    return ref


def _seq_ref(kind):
    def ref(input, hx, params, nonlinearity="tanh", num_layers=1, bidirectional=False, batch_first=False,
            dropout=0.0, training=False, seed=None):
        k = f"rnn_{nonlinearity}" if kind == "rnn" else kind
        L, D = num_layers, 2 if bidirectional else 1
        unbatched = input.ndim == 2
        x = input[:, None] if unbatched else (np.swapaxes(input, 0, 1) if batch_first else input)
        B, H = x.shape[1], params[1].shape[1]
        if kind == "lstm":
            h0, c0 = (np.zeros((L * D, B, H)), np.zeros((L * D, B, H))) if hx is None else hx
        else:
            h0, c0 = (np.zeros((L * D, B, H)) if hx is None else hx), None
        h0 = h0.reshape(L * D, B, H)
        c0 = None if c0 is None else c0.reshape(L * D, B, H)
        y, hn, cn = ref_seq(k, x, h0, c0, params, L, D)
        if unbatched:
            y, hn, cn = y[:, 0], hn[:, 0], (None if cn is None else cn[:, 0])
        elif batch_first:
            y = np.swapaxes(y, 0, 1)
        return (y, (hn, cn)) if kind == "lstm" else (y, hn)

    return ref


# --- torch (tests only) -------------------------------------------------------------------------


def _cell_torch(kind):
    def tref(t, input, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        fn = {"rnn": getattr(t, f"rnn_{nonlinearity}_cell"), "lstm": t.lstm_cell, "gru": t.gru_cell}[kind]
        unbatched = input.dim() == 1
        if unbatched:  # the functions take (B, I) only
            input = input[None]
            h = None if h is None else (tuple(v[None] for v in h) if kind == "lstm" else h[None])
        if h is None:
            z = t.zeros((input.shape[0], w_hh.shape[1]), dtype=input.dtype)
            h = (z, z) if kind == "lstm" else z
        out = fn(input, h, w_ih, w_hh, b_ih, b_hh)
        if kind == "lstm":
            return tuple(v[0] for v in out) if unbatched else tuple(out)
        return out[0] if unbatched else out

    return tref


def _seq_torch(kind):
    def tref(t, input, hx, params, nonlinearity="tanh", num_layers=1, bidirectional=False, batch_first=False,
             dropout=0.0, training=False, seed=None):
        D = 2 if bidirectional else 1
        unbatched = input.dim() == 2
        for v in () if hx is None else (hx if kind == "lstm" else (hx,)):
            if v.dim() != (2 if unbatched else 3):  # nn.RNN/LSTM/GRU's check (the functions do not check)
                raise RuntimeError(f"For {'unbatched 2' if unbatched else 'batched 3'}-D input, hx should also be "
                                   f"{2 if unbatched else 3}-D but got {v.dim()}-D tensor")
        if unbatched:  # the functions take (T, B, I) only
            input, batch_first = input[:, None], False
            hx = None if hx is None else (tuple(v[:, None] for v in hx) if kind == "lstm" else hx[:, None])
        B, H = input.shape[0 if batch_first else 1], params[1].shape[1]
        if hx is None:
            z = t.zeros((num_layers * D, B, H), dtype=input.dtype)
            hx = (z, z) if kind == "lstm" else z
        bias = len(params) == 4 * num_layers * D
        fn = {"rnn": getattr(t, f"rnn_{nonlinearity}"), "lstm": t.lstm, "gru": t.gru}[kind]
        if kind == "lstm":
            y, hn, cn = fn(input, list(hx), list(params), bias, num_layers, 0.0, False, bidirectional, batch_first)
            return (y[:, 0], (hn[:, 0], cn[:, 0])) if unbatched else (y, (hn, cn))
        y, hn = fn(input, hx, list(params), bias, num_layers, 0.0, False, bidirectional, batch_first)
        return (y[:, 0], hn[:, 0]) if unbatched else (y, hn)

    return tref


# --- samples ------------------------------------------------------------------------------------


def make_params(rng, kind, I, H, L, D, bias, dtype, scale=0.5):
    """``params`` of ``L`` layers and ``D`` directions, uniform in [-scale, scale)."""
    G = GATES[kind.split("_")[0]]
    ps = []
    for l in range(L):
        for _ in range(D):
            isz = I if l == 0 else D * H
            ps += [rng.uniform(-scale, scale, (G * H, isz)), rng.uniform(-scale, scale, (G * H, H))]
            if bias:
                ps += [rng.uniform(-scale, scale, G * H), rng.uniform(-scale, scale, G * H)]
    return [p.astype(dtype) for p in ps]


def _cell_samples(kind):
    def samples(rng, dtype):
        out = []
        B, I, H = 3, 5, 4
        variants = [({}, True, True, (B,)), ({}, False, True, (B,)), ({}, True, False, (B,)), ({}, True, True, ())]
        if kind == "rnn":
            variants.append(({"nonlinearity": "relu"}, True, True, (B,)))
        for kw, bias, with_h, batch in variants:
            w = make_params(rng, kind, I, H, 1, 1, bias, dtype)
            w = w if bias else w + [None, None]
            x = randn(rng, batch + (I,), dtype)
            h = randn(rng, batch + (H,), dtype) if with_h else None
            if kind == "lstm" and with_h:
                h = (h, randn(rng, batch + (H,), dtype))
            desc = f"{'batched' if batch else 'unbatched'}{'' if bias else ', no bias'}{'' if with_h else ', no state'}"
            out.append(Sample((x, h, *w), dict(kw), desc))
        return out

    return samples


# (kwargs, bias, initial state given, T, B, I, H)
_SEQ_CASES = {
    "rnn": [({"num_layers": 2}, True, True), ({"nonlinearity": "relu", "bidirectional": True}, True, False),
            ({"batch_first": True}, False, True)],
    "lstm": [({}, True, True), ({"num_layers": 2, "bidirectional": True, "batch_first": True}, True, False),
             ({"num_layers": 2}, False, True)],
    "gru": [({"num_layers": 2, "bidirectional": True}, True, True), ({"batch_first": True}, False, True),
            ({}, True, False)],
}


def _seq_samples(kind):
    def samples(rng, dtype):
        T, B, I, H = 5, 3, 4, 6
        out = []
        for kw, bias, with_h0 in _SEQ_CASES[kind]:
            L, D = kw.get("num_layers", 1), 2 if kw.get("bidirectional") else 1
            params = make_params(rng, kind, I, H, L, D, bias, dtype)
            x = randn(rng, (B, T, I) if kw.get("batch_first") else (T, B, I), dtype)
            hx = None
            if with_h0:
                hx = randn(rng, (L * D, B, H), dtype)
                if kind == "lstm":
                    hx = (hx, randn(rng, (L * D, B, H), dtype))
            out.append(Sample((x, hx, params), dict(kw), f"{kw}{'' if bias else ' no bias'}"))
        # unbatched (T, I) input, state (L * D, H)
        params = make_params(rng, kind, I, H, 1, 1, True, dtype)
        hx = randn(rng, (1, H), dtype)
        hx = (hx, randn(rng, (1, H), dtype)) if kind == "lstm" else hx
        out.append(Sample((randn(rng, (T, I), dtype), hx, params), {}, "unbatched"))
        return out

    return samples


def _cell_errors(kind):
    def errors():
        G = GATES[kind]
        x, w_ih, w_hh = np.zeros((2, 4), np.float32), np.zeros((G * 3, 4), np.float32), np.zeros((G * 3, 3), np.float32)
        h = np.zeros((2, 3), np.float32)
        hx = (h, h) if kind == "lstm" else h
        out = [
            ErrorCase((x, hx, w_ih, np.zeros((G * 3 + 1, 3), np.float32)), {}, ValueError, "w_hh"),
            ErrorCase((np.zeros((1, 2, 4), np.float32), hx, w_ih, w_hh), {}, ValueError, "input must be"),
            ErrorCase((x.astype(np.float64), hx, w_ih, w_hh), {}, TypeError, "mixed"),
            ErrorCase((x.astype(np.int32), hx, w_ih, w_hh), {}, TypeError, "input"),
        ]
        if kind == "lstm":
            out.append(ErrorCase((x, h, w_ih, w_hh), {}, TypeError, "hx"))
        if kind == "rnn":
            out.append(ErrorCase((x, hx, w_ih, w_hh), {"nonlinearity": "sigmoid"}, ValueError, "nonlinearity"))
        return out

    return errors


def _seq_errors(kind):
    def errors():
        rng = np.random.default_rng(0)
        p = make_params(rng, kind, 4, 3, 1, 1, True, np.float32)
        x = np.zeros((5, 2, 4), np.float32)
        h = np.zeros((1, 3, 3), np.float32)
        bad_h = (h, h) if kind == "lstm" else h
        out = [
            ErrorCase((x, None, p[:3]), {}, ValueError, "expected 4 .* or 2 params"),
            ErrorCase((np.zeros((5, 2, 6), np.float32), None, p), {}, ValueError, "w_ih_l0"),
            ErrorCase((x, bad_h, p), {}, ValueError, "h0 must have shape"),
            ErrorCase((x.astype(np.float64), None, p), {}, TypeError, "mixed"),
            ErrorCase((x, None, p), {"dropout": 1.5}, ValueError, "dropout"),
        ]
        if kind == "rnn":
            out.append(ErrorCase((x, None, p), {"nonlinearity": "sigmoid"}, ValueError, "nonlinearity"))
        return out

    return errors


def _paths(kind, cell):
    """The gate kernel's parallel build (batch 64, hidden 512: ``explain``'s ``gate_kernel``),
    forward and backward (through time, for the sequence ops)."""
    def paths(rng, dtype):
        B, I, H = 64, 8, 512
        params = make_params(rng, kind, I, H, 1, 1, True, dtype)
        if cell:
            h = randn(rng, (B, H), dtype)
            s = Sample((randn(rng, (B, I), dtype), (h, h.copy()) if kind == "lstm" else h, *params), {}, f"hidden {H}")
        else:
            s = Sample((randn(rng, (3, B, I), dtype), None, params), {}, f"hidden {H}")
        return [PathCase("gate kernel parallel", s, expect={"gate_kernel": "parallel"}, explain={"hidden_size": H})]

    return paths


_TOL = {np.float32: (2e-5, 2e-5), np.float64: (1e-11, 1e-11)}


def _cell_info(kind):
    return OpInfo(name=f"{kind}_cell", samples=_cell_samples(kind), ref=_cell_ref(kind), torch_ref=_cell_torch(kind),
                  grad_args=(0, 1, 2, 3, 4, 5), errors=_cell_errors(kind), tol=_TOL, paths=_paths(kind, True))


def _seq_info(kind):
    return OpInfo(name=kind, samples=_seq_samples(kind), ref=_seq_ref(kind), torch_ref=_seq_torch(kind),
                  grad_args=(0, 1, 2), errors=_seq_errors(kind), tol=_TOL,
                  paths=_paths(kind, False))


TABLE = [_cell_info("rnn"), _cell_info("lstm"), _cell_info("gru"), _seq_info("rnn"), _seq_info("lstm"),
         _seq_info("gru")]
