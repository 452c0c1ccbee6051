"""Recurrent layers over sequences: ``rnn``, ``lstm``, ``gru`` (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``).

``params`` is the list of weights in ``nn.RNN._flat_weights_names`` order: for each layer
``w_ih, w_hh[, b_ih, b_hh]``, then the same with suffix ``_reverse`` when bidirectional, then the
next layer (without biases: 2 per layer and direction). Layer ``l > 0`` reads the concatenated
outputs of both directions of layer ``l - 1``, with dropout (``training=True``, ``dropout > 0``;
``seed=`` required: counter-based masks, the same in the backward) between layers, never after
the last, as torch.

Backward through time: ``lstm.backward((grad_output, (grad_h_n, grad_c_n)), x, (h0, c0), params,
...)`` (any gradient may be None) -> ``(grad_x, (grad_h0, grad_c0) or None, [grad of each param])``;
``rnn``/``gru``: ``backward((grad_output, grad_h_n), x, h0, params, ...)`` -> ``(grad_x, grad_h0 or
None, [grads])``. The backward runs the forward again to rebuild its tape; ``op.vjp(...)`` keeps the
tape of the forward it runs instead (``out, pullback = lstm.vjp(x, hx, params, ...)``, then
``pullback(grads)``: the same gradients, bitwise, without the second forward). ``needs=`` with a
False first entry skips the first layer's input gradient (one GEMM).
"""
import numpy as np

from .. import _random
from .._op import op
from .._validate import choice, float_array, grad_like, int_scalar, real_scalar
from . import _layers


def _config(opname, x, state_arrays, params, num_layers, bidirectional, batch_first, dropout, training, seed, kind):
    x = float_array(opname, "input", x)
    dt = x.dtype
    if x.ndim not in (2, 3):
        raise ValueError(f"{opname}: input must be 2-D (L, H_in) or 3-D, got shape {x.shape}")
    L = int_scalar(opname, "num_layers", num_layers)
    if L < 1:
        raise ValueError(f"{opname}: num_layers must be >= 1, got {L}")
    D = 2 if bidirectional else 1
    p = real_scalar(opname, "dropout", dropout, minimum=0.0, maximum=1.0)
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{opname}: params must be a list of arrays (nn.{opname.upper()}._flat_weights order)")
    n = len(params)
    if n == 4 * L * D:
        bias = True
    elif n == 2 * L * D:
        bias = False
    else:
        raise ValueError(
            f"{opname}: expected {4 * L * D} (with biases) or {2 * L * D} params for num_layers={L}, "
            f"bidirectional={bool(bidirectional)}, got {n}"
        )
    params = [float_array(opname, f"params[{i}]", w, dt) for i, w in enumerate(params)]
    G = _layers.GATES[kind]
    per = 4 if bias else 2
    H = params[1].shape[1] if params[1].ndim == 2 else -1
    unbatched = x.ndim == 2
    xs = x[:, None, :] if unbatched else (np.swapaxes(x, 0, 1) if batch_first else x)
    xs = np.ascontiguousarray(xs)
    T, B, I = xs.shape
    if T == 0:  # as torch: "Expected sequence length to be larger than 0 in RNN"
        raise ValueError(f"{opname}: argument 'input' has sequence length 0 (shape {x.shape}, "
                         f"batch_first={bool(batch_first)}); expected at least 1")
    layers = []
    for l in range(L):
        in_size = I if l == 0 else D * H
        row = []
        for d in range(D):
            k = (l * D + d) * per
            w_ih, w_hh = params[k], params[k + 1]
            b_ih, b_hh = (params[k + 2], params[k + 3]) if bias else (None, None)
            sfx = f"_l{l}" + ("_reverse" if d else "")
            if w_hh.shape != (G * H, H):
                raise ValueError(f"{opname}: w_hh{sfx} must have shape ({G * H}, {H}), got {w_hh.shape}")
            if w_ih.shape != (G * H, in_size):
                raise ValueError(f"{opname}: w_ih{sfx} must have shape ({G * H}, {in_size}), got {w_ih.shape}")
            for nm, b in (("b_ih", b_ih), ("b_hh", b_hh)):
                if b is not None and b.shape != (G * H,):
                    raise ValueError(f"{opname}: {nm}{sfx} must have shape ({G * H},), got {b.shape}")
            row.append((w_ih, w_hh, b_ih, b_hh))
        layers.append(row)
    sshape = (L * D, H) if unbatched else (L * D, B, H)
    states = []
    for name, h in state_arrays:
        if h is None:
            states.append(np.zeros((L * D, B, H), dt))
            continue
        h = float_array(opname, name, h, dt)
        if h.shape != sshape:
            raise ValueError(f"{opname}: {name} must have shape {sshape} for input shape {x.shape}, got {h.shape}")
        states.append(h.reshape(L * D, B, H))
    use_dropout = bool(training) and p > 0 and L > 1
    if use_dropout:
        if seed is None:
            raise ValueError(f"{opname}: dropout between layers in training needs seed= (the backward must see the same masks)")
        _random.key(opname, seed)  # validates
    return dict(x=xs, dt=dt, L=L, D=D, H=H, T=T, B=B, layers=layers, states=states, p=p, dropout=use_dropout,
                seed=seed, unbatched=unbatched, batch_first=batch_first, bias=bias, per=per)


def _run_forward(opname, kind, cfg, keep=False):
    """``keep``: also record what the backward needs (the tape's saved arrays)."""
    inp = cfg["x"]
    D, L = cfg["D"], cfg["L"]
    h0s = cfg["states"][0]
    c0s = cfg["states"][1] if kind == "lstm" else None
    hn = np.empty((L * D,) + h0s.shape[1:], cfg["dt"])
    cn = np.empty_like(hn) if kind == "lstm" else None
    tape = []
    for l in range(L):
        outs, recs = [], []
        for d in range(D):
            w = cfg["layers"][l][d]
            i = l * D + d
            c0 = c0s[i] if kind == "lstm" else None
            out, h, c, saved = _layers.forward(kind, inp, h0s[i], c0, *w, reverse=bool(d), keep=keep)
            hn[i] = h
            if kind == "lstm":
                cn[i] = c
            outs.append(out)
            recs.append((inp, h0s[i], c0, w, bool(d), out, saved))
        y = outs[0] if D == 1 else np.concatenate(outs, axis=2)
        mask = None
        if cfg["dropout"] and l < L - 1:
            mask = _layers.dropout_mask(opname, cfg["seed"], l, y.shape, cfg["p"], cfg["dt"])
            y = y * mask
        tape.append((recs, mask))
        inp = y
    return inp, hn, cn, tape


def _out(cfg, y):
    if cfg["unbatched"]:
        return y[:, 0, :]
    return np.ascontiguousarray(np.swapaxes(y, 0, 1)) if cfg["batch_first"] else y


def _grad_in(cfg, g):
    """Gradient of the output, in time-major (T, B, D*H) layout."""
    if cfg["unbatched"]:
        return g[:, None, :]
    return np.ascontiguousarray(np.swapaxes(g, 0, 1)) if cfg["batch_first"] else g


def _run_backward(kind, cfg, tape, g_out, g_hn, g_cn, need_x=True):
    D, L, H = cfg["D"], cfg["L"], cfg["H"]
    grads = [None] * (L * D * cfg["per"])
    dh0 = np.zeros((L * D, cfg["B"], H), cfg["dt"])
    dc0 = np.zeros_like(dh0) if kind == "lstm" else None
    dy = g_out
    for l in range(L - 1, -1, -1):
        recs, mask = tape[l]
        if dy is not None and mask is not None:
            dy = dy * mask
        dinp = None
        for d in range(D):
            inp, h0, c0, w, rev, out, saved = recs[d]
            i = l * D + d
            d_out = None if dy is None else np.ascontiguousarray(dy[:, :, d * H : (d + 1) * H])
            dX, dh, dc, dwi, dwh, dbi, dbh = _layers.backward(
                kind, inp, h0, c0, *w, rev, out, saved, d_out,
                None if g_hn is None else g_hn[i], None if g_cn is None else g_cn[i], need_dx=need_x or l > 0,
            )
            dh0[i] = dh
            if kind == "lstm":
                dc0[i] = dc
            k = i * cfg["per"]
            grads[k], grads[k + 1] = dwi, dwh
            if cfg["bias"]:
                grads[k + 2], grads[k + 3] = dbi, dbh
            if dX is not None:
                dinp = dX if dinp is None else dinp + dX
        dy = dinp
    return dy, dh0, dc0, grads


def _dx(cfg, dX):
    if dX is None:
        return None
    if cfg["unbatched"]:
        return dX[:, 0, :]
    return np.ascontiguousarray(np.swapaxes(dX, 0, 1)) if cfg["batch_first"] else dX


def _state_out(cfg, s):
    return s[:, 0, :] if cfg["unbatched"] else s


def _check_grads(opname, cfg, grad_output, kind):
    if grad_output is None or isinstance(grad_output, np.ndarray) or len(grad_output) != 2:
        want = "(grad_output, (grad_h_n, grad_c_n))" if kind == "lstm" else "(grad_output, grad_h_n)"
        raise TypeError(f"{opname}: grad_output must be a tuple {want} (entries may be None)")
    g_out, g_state = grad_output
    T, B, D, H, L = cfg["T"], cfg["B"], cfg["D"], cfg["H"], cfg["L"]
    if cfg["unbatched"]:
        oshape, sshape = (T, D * H), (L * D, H)
    else:
        oshape = (B, T, D * H) if cfg["batch_first"] else (T, B, D * H)
        sshape = (L * D, B, H)
    dt = cfg["dt"]
    if g_out is not None:
        g_out = _grad_in(cfg, grad_like(opname, g_out, oshape, dt, "grad_output[0]"))
    g_hn = g_cn = None
    if kind == "lstm":
        if g_state is not None:
            if not isinstance(g_state, (tuple, list)) or len(g_state) != 2:
                raise TypeError(f"{opname}: grad_output[1] must be (grad_h_n, grad_c_n) or None")
            gh, gc = g_state
            g_hn = None if gh is None else grad_like(opname, gh, sshape, dt, "grad_h_n").reshape(L * D, B, H)
            g_cn = None if gc is None else grad_like(opname, gc, sshape, dt, "grad_c_n").reshape(L * D, B, H)
    elif g_state is not None:
        g_hn = grad_like(opname, g_state, sshape, dt, "grad_h_n").reshape(L * D, B, H)
    return g_out, g_hn, g_cn


def _seq_op(kind, opname):
    def forward(x, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed):
        cfg = _config(opname, x, [("h0", h0)], params, num_layers, bidirectional, batch_first, dropout, training, seed, kind)
        y, hn, _, _ = _run_forward(opname, kind, cfg)
        return _out(cfg, y), _state_out(cfg, hn)

    def pullback(cfg, tape, h0, grads_in, needs):
        """The entries from the checked output gradients ``grads_in`` (``_check_grads``)."""
        g_out, g_hn, _ = grads_in
        dX, dh0, _, grads = _run_backward(kind, cfg, tape, g_out, g_hn, None, needs is None or needs[0])
        return _dx(cfg, dX), (None if h0 is None else _state_out(cfg, dh0)), grads

    def backward(grad_output, x, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed,
                 needs=None):
        cfg = _config(opname, x, [("h0", h0)], params, num_layers, bidirectional, batch_first, dropout, training, seed, kind)
        grads_in = _check_grads(opname, cfg, grad_output, kind)  # bad gradients fail before the forward runs
        _, _, _, tape = _run_forward(opname, kind, cfg, keep=True)
        return pullback(cfg, tape, h0, grads_in, needs)

    def vjp(x, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed):
        cfg = _config(opname, x, [("h0", h0)], params, num_layers, bidirectional, batch_first, dropout, training, seed, kind)
        y, hn, _, tape = _run_forward(opname, kind, cfg, keep=True)
        return ((_out(cfg, y), _state_out(cfg, hn)),
                lambda g, needs: pullback(cfg, tape, h0, _check_grads(opname, cfg, g, kind), needs))

    return forward, backward, vjp


_rnn_f = {nl: _seq_op("rnn_" + nl, "rnn") for nl in ("tanh", "relu")}
_gru_f, _gru_b, _gru_v = _seq_op("gru", "gru")


@op
def rnn(input, h0, params, nonlinearity="tanh", num_layers=1, bidirectional=False, batch_first=False, dropout=0.0,
        training=False, seed=None):
    """Elman RNN over a sequence (``nn.RNN``): ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    ``input`` (L, N, H_in) (``batch_first``: (N, L, H_in); unbatched (L, H_in)), ``h0`` (num_layers * D,
    N, H) or None. Returns ``(output, h_n)``; see the module docstring for ``params`` and the backward.
    """
    nl = choice("rnn", "nonlinearity", nonlinearity, ("tanh", "relu"))
    return _rnn_f[nl][0](input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed)


@rnn.defbackward(needs=3)
def _(grad_output, input, h0, params, nonlinearity="tanh", num_layers=1, bidirectional=False, batch_first=False,
      dropout=0.0, training=False, seed=None, needs=None):
    nl = choice("rnn", "nonlinearity", nonlinearity, ("tanh", "relu"))
    return _rnn_f[nl][1](grad_output, input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed,
                         needs)


@rnn.defvjp
def _(input, h0, params, nonlinearity="tanh", num_layers=1, bidirectional=False, batch_first=False, dropout=0.0,
      training=False, seed=None):
    nl = choice("rnn", "nonlinearity", nonlinearity, ("tanh", "relu"))
    return _rnn_f[nl][2](input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed)


@op
def gru(input, h0, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0, training=False, seed=None):
    """GRU over a sequence (``nn.GRU``, gate order r, z, n). Returns ``(output, h_n)``."""
    return _gru_f(input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed)


@gru.defbackward(needs=3)
def _(grad_output, input, h0, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0,
      training=False, seed=None, needs=None):
    return _gru_b(grad_output, input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed, needs)


@gru.defvjp
def _(input, h0, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0, training=False, seed=None):
    return _gru_v(input, h0, params, num_layers, bidirectional, batch_first, dropout, training, seed)


def _lstm_cfg(input, hx, params, num_layers, bidirectional, batch_first, dropout, training, seed):
    if hx is None:
        h0 = c0 = None
    elif isinstance(hx, (tuple, list)) and len(hx) == 2:
        h0, c0 = hx
        if (h0 is None) != (c0 is None):
            raise ValueError("lstm: hx must give both h0 and c0, or be None")
    else:
        raise TypeError(f"lstm: hx must be a tuple (h0, c0) or None, got {type(hx).__name__}")
    return _config("lstm", input, [("h0", h0), ("c0", c0)], params, num_layers, bidirectional, batch_first, dropout,
                   training, seed, "lstm")


@op
def lstm(input, hx, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0, training=False,
         seed=None):
    """LSTM over a sequence (``nn.LSTM``, gate order i, f, g, o). ``hx = (h0, c0)`` or None.

    Returns ``(output, (h_n, c_n))``. Backward: ``lstm.backward((grad_output, (grad_h_n, grad_c_n)),
    input, hx, params, ...)`` -> ``(grad_input, (grad_h0, grad_c0) or None, [grads of params])``.
    """
    cfg = _lstm_cfg(input, hx, params, num_layers, bidirectional, batch_first, dropout, training, seed)
    y, hn, cn, _ = _run_forward("lstm", "lstm", cfg)
    return _out(cfg, y), (_state_out(cfg, hn), _state_out(cfg, cn))


def _lstm_pullback(cfg, tape, hx, grads_in, needs):
    """The entries from the checked output gradients ``grads_in`` (``_check_grads``)."""
    g_out, g_hn, g_cn = grads_in
    dX, dh0, dc0, grads = _run_backward("lstm", cfg, tape, g_out, g_hn, g_cn, needs is None or needs[0])
    dhx = None if hx is None else (_state_out(cfg, dh0), _state_out(cfg, dc0))
    return _dx(cfg, dX), dhx, grads


@lstm.defbackward(needs=3)
def _(grad_output, input, hx, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0,
      training=False, seed=None, needs=None):
    cfg = _lstm_cfg(input, hx, params, num_layers, bidirectional, batch_first, dropout, training, seed)
    grads_in = _check_grads("lstm", cfg, grad_output, "lstm")  # bad gradients fail before the forward runs
    _, _, _, tape = _run_forward("lstm", "lstm", cfg, keep=True)
    return _lstm_pullback(cfg, tape, hx, grads_in, needs)


@lstm.defvjp
def _(input, hx, params, num_layers=1, bidirectional=False, batch_first=False, dropout=0.0, training=False,
      seed=None):
    cfg = _lstm_cfg(input, hx, params, num_layers, bidirectional, batch_first, dropout, training, seed)
    y, hn, cn, tape = _run_forward("lstm", "lstm", cfg, keep=True)
    out = (_out(cfg, y), (_state_out(cfg, hn), _state_out(cfg, cn)))
    return out, lambda g, needs: _lstm_pullback(cfg, tape, hx, _check_grads("lstm", cfg, g, "lstm"), needs)


def _explain(kind):
    def explain(shape, dtype, hidden_size=None, **params):
        from . import _kernels

        T, B = (shape[0], 1) if len(shape) == 2 else (shape[0], shape[1])
        H = hidden_size or shape[-1]
        size = B * _layers.GATES[kind] * H
        return {"input_projection": f"one GEMM ({T * B}, {shape[-1]}) x ({shape[-1]}, {_layers.GATES[kind] * H})",
                "per_step": "h @ W_hh^T (fastops._gemm, W_hh packed once) + fused gate kernel", "gate_kernel": _kernels.backend(dtype, size)}

    return explain


rnn.defexplain(_explain("rnn_tanh"))
gru.defexplain(_explain("gru"))
lstm.defexplain(_explain("lstm"))
