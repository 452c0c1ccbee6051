"""A register tile for Numba kernels: a small GEMM micro-kernel in explicit vectors (attention's
tiled path).

``gemm_template`` (float32; bound: ``T``, ``NR``) computes ``C = A @ B`` for ``A`` (M, K) of any
layout (a transposed view works: it is read as broadcast scalars, 4 rows at a time) and ``B`` (K,
ncol), ``C`` (M, ncol) given as flat C-contiguous arrays: ``B[k, jb * NR + o] = B[boff + jb *
pstride + k * ldb + o]`` (row-major: ``pstride = NR``, ``ldb`` the row length; packed in NR-wide
panels: ``ldb = NR``, ``pstride = K * NR``), ``C[i, j] = C[coff + i * ldc + j]``, ``ncol`` a
multiple of NR. Packed panels matter when rows are long: a (64 x 64) panel of a row-major (64,
1024) K^T has rows 4 KiB apart, which map to the same L1 sets (see ``attention._tiled``). Flat
operands, because a sliced 2-D view has Numba layout "A" (runtime inner stride), whose row loads
and stores do not vectorize (measured 5x slower; commit eff876d). ``mode`` 0 stores, 1
accumulates (``C += A @ B``), 2 stores times a per-row scale ``rs[i]``.

The 4 x NR accumulator tile is 16 ``_simd.Vec`` values (SSA: LLVM keeps them in zmm registers);
per k: 4 vector loads of B, 4 broadcast A elements, 16 explicit FMAs (``_simd.vfma``). Every C
element is a sum over k = 0..K-1 in increasing order, so the result depends on the shapes only
(never on threads). Single thread, float32: (256 x 64) @ (64 x 1024) packed 113-114 GFLOP/s,
(256 x 1024) @ (1024 x 64) 114-117. Design note: a loop over ``stack_tile`` with FMA contraction
(bitwise the same results) ran 84-85 and 111-114 GFLOP/s there; the explicit vectors drop its per-k
slice bounds arithmetic and its scalar-load-then-splat (broadcasts come straight from memory;
commit 8c2d35d).
"""
import numpy as np

from . import _dispatch, _jit
from ._jit import inline
from ._simd import nlanes, vadd, vfma, vload, vmul, vsplat, vstore
from ._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

MR = _dispatch.TILE_MR  # the register tile: MR rows x NR columns (NR = 4 vectors of 16 float32)
NR = _dispatch.TILE_NR


@inline
def _fma_row(x, b0, b1, b2, b3, a0, a1, a2, a3):
    """One tile row's update for one k: ``a_j += x * b_j`` (explicit FMAs)."""
    return vfma(x, b0, a0), vfma(x, b1, a1), vfma(x, b2, a2), vfma(x, b3, a3)


@inline
def _put(C, cb, vl, a0, a1, a2, a3, mode, f):
    """Row epilogue: ``C[cb : cb + 4 * vl]`` = (mode 0) / += (mode 1) / = ``f`` * (mode 2) the row's
    four accumulator vectors."""
    if mode == 1:
        vstore(C, cb, vadd(vload(C, cb), a0))
        vstore(C, cb + vl, vadd(vload(C, cb + vl), a1))
        vstore(C, cb + 2 * vl, vadd(vload(C, cb + 2 * vl), a2))
        vstore(C, cb + 3 * vl, vadd(vload(C, cb + 3 * vl), a3))
    elif mode == 2:
        fv = vsplat(C, f)
        vstore(C, cb, vmul(a0, fv))
        vstore(C, cb + vl, vmul(a1, fv))
        vstore(C, cb + 2 * vl, vmul(a2, fv))
        vstore(C, cb + 3 * vl, vmul(a3, fv))
    else:
        vstore(C, cb, a0)
        vstore(C, cb + vl, a1)
        vstore(C, cb + 2 * vl, a2)
        vstore(C, cb + 3 * vl, a3)


def gemm_template(A, B, boff, ldb, pstride, ncol, C, coff, ldc, mode, rs):
    M, K = A.shape
    vl = nlanes(B)  # NR == 4 * vl (checked in gemm())
    nm = M // 4
    z = vsplat(B, 0.0)
    for jb in range(ncol // NR):
        j0 = jb * NR
        pb = boff + jb * pstride
        for g in range(nm):
            i0 = g * 4
            c00, c01, c02, c03 = z, z, z, z
            c10, c11, c12, c13 = z, z, z, z
            c20, c21, c22, c23 = z, z, z, z
            c30, c31, c32, c33 = z, z, z, z
            for k in range(K):
                bb = pb + k * ldb
                b0 = vload(B, bb)
                b1 = vload(B, bb + vl)
                b2 = vload(B, bb + 2 * vl)
                b3 = vload(B, bb + 3 * vl)
                c00, c01, c02, c03 = _fma_row(vsplat(B, A[i0, k]), b0, b1, b2, b3, c00, c01, c02, c03)
                c10, c11, c12, c13 = _fma_row(vsplat(B, A[i0 + 1, k]), b0, b1, b2, b3, c10, c11, c12, c13)
                c20, c21, c22, c23 = _fma_row(vsplat(B, A[i0 + 2, k]), b0, b1, b2, b3, c20, c21, c22, c23)
                c30, c31, c32, c33 = _fma_row(vsplat(B, A[i0 + 3, k]), b0, b1, b2, b3, c30, c31, c32, c33)
            cb = coff + i0 * ldc + j0
            _put(C, cb, vl, c00, c01, c02, c03, mode, rs[i0] if mode == 2 else T(1))
            _put(C, cb + ldc, vl, c10, c11, c12, c13, mode, rs[i0 + 1] if mode == 2 else T(1))
            _put(C, cb + 2 * ldc, vl, c20, c21, c22, c23, mode, rs[i0 + 2] if mode == 2 else T(1))
            _put(C, cb + 3 * ldc, vl, c30, c31, c32, c33, mode, rs[i0 + 3] if mode == 2 else T(1))
        for i in range(nm * 4, M):  # the last M % 4 rows, one at a time (same order per element)
            c00, c01, c02, c03 = z, z, z, z
            for k in range(K):
                bb = pb + k * ldb
                c00, c01, c02, c03 = _fma_row(vsplat(B, A[i, k]), vload(B, bb), vload(B, bb + vl), vload(B, bb + 2 * vl),
                                              vload(B, bb + 3 * vl), c00, c01, c02, c03)
            _put(C, coff + i * ldc + j0, vl, c00, c01, c02, c03, mode, rs[i] if mode == 2 else T(1))


# no FMA contraction needed (the FMAs are explicit), so the default fastmath flags
KERNELS = KernelSet(
    "tile", {"gemm": gemm_template}, consts=dict(NR=NR), kernel_name=lambda which, dt, be, v: f"tile_gemm_{_jit.SUFFIX[dt]}"
)


def gemm(dtype):
    """The micro-kernel for ``dtype`` (compiled and cached on first call)."""
    dt = np.dtype(dtype)
    if dt != np.float32:
        raise TypeError(f"fastops._tile.gemm: float32 only (4 vectors of 16 lanes per tile row), got {dt}")
    return KERNELS.kernel("gemm", dt)
