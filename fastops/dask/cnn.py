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
from ..examples import cnn_digits


def forward(p, s, x, training, seed=0):
    """Lazy logits and intermediates (``cnn_digits.forward`` on batch-chunked Dask arrays)."""
    return cnn_digits.forward(p, s, x, training, seed, ops=fd)


def train_step(p, s, opt, x, y, seed):
    """One Adam step on a batch-chunked batch ``x`` (Dask, (N, 1, 8, 8)) with labels ``y``
    (NumPy or Dask, (N,)); returns the loss. (Training-mode batch_norm computes its statistics at
    the call, so the forward runs in three stages; everything else is one graph.)"""
    logits, t = forward(p, s, x, True, seed)
    loss, g = cnn_digits.gradients(p, s, x, y, logits, t, seed, ops=fd)
    keys = list(p)
    loss, *grads = dask.compute(loss, *[g[k] for k in keys], optimize_graph=False)
    opt.step(grads)
    return float(loss)
