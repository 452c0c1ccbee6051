"""Single recurrent steps: ``rnn_cell``, ``lstm_cell``, ``gru_cell`` (``nn.RNNCell``, ``nn.LSTMCell``,
``nn.GRUCell``), with PyTorch's weight layout and gate order, so weights copied from a torch module
give the same outputs. A cell is a one-step sequence of the layer machinery in ``_layers``.
"""
import numpy as np

from .._op import op
from .._validate import choice, float_array, grad_like
from . import _layers


def _prep(opname, kind, x, hs, w_ih, w_hh, b_ih, b_hh):
    """Validate; return batched arrays and whether the input was unbatched."""
    x = float_array(opname, "input", x)
    dt = x.dtype
    if x.ndim not in (1, 2):
        raise ValueError(f"{opname}: input must be 1-D (input_size,) or 2-D (batch, input_size), got shape {x.shape}")
    w_ih = float_array(opname, "w_ih", w_ih, dt)
    w_hh = float_array(opname, "w_hh", w_hh, dt)
    G = _layers.GATES[kind]
    if w_hh.ndim != 2 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"{opname}: w_hh must have shape ({G}*hidden_size, hidden_size), got {w_hh.shape}")
    H = w_hh.shape[1]
    I = x.shape[-1]
    if w_ih.shape != (G * H, I):
        raise ValueError(
            f"{opname}: w_ih must have shape ({G * H}, {I}) for input shape {x.shape} and hidden size {H}, got {w_ih.shape}"
        )
    bs = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            b = float_array(opname, name, b, dt)
            if b.shape != (G * H,):
                raise ValueError(f"{opname}: {name} must have shape ({G * H},), got {b.shape}")
        bs.append(b)
    unbatched = x.ndim == 1
    B = 1 if unbatched else x.shape[0]
    state_shape = (H,) if unbatched else (B, H)
    states = []
    for name, h in hs:
        if h is None:
            states.append(None)
            continue
        h = float_array(opname, name, h, dt)
        if h.shape != state_shape:
            raise ValueError(f"{opname}: {name} must have shape {state_shape} for input shape {x.shape}, got {h.shape}")
        states.append(h)
    x3 = x.reshape(1, B, I)
    states = [np.zeros((B, H), dt) if h is None else h.reshape(B, H) for h in states]
    return x3, states, w_ih, w_hh, bs[0], bs[1], unbatched, (B, H)


def _kind(opname, nonlinearity):
    return "rnn_" + choice(opname, "nonlinearity", nonlinearity, ("tanh", "relu"))


@op
def rnn_cell(input, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``nn.RNNCell``), act tanh or relu.

    ``h`` may be None (zeros). Backward: ``rnn_cell.backward(grad_h, input, h, w_ih, w_hh, b_ih, b_hh)``
    -> ``(grad_input, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    kind = _kind("rnn_cell", nonlinearity)
    x3, (h0,), w_ih, w_hh, b_ih, b_hh, unb, _ = _prep("rnn_cell", kind, input, [("h", h)], w_ih, w_hh, b_ih, b_hh)
    out, hn, _, _ = _layers.forward(kind, x3, h0, None, w_ih, w_hh, b_ih, b_hh, keep=False)
    return hn.reshape(-1) if unb else hn


@rnn_cell.defbackward
def _(grad_output, input, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    kind = _kind("rnn_cell", nonlinearity)
    x3, (h0,), w_ih, w_hh, b_ih, b_hh, unb, bh = _prep("rnn_cell", kind, input, [("h", h)], w_ih, w_hh, b_ih, b_hh)
    g = grad_like("rnn_cell", grad_output, (bh[1],) if unb else bh, x3.dtype).reshape(bh)
    out, hn, _, saved = _layers.forward(kind, x3, h0, None, w_ih, w_hh, b_ih, b_hh)
    dX, dh, _, dwi, dwh, dbi, dbh = _layers.backward(kind, x3, h0, None, w_ih, w_hh, b_ih, b_hh, False, out, saved, None, g, None)
    shp = np.shape(input)
    return (dX.reshape(shp), None if h is None else dh.reshape(np.shape(h)), dwi, dwh, dbi, dbh)


@op
def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (``nn.LSTMCell``): ``hx = (h, c)`` or None; returns ``(h', c')``.

    Gates ``i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)``; ``c' = s(f) c + s(i) tanh(g)``,
    ``h' = s(o) tanh(c')``. Backward: ``lstm_cell.backward((grad_h, grad_c), input, hx, w_ih, w_hh,
    b_ih, b_hh)`` (either gradient may be None) -> ``(grad_input, (grad_h, grad_c), grad_w_ih,
    grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    h, c = _hx("lstm_cell", hx)
    x3, (h0, c0), w_ih, w_hh, b_ih, b_hh, unb, _ = _prep("lstm_cell", "lstm", input, [("h", h), ("c", c)], w_ih, w_hh, b_ih, b_hh)
    out, hn, cn, _ = _layers.forward("lstm", x3, h0, c0, w_ih, w_hh, b_ih, b_hh, keep=False)
    if unb:
        return hn.reshape(-1), cn.reshape(-1)
    return hn, cn


def _hx(opname, hx):
    if hx is None:
        return None, None
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{opname}: hx must be a tuple (h, c) or None, got {type(hx).__name__}")
    return hx


def _grad_pair(opname, grads, shape, dtype):
    if grads is None or isinstance(grads, np.ndarray):
        raise TypeError(f"{opname}: grad_output must be a tuple (grad_h, grad_c) (either may be None)")
    gh, gc = grads
    gh = None if gh is None else grad_like(opname, gh, shape, dtype, "grad_output[0]")
    gc = None if gc is None else grad_like(opname, gc, shape, dtype, "grad_output[1]")
    return gh, gc


@lstm_cell.defbackward
def _(grad_output, input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    h, c = _hx("lstm_cell", hx)
    x3, (h0, c0), w_ih, w_hh, b_ih, b_hh, unb, bh = _prep("lstm_cell", "lstm", input, [("h", h), ("c", c)], w_ih, w_hh, b_ih, b_hh)
    gh, gc = _grad_pair("lstm_cell", grad_output, (bh[1],) if unb else bh, x3.dtype)
    gh = None if gh is None else gh.reshape(bh)
    gc = None if gc is None else gc.reshape(bh)
    out, hn, cn, saved = _layers.forward("lstm", x3, h0, c0, w_ih, w_hh, b_ih, b_hh)
    dX, dh, dc, dwi, dwh, dbi, dbh = _layers.backward("lstm", x3, h0, c0, w_ih, w_hh, b_ih, b_hh, False, out, saved, None, gh, gc)
    dhx = None if hx is None else (dh.reshape(np.shape(h)), dc.reshape(np.shape(c)))
    return (dX.reshape(np.shape(input)), dhx, dwi, dwh, dbi, dbh)


@op
def gru_cell(input, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (``nn.GRUCell``): ``r, z = s(...)``, ``n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))``,
    ``h' = (1 - z) n + z h``. Backward -> ``(grad_input, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``."""
    x3, (h0,), w_ih, w_hh, b_ih, b_hh, unb, _ = _prep("gru_cell", "gru", input, [("h", h)], w_ih, w_hh, b_ih, b_hh)
    out, hn, _, _ = _layers.forward("gru", x3, h0, None, w_ih, w_hh, b_ih, b_hh, keep=False)
    return hn.reshape(-1) if unb else hn


@gru_cell.defbackward
def _(grad_output, input, h, w_ih, w_hh, b_ih=None, b_hh=None):
    x3, (h0,), w_ih, w_hh, b_ih, b_hh, unb, bh = _prep("gru_cell", "gru", input, [("h", h)], w_ih, w_hh, b_ih, b_hh)
    g = grad_like("gru_cell", grad_output, (bh[1],) if unb else bh, x3.dtype).reshape(bh)
    out, hn, _, saved = _layers.forward("gru", x3, h0, None, w_ih, w_hh, b_ih, b_hh)
    dX, dh, _, dwi, dwh, dbi, dbh = _layers.backward("gru", x3, h0, None, w_ih, w_hh, b_ih, b_hh, False, out, saved, None, g, None)
    return (dX.reshape(np.shape(input)), None if h is None else dh.reshape(np.shape(h)), dwi, dwh, dbi, dbh)


def _explain(kind):
    def explain(shape, dtype, **params):
        from . import _kernels

        B = shape[0] if len(shape) == 2 else 1
        H = params.get("hidden_size", shape[-1])
        size = B * _layers.GATES[kind] * H
        return {"gemm": "fastops._gemm", "gate_kernel": _kernels.backend(dtype, size), "size": size}

    return explain


rnn_cell.defexplain(_explain("rnn_tanh"))
lstm_cell.defexplain(_explain("lstm"))
gru_cell.defexplain(_explain("gru"))
