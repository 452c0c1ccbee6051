"""Numba loop templates of the convolution family, all on 3-D spatial arrays (1-D and 2-D
convolutions are the degenerate D = H = 1 case of the same kernels: no copy-pasted variants).

Arrays: padded input ``xp`` (N, C, Dp, Hp, Wp); weight ``w`` (O, C/groups, KD, KH, KW); output
(N, O, OD, OH, OW); ``cols`` (C*KD*KH*KW, N*OD*OH*OW) the im2col matrix, row ``c*K + k``, column
``n*L + l``: the whole batch is one GEMM operand (see ``_core`` for why).

Every parallel loop runs over independent output planes (one thread writes one plane, in a fixed
order), and every sum has an order fixed by the shapes alone, so results are bitwise identical for
any number of threads.

Speed notes (project machine, 2 cores Zen 5, float32):
* Unit-stride rows (stride 1) are copied / accumulated through 0-based slices with a plain trip
  count: LLVM vectorizes them (strided gathers are scalar). The ``sw == 1`` branch exists for that.
* The direct kernels accumulate an output row in place (``orow[ow] += wv * src[ow]``): the row
  stays in L1 across the channel x kernel loop, the weight is a broadcast scalar. The weight
  gradient keeps a per-thread row of partial sums (vectorized) and folds it once per weight
  element, in a fixed order (a scalar ``s += a*b`` chain does not vectorize without reassoc).
"""
import numpy as np
from numba import prange

from .. import _jit, _threads
from .._epilogue import act_scalar


def _im2col_template(xp, KD, KH, KW, sd, sh, sw, dd, dh, dw, OD, OH, OW, cols):
    N, C = xp.shape[0], xp.shape[1]
    K = KD * KH * KW
    L = OD * OH * OW
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    r = c * K + (kd * KH + kh) * KW + kw
                    for od in range(OD):
                        for oh in range(OH):
                            src = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                            base = n * L + (od * OH + oh) * OW
                            drow = cols[r, base:base + OW]
                            if sw == 1:
                                srow = src[kw * dw:kw * dw + OW]
                                for ow in range(OW):
                                    drow[ow] = srow[ow]
                            else:
                                for ow in range(OW):
                                    drow[ow] = src[kw * dw + ow * sw]


def _col2im_template(cols, KD, KH, KW, sd, sh, sw, dd, dh, dw, OD, OH, OW, gxp):
    N, C, Dp, Hp, Wp = gxp.shape
    K = KD * KH * KW
    L = OD * OH * OW
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        plane = gxp[n, c]
        for i in range(Dp):
            for j in range(Hp):
                prow = plane[i, j]
                for l in range(Wp):
                    prow[l] = T(0)  # noqa: F821
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    r = c * K + (kd * KH + kh) * KW + kw
                    for od in range(OD):
                        for oh in range(OH):
                            dst = plane[od * sd + kd * dd, oh * sh + kh * dh]
                            base = n * L + (od * OH + oh) * OW
                            srow = cols[r, base:base + OW]
                            if sw == 1:
                                drow = dst[kw * dw:kw * dw + OW]
                                for ow in range(OW):
                                    drow[ow] += srow[ow]
                            else:
                                for ow in range(OW):
                                    dst[kw * dw + ow * sw] += srow[ow]


def _direct_fwd_template(xp, w, bias, a, b, sd, sh, sw, dd, dh, dw, out):
    N, O, OD, OH, OW = out.shape
    C = xp.shape[1]
    Cg, KD, KH, KW = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    Og = O // (C // Cg)
    for p in prange(N * O):
        n = p // O
        o = p - n * O
        g = o // Og
        bv = bias[o]
        for od in range(OD):
            for oh in range(OH):
                orow = out[n, o, od, oh]
                for ow in range(OW):
                    orow[ow] = T(0)  # noqa: F821
                for cg in range(Cg):
                    c = g * Cg + cg
                    for kd in range(KD):
                        for kh in range(KH):
                            src = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                            for kw in range(KW):
                                wv = w[o, cg, kd, kh, kw]
                                if sw == 1:
                                    srow = src[kw * dw:kw * dw + OW]
                                    for ow in range(OW):
                                        orow[ow] += wv * srow[ow]
                                else:
                                    for ow in range(OW):
                                        orow[ow] += wv * src[kw * dw + ow * sw]
                # fused epilogue while the row is in L1
                for ow in range(OW):
                    orow[ow] = ACT(orow[ow] + bv, a, b)  # noqa: F821


def _direct_bwd_data_template(g, w, sd, sh, sw, dd, dh, dw, gxp):
    N, C, Dp, Hp, Wp = gxp.shape
    O, OD, OH, OW = g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    Cg, KD, KH, KW = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    Og = O // (C // Cg)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        grp = c // Cg
        cg = c - grp * Cg
        plane = gxp[n, c]
        for i in range(Dp):
            for j in range(Hp):
                prow = plane[i, j]
                for l in range(Wp):
                    prow[l] = T(0)  # noqa: F821
        for jo in range(Og):
            o = grp * Og + jo
            for od in range(OD):
                for oh in range(OH):
                    grow = g[n, o, od, oh]
                    for kd in range(KD):
                        for kh in range(KH):
                            dst = plane[od * sd + kd * dd, oh * sh + kh * dh]
                            for kw in range(KW):
                                wv = w[o, cg, kd, kh, kw]
                                if sw == 1:
                                    drow = dst[kw * dw:kw * dw + OW]
                                    for ow in range(OW):
                                        drow[ow] += wv * grow[ow]
                                else:
                                    for ow in range(OW):
                                        dst[kw * dw + ow * sw] += wv * grow[ow]


def _direct_bwd_weight_template(xp, g, sd, sh, sw, dd, dh, dw, gw):
    N, C = xp.shape[0], xp.shape[1]
    O, OD, OH, OW = g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    Cg, KD, KH, KW = gw.shape[1], gw.shape[2], gw.shape[3], gw.shape[4]
    Og = O // (C // Cg)
    for o in prange(O):
        grp = o // Og
        acc = np.empty(OW, dtype=T)  # noqa: F821  (per-thread partial sums, vectorized)
        for cg in range(Cg):
            c = grp * Cg + cg
            for kd in range(KD):
                for kh in range(KH):
                    for kw in range(KW):
                        for ow in range(OW):
                            acc[ow] = T(0)  # noqa: F821
                        for n in range(N):
                            for od in range(OD):
                                for oh in range(OH):
                                    grow = g[n, o, od, oh]
                                    src = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                                    if sw == 1:
                                        srow = src[kw * dw:kw * dw + OW]
                                        for ow in range(OW):
                                            acc[ow] += grow[ow] * srow[ow]
                                    else:
                                        for ow in range(OW):
                                            acc[ow] += grow[ow] * src[kw * dw + ow * sw]
                        s = T(0)  # noqa: F821
                        for ow in range(OW):
                            s += acc[ow]
                        gw[o, cg, kd, kh, kw] = s


def _blocked_fwd_template(xp, wp, bias, a, b, sd, sh, sw, dd, dh, dw, out):
    """Cache- and register-blocked direct convolution (groups == 1), bias + activation fused.

    ``wp`` (OBn, C, KD, KH, KW, NR): the weight packed OIHW[NR o] (NR output channels innermost,
    zero-padded to a multiple of NR, see ``pack_weight_blocked``). One prange iteration owns one
    (n, output-channel block, od, oh) output row and writes it alone (deterministic: every sum
    runs over c, kd, kh, kw in that order whatever the thread count). The row is done in blocks
    of OWB output pixels; the block's accumulators ``acc`` (OWB x NR) live in L1 (OWB*NR*4 bytes,
    8 KB for f32 at the chosen sizes) while the whole C x K reduction streams through them: per
    input pixel one broadcast scalar times the contiguous NR-wide weight vector (NR/16 AVX-512
    FMAs in f32), the GEMM micro-kernel shape that NUMBA_NOTES measured at 135-255 GFLOP/s. The
    input needs no packing (it is only read as broadcast scalars, any stride / dilation). The
    epilogue ``ACT(acc + bias)`` is applied while the block is still in L1."""
    N, O, OD, OH, OW = out.shape
    C = xp.shape[1]
    OBn, KD, KH, KW = wp.shape[0], wp.shape[2], wp.shape[3], wp.shape[4]
    nwb = (OW + OWB - 1) // OWB  # noqa: F821
    for p in prange(N * OBn * OD * OH):
        oh = p % OH
        t = p // OH
        od = t % OD
        t = t // OD
        ob = t % OBn
        n = t // OBn
        no = min(NR, O - ob * NR)  # noqa: F821
        acc = np.empty((OWB, NR), dtype=T)  # noqa: F821
        for wb in range(nwb):
            ow0 = wb * OWB  # noqa: F821
            nw = min(OWB, OW - ow0)  # noqa: F821
            for i in range(OWB):  # noqa: F821
                for o in range(NR):  # noqa: F821
                    acc[i, o] = T(0)  # noqa: F821
            for c in range(C):
                for kd in range(KD):
                    for kh in range(KH):
                        src = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                        for kw in range(KW):
                            wv = wp[ob, c, kd, kh, kw]
                            base = ow0 * sw + kw * dw
                            for i in range(nw):
                                xv = src[base + i * sw]
                                for o in range(NR):  # noqa: F821
                                    acc[i, o] += xv * wv[o]
            for o in range(no):
                bv = bias[ob * NR + o]  # noqa: F821
                orow = out[n, ob * NR + o, od, oh]  # noqa: F821
                for i in range(nw):
                    orow[ow0 + i] = ACT(acc[i, o] + bv, a, b)  # noqa: F821


def _epilogue_rows_template(out, bias, a, b):
    """``out`` (R, M, L): ``out[r, m, :] = ACT(out[r, m, :] + bias[m])`` (conv: bias per channel)."""
    R, M, L = out.shape
    for p in prange(R * M):
        r = p // M
        m = p - r * M
        bv = bias[m]
        row = out[r, m]
        for i in range(L):
            row[i] = ACT(row[i] + bv, a, b)  # noqa: F821


def _unpack_template(tmp, bias, a, b, out):
    """GEMM result ``tmp`` (M, N*L) -> ``out`` (N, M, L) with ``ACT(. + bias[m])`` fused."""
    N, M, L = out.shape
    for p in prange(N * M):
        n = p // M
        m = p - n * M
        bv = bias[m]
        src = tmp[m, n * L:n * L + L]
        row = out[n, m]
        for i in range(L):
            row[i] = ACT(src[i] + bv, a, b)  # noqa: F821


def _pack_template(g, tmp):
    """``g`` (N, M, L) -> ``tmp`` (M, N*L): the GEMM operand layout of an output gradient."""
    N, M, L = g.shape
    for p in prange(N * M):
        n = p // M
        m = p - n * M
        src = g[n, m]
        dst = tmp[m, n * L:n * L + L]
        for i in range(L):
            dst[i] = src[i]


def _epilogue_cols_template(out, bias, a, b):
    """``out`` (R, M): ``out[r, :] = ACT(out[r, :] + bias)`` (linear: bias along the last dim)."""
    R, M = out.shape
    for r in prange(R):
        row = out[r]
        for i in range(M):
            row[i] = ACT(row[i] + bias[i], a, b)  # noqa: F821


TEMPLATES = {
    "im2col": _im2col_template,
    "col2im": _col2im_template,
    "direct_fwd": _direct_fwd_template,
    "blocked_fwd": _blocked_fwd_template,
    "direct_bwd_data": _direct_bwd_data_template,
    "direct_bwd_weight": _direct_bwd_weight_template,
    "epilogue_rows": _epilogue_rows_template,
    "epilogue_cols": _epilogue_cols_template,
    "unpack": _unpack_template,
    "pack": _pack_template,
}
# Blocking of blocked_fwd: NR output channels per packed weight vector, OWB output pixels per
# accumulator block (OWB x NR = 4 KB f32 / 8 KB f64 of L1). Measured (float32, 2 threads, shared
# machine at load ~10: noisy, ms for 8x3x224x224 7x7 s2 -> 64 / 8x64x56x56 3x3 pad 1):
# NR=16 OWB=28 830 / 718, NR=32 OWB=16 1022 / 840 (constant trip counts of 16 / 32 are fully
# unrolled and the unrolled body is not SLP-vectorized: scalar code), NR=64 OWB=8 232 / 184,
# NR=64 OWB=16 153-163 / 157-187, NR=64 OWB=28 206 / 205, NR=128 OWB=8/16 256-260 / 323-339
# (O=64 padded to 128), vs im2col + OpenBLAS 196-215 / 130. Without FMA contraction (off on
# purpose, _config) the vectorized body is 4 vmulps + 4 vaddps zmm per broadcast input pixel.
BLOCK_NR = 64
BLOCK_OWB = 16
_USES_ACT = ("blocked_fwd", "direct_fwd", "epilogue_rows", "epilogue_cols", "unpack")
_cache = {}


def name(which, dtype, backend, epi=None):
    tag = f"_{epi.key}" if which in _USES_ACT else ""
    return f"conv_{which}{tag}_{_jit.SUFFIX[np.dtype(dtype)]}_{backend}"


def get(which, dtype, backend, epi=None):
    dt = np.dtype(dtype)
    key = (which, dt, backend, epi.name if which in _USES_ACT else None)
    k = _cache.get(key)
    if k is None:
        bindings = {"T": dt.type}
        if which == "blocked_fwd":
            bindings.update(NR=BLOCK_NR, OWB=BLOCK_OWB)
        if which in _USES_ACT:
            bindings["ACT"] = act_scalar(epi, dt)
        k = _cache[key] = _jit.instantiate(
            TEMPLATES[which], name(which, dt, backend, epi), parallel=(backend == "parallel"), **bindings
        )
    return k


def call(which, dtype, backend, *args, epi=None):
    if backend == "parallel":
        _threads.sync()
    get(which, dtype, backend, epi)(*args)
