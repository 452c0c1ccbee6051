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
from numba import carray, prange

from .. import _jit, _tile
from .._tile import stack_tile as _stack_tile
from .._epilogue import Epilogue, act_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = ACT = NR = UNBOUND


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
                    prow[l] = T(0)
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
                    orow[ow] = T(0)
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
                    orow[ow] = ACT(orow[ow] + bv, a, b)


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
                    prow[l] = T(0)
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
        acc = np.empty(OW, dtype=T)  # per-thread partial sums, vectorized
        for cg in range(Cg):
            c = grp * Cg + cg
            for kd in range(KD):
                for kh in range(KH):
                    for kw in range(KW):
                        for ow in range(OW):
                            acc[ow] = T(0)
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
                        s = T(0)
                        for ow in range(OW):
                            s += acc[ow]
                        gw[o, cg, kd, kh, kw] = s


def _blocked_fwd_template(xp, wp, bias, a, b, sd, sh, sw, dd, dh, dw, out):
    """Register-blocked direct convolution (groups == 1), bias + activation fused.

    ``wp`` (OBn, C, KD, KH, KW, NR): the weight packed OIHW[NR o] (NR output channels innermost,
    zero-padded to a multiple of NR, see ``pack_weight_blocked``), read as a (C*KD*KH*KW, NR)
    panel per output-channel block; ``xp`` must be C-contiguous (read through a flat view with a
    per-tap offset table ``offs``). One prange iteration owns one (n, output-channel block, od, oh)
    output row and writes it alone (deterministic: every sum runs over the taps in (c, kd, kh, kw)
    order whatever the thread count). The row is done in groups of MR = 4 output pixels (then single
    pixels for the remainder): the group's 4 x NR accumulators (16 zmm in f32) stay in registers
    (stack tile, see ``fastops._tile``) through the whole C*K reduction; per tap 4 broadcast input
    pixels times one contiguous NR-wide weight vector = 16 FMAs for 4 weight loads. Bias +
    activation are applied while the tile is in registers, each output written once."""
    N, O, OD, OH, OW = out.shape
    C, Dp, Hp, Wp = xp.shape[1], xp.shape[2], xp.shape[3], xp.shape[4]
    OBn, KD, KH, KW = wp.shape[0], wp.shape[2], wp.shape[3], wp.shape[4]
    KT = C * KD * KH * KW
    offs = np.empty(KT, np.int64)
    t = 0
    for c in range(C):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    offs[t] = ((c * Dp + kd * dd) * Hp + kh * dh) * Wp + kw * dw
                    t += 1
    wq = wp.reshape((OBn, KT, NR))
    xq = xp.reshape((N, C * Dp * Hp * Wp))
    nq = OW // 4
    for p in prange(N * OBn * OD * OH):
        oh = p % OH
        q = p // OH
        od = q % OD
        q = q // OD
        ob = q % OBn
        n = q // OBn
        no = min(NR, O - ob * NR)
        acc = carray(_stack_tile(T), (4, NR))
        xr = xq[n]
        wr = wq[ob]
        rowbase = (od * sd * Hp + oh * sh) * Wp
        for g in range(nq + (OW - nq * 4)):
            if g < nq:
                ow0 = g * 4
                npx = 4
            else:
                ow0 = nq * 4 + (g - nq)
                npx = 1
            a0 = acc[0]
            a1 = acc[1]
            a2 = acc[2]
            a3 = acc[3]
            for o in range(NR):
                a0[o] = T(0)
                a1[o] = T(0)
                a2[o] = T(0)
                a3[o] = T(0)
            b0 = rowbase + ow0 * sw
            if npx == 4:
                for tt in range(KT):
                    i0 = b0 + offs[tt]
                    x0 = xr[i0]
                    x1 = xr[i0 + sw]
                    x2 = xr[i0 + 2 * sw]
                    x3 = xr[i0 + 3 * sw]
                    wv = wr[tt]
                    for o in range(NR):
                        w_ = wv[o]
                        a0[o] += x0 * w_
                        a1[o] += x1 * w_
                        a2[o] += x2 * w_
                        a3[o] += x3 * w_
            else:
                for tt in range(KT):
                    x0 = xr[b0 + offs[tt]]
                    wv = wr[tt]
                    for o in range(NR):
                        a0[o] += x0 * wv[o]
            for o in range(no):
                bv = bias[ob * NR + o]
                orow = out[n, ob * NR + o, od, oh]
                for i in range(npx):
                    orow[ow0 + i] = ACT(acc[i, o] + bv, a, b)


def _pack_grad_template(g, gq):
    """``g`` (N, O, L) -> ``gq`` (N, OBn, L, NR): output channels innermost in blocks of NR, the
    last block zero-padded (the weight-gradient kernel's vector operand)."""
    N, O, L = g.shape
    OBn = gq.shape[1]
    for p in prange(N * OBn):
        n = p // OBn
        ob = p - n * OBn
        dst = gq[n, ob]
        no = min(NR, O - ob * NR)
        for o in range(NR):
            if o < no:
                src = g[n, ob * NR + o]
                for i in range(L):
                    dst[i, o] = src[i]
            else:
                for i in range(L):
                    dst[i, o] = T(0)


def _blocked_bwd_weight_template(xp, gq, sd, sh, sw, dd, dh, dw, KD, KH, KW, OD, OH, OW, CB, GB, gacc):
    """Register-blocked weight gradient (groups == 1): ``gacc[ob, c, t, :]`` (t = (kd, kh, kw), NR
    output channels) = sum over n, od, oh, ow of ``xp[n, c, tap t of pixel] * g[n, ob*NR:, pixel]``.

    ``gq`` is the output gradient packed by ``pack_grad`` (NR channels innermost), ``xp`` the padded
    input (C-contiguous; nothing like im2col is built). One prange unit owns the accumulators of
    one output-channel block, CB input channels and GB tap groups, and sums them in a fixed order
    (n, od, oh, then the output row), so the result does not depend on the thread count. Taps go in
    groups of 4 (then single taps): per output pixel one NR-wide gradient vector times 4 broadcast
    input values = 16 FMAs for 4 vector loads (the forward kernel's tile with pixels and taps
    swapped). A row's partial sums stay in a stack tile (registers) and are added to ``gacc`` once
    per row: a two-level sum (row, then rows), and the gradient row read once per channel block
    while it is in L1."""
    N, C, Dp, Hp, Wp = xp.shape
    OBn = gq.shape[1]
    KT = KD * KH * KW
    toff = np.empty(KT, np.int64)
    t = 0
    for kd in range(KD):
        for kh in range(KH):
            for kw in range(KW):
                toff[t] = (kd * dd * Hp + kh * dh) * Wp + kw * dw
                t += 1
    xq = xp.reshape((N, C, Dp * Hp * Wp))
    ng4 = KT // 4
    ngr = ng4 + (KT - ng4 * 4)  # tap groups: ng4 of 4 taps, then single taps
    ncb = (C + CB - 1) // CB
    ngb = (ngr + GB - 1) // GB
    for u in prange(OBn * ncb * ngb):
        gbi = u % ngb
        q = u // ngb
        cb = q % ncb
        ob = q // ncb
        c0 = cb * CB
        c1 = min(C, c0 + CB)
        g0 = gbi * GB
        g1 = min(ngr, g0 + GB)
        for c in range(c0, c1):
            for grp in range(g0, g1):
                if grp < ng4:
                    t0 = grp * 4
                    nt = 4
                else:
                    t0 = ng4 * 4 + (grp - ng4)
                    nt = 1
                for i in range(nt):
                    gr = gacc[ob, c, t0 + i]
                    for o in range(NR):
                        gr[o] = T(0)
        acc = carray(_stack_tile(T), (4, NR))
        for n in range(N):
            gn = gq[n, ob]
            for od in range(OD):
                for oh in range(OH):
                    rowbase = (od * sd * Hp + oh * sh) * Wp
                    pix0 = (od * OH + oh) * OW
                    for c in range(c0, c1):
                        xr = xq[n, c]
                        for grp in range(g0, g1):
                            a0 = acc[0]
                            a1 = acc[1]
                            a2 = acc[2]
                            a3 = acc[3]
                            for o in range(NR):
                                a0[o] = T(0)
                                a1[o] = T(0)
                                a2[o] = T(0)
                                a3[o] = T(0)
                            if grp < ng4:
                                t0 = grp * 4
                                i0 = rowbase + toff[t0]
                                i1 = rowbase + toff[t0 + 1]
                                i2 = rowbase + toff[t0 + 2]
                                i3 = rowbase + toff[t0 + 3]
                                for ow in range(OW):
                                    gv = gn[pix0 + ow]
                                    x0 = xr[i0 + ow * sw]
                                    x1 = xr[i1 + ow * sw]
                                    x2 = xr[i2 + ow * sw]
                                    x3 = xr[i3 + ow * sw]
                                    for o in range(NR):
                                        g_ = gv[o]
                                        a0[o] += x0 * g_
                                        a1[o] += x1 * g_
                                        a2[o] += x2 * g_
                                        a3[o] += x3 * g_
                                r0 = gacc[ob, c, t0]
                                r1 = gacc[ob, c, t0 + 1]
                                r2 = gacc[ob, c, t0 + 2]
                                r3 = gacc[ob, c, t0 + 3]
                                for o in range(NR):
                                    r0[o] += a0[o]
                                    r1[o] += a1[o]
                                    r2[o] += a2[o]
                                    r3[o] += a3[o]
                            else:
                                t0 = ng4 * 4 + (grp - ng4)
                                i0 = rowbase + toff[t0]
                                for ow in range(OW):
                                    gv = gn[pix0 + ow]
                                    x0 = xr[i0 + ow * sw]
                                    for o in range(NR):
                                        a0[o] += x0 * gv[o]
                                r0 = gacc[ob, c, t0]
                                for o in range(NR):
                                    r0[o] += a0[o]


def _epilogue_rows_template(out, bias, a, b):
    """``out`` (R, M, L): ``out[r, m, :] = ACT(out[r, m, :] + bias[m])`` (conv: bias per channel)."""
    R, M, L = out.shape
    for p in prange(R * M):
        r = p // M
        m = p - r * M
        bv = bias[m]
        row = out[r, m]
        for i in range(L):
            row[i] = ACT(row[i] + bv, a, b)


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
            row[i] = ACT(src[i] + bv, a, b)


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
            row[i] = ACT(row[i] + bias[i], a, b)


TEMPLATES = {
    "im2col": _im2col_template,
    "col2im": _col2im_template,
    "direct_fwd": _direct_fwd_template,
    "blocked_fwd": _blocked_fwd_template,
    "blocked_bwd_weight": _blocked_bwd_weight_template,
    "pack_grad": _pack_grad_template,
    "direct_bwd_data": _direct_bwd_data_template,
    "direct_bwd_weight": _direct_bwd_weight_template,
    "epilogue_rows": _epilogue_rows_template,
    "epilogue_cols": _epilogue_cols_template,
    "unpack": _unpack_template,
    "pack": _pack_template,
}
# Blocking of blocked_fwd: NR = 64 output channels per packed weight vector (4 zmm f32), MR = 4
# output pixels per register tile (4 x 64 f32 = 16 of the 32 zmm registers; f64 would need 32 and
# spill, so dispatch uses this kernel for float32 only). The tile is on the stack so that it stays in
# registers over the whole C*K reduction. Design note, interleaved A/B against im2col + OpenBLAS
# (float32, 2 threads, machine shared with 5 other jobs at load ~13: noisy; median of 5-7 rounds of
# im2col_time / kernel_time): 1.88x (3x3 C64 56), 1.83x (7x7 s2 3->64 224), 2.11x (3x3 dil 2 C64
# 56) with FMA contraction, 1.45x (dil 2) without; a 16-pixel x 64-channel accumulator block in heap
# memory, loaded and stored per tap, ran 0.52-0.89x whatever the loop order or contraction (commit
# a6e5ed3; a later A/B is in _dispatch, CONV_BLOCKED_MIN_OUT_CHANNELS).
# FMA contraction ("contract") is enabled for this kernel only (BLOCKED_FASTMATH): its vector loop
# has the constant trip count NR (no scalar remainder whose rounding could differ from the vector
# body), and the serial and parallel builds were checked bitwise equal (tests/conv/test_conv.py).
BLOCK_NR = _tile.NR  # 64
BLOCK_MR = _tile.MR  # 4
BLOCKED_FASTMATH = _tile.FASTMATH  # _config.FASTMATH | {"contract"}
_BLOCKED = ("blocked_fwd", "blocked_bwd_weight", "pack_grad")
_USES_ACT = ("blocked_fwd", "direct_fwd", "epilogue_rows", "epilogue_cols", "unpack")


def _bindings(dt, which, act):
    b = {"NR": BLOCK_NR} if which in _BLOCKED else {}
    if which in _USES_ACT:
        b["ACT"] = act_scalar(Epilogue(act), dt)
    return b


def _name(which, dt, backend, act):
    tag = f"_{Epilogue(act).key}" if which in _USES_ACT else ""
    return f"conv_{which}{tag}_{_jit.SUFFIX[dt]}_{backend}"


KERNELS = KernelSet(
    "conv", TEMPLATES, bind=_bindings, kernel_name=_name,
    fastmath=lambda which, act: BLOCKED_FASTMATH if which in _BLOCKED else None,
)


def _variant(which, epi):
    return epi.name if which in _USES_ACT and epi is not None else None


def name(which, dtype, backend, epi=None):
    return KERNELS.kernel_name(which, dtype, backend, _variant(which, epi))


def call(which, dtype, backend, *args, epi=None):
    KERNELS.run(which, dtype, backend, *args, variant=_variant(which, epi))
