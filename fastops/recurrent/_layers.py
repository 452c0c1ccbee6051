"""One recurrent layer in one direction over a whole sequence, forward and backward through time.

``kind`` is ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``. Sequences are time-major
``(T, B, I)``. The forward returns the outputs of every step plus what the backward needs (activated
gates, cell states); the backward takes the gradients of the outputs and of the final state and
returns the gradients of the input sequence, the initial state and the four weights.

GEMMs (fastops' engine, ``fastops._gemm``, on the same threads as the gate kernels): the input
projections of several steps at a time (``XP_CHUNK_ELEMENTS``) as one ``(n*B, I) @ (I, G*H)``; per
step ``h @ W_hh^T`` (forward) and ``dgates @ W_hh`` (backward), with ``W_hh`` packed once per
sequence; the weight gradients over all steps, ``dG^T @ X`` as one GEMM and ``dG^T @ H_prev`` as
two (the first step with ``h0``, then the others with the outputs they started from).
"""
import numpy as np

from .. import _gemm

from . import _kernels as K

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


# Time steps per input projection: the projection runs over chunks of this many steps into one
# reused buffer of about 2 MiB (T=50 B=32 4*512 float32: 8 steps, 256 rows per GEMM), not over the
# whole sequence at once into a new T*B*G*H array. Each chunk's GEMM rounds exactly as the whole
# one (the engine's result depends on K only). Fresh memory that large is fresh pages on every
# call. lstm 256->512 T=50 B=32 forward, 2 threads, each library alone in fresh processes: 42.8 ms
# (torch 28.8-35.2 ms; ``python -m fastops.recurrent.bench``). Design note: with the whole
# sequence's T*B*4H arrays (saved gates, cell states, projection: 33 MB per call) it ran 82.6 ms
# there, and 40-70 ms over 20 calls in one fresh process, 38-45 ms when that run was started with
# glibc's MALLOC_MMAP_THRESHOLD_ set so that memory is reused (an experiment only; commit 89b49cd).
XP_CHUNK_ELEMENTS = 1 << 19


def forward(kind, X, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, keep=True):
    """Outputs ``(out, h_n, c_n or None, saved)``. ``keep``: fill ``saved`` with what
    :func:`backward` needs (every step's activated gates, and cell states for the LSTM); without
    it, one step's buffers are reused and ``saved`` is empty (the plain forward)."""
    T, B, I = X.shape
    H = w_hh.shape[1]
    G = GATES[kind]
    dt = X.dtype
    bias = b_ih
    if kind != "gru" and b_hh is not None:
        # both biases enter the same sum (the GRU's b_hh sits inside r * (W_hn h + b_hn)): one bias
        # vector in the projection's epilogue instead of a second pass over the projection
        bias = b_hh if b_ih is None else b_ih + b_hh
    out = np.empty((T, B, H), dt)
    saved = {}
    if kind == "lstm":
        if keep:
            act = saved["act"] = np.empty((T, B, 4 * H), dt)
            cs = saved["c"] = np.empty((T, B, H), dt)
        else:
            act1 = np.empty((B, 4 * H), dt)
            cbuf = (np.empty((B, H), dt), np.empty((B, H), dt))
    elif kind == "gru":
        if keep:
            sv = saved["save"] = np.empty((T, B, 4 * H), dt)
        else:
            sv1 = np.empty((B, 4 * H), dt)
    h, c = h0, c0
    size = B * G * H
    w_hh_t = _gemm.pack_b(w_hh.T)
    gru_bias = b_hh if kind == "gru" else None
    order = list(_order(T, reverse))
    tc = max(1, min(T, XP_CHUNK_ELEMENTS // max(1, B * G * H)))
    xbuf = np.empty((tc, B, G * H), dt)
    w_ih_t = w_ih.T
    for s0 in range(0, T, tc):
        steps = order[s0 : s0 + tc]
        t_lo = min(steps)
        n = len(steps)
        xp = xbuf[:n]
        _gemm.gemm(X[t_lo : t_lo + n].reshape(n * B, I), w_ih_t, xp.reshape(n * B, G * H), bias=bias)
        for t in steps:
            gh = _gemm.gemm(h, w_hh_t, bias=gru_bias)
            xt = xp[t - t_lo]
            if kind == "lstm":
                if keep:
                    K.run("lstm_fwd", dt, size, xt, gh, c, act[t], out[t], cs[t])
                    c = cs[t]
                else:
                    cn = cbuf[0] if c is not cbuf[0] else cbuf[1]
                    K.run("lstm_fwd", dt, size, xt, gh, c, act1, out[t], cn)
                    c = cn
            elif kind == "gru":
                K.run("gru_fwd", dt, size, xt, gh, h, sv[t] if keep else sv1, out[t])
            else:
                K.run("rnn_fwd", dt, size, xt, gh, out[t], act=kind[4:])
            h = out[t]
    return out, h, c, saved


def backward(kind, X, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, out, saved, d_out, d_hn, d_cn, need_dx=True):
    """Gradients ``(dX, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)`` (biases: None when absent; ``dX``
    None when not ``need_dx``)."""
    T, B, I = X.shape
    H = w_hh.shape[1]
    G = GATES[kind]
    dt = X.dtype
    size = B * G * H
    dh = np.zeros((B, H), dt) if d_hn is None else np.array(d_hn, dtype=dt, copy=True)
    dc = None
    if kind == "lstm":
        dc = np.zeros((B, H), dt) if d_cn is None else np.array(d_cn, dtype=dt, copy=True)
    d_gi = np.empty((T, B, G * H), dt)
    d_gh = np.empty((T, B, G * H), dt) if kind == "gru" else d_gi
    order = list(_order(T, reverse))
    first, back = order[0], (-1 if reverse else 1)  # step t started from the output of t - back

    def h_prev(t):  # the state step t started from (a view, no copy of all of them)
        return h0 if t == first else out[t - back]

    def c_prev(t):
        return c0 if t == first else saved["c"][t - back]

    direct = np.empty((B, H), dt) if kind == "gru" else None
    dc_next = np.empty((B, H), dt) if kind == "lstm" else None
    w_hh_p = _gemm.pack_b(w_hh)
    for t in reversed(order):
        dht = dh if d_out is None else dh + d_out[t]
        if kind == "lstm":
            K.run("lstm_bwd", dt, size, saved["act"][t], c_prev(t), saved["c"][t], dht, dc, d_gi[t], dc_next)
            dc, dc_next = dc_next, dc
        elif kind == "gru":
            K.run("gru_bwd", dt, size, saved["save"][t], h_prev(t), dht, d_gi[t], d_gh[t], direct)
        else:
            K.run("rnn_bwd", dt, size, out[t], dht, d_gi[t], act=kind[4:])
        dh = _gemm.gemm(d_gh[t], w_hh_p)
        if kind == "gru":
            dh += direct
    gi2 = d_gi.reshape(T * B, G * H)
    gh2 = d_gh.reshape(T * B, G * H)
    dX = _gemm.gemm(gi2, w_ih).reshape(T, B, I) if need_dx else None
    dw_ih = _gemm.gemm(gi2.T, X.reshape(T * B, I))
    # dG^T @ H_prev over all steps: the first step's term with h0, then the others' with the
    # outputs they started from (views of out: no (T, B, H) copy of the previous states)
    dw_hh = _gemm.gemm(d_gh[first].T, h0)
    if T > 1:
        rest, prev = (slice(0, T - 1), slice(1, T)) if reverse else (slice(1, T), slice(0, T - 1))
        _gemm.gemm(d_gh[rest].reshape(-1, G * H).T, out[prev].reshape(-1, H), dw_hh, accumulate=True)
    db_ih = gi2.sum(axis=0) if b_ih is not None else None
    db_hh = gh2.sum(axis=0) if b_hh is not None else None
    return dX, dh, dc, dw_ih, dw_hh, db_ih, db_hh


def dropout_mask(op, seed, layer, shape, p, dtype):
    """The between-layer dropout mask after ``layer``: ``1/(1-p)`` where kept, 0 where dropped."""
    from .. import _random

    key = _random.key(op, (int(seed) + 1000003 * (layer + 1)) % (1 << 64))
    out = np.empty(shape, dtype)
    T = np.dtype(dtype).type
    scale = T(0) if p >= 1 else T(1.0 / (1.0 - p))
    K.run("mask", dtype, out.size, key, T(p), scale, out.reshape(-1))
    return out
