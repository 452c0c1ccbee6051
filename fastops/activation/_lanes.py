"""Row reductions in explicit SIMD lanes (sum, max, dot), for the row-wise activation kernels.

Why: fastmath has no "reassoc" (see ``_config``), so LLVM never vectorizes a reduction loop by
itself. Partial sums kept in a NumPy array (``acc[j] += x[b * LANES + j]``) vectorized badly here:
the array lives in memory, every block pays a store-to-load round trip (row max of 64x1000
float32: 0.2-0.4 ns/element); 16 scalar accumulators were not vectorized at all (0.17 ns/element:
SLP has no seed without stores). This module gives Numba a vector type (``Vec``, one 64-byte
register: 16 float32 or 8 float64 lanes) and a few intrinsics on it, so accumulators are SSA
values that LLVM keeps in registers: 0.04 ns/element for the same row max (float32, L1-resident).

Summation order (fixed, a function of the row length and dtype only, never of the thread count):
element ``i`` of the row goes to lane ``i % VL`` of accumulator ``(i // VL) % 4`` while whole blocks
of ``4 * VL`` remain, then whole vectors go to accumulator 0, the four accumulators combine as
``(a0 + a1) + (a2 + a3)``, the lanes combine pairwise (lane ``l`` with ``l + VL/2``, halving), and
the last ``n % VL`` elements are added in index order. ``max`` follows the same order and skips
NaN (a NaN row then propagates through the exponentials of softmax instead).

This is private to the activation family; a package-wide ``_reduce`` module can absorb it.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.datamodel.models import PrimitiveModel
from numba.extending import intrinsic, register_model

from .._jit import inline

VECTOR_BYTES = 64  # one AVX-512 register; narrower machines split it (LLVM legalizes the type)
N_ACC = 4  # independent accumulators (a0..a3 below): hide the add latency on L1-resident rows


class Vec(types.Type):
    """``VECTOR_BYTES`` worth of ``dtype`` lanes, held in a register (LLVM ``<N x float>``)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vec({dtype} x {self.lanes})")


@register_model(Vec)
class _VecModel(PrimitiveModel):
    def __init__(self, dmm, fe_type):
        elt = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(elt, fe_type.lanes))


_I32 = ir.IntType(32)


def _contiguous_float_1d(arr):
    return isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and isinstance(arr.dtype, types.Float)


@intrinsic
def nlanes(typingctx, arr):
    """The number of lanes of a ``Vec`` of ``arr``'s dtype (a compile-time constant)."""
    if not _contiguous_float_1d(arr):
        return None
    n = Vec(arr.dtype).lanes

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, n)

    return types.intp(arr), codegen


@intrinsic
def vload(typingctx, arr, i):
    """``arr[i : i + lanes]`` as a ``Vec`` (unaligned load; ``arr`` 1-D C-contiguous).

    With ``NUMBA_BOUNDSCHECK=1`` an out-of-range block raises ``IndexError``, as array indexing does.
    """
    if not (_contiguous_float_1d(arr) and isinstance(i, types.Integer)):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        if numba.config.BOUNDSCHECK:
            n = builder.extract_value(a.shape, 0)
            end = builder.add(idx, context.get_constant(types.intp, vt.lanes))
            below = builder.icmp_signed("<", idx, context.get_constant(types.intp, 0))
            bad = builder.or_(below, builder.icmp_signed(">", end, n))
            with builder.if_then(bad, likely=False):
                context.call_conv.return_user_exc(builder, IndexError, ("vload: block out of bounds",))
        ptr = builder.gep(a.data, [idx])
        vptr = builder.bitcast(ptr, context.get_value_type(vt).as_pointer())
        return builder.load(vptr, align=vt.dtype.bitwidth // 8)

    return vt(arr, i), codegen


@intrinsic
def vsplat(typingctx, arr, x):
    """A ``Vec`` of ``arr``'s dtype with every lane equal to the number ``x`` (cast to that dtype)."""
    if not (_contiguous_float_1d(arr) and isinstance(x, (types.Float, types.Integer))):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[1], signature.args[1], vt.dtype)
        v = ir.Constant(context.get_value_type(vt), ir.Undefined)
        for k in range(vt.lanes):
            v = builder.insert_element(v, val, ir.Constant(_I32, k))
        return v

    return vt(arr, x), codegen


def _lanewise(kind):
    @intrinsic
    def op(typingctx, a, b):
        if not (isinstance(a, Vec) and a == b):
            return None

        def codegen(context, builder, signature, args):
            x, y = args
            if kind == "add":
                return builder.fadd(x, y)
            if kind == "mul":
                return builder.fmul(x, y)
            # max: y if y > x else x (ordered compare: a NaN y is skipped)
            return builder.select(builder.fcmp_ordered(">", y, x), y, x)

        return a(a, b), codegen

    return op


vadd = _lanewise("add")
vmul = _lanewise("mul")
vmax = _lanewise("max")


def _lane_indices(first, count):
    return ir.Constant(ir.VectorType(_I32, count), [ir.Constant(_I32, first + k) for k in range(count)])


def _horizontal(kind):
    @intrinsic
    def op(typingctx, v):
        if not isinstance(v, Vec):
            return None

        def codegen(context, builder, signature, args):
            x, n = args[0], v.lanes
            while n > 1:  # lane l combines with lane l + n/2, halving: a fixed pairwise tree
                h = n // 2
                lo = builder.shuffle_vector(x, x, _lane_indices(0, h))
                hi = builder.shuffle_vector(x, x, _lane_indices(h, h))
                x = builder.fadd(lo, hi) if kind == "sum" else builder.select(builder.fcmp_ordered(">", hi, lo), hi, lo)
                n = h
            return builder.extract_element(x, ir.Constant(_I32, 0))

        return v.dtype(v), codegen

    return op


hsum = _horizontal("sum")
hmax = _horizontal("max")


@inline
def row_sum(a):
    """Sum of the 1-D C-contiguous float array ``a`` in the fixed lane order (module docstring)."""
    n = a.size
    vl = nlanes(a)
    w = N_ACC * vl
    zero = vsplat(a, 0.0)
    a0, a1, a2, a3 = zero, zero, zero, zero
    for b in range(n // w):
        o = b * w
        a0 = vadd(a0, vload(a, o))
        a1 = vadd(a1, vload(a, o + vl))
        a2 = vadd(a2, vload(a, o + 2 * vl))
        a3 = vadd(a3, vload(a, o + 3 * vl))
    for b in range((n // w) * N_ACC, n // vl):
        a0 = vadd(a0, vload(a, b * vl))
    s = hsum(vadd(vadd(a0, a1), vadd(a2, a3)))
    for i in range((n // vl) * vl, n):
        s += a[i]
    return s


@inline
def row_dot(a, b):
    """``sum(a * b)`` over two 1-D C-contiguous arrays of one length, in ``row_sum``'s order
    (products rounded, then added: no FMA)."""
    n = a.size
    vl = nlanes(a)
    w = N_ACC * vl
    zero = vsplat(a, 0.0)
    a0, a1, a2, a3 = zero, zero, zero, zero
    for k in range(n // w):
        o = k * w
        a0 = vadd(a0, vmul(vload(a, o), vload(b, o)))
        a1 = vadd(a1, vmul(vload(a, o + vl), vload(b, o + vl)))
        a2 = vadd(a2, vmul(vload(a, o + 2 * vl), vload(b, o + 2 * vl)))
        a3 = vadd(a3, vmul(vload(a, o + 3 * vl), vload(b, o + 3 * vl)))
    for k in range((n // w) * N_ACC, n // vl):
        a0 = vadd(a0, vmul(vload(a, k * vl), vload(b, k * vl)))
    s = hsum(vadd(vadd(a0, a1), vadd(a2, a3)))
    for i in range((n // vl) * vl, n):
        s += a[i] * b[i]
    return s


@inline
def row_max(a):
    """Largest non-NaN element of the 1-D C-contiguous array ``a`` (``-inf`` if none, or if empty)."""
    n = a.size
    vl = nlanes(a)
    w = N_ACC * vl
    ninf = vsplat(a, -np.inf)
    a0, a1, a2, a3 = ninf, ninf, ninf, ninf
    for b in range(n // w):
        o = b * w
        a0 = vmax(a0, vload(a, o))
        a1 = vmax(a1, vload(a, o + vl))
        a2 = vmax(a2, vload(a, o + 2 * vl))
        a3 = vmax(a3, vload(a, o + 3 * vl))
    for b in range((n // w) * N_ACC, n // vl):
        a0 = vmax(a0, vload(a, b * vl))
    m = hmax(vmax(vmax(a0, a1), vmax(a2, a3)))
    for i in range((n // vl) * vl, n):
        v = a[i]
        m = v if v > m else m
    return m
