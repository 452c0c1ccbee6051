"""The SIMD layer of fastops (core): a vector type in registers, loads/stores with masked tails,
prefetch, ``vfma``, ``vexp``, and row reductions in explicit lanes (sum, max, dot, exp-sum),
used by every family and by the GEMM engine.

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

``vexp`` is an exponential on a whole ``Vec``, written as LLVM IR with explicit ``llvm.fma``
calls: the same instructions for every lane of every vector, in the serial and the parallel build
of a kernel alike (FMA *contraction*, which LLVM applies or not per code path, stays off; see
``_config``). Rows whose length is not a multiple of the lane count end with a masked load and
store (``vload_part``, ``vstore_part``), so every element of a row goes through the vector code.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel.models import PrimitiveModel
from numba.extending import intrinsic, register_model

from . import _math
from ._jit import inline

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


def _splat(builder, value, lanes):
    """A ``<lanes x type(value)>`` vector with every lane ``value`` (insert + shuffle)."""
    v = builder.insert_element(ir.Constant(ir.VectorType(value.type, lanes), ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, lanes), [ir.Constant(_I32, 0)] * lanes))


_vconst = _math.fconst  # the constant vector with every lane ``value``
_vname = _math._llvm_suffix  # LLVM's overload suffix of a vector type (``v16f32``)
_fma_fn = _math.fma_fn  # ``llvm.fma`` on a vector type


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
        a, idx = _array_and_index(context, builder, signature, args)
        _check_block(context, builder, a, idx, vt.lanes, "vload")
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
        return _splat(builder, context.cast(builder, args[1], signature.args[1], vt.dtype), vt.lanes)

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
            if kind == "sub":
                return builder.fsub(x, y)
            if kind == "mul":
                return builder.fmul(x, y)
            # max: y if y > x else x (ordered compare: a NaN y is skipped)
            return builder.select(builder.fcmp_ordered(">", y, x), y, x)

        return a(a, b), codegen

    return op


vadd = _lanewise("add")
vsub = _lanewise("sub")
vmul = _lanewise("mul")
vmax = _lanewise("max")


def _check_block(context, builder, a, idx, lanes, what):
    """With ``NUMBA_BOUNDSCHECK=1``: ``IndexError`` unless ``0 <= idx`` and ``idx + lanes <= size``
    (``lanes=0``: unless ``0 <= idx <= size``)."""
    if not numba.config.BOUNDSCHECK:
        return
    n = builder.extract_value(a.shape, 0)
    end = builder.add(idx, context.get_constant(types.intp, lanes))
    below = builder.icmp_signed("<", idx, context.get_constant(types.intp, 0))
    bad = builder.or_(below, builder.icmp_signed(">", end, n))
    with builder.if_then(bad, likely=False):
        context.call_conv.return_user_exc(builder, IndexError, (f"{what}: block out of bounds",))


def _check_span(context, builder, a, idx, cnt, what):
    """With ``NUMBA_BOUNDSCHECK=1``: ``IndexError`` unless ``0 <= idx``, ``0 <= cnt`` and
    ``idx + cnt <= size``."""
    if not numba.config.BOUNDSCHECK:
        return
    n = builder.extract_value(a.shape, 0)
    zero = context.get_constant(types.intp, 0)
    bad = builder.or_(builder.icmp_signed("<", idx, zero), builder.icmp_signed("<", cnt, zero))
    bad = builder.or_(bad, builder.icmp_signed(">", builder.add(idx, cnt), n))
    with builder.if_then(bad, likely=False):
        context.call_conv.return_user_exc(builder, IndexError, (f"{what}: span out of bounds",))


def _store_types_ok(arr, i, v):
    return _contiguous_float_1d(arr) and isinstance(i, types.Integer) and isinstance(v, Vec) and v.dtype == arr.dtype


def _array_and_index(context, builder, signature, args):
    """The array struct of argument 0 and argument 1 as an intp (the intrinsics' common prelude)."""
    a = context.make_array(signature.args[0])(context, builder, args[0])
    return a, context.cast(builder, args[1], signature.args[1], types.intp)


@intrinsic
def vstore(typingctx, arr, i, v):
    """``arr[i : i + lanes] = v`` (unaligned store; ``arr`` 1-D C-contiguous)."""
    if not _store_types_ok(arr, i, v):
        return None

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        _check_block(context, builder, a, idx, v.lanes, "vstore")
        vptr = builder.bitcast(builder.gep(a.data, [idx]), context.get_value_type(v).as_pointer())
        builder.store(args[2], vptr, align=v.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, i, v), codegen


def _tail_mask(builder, lanes, avail):
    """``<lanes x i1>``: lane ``k`` set iff ``k < avail`` (``avail`` an intp)."""
    ity = avail.type
    vty = ir.VectorType(ity, lanes)
    ks = ir.Constant(vty, [ir.Constant(ity, k) for k in range(lanes)])
    return builder.icmp_signed("<", ks, _splat(builder, avail, lanes))


@intrinsic
def vload_part(typingctx, arr, i, fill):
    """``arr[i:]`` (fewer than ``lanes`` elements) in the first lanes of a ``Vec``, ``fill`` in the
    others: a masked load that touches no memory past the end of ``arr``. ``0 <= i <= arr.size``."""
    if not (_contiguous_float_1d(arr) and isinstance(i, types.Integer) and isinstance(fill, (types.Float, types.Integer))):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        _check_block(context, builder, a, idx, 0, "vload_part")
        vty = context.get_value_type(vt)
        mask = _tail_mask(builder, vt.lanes, builder.sub(builder.extract_value(a.shape, 0), idx))
        fv = _splat(builder, context.cast(builder, args[2], signature.args[2], vt.dtype), vt.lanes)
        ptr = builder.bitcast(builder.gep(a.data, [idx]), vty.as_pointer())
        fnty = ir.FunctionType(vty, [vty.as_pointer(), _I32, mask.type, vty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.load.{_vname(vty)}.p0{_vname(vty)}")
        return builder.call(fn, [ptr, ir.Constant(_I32, vt.dtype.bitwidth // 8), mask, fv])

    return vt(arr, i, fill), codegen


@intrinsic
def vstore_part(typingctx, arr, i, v):
    """``arr[i:] = `` the first ``arr.size - i`` lanes of ``v`` (masked store, the counterpart of
    ``vload_part``). ``0 <= i <= arr.size``."""
    if not _store_types_ok(arr, i, v):
        return None

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        _check_block(context, builder, a, idx, 0, "vstore_part")
        vty = args[2].type
        mask = _tail_mask(builder, v.lanes, builder.sub(builder.extract_value(a.shape, 0), idx))
        ptr = builder.bitcast(builder.gep(a.data, [idx]), vty.as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), _I32, mask.type])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.store.{_vname(vty)}.p0{_vname(vty)}")
        builder.call(fn, [args[2], ptr, ir.Constant(_I32, v.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()

    return types.none(arr, i, v), codegen


@intrinsic
def vload_n(typingctx, arr, i, n, fill):
    """``arr[i : i + n]`` (``0 <= n <= lanes``) in the first lanes of a ``Vec``, ``fill`` in the
    others: a masked load that touches nothing past ``i + n`` (a short row in the middle of an
    array; ``vload_part`` is the same up to the array's end)."""
    if not (_contiguous_float_1d(arr) and isinstance(i, types.Integer) and isinstance(n, types.Integer)
            and isinstance(fill, (types.Float, types.Integer))):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        cnt = context.cast(builder, args[2], signature.args[2], types.intp)
        _check_span(context, builder, a, idx, cnt, "vload_n")
        vty = context.get_value_type(vt)
        mask = _tail_mask(builder, vt.lanes, cnt)
        fv = _splat(builder, context.cast(builder, args[3], signature.args[3], vt.dtype), vt.lanes)
        ptr = builder.bitcast(builder.gep(a.data, [idx]), vty.as_pointer())
        fnty = ir.FunctionType(vty, [vty.as_pointer(), _I32, mask.type, vty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.load.{_vname(vty)}.p0{_vname(vty)}")
        return builder.call(fn, [ptr, ir.Constant(_I32, vt.dtype.bitwidth // 8), mask, fv])

    return vt(arr, i, n, fill), codegen


@intrinsic
def vstore_n(typingctx, arr, i, v, n):
    """``arr[i : i + n] = `` the first ``n`` lanes of ``v`` (``0 <= n <= lanes``; masked store,
    the counterpart of ``vload_n``)."""
    if not (_store_types_ok(arr, i, v) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        cnt = context.cast(builder, args[3], signature.args[3], types.intp)
        _check_span(context, builder, a, idx, cnt, "vstore_n")
        vty = args[2].type
        mask = _tail_mask(builder, v.lanes, cnt)
        ptr = builder.bitcast(builder.gep(a.data, [idx]), vty.as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), _I32, mask.type])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.masked.store.{_vname(vty)}.p0{_vname(vty)}")
        builder.call(fn, [args[2], ptr, ir.Constant(_I32, v.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()

    return types.none(arr, i, v, n), codegen


@intrinsic
def vmask_tail(typingctx, v, count):
    """``v`` with the lanes from ``count`` on set to 0 (those a ``vload_part`` filled)."""
    if not (isinstance(v, Vec) and isinstance(count, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        cnt = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.select(_tail_mask(builder, v.lanes, cnt), args[0], _vconst(args[0].type, 0.0))

    return v(v, count), codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """Hint: bring the cache line of ``arr[i]`` into L1 (``llvm.prefetch``; never faults, no effect
    on results). ``arr`` 1-D C-contiguous, ``0 <= i < arr.size``."""
    if not (_contiguous_float_1d(arr) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        a, idx = _array_and_index(context, builder, signature, args)
        ptr = builder.bitcast(builder.gep(a.data, [idx]), ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, _I32, _I32, _I32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # read, high temporal locality, data cache
        builder.call(fn, [ptr, ir.Constant(_I32, 0), ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return types.none(arr, i), codegen


@intrinsic
def vexp(typingctx, v):
    """``exp`` of every lane of the ``Vec`` ``v``: ``_math.exp_ir``, the IR of the scalar
    ``_math.exp32``/``exp64`` too, so every lane has exactly the scalar function's bits (tested)."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, signature, args):
        return _math.exp_ir(builder, args[0], v.dtype.bitwidth)

    return v(v), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane with one rounding (``llvm.fma``), for kernels that use FMA on
    purpose (register-tiled products, ``_tile``): an explicit call, not a contraction LLVM may or
    may not make depending on the code path."""
    if not (isinstance(a, Vec) and a == b and a == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.call(_fma_fn(builder, args[0].type), list(args))

    return a(a, b, c), codegen


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


@inline
def row_exp_sum(a, scale, m, out, nxt):
    """``out[i] = exp(a[i] * scale - m)`` (rounded product, then ``vexp``) for the 1-D C-contiguous
    ``a`` and ``out`` of one length (``out`` may be ``a``), and their sum in ``row_sum``'s lane
    order with the last ``n % lanes`` elements as one masked vector (zeros in the unused lanes)
    added to accumulator 1. ``scale=1`` costs nothing (LLVM drops the multiplication by one).
    Meanwhile one cache line of ``nxt`` (a 1-D C-contiguous array at least as long as ``a``, e.g.
    the next row) is prefetched per vector: a row-wise kernel's next row then arrives while this
    one computes, instead of stalling its first pass."""
    n = a.size
    vl = nlanes(a)
    w = N_ACC * vl
    mv = vsplat(a, m)
    sc = vsplat(a, scale)
    zero = vsplat(a, 0.0)
    a0, a1, a2, a3 = zero, zero, zero, zero
    for b in range(n // w):
        o = b * w
        prefetch(nxt, o)
        prefetch(nxt, o + vl)
        prefetch(nxt, o + 2 * vl)
        prefetch(nxt, o + 3 * vl)
        e0 = vexp(vsub(vmul(vload(a, o), sc), mv))
        e1 = vexp(vsub(vmul(vload(a, o + vl), sc), mv))
        e2 = vexp(vsub(vmul(vload(a, o + 2 * vl), sc), mv))
        e3 = vexp(vsub(vmul(vload(a, o + 3 * vl), sc), mv))
        vstore(out, o, e0)
        vstore(out, o + vl, e1)
        vstore(out, o + 2 * vl, e2)
        vstore(out, o + 3 * vl, e3)
        a0 = vadd(a0, e0)
        a1 = vadd(a1, e1)
        a2 = vadd(a2, e2)
        a3 = vadd(a3, e3)
    for b in range((n // w) * N_ACC, n // vl):
        o = b * vl
        prefetch(nxt, o)
        e0 = vexp(vsub(vmul(vload(a, o), sc), mv))
        vstore(out, o, e0)
        a0 = vadd(a0, e0)
    o = (n // vl) * vl
    if o < n:
        prefetch(nxt, o)
        e1 = vexp(vsub(vmul(vload_part(a, o, 0.0), sc), mv))
        e1 = vmask_tail(e1, n - o)  # zeros in the unused lanes
        vstore_part(out, o, e1)
        a1 = vadd(a1, e1)
    return hsum(vadd(vadd(a0, a1), vadd(a2, a3)))
