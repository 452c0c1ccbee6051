"""``fastops.dask``: fastops ops over Dask arrays chunked along the batch axis (optional extra
``pip install fastops[dask]``: ``dask[array]`` + ``distributed``; ``import fastops`` never imports
Dask).

Every op whose batch axis is independent has a twin here with the same name and signature:
``fastops.dask.conv2d(x, w, b, padding=1)`` takes a ``dask.array.Array`` ``x`` chunked along axis 0
(every other axis one chunk) and returns a lazy Dask array, one fastops call per block; the
weights (NumPy arrays) become one graph key each, so a distributed scheduler ships them once per
worker. ``fastops.dask.conv2d.backward(g, x, w, b, padding=1)`` returns the input gradient per
block and the weight/bias gradients as a fixed-order pairwise tree sum of per-block partials
(deterministic: the same bits whatever the scheduler, worker count or completion order).

Ops with cross-batch behaviour:

* ``batch_norm(training=True)``: global batch statistics (two-pass tree reduction); the running
  statistics are updated in place (eagerly: the statistics are computed at the call, the input is
  persisted first); the backward uses the global sums.
* losses with ``reduction="mean"/"sum"`` (``"batchmean"``): the blocks' sums tree-summed and
  divided by the global denominator; the result is a 0-d Dask array.
* ``dropout``/``dropout2d`` with ``seed=``: the single-array mask (each block offsets the
  counter-based generator by its first global element index).
* RoI ops: the boxes (NumPy (K, 5)) are routed to the block holding their batch index; output
  rows in the caller's box order.

Not supported (``ValueError``): chunking along a non-batch axis (the message gives the
``rechunk`` call), ``inplace=True``, ``return_indices=True``, ``rrelu(training=True)``,
``instance_norm`` with running statistics, attention ``dropout_p > 0``, softmax over the batch
axis. Not provided: ``affine_grid``, ``reshape``, ``matmul``, ``axpy``, ``eltwise``, the
sequence ops ``rnn``/``gru``/``lstm`` and ``lstm_cell`` (use ``dask.array`` or the NumPy ops).

Threads: each block runs fastops with the worker process's thread setting
(``fastops.set_num_threads``; a worker process started by ``spawn``, Dask's default, keeps all
``NUMBA_NUM_THREADS``). With several workers per machine give each ``cores / workers`` threads,
e.g. ``client.run(fastops.set_num_threads, 1)``. The kernel cache (``FASTOPS_CACHE_DIR``) is
read from the environment, which ``LocalCluster`` workers inherit: they load the kernels compiled
by any process instead of compiling them again.
"""
from ._ops import DASK_OPS, DaskOp  # noqa: F401
from . import _special  # noqa: F401  (registers batch_norm, losses, dropout, RoI ops)

globals().update(DASK_OPS)


def ops():
    """Names of the ops ``fastops.dask`` provides, sorted."""
    return sorted(DASK_OPS)


__all__ = sorted(DASK_OPS) + ["ops", "DaskOp"]
