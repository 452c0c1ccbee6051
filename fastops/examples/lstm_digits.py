"""Sequence classification with an LSTM, trained with fastops only.

Each 8x8 digit image is read as a sequence of its 8 rows (8 features per step). Model::

    h_n = lstm(rows, hidden=64)          # fastops.lstm, batch_first
    logits = h_n @ W^T + b               # fastops.matmul + fastops.bias_add
    loss = cross_entropy(logits, label)  # fastops.cross_entropy

trained with ``fastops.optim.Adam``. Gradients flow back by hand: each op's ``.backward`` returns the
gradients of its inputs, and the chain is written out in :func:`train_step`.
"""
import time

import numpy as np

import fastops
from fastops import optim

from .data import batches, load_digits


def init_params(rng, n_in=8, hidden=64, n_classes=10, dtype=np.float32):
    """LSTM weights (PyTorch's layout and init: U(-1/sqrt(H), 1/sqrt(H))) and the classifier."""
    k = 1 / np.sqrt(hidden)
    u = lambda *s: rng.uniform(-k, k, s).astype(dtype)  # noqa: E731
    lstm = [u(4 * hidden, n_in), u(4 * hidden, hidden), u(4 * hidden), u(4 * hidden)]
    head = [u(n_classes, hidden), u(n_classes)]
    return lstm + head


def forward(params, x):
    """Logits (N, 10) for images x (N, 8, 8)."""
    lstm_p, (w, b) = params[:4], params[4:]
    _, (h_n, _) = fastops.lstm(x, None, lstm_p, batch_first=True)
    h = h_n[0]
    return fastops.bias_add(fastops.matmul(h, w.T), b), h


def train_step(params, opt, x, y):
    """One Adam step on a batch; returns the batch loss."""
    lstm_p, (w, b) = params[:4], params[4:]
    logits, h = forward(params, x)
    loss = float(fastops.cross_entropy(logits, y))
    g_logits = fastops.cross_entropy.backward(np.asarray(1.0, logits.dtype), logits, y)[0]
    g_h, g_wt = fastops.matmul.backward(g_logits, h, np.ascontiguousarray(w.T))
    g_b = g_logits.sum(axis=0)
    g_hn = g_h[None]  # h_n has shape (num_layers, N, H)
    _, _, g_lstm = fastops.lstm.backward((None, (g_hn, None)), x, None, lstm_p, batch_first=True)
    opt.step(g_lstm + [np.ascontiguousarray(g_wt.T), g_b])
    return loss


def accuracy(params, x, y):
    return float((forward(params, x)[0].argmax(axis=1) == y).mean())


def train(epochs=25, hidden=64, batch_size=64, lr=1e-2, seed=0, max_steps=None, verbose=False):
    """Train; returns a dict with the loss history (per step), test accuracy and seconds per epoch."""
    x_tr, y_tr, x_te, y_te = load_digits(seed=seed)
    rng = np.random.default_rng(seed)
    params = init_params(rng, hidden=hidden)
    opt = optim.Adam(params, lr=lr)
    losses, epoch_times, steps = [], [], 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for idx in batches(len(x_tr), batch_size, rng):
            losses.append(train_step(params, opt, x_tr[idx], y_tr[idx]))
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        epoch_times.append(time.perf_counter() - t0)
        if verbose:
            print(f"epoch {epoch + 1}: loss {np.mean(losses[-10:]):.4f}, test accuracy {accuracy(params, x_te, y_te):.4f}, "
                  f"{epoch_times[-1]:.2f} s")
        if max_steps is not None and steps >= max_steps:
            break
    return {
        "losses": losses,
        "test_accuracy": accuracy(params, x_te, y_te),
        "seconds_per_epoch": float(np.median(epoch_times)),
        "params": params,
    }


if __name__ == "__main__":
    r = train(verbose=True)
    print(f"LSTM digits: test accuracy {r['test_accuracy']:.4f}, {r['seconds_per_epoch']:.2f} s/epoch (median)")
