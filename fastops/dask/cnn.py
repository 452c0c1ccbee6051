"""Data-parallel training of the small CNN of :mod:`fastops.examples.cnn_digits` on Dask.

The batch is a Dask array chunked along the batch axis (one or more blocks per worker); the
parameters and the optimizer stay on the client. A step is the single-machine
:func:`fastops.examples.cnn_digits.train_step` with ``fastops.dask`` ops: per-block forward and
input gradients, batch-norm statistics and weight gradients as tree reductions across blocks,
then one ``dask.compute`` of the loss and all gradients and the Adam step on the client. The
result equals the single-machine step up to summation order (see ``tests/test_dask.py``).
"""
import dask
import numpy as np

from .. import dask as fd


def forward(p, s, x, training, seed=0):
    """Lazy logits and intermediates (``cnn_digits.forward`` on batch-chunked Dask arrays)."""
    t = {"x": x}
    t["c1"] = fd.conv2d(x, p["w1"], p["b1"], padding=1)
    t["a1"] = fd.batch_norm(t["c1"], s["rm1"], s["rv1"], p["g1"], p["be1"], training=training, activation="relu")
    t["p1"] = fd.max_pool2d(t["a1"], 2)
    t["c2"] = fd.conv2d(t["p1"], p["w2"], p["b2"], padding=1)
    t["a2"] = fd.batch_norm(t["c2"], s["rm2"], s["rv2"], p["g2"], p["be2"], training=training, activation="relu")
    t["p2"] = fd.max_pool2d(t["a2"], 2)
    t["f"] = fd.flatten(t["p2"], 1)
    t["d"] = fd.dropout(t["f"], 0.2, training=training, seed=seed)
    return fd.linear(t["d"], p["w3"], p["b3"]), t


def train_step(p, s, opt, x, y, seed):
    """One Adam step on a batch-chunked batch ``x`` (Dask, (N, 1, 8, 8)) with labels ``y``
    (NumPy or Dask, (N,)); returns the loss. (Training-mode batch_norm computes its statistics at
    the call, so the forward runs in three stages; everything else is one graph.)"""
    logits, t = forward(p, s, x, True, seed)
    loss = fd.cross_entropy(logits, y)
    g = {}
    gl = fd.cross_entropy.backward(np.asarray(1.0, x.dtype), logits, y)[0]
    gd, g["w3"], g["b3"] = fd.linear.backward(gl, t["d"], p["w3"], p["b3"])
    gf = fd.dropout.backward(gd, t["f"], 0.2, True, False, seed)[0]
    gp2 = gf.reshape(t["p2"].shape)
    ga2 = fd.max_pool2d.backward(gp2, t["a2"], 2)[0]
    gc2, _, _, g["g2"], g["be2"] = fd.batch_norm.backward(
        ga2, t["c2"], s["rm2"], s["rv2"], p["g2"], p["be2"], training=True, activation="relu")
    gp1, g["w2"], g["b2"] = fd.conv2d.backward(gc2, t["p1"], p["w2"], p["b2"], padding=1)
    ga1 = fd.max_pool2d.backward(gp1, t["a1"], 2)[0]
    gc1, _, _, g["g1"], g["be1"] = fd.batch_norm.backward(
        ga1, t["c1"], s["rm1"], s["rv1"], p["g1"], p["be1"], training=True, activation="relu")
    _, g["w1"], g["b1"] = fd.conv2d.backward(gc1, x, p["w1"], p["b1"], padding=1)
    keys = list(p)
    loss, *grads = dask.compute(loss, *[g[k] for k in keys], optimize_graph=False)
    opt.step(grads)
    return float(loss)
