"""Explicit-vector micro-kernels of the attention kernels (register accumulators).

Why: the plain loops "for e: for c: s[c] += q[e] * kt[e, c]" did not vectorize here: the arrays may
alias (numba#3750) and the accumulator row is reloaded and stored for every e. Design note, float32,
1 thread, a 64x64 by 64x128 block product: such loops ran 7.8 GFLOP/s, 4 rows at a time 8.2 GFLOP/s,
a 16-wide local accumulator array 1.5 GFLOP/s (commit fda366d). These helpers use ``fastops._simd``'
``Vec`` (one AVX-512 register) with the accumulators as SSA values that LLVM keeps in registers, and
``_simd.vstore`` for the results. Products are rounded then added (no FMA, as the rest of fastops),
and every sum runs in a fixed order: results do not depend on the thread count.
"""
from .._jit import inline
from .._simd import nlanes, vadd, vload, vmul, vsplat, vstore


@inline
def block_dot(mat, x, out):
    """``out[c] = sum_e x[e] * mat[e, c]`` for every column ``c`` of the 2-D C-contiguous ``mat``
    (width a multiple of 8 lanes), summed in increasing ``e``. Eight vectors of columns at a time
    share each broadcast ``x[e]`` (8 independent add chains hide the add latency): 75 GFLOP/s
    against 65 GFLOP/s with 4 vectors at a time (float32, 1 thread, 64 rows by a 64 x 128 block,
    best of 5, busy machine; commit b1e1a17)."""
    R, W = mat.shape
    vl = nlanes(out)
    for c0 in range(0, W, 8 * vl):
        a0 = vsplat(out, 0.0)
        a1, a2, a3, a4, a5, a6, a7 = a0, a0, a0, a0, a0, a0, a0
        for e in range(R):
            xe = vsplat(out, x[e])
            row = mat[e]
            a0 = vadd(a0, vmul(xe, vload(row, c0)))
            a1 = vadd(a1, vmul(xe, vload(row, c0 + vl)))
            a2 = vadd(a2, vmul(xe, vload(row, c0 + 2 * vl)))
            a3 = vadd(a3, vmul(xe, vload(row, c0 + 3 * vl)))
            a4 = vadd(a4, vmul(xe, vload(row, c0 + 4 * vl)))
            a5 = vadd(a5, vmul(xe, vload(row, c0 + 5 * vl)))
            a6 = vadd(a6, vmul(xe, vload(row, c0 + 6 * vl)))
            a7 = vadd(a7, vmul(xe, vload(row, c0 + 7 * vl)))
        vstore(out, c0, a0)
        vstore(out, c0 + vl, a1)
        vstore(out, c0 + 2 * vl, a2)
        vstore(out, c0 + 3 * vl, a3)
        vstore(out, c0 + 4 * vl, a4)
        vstore(out, c0 + 5 * vl, a5)
        vstore(out, c0 + 6 * vl, a6)
        vstore(out, c0 + 7 * vl, a7)


@inline
def rows_axpy(acc, w, src, j0, n):
    """``acc[d] += sum_{c < n} w[c] * src[j0 + c, d]`` (1-D ``acc``, 2-D C-contiguous ``src``), summed
    in increasing ``c`` per element. Vectors of ``d`` kept in registers across ``c``; the columns past
    the last whole vector in scalar code (same order)."""
    W = acc.size
    vl = nlanes(acc)
    d0 = 0
    while d0 + 4 * vl <= W:
        a0 = vload(acc, d0)
        a1 = vload(acc, d0 + vl)
        a2 = vload(acc, d0 + 2 * vl)
        a3 = vload(acc, d0 + 3 * vl)
        for c in range(n):
            wc = vsplat(acc, w[c])
            row = src[j0 + c]
            a0 = vadd(a0, vmul(wc, vload(row, d0)))
            a1 = vadd(a1, vmul(wc, vload(row, d0 + vl)))
            a2 = vadd(a2, vmul(wc, vload(row, d0 + 2 * vl)))
            a3 = vadd(a3, vmul(wc, vload(row, d0 + 3 * vl)))
        vstore(acc, d0, a0)
        vstore(acc, d0 + vl, a1)
        vstore(acc, d0 + 2 * vl, a2)
        vstore(acc, d0 + 3 * vl, a3)
        d0 += 4 * vl
    while d0 + vl <= W:
        a0 = vload(acc, d0)
        for c in range(n):
            a0 = vadd(a0, vmul(vsplat(acc, w[c]), vload(src[j0 + c], d0)))
        vstore(acc, d0, a0)
        d0 += vl
    for d in range(d0, W):
        t = acc[d]
        for c in range(n):
            t += w[c] * src[j0 + c, d]
        acc[d] = t


@inline
def axpy(acc, a, x):
    """``acc[:] += a * x[:]`` (1-D C-contiguous, same length)."""
    W = acc.size
    vl = nlanes(acc)
    av = vsplat(acc, a)
    d0 = 0
    while d0 + vl <= W:
        vstore(acc, d0, vadd(vload(acc, d0), vmul(av, vload(x, d0))))
        d0 += vl
    for d in range(d0, W):
        acc[d] += a * x[d]
