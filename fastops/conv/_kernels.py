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

from .. import _jit, _tile
from .._epilogue import Epilogue, act_scalar
from .._kernelset import KernelSet, UNBOUND
from .._simd import nlanes, vadd, vfma, vload, vload_n, vsplat, vstore, vstore_n

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


@_jit.inline
def _pixel_bases(OD, OH, OW, sd, sh, sw, Hp, Wp):
    """The offset, in a C-contiguous padded input plane (Dp, Hp, Wp), of the first tap of each
    output pixel (flattened over (od, oh, ow)) of a convolution with strides (sd, sh, sw)."""
    pbase = np.empty(OD * OH * OW, np.int64)
    for p in range(OD * OH * OW):
        od = p // (OH * OW)
        r = p - od * (OH * OW)
        oh = r // OW
        ow = r - oh * OW
        pbase[p] = (od * sd * Hp + oh * sh) * Wp + ow * sw
    return pbase


@_jit.inline
def _fma4x4(c, x0, x1, x2, x3, v0, v1, v2, v3):
    """The 4 x 4-vector tile ``c`` plus the rank-1 product of the broadcast scalars ``x0..x3`` and
    the vectors ``v0..v3``: ``c[4 i + j] + x_i * v_j``, 16 explicit FMAs."""
    return (vfma(x0, v0, c[0]), vfma(x0, v1, c[1]), vfma(x0, v2, c[2]), vfma(x0, v3, c[3]),
            vfma(x1, v0, c[4]), vfma(x1, v1, c[5]), vfma(x1, v2, c[6]), vfma(x1, v3, c[7]),
            vfma(x2, v0, c[8]), vfma(x2, v1, c[9]), vfma(x2, v2, c[10]), vfma(x2, v3, c[11]),
            vfma(x3, v0, c[12]), vfma(x3, v1, c[13]), vfma(x3, v2, c[14]), vfma(x3, v3, c[15]))


@_jit.inline
def _fwd_quad(xr, b0, b1, b2, b3, offs, t0, t1, wf, wb, c):
    """The 4-pixel x NR-channel tile ``c`` (16 vectors) plus the taps ``t0..t1-1`` of the pixels
    whose first taps are at ``xr[b0..b3]``: per tap 4 weight vectors (``wf[wb + tt * NR:]``, NR = 4
    vectors), 4 broadcast inputs, 16 FMAs."""
    vl = nlanes(wf)
    for tt in range(t0, t1):
        ot = offs[tt]
        q = wb + tt * 4 * vl  # NR = 4 vectors
        c = _fma4x4(c, vsplat(wf, xr[b0 + ot]), vsplat(wf, xr[b1 + ot]), vsplat(wf, xr[b2 + ot]),
                    vsplat(wf, xr[b3 + ot]), vload(wf, q), vload(wf, q + vl), vload(wf, q + 2 * vl),
                    vload(wf, q + 3 * vl))
    return c


@_jit.inline
def _fma1x4(c, x, v0, v1, v2, v3):
    """One row of :func:`_fma4x4`: ``c[j] + x * v_j``."""
    return (vfma(x, v0, c[0]), vfma(x, v1, c[1]), vfma(x, v2, c[2]), vfma(x, v3, c[3]))


@_jit.inline
def _fwd_one(xr, b0, offs, t0, t1, wf, wb, c):
    """:func:`_fwd_quad` for a single pixel (4 vectors)."""
    vl = nlanes(wf)
    for tt in range(t0, t1):
        q = wb + tt * 4 * vl  # NR = 4 vectors
        c = _fma1x4(c, vsplat(wf, xr[b0 + offs[tt]]), vload(wf, q), vload(wf, q + vl), vload(wf, q + 2 * vl),
                    vload(wf, q + 3 * vl))
    return c


@_jit.inline
def _load16(buf, i0):
    """16 vectors from ``buf[i0:]``, one after another (a saved 4 x NR tile)."""
    vl = nlanes(buf)
    return (vload(buf, i0), vload(buf, i0 + vl), vload(buf, i0 + 2 * vl), vload(buf, i0 + 3 * vl),
            vload(buf, i0 + 4 * vl), vload(buf, i0 + 5 * vl), vload(buf, i0 + 6 * vl), vload(buf, i0 + 7 * vl),
            vload(buf, i0 + 8 * vl), vload(buf, i0 + 9 * vl), vload(buf, i0 + 10 * vl), vload(buf, i0 + 11 * vl),
            vload(buf, i0 + 12 * vl), vload(buf, i0 + 13 * vl), vload(buf, i0 + 14 * vl), vload(buf, i0 + 15 * vl))


@_jit.inline
def _load4(buf, i0):
    vl = nlanes(buf)
    return (vload(buf, i0), vload(buf, i0 + vl), vload(buf, i0 + 2 * vl), vload(buf, i0 + 3 * vl))


@_jit.inline
def _store4(buf, i0, c0, c1, c2, c3):
    vl = nlanes(buf)
    vstore(buf, i0, c0)
    vstore(buf, i0 + vl, c1)
    vstore(buf, i0 + 2 * vl, c2)
    vstore(buf, i0 + 3 * vl, c3)


@_jit.inline
def _store16(buf, i0, c):
    """The 16 vectors of ``c`` to ``buf[i0:]``, one after another."""
    vl = nlanes(buf)
    _store4(buf, i0, c[0], c[1], c[2], c[3])
    _store4(buf, i0 + 4 * vl, c[4], c[5], c[6], c[7])
    _store4(buf, i0 + 8 * vl, c[8], c[9], c[10], c[11])
    _store4(buf, i0 + 12 * vl, c[12], c[13], c[14], c[15])


def _blocked_fwd_template(xp, wp, bias, a, b, sd, sh, sw, dd, dh, dw, PB, TB, out):
    """Register-blocked direct convolution (groups == 1, float32), bias + activation fused.

    ``wp`` (OBn, C, KD, KH, KW, NR): the weight packed OIHW[NR o] (NR = 64 output channels
    innermost, 4 vectors, zero-padded to a multiple of NR, see ``pack_weight_blocked``), read as a
    (C*KD*KH*KW, NR) panel per output-channel block; ``xp`` must be C-contiguous (read through a
    flat view with a per-tap offset table ``offs``). The output pixels of a sample, flattened over
    (od, oh, ow), go in chunks of ``PB`` (a multiple of 4); one prange iteration owns one (n,
    output-channel block, pixel chunk) and writes it alone (deterministic: every sum runs over the
    taps in (c, kd, kh, kw) order whatever the thread count). A chunk is done in groups of MR = 4
    consecutive pixels (a group may span output rows: a 7-pixel row does not leave 3 single
    pixels), then single pixels for the chunk's remainder: the group's 4 x 4 accumulator vectors
    are SSA values (``_simd.Vec``: registers, in the serial build as in the parallel one) through
    ``TB`` taps; per tap 4 broadcast input pixels times 4 weight vectors = 16 explicit FMAs. With
    more than ``TB`` taps the reduction runs in tap chunks, every group of the unit over one chunk
    before the next (that chunk of the packed weight stays in L2 for all of them), the tile saved
    to and reloaded from a per-unit buffer in between: the same operations in the same order as
    one running sum, so the bits do not depend on ``TB``. Bias + activation are applied after the
    last chunk, each output written once."""
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
    P = OD * OH * OW
    pbase = _pixel_bases(OD, OH, OW, sd, sh, sw, Hp, Wp)
    wf = wp.reshape(-1)
    xq = xp.reshape((N, C * Dp * Hp * Wp))
    oq = out.reshape((N, O, P))
    npb = (P + PB - 1) // PB
    nch = (KT + TB - 1) // TB
    for u in prange(N * OBn * npb):
        pb = u % npb
        q = u // npb
        ob = q % OBn
        n = q // OBn
        no = min(NR, O - ob * NR)
        p0 = pb * PB
        npx_u = min(PB, P - p0)
        nq = npx_u // 4
        sav = np.empty(PB * NR if nch > 1 else 1, T)  # the tiles between tap chunks
        scr = np.empty(4 * NR, T)  # the finished tile, pixel-major, for the epilogue
        xr = xq[n]
        wb = ob * KT * NR
        z = vsplat(wf, 0.0)
        for ch in range(nch):
            t0 = ch * TB
            t1 = min(KT, t0 + TB)
            for g in range(nq + (npx_u - nq * 4)):
                if g < nq:
                    pp = p0 + g * 4
                    npx = 4
                else:
                    pp = p0 + nq * 4 + (g - nq)
                    npx = 1
                s = (pp - p0) * NR
                if npx == 4:
                    if ch == 0:
                        c = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
                    else:
                        c = _load16(sav, s)
                    c = _fwd_quad(xr, pbase[pp], pbase[pp + 1], pbase[pp + 2], pbase[pp + 3], offs, t0, t1, wf, wb, c)
                    if ch < nch - 1:
                        _store16(sav, s, c)
                    else:
                        _store16(scr, 0, c)
                else:
                    if ch == 0:
                        c1 = (z, z, z, z)
                    else:
                        c1 = _load4(sav, s)
                    c1 = _fwd_one(xr, pbase[pp], offs, t0, t1, wf, wb, c1)
                    _store4(sav if ch < nch - 1 else scr, s if ch < nch - 1 else 0, c1[0], c1[1], c1[2], c1[3])
                if ch == nch - 1:
                    for o in range(no):
                        bv = bias[ob * NR + o]
                        orow = oq[n, ob * NR + o]
                        for i in range(npx):
                            orow[pp + i] = ACT(scr[i * NR + o] + bv, a, b)


def _pack_weight_template(w, transpose, taps, wp):
    """The weight of the blocked forward kernel: ``w`` (O, C, KT) -> ``wp`` (B, R * J, NR), NR
    channels innermost, zero-padded to a multiple of NR, the J taps ``taps`` (indices into KT) in
    that order. ``transpose`` False: ``wp[ob, c * J + j, i] = w[ob * NR + i, c, taps[j]]`` (the
    convolution's own weight, OIHW[NR o], ``taps`` all of them); True: ``wp[cb, o * J + j, i] =
    w[o, cb * NR + i, taps[j]]`` (the transposed weight of the data gradient as a forward
    convolution; ``taps`` reversed: flipped, and a stride phase's sub-kernel). One pass over the
    weight, in place of NumPy's zero fill and transposed copy (and, for the data gradient, the
    flipped transposed copy and sub-kernel selection before them)."""
    O, C, KT = w.shape
    J = taps.size
    B, RJ = wp.shape[0], wp.shape[1]
    R = RJ // J
    if transpose:
        # unit (cb, o): a contiguous (J, NR) block of wp from w[o, cb*NR:(cb+1)*NR] (contiguous too)
        for u in prange(B * R):
            bb = u // R
            r = u - bb * R
            nc = min(NR, C - bb * NR)
            src = w[r]
            for j in range(J):
                row = wp[bb, r * J + j]
                t = taps[j]
                for i in range(nc):
                    row[i] = src[bb * NR + i, t]
                for i in range(nc, NR):
                    row[i] = T(0)
    else:
        # unit (ob, PACK_ROWS values of c): each of the NR weight rows read along c, written down a
        # column of the unit's (PACK_ROWS * J, NR) block of wp (in L1)
        nrb = (R + PACK_ROWS - 1) // PACK_ROWS
        for u in prange(B * nrb):
            bb = u // nrb
            r0 = (u - bb * nrb) * PACK_ROWS
            r1 = min(R, r0 + PACK_ROWS)
            no = min(NR, O - bb * NR)
            for r in range(r0, r1):
                for j in range(J):
                    row = wp[bb, r * J + j]
                    t = taps[j]
                    for i in range(no):
                        row[i] = w[bb * NR + i, r, t]
                    for i in range(no, NR):
                        row[i] = T(0)


# input channels per unit of pack_weight's forward layout (16 x 9 taps x 64 channels: 36 KiB)
PACK_ROWS = 16


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


@_jit.inline
def _wgrad_quad(xr, pbase, p0, p1, i0, i1, i2, i3, gf, gb, z):
    """The 4-tap x NR-channel weight-gradient tile over the pixels ``p0..p1-1``: per pixel 4
    gradient vectors (``gf[gb + p * NR:]``, NR = 4 vectors), the 4 taps' inputs (at ``xr[pbase[p] +
    i0..i3]``) broadcast, 16 FMAs; summed from zero in increasing p."""
    vl = nlanes(gf)
    c = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for p in range(p0, p1):
        q = gb + p * 4 * vl
        b = pbase[p]
        c = _fma4x4(c, vsplat(gf, xr[b + i0]), vsplat(gf, xr[b + i1]), vsplat(gf, xr[b + i2]),
                    vsplat(gf, xr[b + i3]), vload(gf, q), vload(gf, q + vl), vload(gf, q + 2 * vl),
                    vload(gf, q + 3 * vl))
    return c


@_jit.inline
def _wgrad_one(xr, pbase, p0, p1, i0, gf, gb, z):
    """:func:`_wgrad_quad` for a single tap (4 vectors)."""
    vl = nlanes(gf)
    c = (z, z, z, z)
    for p in range(p0, p1):
        q = gb + p * 4 * vl
        c = _fma1x4(c, vsplat(gf, xr[pbase[p] + i0]), vload(gf, q), vload(gf, q + vl), vload(gf, q + 2 * vl),
                    vload(gf, q + 3 * vl))
    return c


@_jit.inline
def _add4(buf, i0, c0, c1, c2, c3):
    """``buf[i0 : i0 + 4 vectors] += (c0, c1, c2, c3)``."""
    vl = nlanes(buf)
    vstore(buf, i0, vadd(vload(buf, i0), c0))
    vstore(buf, i0 + vl, vadd(vload(buf, i0 + vl), c1))
    vstore(buf, i0 + 2 * vl, vadd(vload(buf, i0 + 2 * vl), c2))
    vstore(buf, i0 + 3 * vl, vadd(vload(buf, i0 + 3 * vl), c3))


def _blocked_bwd_weight_template(xp, gq, sd, sh, sw, dd, dh, dw, KD, KH, KW, OD, OH, OW, CB, GB, PBW, gw):
    """Register-blocked weight gradient (groups == 1, float32): ``gw[o, c, t]`` (``gw`` (O, C, KT), t =
    (kd, kh, kw)) = sum over n and the output pixels of ``xp[n, c, tap t of pixel] * g[n, o, pixel]``.

    ``gq`` is the output gradient packed by ``pack_grad`` (NR channels innermost), ``xp`` the padded
    input (C-contiguous; nothing like im2col is built). One prange unit owns the accumulators of
    one output-channel block, CB input channels and GB groups of 4 taps, and sums them in a fixed
    order (n, then blocks of ``PBW`` output pixels flattened over (od, oh, ow), so that a block
    spans rows of a small map), so the result does not depend on the thread count. The unit's
    (channel, tap) pairs go in groups of 4 (then single pairs): per output pixel 4 NR-wide gradient
    vectors times 4 broadcast input values = 16 explicit FMAs on accumulators that are SSA values
    (``_simd.Vec``: registers in the serial build too; the stack tile this replaced ran the serial
    build at a third of the parallel one's speed per core). A block's partial sums are added to the
    unit's accumulators (NR channels innermost, in L1) once: a two-level sum (block, then blocks),
    with the block's gradient rows read from L1/L2 once per channel and tap group. The unit writes
    its finished block of ``gw`` itself (no packed gradient to unpack afterwards: a NumPy
    transposed copy of 5 ms for a 3x3 512 -> 512 weight before commit 389296e)."""
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
    P = OD * OH * OW
    pbase = _pixel_bases(OD, OH, OW, sd, sh, sw, Hp, Wp)
    PL = Dp * Hp * Wp
    xq = xp.reshape((N, C * PL))
    gf = gq.reshape(-1)
    O = gw.shape[0]
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
        t0 = g0 * 4 if g0 < ng4 else ng4 * 4 + (g0 - ng4)
        t1 = g1 * 4 if g1 < ng4 else ng4 * 4 + (g1 - ng4)
        # the unit's (channel, tap) pairs in order, in groups of 4 (across channels: a 1x1 kernel or
        # the 9th tap of a 3x3 one is not left as single taps), then single pairs: the input offset
        # of each and its accumulator
        nk = (c1 - c0) * (t1 - t0)
        koff = np.empty(nk, np.int64)
        kacc = np.empty(nk, np.int64)
        m = 0
        for c in range(c0, c1):
            for tt in range(t0, t1):
                koff[m] = c * PL + toff[tt]
                kacc[m] = ((c - c0) * KT + tt) * NR
                m += 1
        nk4 = nk // 4
        z = vsplat(gf, 0.0)
        acc = np.empty((c1 - c0) * KT * NR, T)  # this unit's gw[ob*NR:, c0:c1, t0:t1], NR innermost
        for m in range(nk):
            _store4(acc, kacc[m], z, z, z, z)
        for n in range(N):
            gb = (n * OBn + ob) * P * NR
            xr = xq[n]
            for p0 in range(0, P, PBW):
                p1 = min(P, p0 + PBW)
                for k4 in range(nk4):
                    m = k4 * 4
                    s = _wgrad_quad(xr, pbase, p0, p1, koff[m], koff[m + 1], koff[m + 2], koff[m + 3], gf, gb, z)
                    _add4(acc, kacc[m], s[0], s[1], s[2], s[3])
                    _add4(acc, kacc[m + 1], s[4], s[5], s[6], s[7])
                    _add4(acc, kacc[m + 2], s[8], s[9], s[10], s[11])
                    _add4(acc, kacc[m + 3], s[12], s[13], s[14], s[15])
                for m in range(nk4 * 4, nk):
                    s1 = _wgrad_one(xr, pbase, p0, p1, koff[m], gf, gb, z)
                    _add4(acc, kacc[m], s1[0], s1[1], s1[2], s1[3])
        for i in range(min(NR, O - ob * NR)):
            for c in range(c0, c1):
                dst = gw[ob * NR + i, c]
                a0 = (c - c0) * KT * NR + i
                for tt in range(t0, t1):
                    dst[tt] = acc[a0 + tt * NR]


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
    "pack_weight": _pack_weight_template,
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
# output pixels per register tile (4 x 4 vectors = 16 of the 32 zmm registers; f64 would need 32
# and spill, so dispatch uses this kernel for float32 only). The tile is 16 ``_simd.Vec`` SSA values
# with explicit FMAs (``_fwd_quad``), the same code in the serial and the parallel build. Design
# note: the kernel's first tile was a loop over a stack-allocated 4 x 64 array with FMA contraction
# (blocked_bwd_weight's too); LLVM kept it in registers in the parallel build only. One thread
# (the serial build: ``fastops.threads(1)``, and every problem below the parallel threshold), 3x3
# C64 56x56, 4 images, forward / data / weight gradient: 31.1 / 34.9 / 42.3 ms with the stack tile
# (commit 77548e4), 11.4 / 9.2 / 11.0 with the explicit vectors (``python -m fastops.conv.bench
# --threads 1``). A 16-pixel x 64-channel accumulator block in heap memory, loaded and stored per
# tap, ran 0.52-0.89x the register tile (commit a6e5ed3).
BLOCK_NR = _tile.NR  # 64
BLOCK_MR = _tile.MR  # 4
_BLOCKED = ("blocked_fwd", "blocked_bwd_weight", "pack_grad", "pack_weight")
_USES_ACT = ("blocked_fwd", "direct_fwd", "dw_fwd", "epilogue_rows", "epilogue_cols", "unpack")


def _bindings(dt, which, act):
    b = {"NR": BLOCK_NR} if which in _BLOCKED else {}
    if which in _USES_ACT:
        b["ACT"] = act_scalar(Epilogue(act), dt)
    return b


def _name(which, dt, backend, act):
    tag = f"_{Epilogue(act).key}" if which in _USES_ACT else ""
    return f"conv_{which}{tag}_{_jit.SUFFIX[dt]}_{backend}"


KERNELS = KernelSet("conv", TEMPLATES, bind=_bindings, kernel_name=_name)


def _variant(which, epi):
    return epi.name if which in _USES_ACT and epi is not None else None


def name(which, dtype, backend, epi=None):
    return KERNELS.kernel_name(which, dtype, backend, _variant(which, epi))


def call(which, dtype, backend, *args, epi=None):
    KERNELS.run(which, dtype, backend, *args, variant=_variant(which, epi))
