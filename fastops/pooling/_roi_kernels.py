"""Kernels of the RoI ops (``roi.py``: validation, box geometry, dispatch and the ops).

How the kernels work. Bilinear sampling is separable: a bin of ``roi_align`` is
``sum_r wy[r] * sum_c wx[c] * x[r, c] / count``, where ``wy`` (one short run of rows per bin) and
``wx`` (columns) add up the bilinear weights of the bin's sample rows/columns. The weights are
built once per box (``_align_axis``, shared by every channel); the forward then reduces each needed
row of the channel plane into a contiguous scratch row (vectorised inner loop over the box's
columns) and the columns from there. That costs ``PH * (grid_h + 1) * box_width`` multiply-adds
per (box, channel) instead of ``PH * PW * grid_h * grid_w * 4`` gathers.

Loop order and determinism: forward and backward both run in parallel over the (image, channel)
planes of the input, each plane visiting the boxes of its image in box order. A plane (10 KB for
50 x 50 float32) then stays in L1 while all its boxes read it. Design note: on roi_align (8, 256,
50, 50) with 512 boxes, 7 x 7, this order ran the forward in 206 ms against 650 ms for the same
kernels in torchvision's (box, channel) order, which jumps to another plane at every step (one
loaded machine, the op alone; commit 1f5dca8). ``python -m fastops.tools.roi_torchvision_proxy``
times this forward against a serial Numba proxy of torchvision's algorithm on that case.
Every output element and every gradient element is written by exactly one iteration, in a fixed
order: results are bitwise the same for any thread count, and the backward's scatter has no race. (A row pass in fixed 8-wide chunks, for box
widths below the AVX-512 vector loop's trip count, measured no faster: 224 ms with it vs 202 ms
without, serial; commit 0ce9f8c.)
"""
import numpy as np
from numba import prange

from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

_FLT_MAX = 3.4028234663852886e38


def _align_axis_template(c1, c2, scale, offset, force1, ratio, P, L):
    """Per box and bin along one axis: grid size, first row, number of rows and their summed
    bilinear weights (torchvision's sample positions and clamping rules)."""
    K = c1.shape[0]
    grid = np.empty(K, np.int64)
    lo = np.zeros((K, P), np.int64)
    num = np.zeros((K, P), np.int64)
    for k in range(K):
        s = c1[k] * scale - offset
        ext = (c2[k] * scale - offset) - s
        if force1 and ext < T(1):
            ext = T(1)
        b = ext / T(P)
        g = ratio
        if ratio <= 0:
            g = np.int64(np.ceil(b))
        grid[k] = g
        for p in range(P):
            mn = L
            mx = -1
            for i in range(g):
                y = s + T(p) * b + T(i + 0.5) * b / T(g)
                if y < T(-1) or y > T(L):
                    continue
                if y <= T(0):
                    y = T(0)
                yl = np.int64(y)
                yh = yl + 1
                if yl >= L - 1:
                    yl = L - 1
                    yh = L - 1
                mn = min(mn, yl)
                mx = max(mx, yh)
            if mx >= 0:
                lo[k, p] = mn
                num[k, p] = mx - mn + 1
    M = max(np.int64(1), num.max()) if K > 0 else np.int64(1)
    w = np.zeros((K, P, M), T)
    for k in range(K):
        s = c1[k] * scale - offset
        ext = (c2[k] * scale - offset) - s
        if force1 and ext < T(1):
            ext = T(1)
        b = ext / T(P)
        g = grid[k]
        for p in range(P):
            base = lo[k, p]
            for i in range(g):
                y = s + T(p) * b + T(i + 0.5) * b / T(g)
                if y < T(-1) or y > T(L):
                    continue
                if y <= T(0):
                    y = T(0)
                yl = np.int64(y)
                yh = yl + 1
                if yl >= L - 1:
                    yl = L - 1
                    yh = L - 1
                    y = T(yl)
                ly = y - T(yl)
                w[k, p, yl - base] += T(1) - ly
                w[k, p, yh - base] += ly
    return grid, lo, num, w


def _align_fwd_template(x, order, bstart, ylo, yn, wy, xlo, xn, wx, xb, xe, cnt, out):
    N, C, H, W = x.shape
    PH, PW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        img = p // C
        c = p - img * C
        plane = x[img, c]
        tmp = np.empty(max(W, 1), T)
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            b0 = xb[k]
            L = xe[k] - b0
            o = out[k, c]
            for ph in range(PH):
                ny = yn[k, ph]
                if ny == 0 or L <= 0:
                    for pw in range(PW):
                        o[ph, pw] = T(0)
                    continue
                for i in range(L):
                    tmp[i] = T(0)
                r0 = ylo[k, ph]
                wrow = wy[k, ph]
                for j in range(ny):
                    wv = wrow[j]
                    src = plane[r0 + j, b0 : b0 + L]
                    for i in range(L):  # contiguous, vectorised
                        tmp[i] += wv * src[i]
                for pw in range(PW):
                    off = xlo[k, pw] - b0
                    wc = wx[k, pw]
                    s = T(0)
                    for j in range(xn[k, pw]):
                        s += wc[j] * tmp[off + j]
                    o[ph, pw] = s / cnt[k]


def _align_bwd_template(g, order, bstart, ylo, yn, wy, xlo, xn, wx, xb, xe, cnt, gx):
    N, C, H, W = gx.shape
    PH, PW = g.shape[2], g.shape[3]
    for p in prange(N * C):
        img = p // C
        c = p - img * C
        gp = gx[img, c]
        for h in range(H):
            for w in range(W):
                gp[h, w] = T(0)
        tmp = np.empty(max(W, 1), T)
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            b0 = xb[k]
            L = xe[k] - b0
            if L <= 0:
                continue
            gk = g[k, c]
            for ph in range(PH):
                ny = yn[k, ph]
                if ny == 0:
                    continue
                for i in range(L):
                    tmp[i] = T(0)
                for pw in range(PW):
                    gv = gk[ph, pw] / cnt[k]
                    off = xlo[k, pw] - b0
                    wc = wx[k, pw]
                    for j in range(xn[k, pw]):
                        tmp[off + j] += gv * wc[j]
                r0 = ylo[k, ph]
                wrow = wy[k, ph]
                for j in range(ny):
                    wv = wrow[j]
                    dst = gp[r0 + j, b0 : b0 + L]
                    for i in range(L):  # contiguous, vectorised
                        dst[i] += wv * tmp[i]


def _ps_align_fwd_template(x, order, bstart, ylo, yn, wy, xlo, xn, wx, cnt, out):
    N, C, H, W = x.shape
    PH, PW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        img = p // C
        ci = p - img * C
        co = ci // (PH * PW)
        r = ci - co * PH * PW
        ph = r // PW
        pw = r - ph * PW
        plane = x[img, ci]
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            r0 = ylo[k, ph]
            wrow = wy[k, ph]
            x0 = xlo[k, pw]
            wc = wx[k, pw]
            nx = xn[k, pw]
            s = T(0)
            for j in range(yn[k, ph]):
                row = plane[r0 + j, x0 : x0 + nx]
                a = T(0)
                for i in range(nx):
                    a += wc[i] * row[i]
                s += wrow[j] * a
            out[k, co, ph, pw] = s / cnt[k]


def _ps_align_bwd_template(g, order, bstart, ylo, yn, wy, xlo, xn, wx, cnt, gx):
    N, C, H, W = gx.shape
    PH, PW = g.shape[2], g.shape[3]
    for p in prange(N * C):
        img = p // C
        ci = p - img * C
        co = ci // (PH * PW)
        r = ci - co * PH * PW
        ph = r // PW
        pw = r - ph * PW
        gp = gx[img, ci]
        for h in range(H):
            for w in range(W):
                gp[h, w] = T(0)
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            gv = g[k, co, ph, pw] / cnt[k]
            r0 = ylo[k, ph]
            x0 = xlo[k, pw]
            nx = xn[k, pw]
            wc = wx[k, pw]
            for j in range(yn[k, ph]):
                wv = gv * wy[k, ph, j]
                dst = gp[r0 + j, x0 : x0 + nx]
                for i in range(nx):
                    dst[i] += wv * wc[i]


def _pool_fwd_template(x, order, bstart, hs, he, ws, we, out):
    N, C, H, W = x.shape
    PH, PW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        img = p // C
        c = p - img * C
        plane = x[img, c]
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            for ph in range(PH):
                for pw in range(PW):
                    m = T(0)
                    if he[k, ph] > hs[k, ph] and we[k, pw] > ws[k, pw]:
                        m = T(-_FLT_MAX)  # torchvision starts from -FLT_MAX
                        for h in range(hs[k, ph], he[k, ph]):
                            row = plane[h]
                            for w in range(ws[k, pw], we[k, pw]):
                                if row[w] > m:
                                    m = row[w]
                    out[k, c, ph, pw] = m


def _pool_bwd_template(x, g, order, bstart, hs, he, ws, we, gx):
    N, C, H, W = gx.shape
    PH, PW = g.shape[2], g.shape[3]
    for p in prange(N * C):
        img = p // C
        c = p - img * C
        gp = gx[img, c]
        plane = x[img, c]
        for h in range(H):
            for w in range(W):
                gp[h, w] = T(0)
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            for ph in range(PH):
                for pw in range(PW):
                    m = T(-_FLT_MAX)
                    bh = -1
                    bw = -1
                    for h in range(hs[k, ph], he[k, ph]):
                        row = plane[h]
                        for w in range(ws[k, pw], we[k, pw]):
                            if row[w] > m:
                                m = row[w]
                                bh = h
                                bw = w
                    if bh >= 0:
                        gp[bh, bw] += g[k, c, ph, pw]


def _ps_pool_fwd_template(x, order, bstart, hs, he, ws, we, out):
    N, C, H, W = x.shape
    PH, PW = out.shape[2], out.shape[3]
    for p in prange(N * C):
        img = p // C
        ci = p - img * C
        co = ci // (PH * PW)
        r = ci - co * PH * PW
        ph = r // PW
        pw = r - ph * PW
        plane = x[img, ci]
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            v = T(0)
            if he[k, ph] > hs[k, ph] and we[k, pw] > ws[k, pw]:
                s = T(0)
                for h in range(hs[k, ph], he[k, ph]):
                    row = plane[h]
                    for w in range(ws[k, pw], we[k, pw]):
                        s += row[w]
                v = s / T((he[k, ph] - hs[k, ph]) * (we[k, pw] - ws[k, pw]))
            out[k, co, ph, pw] = v


def _ps_pool_bwd_template(g, order, bstart, hs, he, ws, we, gx):
    N, C, H, W = gx.shape
    PH, PW = g.shape[2], g.shape[3]
    for p in prange(N * C):
        img = p // C
        ci = p - img * C
        co = ci // (PH * PW)
        r = ci - co * PH * PW
        ph = r // PW
        pw = r - ph * PW
        gp = gx[img, ci]
        for h in range(H):
            for w in range(W):
                gp[h, w] = T(0)
        for t in range(bstart[img], bstart[img + 1]):
            k = order[t]
            if he[k, ph] <= hs[k, ph] or we[k, pw] <= ws[k, pw]:
                continue
            gv = g[k, co, ph, pw] / T((he[k, ph] - hs[k, ph]) * (we[k, pw] - ws[k, pw]))
            for h in range(hs[k, ph], he[k, ph]):
                row = gp[h]
                for w in range(ws[k, pw], we[k, pw]):
                    row[w] += gv


KERNELS = PlaneSet(
    "roi",
    {
        "align_axis": _align_axis_template,
        "align_fwd": _align_fwd_template,
        "align_bwd": _align_bwd_template,
        "ps_align_fwd": _ps_align_fwd_template,
        "ps_align_bwd": _ps_align_bwd_template,
        "pool_fwd": _pool_fwd_template,
        "pool_bwd": _pool_bwd_template,
        "ps_pool_fwd": _ps_pool_fwd_template,
        "ps_pool_bwd": _ps_pool_bwd_template,
    },
)
