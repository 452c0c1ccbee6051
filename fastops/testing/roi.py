"""Op table: RoI pooling (docs/ops.md, "Pooling": roi_pool, roi_align, ps_roi_pool, ps_roi_align).

The NumPy references follow torchvision's CPU kernels literally, in float64: every bilinear sample
of ``roi_align`` is a 4-corner interpolation (the op itself uses separable row/column weights),
``roi_pool`` takes the max of each bin slice. torchvision itself does not load against this
project's torch build, so the torch cross-checks are compositions of torch ops: ``roi_align`` /
``ps_roi_align`` as ``Wy @ x[img] @ Wx^T`` per box (dense bilinear weight matrices built here in
float64), ``roi_pool`` / ``ps_roi_pool`` as ``amax`` / ``mean`` over bin slices. autograd through
them checks the backward.

Samplers keep the f32 and f64 geometry identical (spatial scales and pooled sizes for
``roi_pool`` are powers of two or divide the RoI size, so ``floor``/``ceil`` of bin edges cannot
round differently) and the pooled maxima tie-free (inputs are a permutation of spaced values).
"""
import math

import numpy as np

from . import ErrorCase, OpInfo, Sample, randn

# --- geometry (float64, from torchvision's kernels) ----------------------------------------------


def _as_rois(boxes, dtype=np.float64):
    if isinstance(boxes, (list, tuple)):
        parts = [np.concatenate([np.full((len(b), 1), i), np.asarray(b, np.float64)], 1) for i, b in enumerate(boxes)]
        return np.concatenate(parts) if parts else np.zeros((0, 5))
    return np.asarray(boxes, np.float64)


def _samples_1d(c1, c2, P, scale, ratio, aligned, force1):
    off = 0.5 if aligned else 0.0
    s = c1 * scale - off
    ext = (c2 * scale - off) - s
    if force1:
        ext = max(ext, 1.0)
    b = ext / P
    g = ratio if ratio > 0 else int(math.ceil(b))
    if g <= 0:
        return g, np.zeros((P, 0))
    p = np.arange(P)[:, None]
    i = np.arange(g)[None, :]
    return g, s + p * b + (i + 0.5) * b / g


def _bilinear_1d(pos, L):
    """Low/high index, their weights, validity (torchvision's bilinear_interpolate, per axis)."""
    valid = (pos >= -1.0) & (pos <= L)
    y = np.where(pos <= 0, 0.0, pos)
    lo = np.floor(y).astype(np.int64)
    top = lo >= L - 1
    lo = np.where(top, L - 1, lo)
    hi = np.where(top, L - 1, lo + 1)
    y = np.where(top, lo.astype(np.float64), y)
    ly = y - lo
    lo = np.where(valid, lo, 0)
    hi = np.where(valid, np.minimum(hi, L - 1), 0)
    return lo, hi, 1.0 - ly, ly, valid


def _align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, aligned, force1):
    """(K, C, PH, PW): every channel of every bin (ps_roi_align picks its channels from this)."""
    PH, PW = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW), x.dtype)
    for k, (bi, x1, y1, x2, y2) in enumerate(rois):
        gy, Y = _samples_1d(y1, y2, PH, spatial_scale, sampling_ratio, aligned, force1)
        gx, X = _samples_1d(x1, x2, PW, spatial_scale, sampling_ratio, aligned, force1)
        if gy <= 0 or gx <= 0:
            continue
        ylo, yhi, hy, ly, vy = _bilinear_1d(Y.ravel(), H)
        xlo, xhi, hx, lx, vx = _bilinear_1d(X.ravel(), W)
        plane = x[int(bi)]
        rows_lo, rows_hi = plane[:, ylo], plane[:, yhi]
        v = (
            (hy[:, None] * hx[None, :]) * rows_lo[:, :, xlo]
            + (hy[:, None] * lx[None, :]) * rows_lo[:, :, xhi]
            + (ly[:, None] * hx[None, :]) * rows_hi[:, :, xlo]
            + (ly[:, None] * lx[None, :]) * rows_hi[:, :, xhi]
        )
        v = v * (vy[:, None] & vx[None, :])
        out[k] = v.reshape(C, PH, gy, PW, gx).sum(axis=(2, 4)) / max(gy * gx, 1)
    return out


def roi_align_ref(x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, aligned, not aligned)


def _ps_pick(full, PH, PW):
    K, C = full.shape[:2]
    CO = C // (PH * PW)
    out = np.empty((K, CO, PH, PW), full.dtype)
    for co in range(CO):
        for ph in range(PH):
            for pw in range(PW):
                out[:, co, ph, pw] = full[:, (co * PH + ph) * PW + pw, ph, pw]
    return out


def _pair(o):
    return (o, o) if isinstance(o, int) else tuple(o)


def ps_roi_align_ref(x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    PH, PW = _pair(output_size)
    return _ps_pick(_align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, True, False), PH, PW)


def _round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _pool_bins(rois_k, PH, PW, scale, H, W, ps):
    x1, y1, x2, y2 = (_round(v * scale) for v in rois_k[1:])
    extra = 0 if ps else 1
    hh, ww = (H - 1, W - 1) if ps else (H, W)
    rh, rw = max(y2 - y1 + extra, 1), max(x2 - x1 + extra, 1)
    bh, bw = rh / PH, rw / PW
    hb = [(min(max(math.floor(i * bh) + y1, 0), hh), min(max(math.ceil((i + 1) * bh) + y1, 0), hh)) for i in range(PH)]
    wb = [(min(max(math.floor(j * bw) + x1, 0), ww), min(max(math.ceil((j + 1) * bw) + x1, 0), ww)) for j in range(PW)]
    return hb, wb


def roi_pool_ref(x, boxes, output_size, spatial_scale=1.0):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW), x.dtype)
    for k, r in enumerate(rois):
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, False)
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = x[int(r[0]), :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


def ps_roi_pool_ref(x, boxes, output_size, spatial_scale=1.0):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C // (PH * PW), PH, PW), x.dtype)
    for k, r in enumerate(rois):
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, True)
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = x[int(r[0]), i * PW + j :: PH * PW, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


# --- torch compositions --------------------------------------------------------------------------


def _dense_weights(c1, c2, P, L, scale, ratio, aligned, force1):
    g, pos = _samples_1d(c1, c2, P, scale, ratio, aligned, force1)
    w = np.zeros((P, L))
    if g > 0:
        lo, hi, wl, wh, v = _bilinear_1d(pos, L)
        rows = np.arange(P)[:, None].repeat(g, 1)
        np.add.at(w, (rows, lo), wl * v)
        np.add.at(w, (rows, hi), wh * v)
    return g, w


def _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, aligned, force1):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes.detach().numpy() if isinstance(boxes, torch.Tensor) else boxes)
    N, C, H, W = x.shape
    outs = []
    for bi, x1, y1, x2, y2 in rois:
        gy, wy = _dense_weights(y1, y2, PH, H, spatial_scale, sampling_ratio, aligned, force1)
        gx, wx = _dense_weights(x1, x2, PW, W, spatial_scale, sampling_ratio, aligned, force1)
        cnt = max(gy * gx, 1) if (gy > 0 and gx > 0) else 1
        # restrict to the rows/columns with a weight (what a user would slice)
        rs, cs = np.flatnonzero(wy.any(0)), np.flatnonzero(wx.any(0))
        if len(rs) == 0 or len(cs) == 0:
            outs.append(x.new_zeros((C, PH, PW)))
            continue
        r0, r1, c0, c1 = rs[0], rs[-1] + 1, cs[0], cs[-1] + 1
        ty = torch.from_numpy(wy[:, r0:r1] / cnt).to(x.dtype)
        tx = torch.from_numpy(wx[:, c0:c1]).to(x.dtype)
        outs.append(torch.matmul(torch.matmul(ty, x[int(bi), :, r0:r1, c0:c1]), tx.T))
    return torch.stack(outs) if outs else x.new_zeros((0, C, PH, PW))


def roi_align_torch(torch, x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, aligned, not aligned)


def ps_roi_align_torch(torch, x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    PH, PW = _pair(output_size)
    full = _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, True, False)
    return _torch_ps_pick(torch, full, PH, PW)


def _torch_ps_pick(torch, full, PH, PW):
    K, C = full.shape[:2]
    CO = C // (PH * PW)
    idx = torch.arange(C).reshape(CO, PH, PW)
    ph = torch.arange(PH).reshape(1, PH, 1).expand(CO, PH, PW)
    pw = torch.arange(PW).reshape(1, 1, PW).expand(CO, PH, PW)
    return full[:, idx, ph, pw]


def _torch_pool(torch, x, boxes, output_size, spatial_scale, ps):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes.detach().numpy() if isinstance(boxes, torch.Tensor) else boxes)
    N, C, H, W = x.shape
    CO = C // (PH * PW) if ps else C
    outs = []
    for r in rois:
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, ps)
        img = x[int(r[0])]
        bins = []
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 <= h0 or w1 <= w0:
                    bins.append(x.new_zeros((CO,)))
                elif ps:
                    bins.append(img[i * PW + j :: PH * PW, h0:h1, w0:w1].mean(dim=(1, 2)))
                else:
                    bins.append(img[:, h0:h1, w0:w1].amax(dim=(1, 2)))
        outs.append(torch.stack(bins, 1).reshape(CO, PH, PW))
    return torch.stack(outs) if outs else x.new_zeros((0, CO, PH, PW))


# --- samples -------------------------------------------------------------------------------------


def _rand_boxes(rng, K, N, lo, hi, dtype, min_size=0.0):
    a = rng.uniform(lo, hi, (K, 2))
    b = a + min_size + rng.uniform(0, hi - lo, (K, 2)) * 0.6
    bi = rng.integers(0, N, K)
    return np.stack([bi, a[:, 0], a[:, 1], b[:, 0], b[:, 1]], 1).astype(dtype)


def _tie_free(rng, shape, dtype):
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (4.0 / max(n, 1)) - 2.0).astype(dtype)


def _special_boxes(dtype):
    # tiny (< 1 px), zero-size, inverted, partly outside, fully outside (left/above, right/below)
    return np.array(
        [[0, 2.2, 3.1, 2.6, 3.3], [1, 4.0, 4.0, 4.0, 4.0], [0, 6.5, 5.0, 3.5, 2.0], [1, -3.2, -2.7, 4.1, 3.3],
         [0, 7.3, 6.1, 15.2, 13.7], [1, -9.0, -8.0, -4.5, -3.5], [0, 15.0, 14.0, 19.5, 17.5],
         [0, -1.4, 2.0, 0.2, 5.0]],
        dtype,
    )


def _align_samples(ps):
    def samples(rng, dtype):
        C = 8 if ps else 3
        x = randn(rng, (2, C, 9, 11), dtype)
        b = _rand_boxes(rng, 5, 2, -2.0, 12.0, dtype)
        extra = {} if ps else {"aligned": True}
        out = [
            Sample((x, b), {"output_size": 2}, "default"),
            Sample((x, b), {"output_size": 2, "sampling_ratio": 2, "spatial_scale": 0.5, **extra}, "ratio 2"),
            Sample((x, b * np.array([1, 4, 4, 4, 4], dtype)), {"output_size": 2, "sampling_ratio": 0, "spatial_scale": 0.25}, "ratio 0"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2, "sampling_ratio": -1, **extra}, "special"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2, "sampling_ratio": 2}, "special ratio 2"),
            Sample((x, np.zeros((0, 5), dtype)), {"output_size": 2}, "no boxes"),
            Sample((x, [b[:3, 1:], b[3:, 1:]]), {"output_size": 2}, "list of boxes"),
        ]
        if ps:
            x6 = randn(rng, (2, 12, 9, 11), dtype)
            out.append(Sample((x6, b), {"output_size": (2, 3), "sampling_ratio": 1}, "tuple"))
        else:
            out.append(Sample((x, b), {"output_size": (3, 2), "aligned": True}, "tuple aligned"))
            out.append(Sample((x, _special_boxes(dtype)), {"output_size": (3, 4), "aligned": False, "spatial_scale": 0.5}, "special unaligned"))
        return out

    return samples


def _pool_samples(ps):
    def samples(rng, dtype):
        C = 16 if ps else 3
        x = _tie_free(rng, (2, C, 9, 11), dtype)
        b = _rand_boxes(rng, 5, 2, -2.0, 12.0, dtype)
        # integer boxes whose extents (end - start + 1 for roi_pool) are multiples of 3: 3 bins divide them
        bi = np.array([[0, 1, 2, 3, 7], [1, 4, 0, 9, 5], [0, 0, 0, 8, 8]], dtype)
        if ps:
            bi = bi + np.array([0, 0, 0, 1, 1], dtype)  # ps extent is end - start
        x9 = _tie_free(rng, (2, 9 * (2 if ps else 1), 9, 11), dtype)
        return [
            Sample((x, b), {"output_size": 2}, "default"),
            Sample((x, b), {"output_size": (2, 4), "spatial_scale": 0.5}, "scale 0.5"),
            Sample((x, b * np.array([1, 4, 4, 4, 4], dtype)), {"output_size": 1, "spatial_scale": 0.25}, "scale 0.25"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2}, "special"),
            Sample((x, _special_boxes(dtype)), {"output_size": 4, "spatial_scale": 0.5}, "special 4"),
            Sample((x9, bi), {"output_size": 3}, "three bins"),
            Sample((x, np.zeros((0, 5), dtype)), {"output_size": 2}, "no boxes"),
            Sample((x, [b[:2, 1:], b[2:, 1:]]), {"output_size": 2}, "list of boxes"),
        ]

    return samples


def _errors(name, ps=False, align=False):
    def errors():
        C = 8 if ps else 3
        x = np.ones((2, C, 6, 6), np.float32)
        b = np.array([[0, 1, 1, 4, 4]], np.float32)
        kw = {"output_size": 2}
        cases = [
            ErrorCase((x, b[:, 1:]), kw, ValueError, "boxes"),
            ErrorCase((x, b[0]), kw, ValueError, "boxes"),
            ErrorCase((x, np.array([[2, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[-1, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[0.5, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[0, np.nan, 1, 4, 4]], np.float32)), kw, ValueError, "finite"),
            ErrorCase((x, b.astype(np.int64)), kw, TypeError, "boxes"),
            ErrorCase((x, b.astype(np.float64)), kw, TypeError, "mixed"),
            ErrorCase((x, [b[:, 1:4]]), kw, ValueError, "boxes"),
            ErrorCase((x, [b[:, 1:], b[:, 1:], b[:, 1:]]), kw, ValueError, "batch size"),
            ErrorCase((x[0], b), kw, ValueError, "4-D"),
            ErrorCase((x.astype(np.int32), b), kw, TypeError, "float32 or float64"),
            ErrorCase((x, b), {"output_size": 0}, ValueError, "output_size"),
            ErrorCase((x, b), {"output_size": 1.5}, TypeError, "output_size"),
            ErrorCase((x, b), {"output_size": (2, 2, 2)}, TypeError, "output_size"),
            ErrorCase((x, b), {"output_size": 2, "spatial_scale": 0.0}, ValueError, "spatial_scale"),
            ErrorCase((x, b), {"output_size": 2, "spatial_scale": "1"}, TypeError, "spatial_scale"),
            ErrorCase((x, b * 1e10), kw, ValueError, "2\\*\\*30"),
        ]
        if ps:
            cases.append(ErrorCase((x, b), {"output_size": 3}, ValueError, "multiple"))
        if align:
            cases.append(ErrorCase((x, b), {"output_size": 2, "sampling_ratio": 1.5}, TypeError, "sampling_ratio"))
        return cases

    return errors


def _bench(ps, align):
    def bench(rng, dtype, size):
        if size == "small":
            N, C, H, K = 1, 8, 12, 8
        else:  # Faster R-CNN head: stride-16 features of an 800 x 800 image
            N, C, H, K = 8, 256, 50, 512 if align and not ps else 128
        PH = 7 if size == "large" else 2
        if ps:
            C = (C // (PH * PH) or 1) * PH * PH
        x = randn(rng, (N, C, H, H), dtype)
        img = 16.0 * H
        x1 = rng.uniform(0, img * 0.8, (K, 2))
        wh = rng.uniform(32, img * 0.5, (K, 2))
        b = np.concatenate([rng.integers(0, N, (K, 1)), x1, np.minimum(x1 + wh, img - 1)], 1).astype(dtype)
        kw = {"output_size": PH, "spatial_scale": 1.0 / 16}
        return Sample((x, b), kw, f"{K} boxes")

    return bench


_TOL_ALIGN = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}

TABLE = [
    OpInfo(
        name="roi_pool",
        samples=_pool_samples(False),
        ref=roi_pool_ref,
        torch_ref=lambda t, x, boxes, output_size, spatial_scale=1.0: _torch_pool(t, x, boxes, output_size, spatial_scale, False),
        errors=_errors("roi_pool"),
        bench=_bench(False, False),
        nondiff_kinks=True,
    ),
    OpInfo(
        name="roi_align",
        samples=_align_samples(False),
        ref=roi_align_ref,
        torch_ref=roi_align_torch,
        errors=_errors("roi_align", align=True),
        tol=_TOL_ALIGN,
        bench=_bench(False, True),
    ),
    OpInfo(
        name="ps_roi_pool",
        samples=_pool_samples(True),
        ref=ps_roi_pool_ref,
        torch_ref=lambda t, x, boxes, output_size, spatial_scale=1.0: _torch_pool(t, x, boxes, output_size, spatial_scale, True),
        errors=_errors("ps_roi_pool", ps=True),
        bench=_bench(True, False),
    ),
    OpInfo(
        name="ps_roi_align",
        samples=_align_samples(True),
        ref=ps_roi_align_ref,
        torch_ref=ps_roi_align_torch,
        errors=_errors("ps_roi_align", ps=True, align=True),
        tol=_TOL_ALIGN,
        bench=_bench(True, True),
    ),
]
