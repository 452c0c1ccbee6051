"""Vectorizable transcendental functions for the kernels (float32 and float64 variants).

Why: Numba lowers ``np.exp``/``np.tanh``/``math.erf`` to scalar libm calls, which LLVM cannot
vectorize without Intel SVML (not a dependency of fastops); these polynomial versions vectorize to
AVX-512 and make such kernels memory-bound. Design note: on 16M float32 with 2 threads a sigmoid
through ``np.exp`` took ~36 ms, the same as torch (commit ad08449); ``python -m fastops bench --ops
sigmoid --size large --threads 2`` times the current kernel against torch on that input. Algorithms
follow Cephes (S. Moshier): Cody-Waite range reduction, a minimax polynomial (float32) or Pade form
(float64), and the power of two built from its exponent bits. Accuracy: within a few ulp of libm
over the whole range (checked against NumPy in tests/core/test_math.py); overflow gives inf, NaN in
gives NaN out; results below the smallest normal number flush to 0 (libm returns subnormals there).

Each function is an inlined helper; ``EXP[dtype]`` etc. pick the variant a kernel binds. exp is
written once, as LLVM IR (``exp_ir``) emitted on a scalar here and on a vector by
``_simd.vexp``: the same bits whichever a kernel uses.
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import inline

f32 = np.float32
f64 = np.float64


@intrinsic
def _i32_as_f32(typingctx, i):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _i64_as_f64(typingctx, i):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f32_as_i32(typingctx, x):
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _f64_as_i64(typingctx, x):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


# e * 2**n is formed by adding n to the exponent bits of e (exact integer arithmetic): a product of
# two powers of two would be reassociated by fastmath into 2**n alone, which overflows for n = 128
# (float32) or 1024 (float64) although e * 2**n does not.


# Cephes constants of exp (``exp_ir``, scalar and vector):
# the range kept normal (below LO the result flushes to 0, above HI it is inf), ln 2 split in two
# for the Cody-Waite reduction (x - n * LN2[0] - n * LN2[1]), and the float32 minimax polynomial of
# degree 5 for (exp(r) - 1 - r) / r^2 on |r| <= ln2 / 2, or the float64 Pade form's P and Q.
LOG2E = 1.4426950408889634073599
EXP32_RANGE = (-87.33654, 88.72283)
EXP32_LN2 = (0.693359375, -2.12194440e-4)
EXP32_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
EXP64_RANGE = (-708.3964185322641, 709.782712893384)
EXP64_LN2 = (6.93145751953125e-1, 1.42860682030941723212e-6)
EXP64_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
EXP64_Q = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1, 2.00000000000000000009e0)


@inline
def _exp32_reduced(r):
    """exp(r) for the reduced argument |r| <= ln2 / 2 (float32 polynomial)."""
    p = f32(EXP32_POLY[0])
    p = p * r + f32(EXP32_POLY[1])
    p = p * r + f32(EXP32_POLY[2])
    p = p * r + f32(EXP32_POLY[3])
    p = p * r + f32(EXP32_POLY[4])
    p = p * r + f32(EXP32_POLY[5])
    return p * (r * r) + r + f32(1.0)


# --- exp: one algorithm, emitted as LLVM IR on a scalar or on a vector ----------------------------
# exp32/exp64 (scalar, called by the Numba kernels' loops, which LLVM vectorizes) and
# ``_simd.vexp`` (explicit vectors) are both this IR, so a value's exp has the same bits whatever
# the path that computes it (tests/activation/test_activation.py checks scalar against vector bitwise).

_EXP_CONSTANTS = {
    32: dict(range=EXP32_RANGE, ln2=EXP32_LN2, shift=23, poly=EXP32_POLY),
    64: dict(range=EXP64_RANGE, ln2=EXP64_LN2, shift=52, p=EXP64_P, q=EXP64_Q),
}


def fconst(ty, value):
    """The float constant ``value`` of LLVM type ``ty`` (a float or a float vector: every lane)."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(ty.element, float(value))] * ty.count)
    return ir.Constant(ty, float(value))


def _llvm_suffix(ty):
    """LLVM's overload suffix of a float or vector type (``f32``, ``v16f32``)."""
    e = ty.element if isinstance(ty, ir.VectorType) else ty
    kind = "f32" if isinstance(e, ir.FloatType) else "f64" if isinstance(e, ir.DoubleType) else f"i{e.width}"
    return f"v{ty.count}{kind}" if isinstance(ty, ir.VectorType) else kind


def fma_fn(builder, ty):
    """``llvm.fma`` on the float (or float vector) type ``ty``, declared in the module once."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), f"llvm.fma.{_llvm_suffix(ty)}")


def exp_ir(builder, x, bits):
    """LLVM IR of ``exp`` on ``x`` (a float of ``bits`` bits, or a vector of them), FMA throughout
    (explicit ``llvm.fma``). Against float64 NumPy: < 1 ulp for float32, at most 2 ulp for
    float64; results below the smallest normal number flush to 0 (libm would give subnormals),
    overflow gives inf, NaN gives NaN."""
    ty = x.type
    k = _EXP_CONSTANTS[bits]
    ity = ir.VectorType(ir.IntType(bits), ty.count) if isinstance(ty, ir.VectorType) else ir.IntType(bits)
    fma_f = fma_fn(builder, ty)

    def c(v):
        return fconst(ty, v)

    def fma(a, b, d):
        return builder.call(fma_f, [a, b, d])

    lo, hi = c(k["range"][0]), c(k["range"][1])
    below = builder.fcmp_ordered("<", x, lo)
    above = builder.fcmp_ordered(">", x, hi)
    xc = builder.select(above, hi, builder.select(below, lo, x))  # NaN stays NaN
    # n = round(x / ln2): adding 1.5 * 2^(mantissa bits) rounds to an integer held in the low bits
    magic = c(1.5 * 2.0 ** k["shift"])
    t = fma(xc, c(LOG2E), magic)
    n = builder.fsub(t, magic)
    r = fma(n, c(-k["ln2"][0]), xc)  # Cody-Waite: x - n * (ln2_hi + ln2_lo) in two steps
    r = fma(n, c(-k["ln2"][1]), r)
    if bits == 32:
        coeffs = k["poly"]
        p = c(coeffs[0])
        for a in coeffs[1:]:
            p = fma(p, r, c(a))
        e = builder.fadd(fma(p, builder.fmul(r, r), r), c(1.0))
    else:
        rr = builder.fmul(r, r)
        pc, qc = k["p"], k["q"]
        px = builder.fmul(r, fma(fma(c(pc[0]), rr, c(pc[1])), rr, c(pc[2])))
        q = fma(fma(fma(c(qc[0]), rr, c(qc[1])), rr, c(qc[2])), rr, c(qc[3]))
        e = builder.fadd(c(1.0), builder.fmul(c(2.0), builder.fdiv(px, builder.fsub(q, px))))
    # 2^n from the low bits of t (bits(t) = bits(magic) + n, whose high bits shift out): e * 2**n
    # formed by adding n to the exponent bits of e (exact integer arithmetic)
    sh = ir.Constant(ity.element, k["shift"]) if isinstance(ity, ir.VectorType) else None
    shift = ir.Constant(ity, [sh] * ty.count) if sh is not None else ir.Constant(ity, k["shift"])
    scale = builder.shl(builder.bitcast(t, ity), shift)
    y = builder.bitcast(builder.add(builder.bitcast(e, ity), scale), ty)
    y = builder.select(above, c(np.inf), builder.select(below, c(0.0), y))
    return builder.select(builder.fcmp_unordered("uno", x, x), x, y)


@intrinsic
def _exp(typingctx, x):
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return exp_ir(builder, args[0], x.bitwidth)

    return x(x), codegen


@inline
def exp32(x):
    """exp of a float32 (see ``exp_ir``)."""
    return _exp(f32(x))


@inline
def exp32_hilo(hi, lo):
    """exp(hi + lo) for a large, exactly known ``hi`` and a small ``lo`` (no rounding of hi + lo).
    No range handling: callers keep hi + lo within [-87, 0]."""
    n = np.floor((hi + lo) * f32(LOG2E) + f32(0.5))
    r = (hi - n * f32(EXP32_LN2[0])) + lo
    r = r - n * f32(EXP32_LN2[1])
    e = _exp32_reduced(r)
    return _i32_as_f32(_f32_as_i32(e) + (np.int32(n) << np.int32(23)))


@inline
def exp64(x):
    """exp of a float64 (see ``exp_ir``)."""
    return _exp(f64(x))


@inline
def tanh32(x):
    # |x| < 0.625: odd polynomial (Cephes tanhf); else 1 - 2 / (exp(2|x|) + 1) with the sign.
    # Both branches are computed and one selected, so the loop stays branch-free and vectorizes.
    z = x * x
    p = f32(-5.70498872745e-3)
    p = p * z + f32(2.06390887954e-2)
    p = p * z - f32(5.37397155531e-2)
    p = p * z + f32(1.33314422036e-1)
    p = p * z - f32(3.33332819422e-1)
    small = p * z * x + x
    a = abs(x)
    e = exp32(min(f32(2.0) * a, f32(88.0)))
    big = f32(1.0) - f32(2.0) / (e + f32(1.0))
    big = big if x >= f32(0.0) else -big
    y = small if a < f32(0.625) else big
    return y if x == x else x


@inline
def tanh64(x):
    z = x * x
    p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3
    small = x + x * z * (p / q)
    a = abs(x)
    e = exp64(min(2.0 * a, 700.0))
    big = 1.0 - 2.0 / (e + 1.0)
    big = big if x >= 0.0 else -big
    y = small if a < 0.625 else big
    return y if x == x else x


@inline
def erfc32(x):
    # Chebyshev fit (Numerical Recipes erfcc): fractional error < 1.2e-7; measured <= 4 ulp against
    # libm on [-4, 9]. Flushes to 0 for x > 9 (erfc(9) = 4e-37).
    z = abs(x)
    t = f32(1.0) / (f32(1.0) + f32(0.5) * z)
    p = f32(0.17087277)
    p = p * t - f32(0.82215223)
    p = p * t + f32(1.48851587)
    p = p * t - f32(1.13520398)
    p = p * t + f32(0.27886807)
    p = p * t - f32(0.18628806)
    p = p * t + f32(0.09678418)
    p = p * t + f32(0.37409196)
    p = p * t + f32(1.00002368)
    p = p * t - f32(1.26551223)
    # exp(-z^2 + p) with -z^2 split exactly: zh keeps 12 mantissa bits so zh*zh is exact, and
    # z^2 - zh^2 = (z - zh)(z + zh) is small; rounding -z^2 + p instead cost up to 64 ulp in the tail
    zc = min(z, f32(9.0))
    zh = _i32_as_f32(_f32_as_i32(zc) & np.int32(-4096))
    ans = t * exp32_hilo(-zh * zh, p - (zc - zh) * (zc + zh))
    ans = f32(0.0) if z > f32(9.0) else ans
    return ans if x >= f32(0.0) else f32(2.0) - ans


@inline
def erfc64(x):
    return math.erfc(x)


@inline
def expm1_32(x):
    # |x| < 0.25: Taylor series to x**7 (truncation < 2e-9 relative); else exp(x) - 1 (no cancellation there)
    p = f32(1.0 / 5040.0)
    p = p * x + f32(1.0 / 720.0)
    p = p * x + f32(1.0 / 120.0)
    p = p * x + f32(1.0 / 24.0)
    p = p * x + f32(1.0 / 6.0)
    p = p * x + f32(0.5)
    small = (p * x) * x + x
    big = exp32(x) - f32(1.0)
    return small if abs(x) < f32(0.25) else big


@inline
def expm1_64(x):
    return math.expm1(x)


@inline
def log32(x):
    # Cephes logf: x = m * 2**e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9 polynomial in
    # m - 1. Exponent and mantissa come from the bits (vectorizes; no libm call). Normal x only:
    # a subnormal x is treated as 0 (-inf), as with flush-to-zero.
    bits = _f32_as_i32(x)
    e = ((bits >> np.int32(23)) & np.int32(0xFF)) - np.int32(126)
    m = _i32_as_f32((bits & np.int32(0x7FFFFF)) | np.int32(0x3F000000))  # in [0.5, 1)
    low = m < f32(0.70710678118654752440)
    e = e - np.int32(1) if low else e
    m = (m + m - f32(1.0)) if low else (m - f32(1.0))
    fe = f32(e)
    z = m * m
    p = f32(7.0376836292e-2)
    p = p * m - f32(1.1514610310e-1)
    p = p * m + f32(1.1676998740e-1)
    p = p * m - f32(1.2420140846e-1)
    p = p * m + f32(1.4249322787e-1)
    p = p * m - f32(1.6668057665e-1)
    p = p * m + f32(2.0000714765e-1)
    p = p * m - f32(2.4999993993e-1)
    p = p * m + f32(3.3333331174e-1)
    y = p * m * z
    y = y + f32(-2.12194440e-4) * fe
    y = y - f32(0.5) * z
    r = m + y
    r = r + f32(0.693359375) * fe
    r = -np.float32(np.inf) if x < f32(1.17549435e-38) else r
    r = np.float32(np.nan) if x < f32(0.0) else r
    return x if not (x < np.float32(np.inf)) else r  # +inf -> inf, NaN -> NaN


@inline
def log1p32(x):
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x (Goldberg): exact rounding of u is undone by
    # the factor x / (u - 1); u == 1 means |x| < eps/2 where log1p(x) = x.
    u = f32(1.0) + x
    d = u - f32(1.0)
    r = log32(u) * (x / d)
    r = x if d == f32(0.0) else r
    return log32(u) if u == np.float32(np.inf) else r


@inline
def log64(x):
    return math.log(x)


@inline
def log1p64(x):
    return math.log1p(x)


EXP = {np.dtype(np.float32): exp32, np.dtype(np.float64): exp64}
TANH = {np.dtype(np.float32): tanh32, np.dtype(np.float64): tanh64}
ERFC = {np.dtype(np.float32): erfc32, np.dtype(np.float64): erfc64}
EXPM1 = {np.dtype(np.float32): expm1_32, np.dtype(np.float64): expm1_64}
LOG = {np.dtype(np.float32): log32, np.dtype(np.float64): log64}
LOG1P = {np.dtype(np.float32): log1p32, np.dtype(np.float64): log1p64}
