"""fastops' matrix-product engine: ``C = A @ B`` in Numba, float32 and float64, on fastops' threads.

Every product of the library can run here instead of NumPy's BLAS, so one thread pool (Numba's)
does all the work of an op and ``fastops.threads(n)`` bounds it.

Layout (Goto/BLIS style, written for this project):

* **Packing.** ``A`` (M, K) is copied into row panels of ``MR`` rows, k-major (``Ap[panel, k, r]``,
  zero rows past M); ``B`` (K, N) into column panels of ``NR`` columns, k-major (``Bp[panel, k,
  o]``, zero columns past N). Packing reads any strides (a transposed view costs nothing extra) and
  makes the micro-kernel's loads contiguous. ``pack_b`` packs a ``B`` once for many products (a
  layer's weight over the time steps of a recurrent net).
* **Micro-kernel.** An ``MR x NR`` tile = 8 rows x 2 vectors (``NR`` = 32 float32 / 16 float64
  lanes): 16 accumulators held in registers (``_simd.Vec`` SSA values), per k two vector loads of
  B, eight broadcasts of A, sixteen explicit FMAs. 8x2 has the smallest edge waste per tile; the
  other shapes tried (4x4, 6x4, 12x2, 8x3 vectors) ran the same 114-117 GFLOP/s float32 / 57-58
  float64 per core with the operands in cache (a script removed since; commit c977959).
* **Blocking.** K runs in chunks of ``KC`` (a function of the dtype only), so every element of C is
  the sum of its chunk sums in increasing k, each chunk summed in increasing k in one accumulator:
  the result depends on the shapes only, never on the thread count or on how the work is split.
  Within a chunk, one B micro-panel (``KC x NR``, 32 KiB) stays in L1-L2 while the kernel walks the
  row panels of a task's block.
* **Tasks.** The parallel loop runs over (batch entry, row block, column block) tasks, each
  writing its own block of C; block sizes only change which thread computes an element, not how.
* **Epilogue** (on the last K chunk, while the tile is in registers): ``beta`` accumulation into
  C and a bias per column (``linear``) or per row. An activation of ``_epilogue`` follows as one
  pass of its vectorized kernel over C (see ``gemm``).

Edge tiles (M or N not multiples of the tile) are computed in full on the zero-padded panels and
only their valid part is written.
"""
import math

import numpy as np
from numba import prange

from . import _dispatch, _jit, _threads
from ._simd import nlanes, vadd, vfma, vload, vsplat, vstore
from ._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = NR = UNBOUND

MR = 8  # rows per micro-tile
NV = 2  # vectors per micro-tile row
KC = 256  # K chunk, both dtypes (part of the summation order: never a function of the threads)


def nr(dtype):
    """Columns per micro-tile: ``NV`` vectors of 64 bytes (32 float32, 16 float64)."""
    return NV * 64 // np.dtype(dtype).itemsize


# ---------------------------------------------------------------- packing


def pack_b_template(src, off, s0, s1, s2, nb, K, N, Bp, npn, kinner):
    """``Bp[((b * npn + p) * K + k) * NR + o] = B[b, k, p * NR + o]`` (0 past N), where
    ``B[b, k, j] = src[off + b * s0 + k * s1 + j * s2]``: every panel over the whole K (an
    operand packed once for several products, ``pack_b``)."""
    vl = nlanes(Bp)
    for t in prange(nb * npn):
        b = t // npn
        j0 = (t - b * npn) * NR
        _pack_b_panel(src, off + b * s0 + j0 * s2, s1, s2, min(NR, N - j0), K, kinner, Bp, t * K * NR, vl, NR)


# ---------------------------------------------------------------- micro-kernel


@_jit.inline
def _tile(Ap, a0, Bp, b0, kc, vl):
    """The 8 x 2-vector tile ``sum_k Ap[a0 + k * 8 + r] * Bp[b0 + k * 2 vl + ...]`` for k < kc."""
    z = vsplat(Bp, 0.0)
    c00, c01, c10, c11, c20, c21, c30, c31 = z, z, z, z, z, z, z, z
    c40, c41, c50, c51, c60, c61, c70, c71 = z, z, z, z, z, z, z, z
    for k in range(kc):
        bb = b0 + k * 2 * vl
        x0 = vload(Bp, bb)
        x1 = vload(Bp, bb + vl)
        ab = a0 + k * 8
        a = vsplat(Bp, Ap[ab])
        c00 = vfma(a, x0, c00)
        c01 = vfma(a, x1, c01)
        a = vsplat(Bp, Ap[ab + 1])
        c10 = vfma(a, x0, c10)
        c11 = vfma(a, x1, c11)
        a = vsplat(Bp, Ap[ab + 2])
        c20 = vfma(a, x0, c20)
        c21 = vfma(a, x1, c21)
        a = vsplat(Bp, Ap[ab + 3])
        c30 = vfma(a, x0, c30)
        c31 = vfma(a, x1, c31)
        a = vsplat(Bp, Ap[ab + 4])
        c40 = vfma(a, x0, c40)
        c41 = vfma(a, x1, c41)
        a = vsplat(Bp, Ap[ab + 5])
        c50 = vfma(a, x0, c50)
        c51 = vfma(a, x1, c51)
        a = vsplat(Bp, Ap[ab + 6])
        c60 = vfma(a, x0, c60)
        c61 = vfma(a, x1, c61)
        a = vsplat(Bp, Ap[ab + 7])
        c70 = vfma(a, x0, c70)
        c71 = vfma(a, x1, c71)
    return (c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71)


@_jit.inline
def _put_row(C, p, v0, v1, vl, add, bc, j, hasrb, rbv):
    """Row ``p`` of a full tile: ``C[p : p + 2 vl]`` = (``add``: C +) v (+ column bias ``bc[j:]``
    when ``bc`` is not empty) (+ row bias ``rbv`` when ``hasrb``)."""
    if add:
        v0 = vadd(vload(C, p), v0)
        v1 = vadd(vload(C, p + vl), v1)
    if bc.size > 0:
        v0 = vadd(v0, vload(bc, j))
        v1 = vadd(v1, vload(bc, j + vl))
    if hasrb:
        s = vsplat(C, rbv)
        v0 = vadd(v0, s)
        v1 = vadd(v1, s)
    vstore(C, p, v0)
    vstore(C, p + vl, v1)


# ---------------------------------------------------------------- the product


@_jit.inline
def _pack_a_panel(src, a0, s1, s2, h, kc, kinner, dst, d0):
    """One A panel of a task's block: ``dst[d0 + k * MR + r] = src[a0 + r * s1 + k * s2]`` for
    r < h, k < kc (0 for rows h..MR-1)."""
    if kinner:
        for r in range(h):
            for k in range(kc):
                dst[d0 + k * MR + r] = src[a0 + r * s1 + k * s2]
        for r in range(h, MR):
            for k in range(kc):
                dst[d0 + k * MR + r] = 0
    else:
        for k in range(kc):
            for r in range(h):
                dst[d0 + k * MR + r] = src[a0 + r * s1 + k * s2]
            for r in range(h, MR):
                dst[d0 + k * MR + r] = 0


@_jit.inline
def _pack_b_panel(src, b0, s1, s2, w, kc, kinner, dst, d0, vl, NR):
    """One B panel of a task's block: ``dst[d0 + k * NR + o] = src[b0 + k * s1 + o * s2]`` for
    o < w, k < kc (0 for columns w..NR-1); a row-major full panel a vector at a time."""
    if kinner:
        for o in range(w):
            for k in range(kc):
                dst[d0 + k * NR + o] = src[b0 + k * s1 + o * s2]
        for o in range(w, NR):
            for k in range(kc):
                dst[d0 + k * NR + o] = 0
    elif s2 == 1 and w == NR:
        for k in range(kc):
            q = b0 + k * s1
            for v in range(NR // vl):
                vstore(dst, d0 + k * NR + v * vl, vload(src, q + v * vl))
    else:
        for k in range(kc):
            for o in range(w):
                dst[d0 + k * NR + o] = src[b0 + k * s1 + o * s2]
            for o in range(w, NR):
                dst[d0 + k * NR + o] = 0


def gemm_template(asrc, aoff0, as0, as1, as2, akin, bsrc, boff0, bs0, bs1, bs2, bkin, Bp, npn_p,
                  ia, ib, M, N, K, mcp, ncp, C, beta1, bias_c, bias_r):
    """``C[t] (=|+=) A[ia[t]] @ B[ib[t]]`` (+ bias) for every batch entry t.

    ``A[b, i, k] = asrc[aoff0 + b * as0 + i * as1 + k * as2]``, B likewise from ``bsrc`` (``akin``
    / ``bkin``: k is the operand's smaller stride), or, when ``Bp`` is not empty, B prepacked by
    ``pack_b`` (``npn_p`` panels per batch entry). Each task packs the A and B panels of its block
    one K chunk at a time into its own buffers (an A panel is packed once per column block of
    its rows: a pass over A per NC_PANELS * NR columns of C). ``mcp`` / ``ncp``: row / column
    panels per task block. ``beta1``: accumulate into C. ``bias_c`` (N, or empty), ``bias_r`` (M,
    or empty)."""
    vl = nlanes(C)
    kcl = KC
    nkc = (K + kcl - 1) // kcl
    npm = (M + MR - 1) // MR
    npn = (N + NR - 1) // NR
    nbm = (npm + mcp - 1) // mcp
    nbn = (npn + ncp - 1) // ncp
    nt = ia.size
    ntask = nt * nbm * nbn
    prepacked = Bp.size > 0
    z0 = T(0)
    for task in prange(ntask):
        t = task // (nbm * nbn)
        rem = task - t * nbm * nbn
        bm = rem // nbn
        bn = rem - bm * nbn
        abase = aoff0 + ia[t] * as0
        bbase = boff0 + ib[t] * bs0
        cbase = t * M * N
        scratch = np.empty(MR * NR, C.dtype)
        p0m, p1m = bm * mcp, min(npm, (bm + 1) * mcp)
        p0n, p1n = bn * ncp, min(npn, (bn + 1) * ncp)
        kcb = min(kcl, K)  # per-task packing buffers: one K chunk of the block's A and B panels
        apk = np.empty((p1m - p0m) * MR * kcb, C.dtype)
        bpk = np.empty(1 if prepacked else (p1n - p0n) * NR * kcb, C.dtype)
        for q in range(nkc):
            k0 = q * kcl
            kc = min(kcl, K - k0)
            add = beta1 or q > 0
            last = q == nkc - 1
            for pm in range(p0m, p1m):
                i0 = pm * MR
                _pack_a_panel(asrc, abase + i0 * as1 + k0 * as2, as1, as2, min(MR, M - i0), kc, akin,
                              apk, (pm - p0m) * kc * MR)
            if not prepacked:
                for pn in range(p0n, p1n):
                    j0 = pn * NR
                    _pack_b_panel(bsrc, bbase + k0 * bs1 + j0 * bs2, bs1, bs2, min(NR, N - j0), kc, bkin,
                                  bpk, (pn - p0n) * kc * NR, vl, NR)
            for pn in range(p0n, p1n):
                j0 = pn * NR
                nrw = min(NR, N - j0)
                for pm in range(p0m, p1m):
                    i0 = pm * MR
                    mrw = min(MR, M - i0)
                    aoff = (pm - p0m) * kc * MR
                    if prepacked:
                        c = _tile(apk, aoff, Bp, (ib[t] * npn_p * K + pn * K + k0) * NR, kc, vl)
                    else:
                        c = _tile(apk, aoff, bpk, (pn - p0n) * kc * NR, kc, vl)
                    if mrw == MR and nrw == NR:
                        bc = bias_c if last else bias_c[:0]
                        hr = last and bias_r.size > 0
                        cb = cbase + i0 * N + j0
                        _put_row(C, cb + 0 * N, c[0], c[1], vl, add, bc, j0, hr, bias_r[i0 + 0] if hr else z0)
                        _put_row(C, cb + 1 * N, c[2], c[3], vl, add, bc, j0, hr, bias_r[i0 + 1] if hr else z0)
                        _put_row(C, cb + 2 * N, c[4], c[5], vl, add, bc, j0, hr, bias_r[i0 + 2] if hr else z0)
                        _put_row(C, cb + 3 * N, c[6], c[7], vl, add, bc, j0, hr, bias_r[i0 + 3] if hr else z0)
                        _put_row(C, cb + 4 * N, c[8], c[9], vl, add, bc, j0, hr, bias_r[i0 + 4] if hr else z0)
                        _put_row(C, cb + 5 * N, c[10], c[11], vl, add, bc, j0, hr, bias_r[i0 + 5] if hr else z0)
                        _put_row(C, cb + 6 * N, c[12], c[13], vl, add, bc, j0, hr, bias_r[i0 + 6] if hr else z0)
                        _put_row(C, cb + 7 * N, c[14], c[15], vl, add, bc, j0, hr, bias_r[i0 + 7] if hr else z0)
                    else:
                        vstore(scratch, 0 * NR, c[0])
                        vstore(scratch, 0 * NR + vl, c[1])
                        vstore(scratch, 1 * NR, c[2])
                        vstore(scratch, 1 * NR + vl, c[3])
                        vstore(scratch, 2 * NR, c[4])
                        vstore(scratch, 2 * NR + vl, c[5])
                        vstore(scratch, 3 * NR, c[6])
                        vstore(scratch, 3 * NR + vl, c[7])
                        vstore(scratch, 4 * NR, c[8])
                        vstore(scratch, 4 * NR + vl, c[9])
                        vstore(scratch, 5 * NR, c[10])
                        vstore(scratch, 5 * NR + vl, c[11])
                        vstore(scratch, 6 * NR, c[12])
                        vstore(scratch, 6 * NR + vl, c[13])
                        vstore(scratch, 7 * NR, c[14])
                        vstore(scratch, 7 * NR + vl, c[15])
                        for r in range(mrw):
                            row = cbase + (i0 + r) * N + j0
                            for o in range(nrw):
                                v = scratch[r * NR + o]
                                if add:
                                    v = C[row + o] + v
                                if last:
                                    if bias_c.size > 0:
                                        v = v + bias_c[j0 + o]
                                    if bias_r.size > 0:
                                        v = v + bias_r[i0 + r]
                                C[row + o] = v


# ---------------------------------------------------------------- Python side

KERNELS = KernelSet(
    "gemm", {"gemm": gemm_template, "pack_b": pack_b_template}, consts=dict(MR=MR, KC=KC),
    bind=lambda dt, which, v: {"NR": nr(dt)},
    kernel_name=lambda which, dt, be, v: (
        f"{'gemm' if which == 'gemm' else 'gemm_pack_b'}_{_jit.SUFFIX[dt]}_{'par' if be == 'parallel' else 'ser'}"
    ),
)


def backend(M, N, K, batch=1, threads=None, dtype=np.float32):
    """``"serial"`` or ``"parallel"``: the build a product of these sizes runs (``_dispatch``)."""
    n = _threads.get_num_threads() if threads is None else threads
    return _dispatch.parallel_backend(dtype, batch * M * N * K, n, "gemm")


def _run(which, dtype, be, *args):
    return KERNELS.run(which, dtype, be, *args)




class PackedB:
    """A right operand ``B`` (..., K, N) packed once (``pack_b``) for several products."""

    __slots__ = ("data", "batch", "K", "N", "dtype", "npn")

    def __init__(self, data, batch, K, N, dtype, npn):
        self.data, self.batch, self.K, self.N, self.dtype, self.npn = data, batch, K, N, dtype, npn


def _flat(x):
    """``x`` (..., R, C) as ``(src, off, s0, s1, s2, nb)``: a read-only 1-D array over x's memory
    and element strides with ``x[b, r, c] = src[off + b * s0 + r * s1 + c * s2]`` (batch dims
    collapsed). Always the same Numba type (1-D, C, read-only): one compiled signature per dtype."""
    if x.ndim != 3:
        try:
            x = x.reshape((-1,) + x.shape[-2:])  # a view where NumPy can make one
        except ValueError:
            x = np.ascontiguousarray(x).reshape((-1,) + x.shape[-2:])
    isz = x.itemsize
    if any(s < 0 or s % isz for s in x.strides):
        x = np.ascontiguousarray(x)
    if x.size == 0:
        return np.empty(0, x.dtype), 0, 0, 0, 0, x.shape[0]
    span = 1 + sum((n - 1) * (s // isz) for n, s in zip(x.shape, x.strides))
    src = np.lib.stride_tricks.as_strided(x, shape=(span,), strides=(isz,), writeable=False)
    s0, s1, s2 = (s // isz for s in x.strides)
    return src, 0, s0, s1, s2, x.shape[0]


def pack_b(b, be=None):
    """Pack ``b`` (..., K, N) (any strides) for ``gemm``."""
    dt = b.dtype
    K, N = b.shape[-2:]
    src, off, s0, s1, s2, nb = _flat(b)
    npn = -(-N // nr(dt))
    data = np.empty(nb * npn * K * nr(dt), dt)
    if data.size:
        be = _dispatch.gemm_pack_backend(dt, data.size, nb * K * N, _threads.get_num_threads(), be)
        _run("pack_b", dt, be, src, off, s0, s1, s2, nb, K, N, data, npn, s1 < s2)
    return PackedB(data, b.shape[:-2], K, N, dt, npn)


def _batch_maps(a_batch, b_batch):
    out = tuple(np.broadcast_shapes(a_batch, b_batch))
    na, nb = math.prod(a_batch), math.prod(b_batch)
    ia = _jit.broadcast_c(np.arange(na, dtype=np.intp).reshape(a_batch), out).ravel()
    ib = _jit.broadcast_c(np.arange(nb, dtype=np.intp).reshape(b_batch), out).ravel()
    return out, ia, ib


def gemm(a, b, out=None, *, accumulate=False, bias=None, row_bias=None, epi=None, backend_=None):
    """``a @ b`` (batch dims broadcast, NumPy rules) into a new C-contiguous array or into ``out``.

    ``a`` (..., M, K) and ``b`` (..., K, N) of one float dtype, any strides; ``b`` may be a
    ``PackedB``. ``out`` (batch + (M, N), C-contiguous) receives ``out + a @ b`` with
    ``accumulate``. ``bias`` (N,) is added to every row, ``row_bias`` (M,) to every column, then
    the activation ``epi`` (an ``_epilogue.Epilogue``) is applied. No checks beyond shapes: the ops
    validate their arguments."""
    dt = a.dtype
    M, K = a.shape[-2:]
    if isinstance(b, PackedB):
        pb = b
    else:
        pb = None
    Kb, N = (pb.K, pb.N) if pb is not None else b.shape[-2:]
    if Kb != K:
        raise ValueError(f"gemm: inner dims differ: {a.shape} @ {b.shape if pb is None else (K, N)}")
    b_batch = pb.batch if pb is not None else b.shape[:-2]
    batch, ia, ib = _batch_maps(a.shape[:-2], b_batch)
    nt = ia.size
    given = out is not None
    if out is None:
        out = np.empty(batch + (M, N), dt)
    elif out.shape != batch + (M, N) or not out.flags.c_contiguous or out.dtype != dt:
        raise ValueError(f"gemm: out must be C-contiguous {batch + (M, N)} {dt}, got {out.shape} {out.dtype}")
    if out.size == 0:
        return out
    if K == 0:  # no products: the epilogue alone
        if not accumulate:
            out[...] = 0
        if bias is not None:
            out += bias
        if row_bias is not None:
            out += row_bias[:, None]
        return _activate(out, epi, given)
    be = backend_ or backend(M, N, K, nt, dtype=dt)
    empty = np.empty(0, dt)
    asrc, aoff, as0, as1, as2, _ = _flat(a)
    if pb is None:
        bsrc, boff, bs0, bs1, bs2, _ = _flat(b)
        bp, npn_p = empty, 0
    else:
        bsrc, boff, bs0, bs1, bs2 = _EMPTY_RO[dt], 0, 0, 0, 0
        bp, npn_p = pb.data, pb.npn
    mcp, ncp = _blocks(nt, -(-M // MR), -(-N // nr(dt)), be)
    bc = empty if bias is None else np.ascontiguousarray(bias, dt)
    br = empty if row_bias is None else np.ascontiguousarray(row_bias, dt)
    _run("gemm", dt, be, asrc, aoff, as0, as1, as2, as2 < as1, bsrc, boff, bs0, bs1, bs2, bs1 < bs2, bp, npn_p,
         ia, ib, M, N, K, mcp, ncp, out.reshape(-1), bool(accumulate), bc, br)
    return _activate(out, epi, given)


def _activate(out, epi, given):
    """``out`` with the activation ``epi`` applied (into ``out`` itself where the caller gave it).

    The activation is a separate pass of its vectorized pointwise kernel over C (still in L2/L3
    for the products that fuse one), written to a new array. It also leaves one compiled GEMM per
    dtype and build instead of one per activation, and reuses the activation op's own kernel.
    Design note, linear 256x1024 -> 1024 float32, gelu, 2 threads, the time of
    ``fastops.linear(x, w, b, activation=...)`` minus that of ``fastops.linear(x, w, b)``: 0.19 ms
    this way against 2.5-3 ms applied element by element inside the GEMM after each tile's last K
    chunk, and 2.8 ms through the same pointwise kernel in place (input and output the same memory:
    LLVM's run-time alias check sends the loop to its scalar version); commit 03717ad."""
    if epi is None or epi.identity:
        return out
    from . import _epilogue

    y = _epilogue.activated(out, epi)
    if not given:
        return y
    out[...] = y
    return out


def _ro_empty(dt):
    x = np.empty(0, dt)
    x.flags.writeable = False
    return x


_EMPTY_RO = {np.dtype(np.float32): _ro_empty(np.float32), np.dtype(np.float64): _ro_empty(np.float64)}


MC_PANELS = 32  # row panels per task block (256 rows): an A block of 256 x KC, 256 KiB float32 (L2)
# column panels per task block (512 float32 columns): A is repacked once per column block, so a
# wider block packs A less often. 1024^3 float32, 2 threads: 128-156 GFLOP/s (two runs; ``python -m
# asv_benches.engine_bars``, row "gemm 1024^3, 2 thread(s)"). Design note: 4 panels per block ran
# 105-126 GFLOP/s there, and 256x1024 @ 1024x1024 93-121 against 106-153 (commit 2e4cfdf).
NC_PANELS = 16


def task_workspace_bytes(dtype):
    """The most memory one running task of ``gemm`` holds (its A and B packing buffers and edge
    tile): a constant per thread, independent of the problem size."""
    dt = np.dtype(dtype)
    return (MC_PANELS * MR * KC + NC_PANELS * nr(dt) * KC + MR * nr(dt)) * dt.itemsize


def _blocks(nt, npm, npn, be):
    """Task block sizes in panels: at most MC_PANELS x NC_PANELS; smaller where that leaves fewer than 4 tasks
    per thread (the split changes which thread computes an element, never its value)."""
    mcp, ncp = min(MC_PANELS, npm), min(NC_PANELS, npn)
    if be == "parallel":
        want = 4 * _threads.get_num_threads()
        while nt * (-(-npm // mcp)) * (-(-npn // ncp)) < want and (mcp > 1 or ncp > 1):
            if ncp >= mcp and ncp > 1:
                ncp = -(-ncp // 2)
            else:
                mcp = -(-mcp // 2)
    return mcp, ncp
