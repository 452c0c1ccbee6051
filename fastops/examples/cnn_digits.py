"""Image classification with a small CNN, trained with fastops only (no torch).

Model (8x8 grey digits)::

    conv2d(1 -> 16, 3x3, pad 1) -> batch_norm(training, activation="relu")   # BN + ReLU fused
    max_pool2d(2)                                                             # 16 x 4 x 4
    conv2d(16 -> 32, 3x3, pad 1) -> batch_norm(activation="relu") -> max_pool2d(2)   # 32 x 2 x 2
    flatten -> dropout(0.2, seed=step) -> linear(128 -> 10) -> cross_entropy

trained with ``fastops.optim.Adam``. :func:`train_step` writes the chain rule out by hand: every
op's ``.backward(grad_output, *forward_args)`` gives the gradients of its inputs.
"""
import time

import numpy as np

import fastops
from fastops import optim

from .data import batches, load_digits

CHANNELS = (16, 32)


def init_params(rng, dtype=np.float32):
    """Weights with PyTorch's default (Kaiming-uniform) init; BN weight 1, bias 0."""
    c1, c2 = CHANNELS

    def u(fan_in, *shape):
        k = 1 / np.sqrt(fan_in)
        return rng.uniform(-k, k, shape).astype(dtype)

    return {
        "w1": u(9, c1, 1, 3, 3), "b1": u(9, c1),
        "g1": np.ones(c1, dtype), "be1": np.zeros(c1, dtype),
        "w2": u(9 * c1, c2, c1, 3, 3), "b2": u(9 * c1, c2),
        "g2": np.ones(c2, dtype), "be2": np.zeros(c2, dtype),
        "w3": u(4 * c2, 10, 4 * c2), "b3": u(4 * c2, 10),
    }


def init_state(dtype=np.float32):
    """BatchNorm running statistics (updated in place by training forwards)."""
    c1, c2 = CHANNELS
    return {"rm1": np.zeros(c1, dtype), "rv1": np.ones(c1, dtype), "rm2": np.zeros(c2, dtype), "rv2": np.ones(c2, dtype)}


def forward(p, s, x, training, seed=0, ops=fastops):
    """Logits and the intermediate values the backward needs. x: (N, 1, 8, 8).

    ``ops``: the namespace of the ops (``fastops``, or ``fastops.dask`` for the data-parallel
    step of :mod:`fastops.dask.cnn`, which runs this same code on batch-chunked Dask arrays)."""
    t = {"x": x}
    t["c1"] = ops.conv2d(x, p["w1"], p["b1"], padding=1)
    t["a1"] = ops.batch_norm(t["c1"], s["rm1"], s["rv1"], p["g1"], p["be1"], training=training, activation="relu")
    t["p1"] = ops.max_pool2d(t["a1"], 2)
    t["c2"] = ops.conv2d(t["p1"], p["w2"], p["b2"], padding=1)
    t["a2"] = ops.batch_norm(t["c2"], s["rm2"], s["rv2"], p["g2"], p["be2"], training=training, activation="relu")
    t["p2"] = ops.max_pool2d(t["a2"], 2)
    t["f"] = ops.flatten(t["p2"], 1)
    t["d"] = ops.dropout(t["f"], 0.2, training=training, seed=seed)
    return ops.linear(t["d"], p["w3"], p["b3"]), t


def gradients(p, s, x, y, logits, t, seed, ops=fastops):
    """The loss and the gradient of every parameter (dict), by the chain rule written out."""
    # the BN running stats are updated once, by the forward; the backward recomputes batch stats
    loss = ops.cross_entropy(logits, y)
    g = {}
    gl = ops.cross_entropy.backward(np.asarray(1.0, logits.dtype), logits, y)[0]
    gd, g["w3"], g["b3"] = ops.linear.backward(gl, t["d"], p["w3"], p["b3"])
    gf = ops.dropout.backward(gd, t["f"], 0.2, True, False, seed)[0]
    gp2 = gf.reshape(t["p2"].shape)
    ga2 = ops.max_pool2d.backward(gp2, t["a2"], 2)[0]
    gc2, _, _, g["g2"], g["be2"] = ops.batch_norm.backward(
        ga2, t["c2"], s["rm2"], s["rv2"], p["g2"], p["be2"], training=True, activation="relu")
    gp1, g["w2"], g["b2"] = ops.conv2d.backward(gc2, t["p1"], p["w2"], p["b2"], padding=1)
    ga1 = ops.max_pool2d.backward(gp1, t["a1"], 2)[0]
    gc1, _, _, g["g1"], g["be1"] = ops.batch_norm.backward(
        ga1, t["c1"], s["rm1"], s["rv1"], p["g1"], p["be1"], training=True, activation="relu")
    _, g["w1"], g["b1"] = ops.conv2d.backward(gc1, x, p["w1"], p["b1"], padding=1)
    return loss, g


def train_step(p, s, opt, x, y, seed):
    """One Adam step on a batch; returns the loss."""
    logits, t = forward(p, s, x, True, seed)
    loss, g = gradients(p, s, x, y, logits, t, seed)
    opt.step([g[k] for k in p])
    return float(loss)


def accuracy(p, s, x, y):
    return float((forward(p, s, x, training=False)[0].argmax(axis=1) == y).mean())


def train(epochs=15, batch_size=32, lr=3e-3, seed=0, max_steps=None, verbose=False):
    """Train; returns the loss history (per step), train/test accuracy per epoch, seconds per epoch."""
    x_tr, y_tr, x_te, y_te = load_digits(seed=seed)
    x_tr, x_te = x_tr[:, None], x_te[:, None]  # (N, 1, 8, 8)
    rng = np.random.default_rng(seed)
    p, s = init_params(rng), init_state()
    opt = optim.Adam(list(p.values()), lr=lr)
    losses, test_acc, epoch_times, steps = [], [], [], 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for idx in batches(len(x_tr), batch_size, rng):
            losses.append(train_step(p, s, opt, x_tr[idx], y_tr[idx], seed=steps))
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        epoch_times.append(time.perf_counter() - t0)
        test_acc.append(accuracy(p, s, x_te, y_te))
        if verbose:
            print(f"epoch {epoch + 1}: loss {np.mean(losses[-20:]):.4f}, test accuracy {test_acc[-1]:.4f}, "
                  f"{epoch_times[-1]:.2f} s")
        if max_steps is not None and steps >= max_steps:
            break
    return {"losses": losses, "test_accuracy": test_acc[-1], "test_accuracy_per_epoch": test_acc,
            "seconds_per_epoch": float(np.median(epoch_times)), "params": p, "state": s}




def train_torch(epochs=15, batch_size=32, lr=3e-3, seed=0, threads=None):
    """The same network and schedule in PyTorch (for the time comparison; needs torch)."""
    import torch
    import torch.nn.functional as F

    if threads is not None:
        torch.set_num_threads(threads)
    x_tr, y_tr, x_te, y_te = load_digits(seed=seed)
    rng = np.random.default_rng(seed)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in init_params(rng).items()}
    s = {k: torch.tensor(v) for k, v in init_state().items()}
    opt = torch.optim.Adam(list(p.values()), lr=lr)

    def fwd(x, training):
        h = F.conv2d(x, p["w1"], p["b1"], padding=1)
        h = F.relu(F.batch_norm(h, s["rm1"], s["rv1"], p["g1"], p["be1"], training=training))
        h = F.max_pool2d(h, 2)
        h = F.conv2d(h, p["w2"], p["b2"], padding=1)
        h = F.relu(F.batch_norm(h, s["rm2"], s["rv2"], p["g2"], p["be2"], training=training))
        h = F.dropout(F.max_pool2d(h, 2).flatten(1), 0.2, training=training)
        return F.linear(h, p["w3"], p["b3"])

    xt, yt = torch.from_numpy(x_tr[:, None]), torch.from_numpy(y_tr)
    epoch_times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for idx in batches(len(x_tr), batch_size, rng):
            i = torch.from_numpy(idx)
            loss = F.cross_entropy(fwd(xt[i], True), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epoch_times.append(time.perf_counter() - t0)
    with torch.no_grad():
        acc = float((fwd(torch.from_numpy(x_te[:, None]), False).argmax(1).numpy() == y_te).mean())
    return {"test_accuracy": acc, "seconds_per_epoch": float(np.median(epoch_times))}


if __name__ == "__main__":
    r = train(verbose=True)
    print(f"CNN digits (fastops): test accuracy {r['test_accuracy']:.4f}, {r['seconds_per_epoch']:.2f} s/epoch (median)")
    try:
        t = train_torch(threads=fastops.get_num_threads())
        print(f"CNN digits (torch):   test accuracy {t['test_accuracy']:.4f}, {t['seconds_per_epoch']:.2f} s/epoch (median)")
    except ImportError:
        print("torch not installed: no time comparison")
