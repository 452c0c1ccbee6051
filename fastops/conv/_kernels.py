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
from .._simd import nlanes, vfma, vload, vload_n, vsplat, vstore, vstore_n

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


# ---- depthwise (groups == C == O, one channel per group; 1-D and 2-D): whole planes as flat rows
#
# The zero-padded plane, flattened (row-major, width Wp), makes every tap (kh, kw) one contiguous
# multiply-add of length LEN = (OH - 1) * Wp + OW over the output computed on a Wp-wide grid
# (columns OW..Wp-1 of each row are garbage, never stored): one long vector loop per tap instead
# of OH short ones (7- and 14-pixel rows leave most of a 16-lane vector idle). A strided plane is
# split into its sh * sw phase planes (padded rows i = r * sh + a, columns j = q * sw + b) of
# Hq x Wq = ceil(Hp / sh) x ceil(Wp / sw); tap (kh, kw) then reads phase ((kh*dh) % sh, (kw*dw) % sw)
# at row / column offset ((kh*dh) // sh, (kw*dw) // sw), again one contiguous run per tap. The
# kernels take the *unpadded* plane (H, W) and the zero padding's top / left amounts (pt, pl) and
# build the padded (phase) planes in a buffer of their own: no padded copy of the whole input is
# made (np.pad of a 1.5 MB input cost 4x the convolution itself: page faults of a fresh buffer),
# and the data gradient is written unpadded. A prange unit takes PCH planes, so its buffers (whose
# padding and garbage positions are the same for every plane) are zeroed once per unit.
# Gradients: the data gradient lays the output gradient out on the same Wq-wide grid with zeros in
# the garbage columns and correlates it with each phase's taps into the (phase) planes of the input
# gradient (the garbage columns add 0 * wv: exact for a finite weight; _core sends non-finite
# weights to the direct kernel). The weight gradient reads g row by row with the last vector of a
# row masked, so a garbage column's 0 * inf never reaches a sum.
# Every output element / weight is one sum in an order fixed by the shapes: any thread count gives
# the same bits. Short rows are copied in masked vectors (_dw_copy), a column stride of 2 as one
# interleaved loop (scalar phase splitting made the stride-2 forward 2x slower).
# Measured (``python -m fastops.conv.bench --depthwise``: MobileNetV2's 3x3 depthwise convs, 4 images,
# float32, 2 threads, one process; ms, this kernel vs the direct kernel forced): forward C32 112
# 0.84 vs 1.80, C96 112 s2 2.47 vs 6.26, C144 56 0.91 vs 1.87, C192 28 0.31 vs 1.06, C576 14 0.35
# vs 1.62, C960 7 0.44 vs 1.25; data gradient C144 56 0.78 vs 2.45, C960 7 0.34 vs 1.20; weight
# gradient C144 56 0.75 vs 2.06, C960 7 0.40 vs 1.09. torch (alone, same day) ran the forwards in
# 1.14, 3.08, 1.03, 0.22, 0.23, 0.14 ms: at 7-28 pixels the per-plane work is short (a 7x7 plane
# is one 128-position block), and channels-in-vector layouts are what closes that gap.


@_jit.inline
def _dw_copy(src, s0, dst, d0, n):
    """``dst[d0 : d0 + n] = src[s0 : s0 + n]`` in vectors, the last one masked (both 1-D
    C-contiguous): short rows (7, 14 pixels) in two or one masked vector instead of scalars."""
    VL = nlanes(dst)
    for o in range(0, n, VL):
        k = min(VL, n - o)
        vstore_n(dst, d0 + o, vload_n(src, s0 + o, k, 0), k)


@_jit.inline
def _dw_fill(plane, sh, sw, pt, pl, Hq, Wq, q):
    """The unpadded ``plane`` (H, W) into the zero-padded phase planes ``q`` (sh * sw * Hq * Wq,),
    phase (a, b) at offset (a * sw + b) * Hq * Wq; q's other positions are left as they are."""
    H, W = plane.shape
    for i in range(H):
        ip = i + pt
        a = ip % sh
        row = plane[i]
        if sw == 2:  # both phases in one loop: an interleaved pair of loads LLVM vectorizes
            de = ((a * 2 + pl % 2) * Hq + ip // sh) * Wq + pl // 2
            do = ((a * 2 + (pl + 1) % 2) * Hq + ip // sh) * Wq + (pl + 1) // 2
            for m in range(W // 2):
                q[de + m] = row[2 * m]
                q[do + m] = row[2 * m + 1]
            if W % 2:
                q[de + W // 2] = row[W - 1]
            continue
        for b in range(sw):
            j0 = (b - pl) % sw  # the first column of phase b
            if j0 < W:
                d0 = ((a * sw + b) * Hq + ip // sh) * Wq + (j0 + pl) // sw
                if sw == 1:
                    _dw_copy(row, 0, q, d0, W)
                else:
                    for j in range((W - j0 + sw - 1) // sw):
                        q[d0 + j] = row[j0 + j * sw]


@_jit.inline
def _dw_grid(src, OH, OW, Wq, gq, g0):
    """``src`` (OH, OW) into the Wq-wide grid ``gq`` from ``g0`` on (its garbage columns left as
    they are)."""
    for oh in range(OH):
        _dw_copy(src[oh], 0, gq, g0 + oh * Wq, OW)


@_jit.inline
def _dw_tap(kh, kw, sh, sw, dh, dw, Hq, Wq):
    """``(phase, offset in the phase plane)`` of tap (kh, kw): phase ((kh*dh) % sh, (kw*dw) % sw)
    as ``a * sw + b``, at row (kh*dh) // sh and column (kw*dw) // sw of that Hq x Wq plane."""
    return ((kh * dh) % sh) * sw + (kw * dw) % sw, ((kh * dh) // sh) * Wq + (kw * dw) // sw


# the register block of the depthwise forward / data gradient: DW_VECS vectors (128 float32 / 64
# float64 grid positions) summed over all taps in registers, stored once
DW_VECS = 8
DW_SLACK = DW_VECS * 16  # a block's grid positions at most (float32): the buffers' slack at the end


@_jit.inline
def _dw_taps(src, offs, wts, t0, t1, n, dst, d0):
    """``dst[d0 + i] = sum over t0 <= t < t1 of wts[t] * src[offs[t] + i]`` for ``i`` below ``n``
    rounded up to a whole block of DW_VECS vectors (``src`` and ``dst`` 1-D C-contiguous, large
    enough for the rounded block). The block's accumulators stay in registers over the taps; each
    lane is one FMA chain in tap order (the same instructions for every element and thread).
    Eight independent chains: four left the loop bound by the FMA latency (1 FMA per cycle)."""
    VL = nlanes(src)
    for i0 in range(0, n, 8 * VL):
        a0 = vsplat(src, 0)
        a1 = a0
        a2 = a0
        a3 = a0
        a4 = a0
        a5 = a0
        a6 = a0
        a7 = a0
        for t in range(t0, t1):
            wv = vsplat(src, wts[t])
            j = offs[t] + i0
            a0 = vfma(wv, vload(src, j), a0)
            a1 = vfma(wv, vload(src, j + VL), a1)
            a2 = vfma(wv, vload(src, j + 2 * VL), a2)
            a3 = vfma(wv, vload(src, j + 3 * VL), a3)
            a4 = vfma(wv, vload(src, j + 4 * VL), a4)
            a5 = vfma(wv, vload(src, j + 5 * VL), a5)
            a6 = vfma(wv, vload(src, j + 6 * VL), a6)
            a7 = vfma(wv, vload(src, j + 7 * VL), a7)
        j = d0 + i0
        vstore(dst, j, a0)
        vstore(dst, j + VL, a1)
        vstore(dst, j + 2 * VL, a2)
        vstore(dst, j + 3 * VL, a3)
        vstore(dst, j + 4 * VL, a4)
        vstore(dst, j + 5 * VL, a5)
        vstore(dst, j + 6 * VL, a6)
        vstore(dst, j + 7 * VL, a7)


def _dw_fwd_template(x, w, bias, a, b, sh, sw, dh, dw, pt, pl, Hp, Wp, PCH, out):
    """Depthwise forward, bias + activation fused: ``x`` (N, C, 1, H, W) zero-padded by (pt, pl)
    to (Hp, Wp), ``w`` (C, 1, 1, KH, KW), ``out`` (N, C, 1, OH, OW); PCH planes per prange unit."""
    N, C, _, OH, OW = out.shape
    KH, KW = w.shape[3], w.shape[4]
    KT = KH * KW
    Hq = (Hp + sh - 1) // sh
    Wq = (Wp + sw - 1) // sw
    LEN = (OH - 1) * Wq + OW
    SZ = sh * sw * Hq * Wq
    B = DW_SLACK
    offs = np.empty(KT, np.int64)  # tap (kh, kw): its run's start in the phase planes
    for kh in range(KH):
        for kw in range(KW):
            f, d = _dw_tap(kh, kw, sh, sw, dh, dw, Hq, Wq)
            offs[kh * KW + kw] = f * Hq * Wq + d
    wc = w.reshape((C, KT))
    P = N * C
    for u in prange((P + PCH - 1) // PCH):
        q = np.zeros(SZ + B, dtype=T)  # + B: the last block's loads stay inside
        acc = np.empty(LEN + B, dtype=T)
        for p in range(u * PCH, min(P, u * PCH + PCH)):
            n = p // C
            c = p - n * C
            _dw_fill(x[n, c, 0], sh, sw, pt, pl, Hq, Wq, q)
            _dw_taps(q, offs, wc[c], 0, KT, LEN, acc, 0)
            bv = bias[c]
            for i in range(LEN):  # the epilogue over the whole grid (one vectorized loop)
                acc[i] = ACT(acc[i] + bv, a, b)
            for oh in range(OH):
                _dw_copy(acc, oh * Wq, out[n, c, 0, oh], 0, OW)


def _dw_bwd_data_template(g, w, sh, sw, dh, dw, pt, pl, Hp, Wp, PCH, gx):
    """Depthwise data gradient: ``gx`` (N, C, 1, H, W), the gradient of the unpadded input (every
    element written), of an input zero-padded by (pt, pl) to (Hp, Wp); ``g`` (N, C, 1, OH, OW);
    ``w`` finite; PCH planes per prange unit. Each phase plane of the padded input's gradient is a
    correlation of the output gradient's grid (after a zero margin of M positions) with that
    phase's taps: position j gets ``w[t] * grid[j - d_t]``, d_t = tap t's row / column offset in
    the phase plane; a read across a row start lands in the previous row's garbage columns, zero
    (OW + d_t's column <= Wq)."""
    N, C, _, H, W = gx.shape
    OH, OW = g.shape[3], g.shape[4]
    KH, KW = w.shape[3], w.shape[4]
    KT = KH * KW
    Hq = (Hp + sh - 1) // sh
    Wq = (Wp + sw - 1) // sw
    S = sh * sw
    HW = Hq * Wq
    B = DW_SLACK
    # the taps grouped by phase: phase f's taps are order[start[f]:start[f + 1]], in (kh, kw) order
    start = np.zeros(S + 1, np.int64)
    for kh in range(KH):
        for kw in range(KW):
            start[_dw_tap(kh, kw, sh, sw, dh, dw, Hq, Wq)[0] + 1] += 1
    for f in range(S):
        start[f + 1] += start[f]
    order = np.empty(KT, np.int64)
    d = np.empty(KT, np.int64)
    fill = start[:S].copy()
    M = 0
    for kh in range(KH):
        for kw in range(KW):
            f, dk = _dw_tap(kh, kw, sh, sw, dh, dw, Hq, Wq)
            order[fill[f]] = kh * KW + kw
            d[fill[f]] = dk
            M = max(M, dk)
            fill[f] += 1
    offs = np.empty(KT, np.int64)
    for t in range(KT):
        offs[t] = M - d[t]
    wc = w.reshape((C, KT))
    P = N * C
    for u in prange((P + PCH - 1) // PCH):
        gq = np.zeros(M + HW + B, dtype=T)  # margin, the Wq-wide grid (garbage columns 0), zeros
        q = np.empty(S * HW + B, dtype=T)
        wt = np.empty(KT, dtype=T)
        for p in range(u * PCH, min(P, u * PCH + PCH)):
            n = p // C
            c = p - n * C
            _dw_grid(g[n, c, 0], OH, OW, Wq, gq, M)
            wr = wc[c]
            for t in range(KT):
                wt[t] = wr[order[t]]
            for f in range(S):  # in order: a block past a phase's end is overwritten by the next phase
                _dw_taps(gq, offs, wt, start[f], start[f + 1], HW, q, f * HW)
            plane = gx[n, c, 0]
            for i in range(H):
                ip = i + pt
                ph = ip % sh
                row = plane[i]
                if sw == 2:  # both phases in one loop (an interleaved pair of stores)
                    se = ((ph * 2 + pl % 2) * Hq + ip // sh) * Wq + pl // 2
                    so = ((ph * 2 + (pl + 1) % 2) * Hq + ip // sh) * Wq + (pl + 1) // 2
                    for m in range(W // 2):
                        row[2 * m] = q[se + m]
                        row[2 * m + 1] = q[so + m]
                    if W % 2:
                        row[W - 1] = q[se + W // 2]
                    continue
                for pw in range(sw):
                    j0 = (pw - pl) % sw
                    if j0 < W:
                        s0 = ((ph * sw + pw) * Hq + ip // sh) * Wq + (j0 + pl) // sw
                        if sw == 1:
                            _dw_copy(q, s0, row, 0, W)
                        else:
                            for j in range((W - j0 + sw - 1) // sw):
                                row[j0 + j * sw] = q[s0 + j]


DW_WEIGHT_TAPS = 5  # taps per pass of the depthwise weight gradient (one vector accumulator each)


def _dw_bwd_weight_template(x, g, sh, sw, dh, dw, pt, pl, Hp, Wp, NB, gw):
    """Depthwise weight gradient: ``gw`` (C, 1, 1, KH, KW); ``x`` (N, C, 1, H, W) zero-padded by
    (pt, pl) to (Hp, Wp), ``g`` (N, C, 1, OH, OW). One prange unit per channel. The batch in
    chunks of NB images, whose padded (phase) planes are built once per chunk; then the taps in
    groups of DW_WEIGHT_TAPS, each group one pass over the chunk with one vector accumulator per
    tap in registers (kept in memory between chunks): per output row, each vector of g (the row's
    last one masked, so no garbage column enters a sum) times the tap's run of the phase plane.
    Lane l of a tap's accumulator sums the row positions = l mod VL in (n, oh, ow) order; the
    lanes are added in index order: a fixed order, whatever the thread count."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = g.shape[3], g.shape[4]
    KH, KW = gw.shape[3], gw.shape[4]
    KT = KH * KW
    Hq = (Hp + sh - 1) // sh
    Wq = (Wp + sw - 1) // sw
    SZ = sh * sw * Hq * Wq
    NG = (KT + DW_WEIGHT_TAPS - 1) // DW_WEIGHT_TAPS
    offs = np.empty(NG * DW_WEIGHT_TAPS, np.int64)  # as dw_fwd's; the last group's spare taps read tap 0
    for t in range(NG * DW_WEIGHT_TAPS):
        f, d = _dw_tap((t // KW) if t < KT else 0, (t % KW) if t < KT else 0, sh, sw, dh, dw, Hq, Wq)
        offs[t] = f * Hq * Wq + d
    for c in prange(C):
        q = np.zeros(min(NB, N) * SZ, dtype=T)
        VL = nlanes(q)
        accm = np.zeros(NG * DW_WEIGHT_TAPS * VL, dtype=T)
        for n0 in range(0, N, NB):
            nb = min(NB, N - n0)
            for i in range(nb):
                _dw_fill(x[n0 + i, c, 0], sh, sw, pt, pl, Hq, Wq, q[i * SZ:])
            for tg in range(NG):
                t0 = tg * DW_WEIGHT_TAPS
                m0 = t0 * VL
                a0 = vload(accm, m0)
                a1 = vload(accm, m0 + VL)
                a2 = vload(accm, m0 + 2 * VL)
                a3 = vload(accm, m0 + 3 * VL)
                a4 = vload(accm, m0 + 4 * VL)
                for i in range(nb):
                    gp = g[n0 + i, c, 0]
                    o0 = offs[t0] + i * SZ
                    o1 = offs[t0 + 1] + i * SZ
                    o2 = offs[t0 + 2] + i * SZ
                    o3 = offs[t0 + 3] + i * SZ
                    o4 = offs[t0 + 4] + i * SZ
                    for oh in range(OH):
                        grow = gp[oh]
                        for o in range(0, OW, VL):
                            k = min(VL, OW - o)
                            gv = vload_n(grow, o, k, 0)
                            j = oh * Wq + o
                            a0 = vfma(gv, vload_n(q, o0 + j, k, 0), a0)
                            a1 = vfma(gv, vload_n(q, o1 + j, k, 0), a1)
                            a2 = vfma(gv, vload_n(q, o2 + j, k, 0), a2)
                            a3 = vfma(gv, vload_n(q, o3 + j, k, 0), a3)
                            a4 = vfma(gv, vload_n(q, o4 + j, k, 0), a4)
                vstore(accm, m0, a0)
                vstore(accm, m0 + VL, a1)
                vstore(accm, m0 + 2 * VL, a2)
                vstore(accm, m0 + 3 * VL, a3)
                vstore(accm, m0 + 4 * VL, a4)
        for kh in range(KH):
            for kw in range(KW):
                m0 = (kh * KW + kw) * VL
                sacc = T(0)
                for l in range(VL):
                    sacc += accm[m0 + l]
                gw[c, 0, 0, kh, kw] = sacc


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
    "dw_fwd": _dw_fwd_template,
    "dw_bwd_data": _dw_bwd_data_template,
    "dw_bwd_weight": _dw_bwd_weight_template,
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
_USES_ACT = ("blocked_fwd", "direct_fwd", "dw_fwd", "epilogue_rows", "epilogue_cols", "unpack")


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
