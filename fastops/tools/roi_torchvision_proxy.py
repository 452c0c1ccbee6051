"""A stand-in for torchvision's CPU ``roi_align`` (torchvision does not load against this project's
torch build): its algorithm (per-box precomputed 4-corner bilinear positions and weights, then a
loop over channels; the backward loops over every output element and scatters) written literally
in Numba, serial like torchvision's CPU kernel. ``python -m fastops.tools.roi_torchvision_proxy``
checks that it agrees with ``fastops.roi_align`` on the flagship case ((8, 256, 50, 50), 512
boxes, 7 x 7, float32) and times both, interleaved. A proxy, not torchvision: report it as such.
"""
import os
import time

import numpy as np
from numba import njit

import fastops
from fastops.testing import get

f32 = np.float32
OPT = dict(fastmath={"nsz", "arcp"}, error_model="numpy")


@njit(**OPT)
def tv_fwd(x, rois, scale, PH, PW, sr, aligned, out):
    K = rois.shape[0]; C = x.shape[1]; H = x.shape[2]; W = x.shape[3]
    for n in range(K):
        bi = np.int64(rois[n, 0])
        off = f32(0.5) if aligned else f32(0.0)
        sw = rois[n, 1] * scale - off; sh = rois[n, 2] * scale - off
        ew = rois[n, 3] * scale - off; eh = rois[n, 4] * scale - off
        rw = ew - sw; rh = eh - sh
        if not aligned:
            rw = max(rw, f32(1)); rh = max(rh, f32(1))
        bh = rh / f32(PH); bw = rw / f32(PW)
        gh = sr if sr > 0 else np.int64(np.ceil(rh / f32(PH)))
        gw = sr if sr > 0 else np.int64(np.ceil(rw / f32(PW)))
        count = f32(max(gh * gw, 1))
        M = PH * PW * gh * gw
        pos = np.zeros((M, 4), np.int64); wts = np.zeros((M, 4), np.float32)
        i = 0
        for ph in range(PH):
            for pw in range(PW):
                for iy in range(gh):
                    yy = sh + ph * bh + f32(iy + 0.5) * bh / f32(gh)
                    for ix in range(gw):
                        xx = sw + pw * bw + f32(ix + 0.5) * bw / f32(gw)
                        y = yy; xq = xx
                        if y < -1.0 or y > H or xq < -1.0 or xq > W:
                            i += 1
                            continue
                        if y <= 0: y = f32(0)
                        if xq <= 0: xq = f32(0)
                        yl = np.int64(y); xl = np.int64(xq)
                        if yl >= H - 1:
                            yh = yl = H - 1; y = f32(yl)
                        else:
                            yh = yl + 1
                        if xl >= W - 1:
                            xh = xl = W - 1; xq = f32(xl)
                        else:
                            xh = xl + 1
                        ly = y - yl; lx = xq - xl; hy = f32(1) - ly; hx = f32(1) - lx
                        pos[i, 0] = yl * W + xl; pos[i, 1] = yl * W + xh; pos[i, 2] = yh * W + xl; pos[i, 3] = yh * W + xh
                        wts[i, 0] = hy * hx; wts[i, 1] = hy * lx; wts[i, 2] = ly * hx; wts[i, 3] = ly * lx
                        i += 1
        for c in range(C):
            plane = x[bi, c].ravel()
            i = 0
            for ph in range(PH):
                for pw in range(PW):
                    v = f32(0)
                    for s in range(gh * gw):
                        v += wts[i, 0] * plane[pos[i, 0]] + wts[i, 1] * plane[pos[i, 1]] + wts[i, 2] * plane[pos[i, 2]] + wts[i, 3] * plane[pos[i, 3]]
                        i += 1
                    out[n, c, ph, pw] = v / count

@njit(**OPT)
def tv_bwd(g, rois, scale, PH, PW, sr, aligned, gx):
    K, C, _, _ = g.shape; H = gx.shape[2]; W = gx.shape[3]
    gx[:] = 0
    for index in range(K * C * PH * PW):
        pw = index % PW; ph = (index // PW) % PH; c = (index // PW // PH) % C; n = index // PW // PH // C
        bi = np.int64(rois[n, 0])
        off = f32(0.5) if aligned else f32(0.0)
        sw = rois[n, 1] * scale - off; sh = rois[n, 2] * scale - off
        ew = rois[n, 3] * scale - off; eh = rois[n, 4] * scale - off
        rw = ew - sw; rh = eh - sh
        if not aligned:
            rw = max(rw, f32(1)); rh = max(rh, f32(1))
        bh = rh / f32(PH); bw = rw / f32(PW)
        gh = sr if sr > 0 else np.int64(np.ceil(rh / f32(PH)))
        gw = sr if sr > 0 else np.int64(np.ceil(rw / f32(PW)))
        count = f32(gh * gw)
        go = g[n, c, ph, pw]
        plane = gx[bi, c]
        for iy in range(gh):
            y0 = sh + ph * bh + f32(iy + 0.5) * bh / f32(gh)
            for ix in range(gw):
                xq = sw + pw * bw + f32(ix + 0.5) * bw / f32(gw)
                y = y0
                if y < -1.0 or y > H or xq < -1.0 or xq > W:
                    continue
                if y <= 0: y = f32(0)
                if xq <= 0: xq = f32(0)
                yl = np.int64(y); xl = np.int64(xq)
                if yl >= H - 1:
                    yh = yl = H - 1; y = f32(yl)
                else:
                    yh = yl + 1
                if xl >= W - 1:
                    xh = xl = W - 1; xq = f32(xl)
                else:
                    xh = xl + 1
                ly = y - yl; lx = xq - xl; hy = f32(1) - ly; hx = f32(1) - lx
                plane[yl, xl] += go * hy * hx / count; plane[yl, xh] += go * hy * lx / count
                plane[yh, xl] += go * ly * hx / count; plane[yh, xh] += go * ly * lx / count


def main():
    info = get("roi_align"); s = info.bench(np.random.default_rng(0), np.float32, "large")
    x, b = s.args; kw = s.kwargs
    sc = f32(kw["spatial_scale"])
    fastops.set_num_threads(min(2, fastops._threads.max_threads()))
    out = np.empty((len(b), x.shape[1], 7, 7), np.float32)
    tv_fwd(x, b, sc, 7, 7, -1, False, out)
    mine = fastops.roi_align(x, b, **kw)
    print("max |tv - fastops|", np.abs(out - mine).max())
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    gx = np.empty_like(x); tv_bwd(g, b, sc, 7, 7, -1, False, gx)
    gm = fastops.roi_align.backward(g, x, b, **kw)[0]
    print("max |tv grad - fastops grad|", np.abs(gx - gm).max(), np.abs(gm).max())
    T = {k: [] for k in ("tv_fwd", "fo_fwd", "tv_bwd", "fo_bwd")}
    for r in range(int(os.environ.get("ROUNDS", 5))):
        t = time.perf_counter(); tv_fwd(x, b, sc, 7, 7, -1, False, out); T["tv_fwd"].append(time.perf_counter() - t)
        t = time.perf_counter(); fastops.roi_align(x, b, **kw); T["fo_fwd"].append(time.perf_counter() - t)
        t = time.perf_counter(); tv_bwd(g, b, sc, 7, 7, -1, False, gx); T["tv_bwd"].append(time.perf_counter() - t)
        t = time.perf_counter(); fastops.roi_align.backward(g, x, b, **kw); T["fo_bwd"].append(time.perf_counter() - t)
    m = {k: np.median(v) * 1e3 for k, v in T.items()}
    print({k: round(v, 1) for k, v in m.items()})
    print("fwd ratio tv/fastops %.2fx, bwd ratio %.2fx" % (m["tv_fwd"] / m["fo_fwd"], m["tv_bwd"] / m["fo_bwd"]))


if __name__ == "__main__":
    main()
