"""Calls of the recurrent ops (``rnn_cell``, ``lstm_cell``, ``gru_cell``, ``rnn``, ``lstm``,
``gru``) for warmup and benchmarks. They are tested by ``tests/recurrent/test_recurrent.py``, outside the op
table: their weights come as a list (``params``) and their states as tuples, which the table's
generic checks do not take.

``SIZES``: "tiny" (warmup: one small call compiles every kernel of the op and dtype) and "bench"
(the recurrent issue's shape: batch 32, input 256, hidden 512, sequences of 50 steps, one layer),
shared by ``python -m fastops warmup``, ``asv_benches/bench_recurrent.py`` and
``python -m fastops.recurrent.bench``.
"""
import numpy as np

OPS = ("rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
SIZES = {"tiny": dict(T=3, B=2, I=4, H=8), "bench": dict(T=50, B=32, I=256, H=512)}


def case(name, dtype, size="tiny", scale=0.05):
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
