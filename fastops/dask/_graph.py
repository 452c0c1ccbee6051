"""Graph building blocks of ``fastops.dask``: batch-chunked operands, broadcast weights, per-block
tasks and fixed-order tree sums.

Every ``fastops.dask`` op builds its Dask graph from these pieces by hand (a ``HighLevelGraph`` of
plain tasks), because the backward of a block is one fastops call that returns a tuple (the input
gradient, which stays a block, and the weight-gradient partials, which feed a tree sum): mapping
the op once per output would run the backward kernel once per gradient.
"""
import functools
import operator

import numpy as np

import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph


def _rechunk_hint(argname, ndim):
    axes = ", ".join(f"{ax}: -1" for ax in range(1, ndim))
    return f"{argname} = {argname}.rechunk({{{axes}}})"


def batched(opname, argname, a, batch_chunks=None):
    """``a`` as a Dask array chunked along axis 0 only (every other axis one chunk).

    A NumPy array is wrapped with ``batch_chunks`` (the primary operand's chunks along the batch
    axis); a Dask array chunked along another axis raises ``ValueError`` with the rechunk call that
    fixes it; a Dask array whose batch chunks differ from ``batch_chunks`` is rechunked to them.
    """
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        if a.ndim == 0:
            raise ValueError(f"fastops.dask.{opname}: argument '{argname}' must have a batch axis, got a 0-d array")
        chunks = batch_chunks if batch_chunks is not None else (a.shape[0],)
        if sum(chunks) != a.shape[0]:
            raise ValueError(
                f"fastops.dask.{opname}: argument '{argname}' of shape {a.shape} must have {sum(chunks)} rows "
                f"along the batch axis 0 (the input's batch size)")
        return da.from_array(a, chunks=(chunks,) + a.shape[1:])
    if a.ndim == 0:
        raise ValueError(f"fastops.dask.{opname}: argument '{argname}' must have a batch axis, got a 0-d array")
    if any(np.isnan(c) for c in a.shape):
        raise ValueError(
            f"fastops.dask.{opname}: argument '{argname}' has unknown chunk sizes {a.chunks}: call "
            f"{argname}.compute_chunk_sizes() first")
    bad = [ax for ax in range(1, a.ndim) if len(a.chunks[ax]) > 1]
    if bad:
        raise ValueError(
            f"fastops.dask.{opname}: argument '{argname}' of shape {a.shape} is chunked along axis "
            f"{', '.join(map(str, bad))} (chunks {a.chunks}); fastops.dask chunks along the batch axis 0 only, "
            f"every other axis must be one chunk: call {_rechunk_hint(argname, a.ndim)} first")
    if batch_chunks is not None and a.chunks[0] != tuple(batch_chunks):
        if a.shape[0] != sum(batch_chunks):
            raise ValueError(
                f"fastops.dask.{opname}: argument '{argname}' of shape {a.shape} must have {sum(batch_chunks)} "
                f"rows along the batch axis 0 (the input's batch size)")
        a = a.rechunk({0: tuple(batch_chunks)})
    return a


def broadcast(a):
    """A weight as a one-chunk Dask array (one graph key, so each worker receives it once), or None.

    NumPy arrays become one ``from_array`` key named by their content (the same weight passed to
    several ops is one key); Dask arrays are rechunked to one chunk.
    """
    if a is None:
        return None
    if isinstance(a, da.Array):
        return a if a.npartitions == 1 else a.rechunk(a.shape)
    a = np.asarray(a)
    return da.from_array(a, chunks=a.shape, name="fastops-weight-" + tokenize(a), inline_array=False)


def block_key(a, i):
    """The key of batch block ``i`` of a batch-chunked array (or of the one chunk of a weight)."""
    return (a.name, i) + (0,) * (a.ndim - 1) if a.ndim else (a.name,)


def weight_key(a):
    return (a.name,) + (0,) * a.ndim


def nblocks(a):
    return len(a.chunks[0])


def _call(fn, names, static, *arrays):
    """Task body: ``fn(**static, **dict(zip(names, arrays)))``."""
    return fn(**static, **dict(zip(names, arrays)))


def call(fn, names, static):
    """A picklable task function calling ``fn`` with the array arguments ``names`` (given
    positionally to the task) and the hyper-parameters ``static`` (kept inside the function
    object: Dask does not look into it for keys)."""
    return functools.partial(_call, fn, tuple(names), dict(static))


def array(name, dsk, deps, chunks, dtype):
    """A Dask array from a layer ``dsk`` whose keys are ``(name, i, 0, ...)``."""
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=list(deps)), name, chunks=chunks, dtype=dtype)


def blocks_array(name, src, item, deps, chunks, dtype):
    """The Dask array whose block ``i`` is ``src_i[item]`` (``src``: a per-block tuple layer name);
    ``item=None`` takes the block result itself."""
    zeros = (0,) * (len(chunks) - 1)
    if item is None:
        dsk = {(name, i) + zeros: (_identity, (src, i)) for i in range(len(chunks[0]))}
    else:
        dsk = {(name, i) + zeros: (operator.getitem, (src, i), item) for i in range(len(chunks[0]))}
    return array(name, dsk, deps, chunks, dtype)


def _identity(a):
    return a


def tree_sum(name, leaves, shape, dtype, deps):
    """Sum of the tasks ``leaves`` (one partial per block, in block order) as a one-chunk Dask
    array: a pairwise tree ``((l0 + l1) + (l2 + l3)) + ...`` with a fixed shape, so the result is
    the same bits for any scheduler, worker count or completion order."""
    dsk = {}
    level = list(leaves)
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            key = (f"{name}-tree{depth}", j // 2)
            dsk[key] = (operator.add, level[j], level[j + 1])
            nxt.append(key)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        depth += 1
    out_key = (name,) + (0,) * len(shape)
    dsk[out_key] = (_as_array, level[0], np.dtype(dtype).str)
    return array(name, dsk, deps, tuple((s,) for s in shape), dtype)


def _as_array(a, dtype):
    return np.asarray(a, dtype=dtype)


def token(*parts):
    return tokenize(*parts)
