"""Register tiles for Numba kernels: a stack scratch tile LLVM keeps in registers, and a small
GEMM micro-kernel built on it (used by conv's blocked forward and attention's tiled path).

``stack_tile(T)`` is a pointer to an MR x NR (4 x 64) tile on the stack. Unlike an ``np.empty``
tile (NRT heap memory that LLVM must assume may alias the kernel's input arrays), a non-escaping
alloca lets LLVM keep the tile in registers across a reduction loop: 4 x 64 float32 accumulators
are 16 of the 32 zmm registers (float64 would need 32 and spill: float32 only).

``gemm_template`` (bound per dtype: ``T``) computes ``C = A @ B`` for ``A`` (M, K) of any layout (a
transposed view works: it is read as broadcast scalars, 4 rows at a time) and ``B`` (K, ncol), ``C``
(M, ncol) given as flat C-contiguous arrays: ``B[k, jb * NR + o] = B[boff + jb * pstride + k * ldb
+ o]`` (row-major: ``pstride = NR``, ``ldb`` the row length; packed in NR-wide panels: ``ldb = NR``,
``pstride = K * NR``), ``C[i, j] = C[coff + i * ldc + j]``, ``ncol`` a multiple of NR. Packed
panels matter when rows are long: a (64 x 64) panel of a row-major (64, 1024) K^T has rows 4 KiB
apart, which map to the same L1 sets (measured 69 -> see ``attention._tiled`` GFLOP/s). Flat
operands, because a sliced 2-D view has Numba layout "A" (runtime inner stride), whose row loads
and stores do not vectorize (measured: 5x slower). ``mode`` 0 stores, 1 accumulates
(``C += A @ B``), 2 stores times a per-row scale ``rs[i]``. Per k: 4 broadcast A elements times one contiguous NR-wide B vector =
16 FMAs for 4 vector loads; every C element is a sum over k = 0..K-1 in increasing order, so the
result depends on the shapes only (never on threads). FMA contraction is enabled for the kernels
built on it (``FASTMATH``): the NR-lane inner loop has no scalar remainder, so contraction cannot
differ between a vector body and a remainder. Measured single-thread float32 on the project
machine, against OpenBLAS sgemm on the same (256 x 64) @ (64 x 1024), (256 x 1024) @ (1024 x 64)
and (1024 x 256) @ (256 x 64) products: see ``attention._tiled``.
"""
import numpy as np
from numba import carray
from numba.core import cgutils, types
from numba.extending import intrinsic

from . import _config

MR = 4
NR = 64
FASTMATH = _config.FASTMATH | {"contract"}


@intrinsic
def stack_tile(typingctx, dtype):
    """Pointer to an MR * NR scratch tile on the stack (an LLVM alloca in the entry block of the
    compiled function, i.e. one per thread in a prange body)."""
    def impl(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type.dtype)
        return cgutils.alloca_once(builder, ty, size=MR * NR)

    return types.CPointer(dtype.dtype)(dtype), impl


def gemm_template(A, B, boff, ldb, pstride, ncol, C, coff, ldc, mode, rs):
    M, K = A.shape
    acc = carray(stack_tile(T), (4, NR))  # noqa: F821
    nm = M // 4
    for jb in range(ncol // NR):  # noqa: F821
        j0 = jb * NR  # noqa: F821
        pb = boff + jb * pstride
        for g in range(nm + (M - nm * 4)):
            if g < nm:
                i0 = g * 4
                npx = 4
            else:
                i0 = nm * 4 + (g - nm)
                npx = 1
            a0 = acc[0]
            a1 = acc[1]
            a2 = acc[2]
            a3 = acc[3]
            for o in range(NR):  # noqa: F821
                a0[o] = T(0)  # noqa: F821
                a1[o] = T(0)  # noqa: F821
                a2[o] = T(0)  # noqa: F821
                a3[o] = T(0)  # noqa: F821
            if npx == 4:
                for k in range(K):
                    x0 = A[i0, k]
                    x1 = A[i0 + 1, k]
                    x2 = A[i0 + 2, k]
                    x3 = A[i0 + 3, k]
                    bb = pb + k * ldb
                    bv = B[bb:bb + NR]  # noqa: F821
                    for o in range(NR):  # noqa: F821
                        w = bv[o]
                        a0[o] += x0 * w
                        a1[o] += x1 * w
                        a2[o] += x2 * w
                        a3[o] += x3 * w
            else:
                for k in range(K):
                    x0 = A[i0, k]
                    bb = pb + k * ldb
                    bv = B[bb:bb + NR]  # noqa: F821
                    for o in range(NR):  # noqa: F821
                        a0[o] += x0 * bv[o]
            for r in range(npx):
                cb = coff + (i0 + r) * ldc + j0
                cr = C[cb:cb + NR]  # noqa: F821
                ar = acc[r]
                if mode == 1:
                    for o in range(NR):  # noqa: F821
                        cr[o] += ar[o]
                elif mode == 2:
                    f = rs[i0 + r]
                    for o in range(NR):  # noqa: F821
                        cr[o] = ar[o] * f
                else:
                    for o in range(NR):  # noqa: F821
                        cr[o] = ar[o]


_gemm = {}


def gemm(dtype):
    """The micro-kernel for ``dtype`` (compiled and cached on first call)."""
    from . import _jit

    dt = np.dtype(dtype)
    fn = _gemm.get(dt)
    if fn is None:
        fn = _gemm[dt] = _jit.instantiate(gemm_template, f"tile_gemm_{_jit.SUFFIX[dt]}", fastmath=FASTMATH,
                                          T=_jit.scalar_type(dt), NR=NR)
    return fn
