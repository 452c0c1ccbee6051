"""Deterministic sums over axes: ``sum_to_shape(x, shape)`` sums ``x`` over the axes that ``shape``
broadcasts along (the backward of every broadcasting op: ``add``'s operand gradients, ``bias_add``'s
bias gradient, ``axpy``'s ``a`` gradient, ``matmul``'s broadcast batch dims).

Determinism: the result is bitwise the same for every thread count. How:

* The work is cut into units by a plan that depends on the shape only (:func:`pass_plan`), never on
  the number of threads: along the summed axis a unit covers a fixed chunk; a unit always adds its
  elements in the same order. ``prange`` only decides *which thread* runs a unit.
* Units write partial sums to their own slot; partial sums of one output element are then added in
  chunk order (:func:`_combine_template`). No ``prange`` reduction variable, whose combination order
  would depend on scheduling (numba#3522), and no atomics.
* The serial and the parallel kernels are the same template (``prange`` is ``range`` serially).

Vectorization without fastmath ``reassoc`` (off for every fastops kernel, see ``_config``): LLVM may
not reorder a scalar sum ``s += x[i]``, so the kernels keep explicit partial sums in lanes. A run of
``B`` rows of length ``C`` is summed "vertically" into an accumulator of ``C`` lanes (one lane per
output element; the inner loop over lanes vectorizes as it has no loop-carried dependency). Rows
shorter than ``LANES`` are folded: ``k = LANES // C`` consecutive rows form one accumulator row of
``k*C`` lanes, and lane ``j`` belongs to output ``j % C`` (for a plain sum, ``C == 1``, that is 64
lanes = four AVX-512 registers of float32). On 1M float32 in cache, serial, such a local 64-lane
accumulator array sums at 48 GB/s against 4.8 GB/s for a scalar ``s += x[i]`` and 22-25 GB/s for 8
or 16 scalar accumulators, which LLVM does not SLP-vectorize (commit f87ccf2). Lanes are summed in
blocks of ``CASCADE`` rows that are then added to a second accumulator (a two-level cascade, for
accuracy), and the lanes of one output are finally added in lane order. Long rows (``C >= LANES``)
are cut in tiles of ``TILE_BYTES``: each unit streams 16 KB pieces of its rows (shorter pieces,
4-8 KB, ran up to 2x slower: the hardware prefetcher sees short bursts; commit f87ccf2).

Passes: a reduction whose summed axes are not adjacent (``bias_add``'s ``(N, C, H, W) -> (C,)``)
is done in several passes, each summing one block of adjacent axes of an ``(A, B, C)`` view over
``B``; the largest block goes first, so later passes only see already-shrunk data.
"""
import numpy as np
from numba import prange

from . import _dispatch, _jit, _threads
from ._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = TILE = UNBOUND

LANES = 64  # accumulator width of folded rows (elements)
CASCADE = 64  # rows summed into the inner accumulator before it is added to the outer one
TILE_BYTES = 16384  # columns per unit when rows are long: 16 KB of each row (4096 float32)
TARGET_UNITS = 64  # split the summed axis into chunks only while there are fewer units than this
MIN_UNIT = 1 << 14  # ... and never into chunks of fewer elements than this


def _cdiv(a, b):
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# plans (pure functions of shapes)


def reduce_passes(in_shape, shape):
    """The ``(A, B, C)`` passes that sum an array of ``in_shape`` to ``shape``.

    ``shape`` must broadcast to ``in_shape`` (it may have fewer dims, or extra leading 1s). Size-1
    axes are dropped, adjacent axes of the same kind (kept / summed) are merged; each pass sums the
    middle axis of an ``(A, B, C)`` view. An empty list means no summation (a reshape suffices).
    """
    in_shape, shape = tuple(int(s) for s in in_shape), tuple(int(s) for s in shape)
    n = len(in_shape)
    if len(shape) > n:
        extra = shape[: len(shape) - n]
        if any(s != 1 for s in extra):
            raise ValueError(f"sum_to_shape: cannot sum shape {in_shape} to shape {shape} of higher rank")
        shape = shape[len(shape) - n :]  # leading 1s of the target: no summation
    tgt = (1,) * (n - len(shape)) + shape
    dims = []  # [size, summed]
    for s, t in zip(in_shape, tgt):
        if t != s and t != 1:
            raise ValueError(f"sum_to_shape: shape {shape} does not broadcast to {in_shape}")
        if s == 1:
            continue
        summed = t == 1
        if dims and dims[-1][1] == summed:
            dims[-1][0] *= s
        else:
            dims.append([s, summed])
    passes = []
    while any(d[1] for d in dims):
        # the largest summed block first (ties: the innermost)
        j = max((i for i, d in enumerate(dims) if d[1]), key=lambda i: (dims[i][0], i))
        A = int(np.prod([d[0] for d in dims[:j]], dtype=np.int64))
        C = int(np.prod([d[0] for d in dims[j + 1 :]], dtype=np.int64))
        passes.append((A, dims[j][0], C))
        del dims[j]
        if 0 < j < len(dims) and not dims[j - 1][1] and not dims[j][1]:
            dims[j - 1][0] *= dims[j][0]
            del dims[j]
    return passes


def tile_columns(itemsize):
    return TILE_BYTES // itemsize


def pass_plan(A, B, C, itemsize=4):
    """How one pass sums an ``(A, B, C)`` view over ``B``: ``(kind, fold, chunk, nchunks, rows)``.

    ``kind``: ``"fold"`` (``C < LANES``: ``fold`` rows of ``C`` form one accumulator row) or
    ``"cols"`` (long rows, tiled by ``TILE_BYTES`` of columns); ``chunk``: elements of ``B`` per unit;
    ``nchunks``: number of chunks (partial sums per output; 1: written directly); ``rows``: how many
    ``A`` indices one unit handles (fold kernel). Depends on the shape only (determinism).
    """
    if C < LANES:
        # each lane should get a few rows: short rows (B small) fold less (less per-row overhead)
        fold = max(1, min(LANES // C, B // 4))
        per_a = B * C
        if A >= TARGET_UNITS or per_a <= 2 * MIN_UNIT:
            nk = 1
        else:
            nk = min(_cdiv(TARGET_UNITS, A), _cdiv(per_a, MIN_UNIT))
        chunk = _cdiv(_cdiv(B, nk), fold) * fold
        nk = _cdiv(B, chunk)
        rows = max(1, MIN_UNIT // max(per_a, 1)) if nk == 1 else 1
        return ("fold", fold, chunk, nk, rows)
    tile = tile_columns(itemsize)
    nt = _cdiv(C, tile)
    per_unit = B * min(C, tile)
    if A * nt >= TARGET_UNITS or per_unit <= 2 * MIN_UNIT:
        nk = 1
    else:
        nk = min(_cdiv(TARGET_UNITS, A * nt), _cdiv(per_unit, MIN_UNIT))
    chunk = _cdiv(B, nk)
    nk = _cdiv(B, chunk)
    return ("cols", 1, chunk, nk, 1)


# ---------------------------------------------------------------------------------------------
# kernels (T: the dtype's scalar type, bound by KERNELS below)


def _fold_template(x, part, A, B, C, fold, chunk, nk, rows):
    # x: (A, B*C) contiguous; part: (A, nk, C). Unit u: rows [a0, a1) of A, chunk kc of B.
    W = C * fold
    nab = (A + rows - 1) // rows
    for u in prange(nab * nk):
        ab = u // nk
        kc = u - ab * nk
        a0 = ab * rows
        a1 = min(a0 + rows, A)
        b0 = kc * chunk
        b1 = min(b0 + chunk, B)
        nrow = (b1 - b0) // fold  # full accumulator rows of W elements
        acc = np.empty(W, T)
        tot = np.empty(W, T)
        for a in range(a0, a1):
            seg = x[a, b0 * C : b1 * C]
            for j in range(W):
                tot[j] = T(0)
            r = min(CASCADE, nrow)  # the first block goes straight into tot
            for q in range(r):
                s = seg[q * W : (q + 1) * W]
                for j in range(W):
                    tot[j] += s[j]
            while r < nrow:
                rr = min(r + CASCADE, nrow)
                for j in range(W):
                    acc[j] = T(0)
                for q in range(r, rr):
                    s = seg[q * W : (q + 1) * W]
                    for j in range(W):
                        acc[j] += s[j]
                for j in range(W):
                    tot[j] += acc[j]
                r = rr
            rem = seg[nrow * W :]  # fewer than `fold` rows left: lane j is still column j % C
            for j in range(rem.size):
                tot[j] += rem[j]
            pr = part[a, kc]
            for c in range(C):
                v = tot[c]
                for f in range(1, fold):
                    v += tot[f * C + c]
                pr[c] = v


def _cols_template(x, part, A, B, C, chunk, nk):
    # x: (A, B, C) contiguous with C >= LANES; part: (A, nk, C). Unit u: (a, chunk kc, column tile t).
    nt = (C + TILE - 1) // TILE
    per_a = nk * nt
    for u in prange(A * per_a):
        a = u // per_a
        v = u - a * per_a
        kc = v // nt
        t = v - kc * nt
        c0 = t * TILE
        c1 = min(c0 + TILE, C)
        w = c1 - c0
        b0 = kc * chunk
        b1 = min(b0 + chunk, B)
        acc = np.empty(w, T)
        tot = np.empty(w, T)
        for i in range(w):
            tot[i] = T(0)
        b = min(b0 + CASCADE, b1)  # the first block goes straight into tot
        for q in range(b0, b):
            row = x[a, q, c0:c1]
            for i in range(w):
                tot[i] += row[i]
        while b < b1:
            bb = min(b + CASCADE, b1)
            for i in range(w):
                acc[i] = T(0)
            for q in range(b, bb):
                row = x[a, q, c0:c1]
                for i in range(w):
                    acc[i] += row[i]
            for i in range(w):
                tot[i] += acc[i]
            b = bb
        pr = part[a, kc, c0:c1]
        for i in range(w):
            pr[i] = tot[i]


def _combine_template(part, out, A, nk, C):
    # out[a, c] = part[a, 0, c] + part[a, 1, c] + ... in chunk order (parallel over outputs only).
    nt = (C + TILE - 1) // TILE
    for u in prange(A * nt):
        a = u // nt
        t = u - a * nt
        c0 = t * TILE
        c1 = min(c0 + TILE, C)
        o = out[a, c0:c1]
        p0 = part[a, 0, c0:c1]
        for i in range(o.size):
            o[i] = p0[i]
        for kc in range(1, nk):
            pk = part[a, kc, c0:c1]
            for i in range(o.size):
                o[i] += pk[i]


_TEMPLATES = {"fold": _fold_template, "cols": _cols_template, "combine": _combine_template}
KERNELS = KernelSet(
    "reduce", _TEMPLATES, consts=dict(CASCADE=CASCADE), bind=lambda dt, which, v: {"TILE": tile_columns(dt.itemsize)}
)


# ---------------------------------------------------------------------------------------------
# entry points


def _run(kind, dtype, size, *args):
    KERNELS.run(kind, dtype, _dispatch.parallel_backend(dtype, size, _threads.get_num_threads()), *args)


def sum_pass(x3):
    """Sum a C-contiguous ``(A, B, C)`` array over axis 1; returns a new ``(A, C)`` array."""
    A, B, C = x3.shape
    out = np.empty((A, C), x3.dtype)
    if out.size == 0:
        return out
    if B == 0:
        out[...] = 0
        return out
    kind, fold, chunk, nk, rows = pass_plan(A, B, C, x3.dtype.itemsize)
    part = out.reshape(A, 1, C) if nk == 1 else np.empty((A, nk, C), x3.dtype)
    if kind == "fold":
        _run("fold", x3.dtype, x3.size, x3.reshape(A, B * C), part, A, B, C, fold, chunk, nk, rows)
    else:
        _run("cols", x3.dtype, x3.size, x3, part, A, B, C, chunk, nk)
    if nk > 1:
        _run("combine", x3.dtype, part.size, part, out, A, nk, C)
    return out


def sum_to_shape(x, shape):
    """Sum ``x`` over the axes along which ``shape`` broadcasts to ``x.shape``; result of ``shape``.

    ``x``: a float32/float64 ndarray (any layout; copied to C order if needed). ``shape`` follows
    NumPy broadcasting (it may have fewer dims than ``x``). The sum is in ``x``'s dtype, with a
    fixed order that does not depend on the thread count (see the module docstring).

    When no axis is summed (``x.size`` equals the target's size) the result is ``x.reshape(shape)``,
    a view of ``x``: callers that hand it out decide whether to copy or protect it.
    """
    shape = tuple(int(s) for s in shape)
    passes = reduce_passes(x.shape, shape)
    if not passes:
        return x.reshape(shape)
    if x.size == 0:
        return np.zeros(shape, x.dtype)
    cur = np.ascontiguousarray(x)
    if not cur.dtype.isnative:
        cur = cur.astype(cur.dtype.newbyteorder("="))
    for A, B, C in passes:
        cur = sum_pass(cur.reshape(A, B, C))
    return cur.reshape(shape)


def explain(in_shape, shape, dtype="float32"):
    """The passes, their plans and backends for ``sum_to_shape`` of ``in_shape`` to ``shape``."""
    out = []
    for A, B, C in reduce_passes(in_shape, shape):
        kind, fold, chunk, nk, rows = pass_plan(A, B, C, np.dtype(dtype).itemsize)
        be = _dispatch.parallel_backend(dtype, A * B * C, _threads.get_num_threads())
        out.append(
            dict(view=(A, B, C), kernel=f"reduce_{kind}_{_jit.SUFFIX[np.dtype(dtype)]}_{be}", backend=be,
                 fold=fold, chunk=chunk, chunks=nk, rows_per_unit=rows)
        )
    return out
