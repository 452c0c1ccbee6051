"""Kernel templates of ``scaled_dot_product_attention`` (FlashAttention-2 style, in Numba loops).

Bound per kernel by the kernel set of ``sdpa`` (``fastops._kernelset``): ``T`` (scalar type),
``EXP`` (``_math.exp32/64``), ``U`` (``_random.uniform32/64``), ``BM`` (query rows per task),
``BN`` (keys per block).

Layout: ``q3`` (B, L, E), ``k3`` (Bk, S, E), ``v3`` (Bk, S, Ev), all C-contiguous; ``kvidx[b]`` is
the key/value batch of output batch ``b`` (broadcasting and grouped-query heads), ``mask3``
(Bm, L, S) an additive float mask (0 / -inf for a boolean one) with ``midx[b]`` its batch, read
only when ``has_mask``. ``causal``: key ``j`` takes part in row ``i`` iff ``j <= i`` (top-left).
Dropout (``p > 0``): probability ``P[b, i, j]`` is kept iff ``U(key, (b * L + i) * S + j) >= p``
and then multiplied by ``1 / (1 - p)`` (0 when p == 1).

Score blocks are products ``q_i . k_j`` over E: written as "for e: s[:] += q[i, e] * KT[e, :]"
over a K^T block packed contiguous (E, BN), so the innermost loop runs over BN contiguous keys
with q as a broadcast scalar, and vectorizes (no reduction inside the innermost loop: fastmath
has no reassoc). The same shape serves P.V (innermost over Ev, rows of V contiguous), dP = dO.V^T
(V^T block packed) and the gradient products. Reductions over a row of scores (max, sum) use the
lane sums of ``fastops._simd``: fixed order, whatever the thread count.

Determinism: the forward and the dQ kernel give each task its own rows of the output; the dK/dV
kernel gives each task its own keys and walks the query batches that map to its key batch
(``inv_ptr``/``inv_b``, CSR, increasing ``b``) and their rows in a fixed order. No task writes
another's output: results are bitwise identical for any thread count.
"""
import math

import numpy as np
from numba import prange

from .. import _math, _random

from .._simd import row_max, row_sum
from ._vec import block_dot, rows_axpy
from .._kernelset import UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = BM = BN = EXP = U = UNBOUND


def _fwd_template(q3, k3, v3, kvidx, mask3, midx, has_mask, causal, scale, p, key, out3, lse2):
    B, L, E = q3.shape
    S = k3.shape[1]
    Ev = v3.shape[2]
    nqb = (L + BM - 1) // BM
    keep = T(0) if p >= T(1) else T(1) / (T(1) - p)
    for t in prange(B * nqb):
        b = t // nqb
        i0 = (t - b * nqb) * BM
        mr = min(BM, L - i0)
        kb = kvidx[b]
        mb = midx[b]
        kt = np.zeros((E, BN), q3.dtype)  # packed K^T block
        s = np.zeros(BN, q3.dtype)  # one row of scores
        qs = np.empty(E, q3.dtype)
        acc = np.zeros((BM, Ev), q3.dtype)
        mrow = np.full(BM, -np.inf, q3.dtype)
        lrow = np.zeros(BM, q3.dtype)
        j_end = S
        if causal:
            j_end = min(S, i0 + mr)
        for j0 in range(0, j_end, BN):
            n = min(BN, j_end - j0)
            for c in range(n):
                kr = k3[kb, j0 + c]
                for e in range(E):
                    kt[e, c] = kr[e]
            for r in range(mr):
                i = i0 + r
                nv = n
                if causal:
                    nv = min(n, i - j0 + 1)
                    if nv <= 0:
                        continue
                qr = q3[b, i]
                for e in range(E):
                    qs[e] = qr[e] * scale
                block_dot(kt, qs, s)
                sv = s[:nv]
                if has_mask:
                    mrw = mask3[mb, i, j0 : j0 + nv]
                    for c in range(nv):
                        sv[c] += mrw[c]
                m_old = mrow[r]
                mx = row_max(sv)
                m_new = mx if mx > m_old else m_old
                if m_new == -np.inf:  # every key so far masked out, or NaN scores (row_max skips NaN)
                    for c in range(nv):
                        if sv[c] != sv[c]:
                            lrow[r] = T(np.nan)  # stays NaN: the row's output is NaN
                            break
                    continue
                alpha = EXP(m_old - m_new)
                for c in range(nv):
                    sv[c] = EXP(sv[c] - m_new)
                lrow[r] = lrow[r] * alpha + row_sum(sv)
                mrow[r] = m_new
                ar = acc[r]
                if alpha != T(1):
                    for d in range(Ev):
                        ar[d] *= alpha
                if p > T(0):
                    base = (np.int64(b) * L + i) * S + j0
                    for c in range(nv):
                        sv[c] = sv[c] * keep if U(key, base + c) >= p else T(0)
                rows_axpy(ar, sv, v3[kb], j0, nv)
        for r in range(mr):
            i = i0 + r
            orow = out3[b, i]
            ar = acc[r]
            if lrow[r] > T(0):
                inv = T(1) / lrow[r]
                for d in range(Ev):
                    orow[d] = ar[d] * inv
                lse2[b, i] = mrow[r] + T(math.log(lrow[r]))
            elif lrow[r] != lrow[r]:  # a NaN score (NaN or inf in q or k, inf - inf): NaN row
                for d in range(Ev):
                    orow[d] = T(np.nan)
                lse2[b, i] = T(np.nan)  # the backward's P and gradients: NaN
            else:  # fully masked row: output 0 (as PyTorch's CPU kernel), gradients 0
                for d in range(Ev):
                    orow[d] = T(0)
                lse2[b, i] = np.inf


def _dq_template(q3, k3, v3, kvidx, mask3, midx, has_mask, causal, scale, p, key,
                 lse2, dd2, go3, dq3, dm3, want_dm):
    """dQ (and dS into ``dm3`` when ``want_dm``): one task per (b, block of BM query rows)."""
    B, L, E = q3.shape
    S = k3.shape[1]
    Ev = v3.shape[2]
    nqb = (L + BM - 1) // BM
    keep = T(0) if p >= T(1) else T(1) / (T(1) - p)
    for t in prange(B * nqb):
        b = t // nqb
        i0 = (t - b * nqb) * BM
        mr = min(BM, L - i0)
        kb = kvidx[b]
        mb = midx[b]
        kt = np.zeros((E, BN), q3.dtype)
        vt = np.zeros((Ev, BN), q3.dtype)
        s = np.zeros(BN, q3.dtype)
        dp = np.zeros(BN, q3.dtype)
        qs = np.empty(E, q3.dtype)
        acc = np.zeros((BM, E), q3.dtype)
        j_end = S
        if causal:
            j_end = min(S, i0 + mr)
        for j0 in range(0, j_end, BN):
            n = min(BN, j_end - j0)
            for c in range(n):
                kr = k3[kb, j0 + c]
                for e in range(E):
                    kt[e, c] = kr[e]
                vr = v3[kb, j0 + c]
                for d in range(Ev):
                    vt[d, c] = vr[d]
            for r in range(mr):
                i = i0 + r
                nv = n
                if causal:
                    nv = min(n, i - j0 + 1)
                    if nv <= 0:
                        continue
                lse = lse2[b, i]
                if lse == np.inf:
                    continue  # fully masked row: P = 0
                qr = q3[b, i]
                for e in range(E):
                    qs[e] = qr[e] * scale
                block_dot(kt, qs, s)
                gr = go3[b, i]
                block_dot(vt, gr, dp)
                if has_mask:
                    mrw = mask3[mb, i, j0 : j0 + nv]
                    for c in range(nv):
                        s[c] += mrw[c]
                di = dd2[b, i]
                if p > T(0):
                    base = (np.int64(b) * L + i) * S + j0
                    for c in range(nv):
                        dp[c] = dp[c] * keep if U(key, base + c) >= p else T(0)
                for c in range(nv):  # dS = P * (dP - D), in s
                    s[c] = EXP(s[c] - lse) * (dp[c] - di)
                if want_dm:
                    dmr = dm3[b, i, j0 : j0 + nv]
                    for c in range(nv):
                        dmr[c] = s[c]
                rows_axpy(acc[r], s, k3[kb], j0, nv)
        for r in range(mr):
            dqr = dq3[b, i0 + r]
            ar = acc[r]
            for e in range(E):
                dqr[e] = ar[e] * scale


def _dkv_template(q3, k3, v3, inv_ptr, inv_b, mask3, midx, has_mask, causal, scale, p, key,
                  lse2, dd2, go3, dk3, dv3):
    """dK, dV: one task per (key batch, block of BN keys); query batches and rows in fixed order.

    The probabilities (dropped) and dS of a chunk of BM query rows are stored transposed (BN, BM),
    then dV[c] += P^T[c] . dO[rows] and dK[c] += dS^T[c] . q[rows] run as register-accumulated
    products over the chunk (``rows_axpy``) instead of one rank-1 row update per (row, key), which
    reloaded and stored the accumulators for every query row."""
    B, L, E = q3.shape
    Bk, S, _ = k3.shape
    Ev = v3.shape[2]
    nkb = (S + BN - 1) // BN
    keep = T(0) if p >= T(1) else T(1) / (T(1) - p)
    for t in prange(Bk * nkb):
        kb = t // nkb
        j0 = (t - kb * nkb) * BN
        n = min(BN, S - j0)
        kt = np.zeros((E, BN), q3.dtype)
        vt = np.zeros((Ev, BN), q3.dtype)
        s = np.zeros(BN, q3.dtype)
        dp = np.zeros(BN, q3.dtype)
        qs = np.empty(E, q3.dtype)
        pt = np.zeros((BN, BM), q3.dtype)
        dst = np.zeros((BN, BM), q3.dtype)
        ak = np.zeros((BN, E), q3.dtype)
        av = np.zeros((BN, Ev), q3.dtype)
        for c in range(n):
            kr = k3[kb, j0 + c]
            for e in range(E):
                kt[e, c] = kr[e]
            vr = v3[kb, j0 + c]
            for d in range(Ev):
                vt[d, c] = vr[d]
        i_start = 0
        if causal:
            i_start = min(j0, L)  # rows i < j0 see none of these keys
        for ib in range(inv_ptr[kb], inv_ptr[kb + 1]):
            b = inv_b[ib]
            mb = midx[b]
            for i0 in range(i_start, L, BM):
                mr = min(BM, L - i0)
                for c in range(n):
                    ptr = pt[c]
                    dsr = dst[c]
                    for r in range(BM):
                        ptr[r] = T(0)
                        dsr[r] = T(0)
                for r in range(mr):
                    i = i0 + r
                    nv = n
                    if causal:
                        nv = min(n, i - j0 + 1)
                    lse = lse2[b, i]
                    if lse == np.inf:
                        continue
                    qr = q3[b, i]
                    for e in range(E):
                        qs[e] = qr[e] * scale
                    block_dot(kt, qs, s)
                    gr = go3[b, i]
                    block_dot(vt, gr, dp)
                    if has_mask:
                        mrw = mask3[mb, i, j0 : j0 + nv]
                        for c in range(nv):
                            s[c] += mrw[c]
                    di = dd2[b, i]
                    for c in range(nv):
                        s[c] = EXP(s[c] - lse)  # P
                    if p > T(0):
                        base = (np.int64(b) * L + i) * S + j0
                        for c in range(nv):
                            kc = keep if U(key, base + c) >= p else T(0)
                            pt[c, r] = s[c] * kc  # the dropped P feeds dV
                            dst[c, r] = s[c] * (dp[c] * kc - di)
                    else:
                        for c in range(nv):
                            pt[c, r] = s[c]
                            dst[c, r] = s[c] * (dp[c] - di)
                for c in range(n):
                    rows_axpy(av[c], pt[c], go3[b], i0, mr)
                    rows_axpy(ak[c], dst[c], q3[b], i0, mr)
        for c in range(n):
            dkr = dk3[kb, j0 + c]
            akr = ak[c]
            for e in range(E):
                dkr[e] = akr[e] * scale
            dvr = dv3[kb, j0 + c]
            avr = av[c]
            for d in range(Ev):
                dvr[d] = avr[d]


def bindings(dt):
    """The globals every attention kernel of ``dt`` binds (blocked kernels here, tiled in
    ``_tiled``, BLAS-path row kernels in ``_rows``): EXP and the dropout generator U (T comes with
    every kernel set)."""
    return dict(EXP=_math.exp32 if dt == np.float32 else _math.exp64, U=_random.UNIFORM[dt])
