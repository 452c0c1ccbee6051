"""RoI pooling family (torchvision.ops): ``roi_pool``, ``roi_align``, ``ps_roi_pool``, ``ps_roi_align``.

Boxes are a (K, 5) float array ``(batch_index, x1, y1, x2, y2)`` of the input's dtype, or a list of
(Ki, 4) arrays ``(x1, y1, x2, y2)``, one per image (as torchvision). Geometry follows torchvision's
CPU kernels, computed in the input's dtype:

* ``roi_align``: ``start = x1 * spatial_scale - (0.5 if aligned else 0)``, the RoI extent
  ``end - start`` forced to >= 1 when not aligned, ``bin = extent / pooled``, a sampling grid of
  ``sampling_ratio`` (or ``ceil(bin)`` when ``sampling_ratio <= 0``) points per bin and axis at
  ``start + p * bin + (i + 0.5) * bin / grid``; a point with ``y < -1`` or ``y > H`` (or x) counts
  as 0, else it is clamped at 0 and bilinearly interpolated (clamped at ``H - 1``). The bin value
  is the mean over its ``max(grid_h * grid_w, 1)`` points.
* ``ps_roi_align``: the same with ``aligned=True`` geometry (no >= 1 forcing); output channel
  ``c`` of bin (i, j) reads input channel ``(c * ph + i) * pw + j``.
* ``roi_pool``: box corners ``round(x * spatial_scale)`` (half away from zero), extent
  ``max(end - start + 1, 1)``, bin rows ``[floor(i * bin), ceil((i + 1) * bin))`` shifted by the
  start and clipped to ``[0, H]``; max over the bin (first maximum in row-major scan order, an
  empty bin gives 0); ``ps_roi_pool``: extent ``max(end - start, 1)``, clipped to ``[0, H - 1]``
  (torchvision's forward), mean over the bin.

The kernels and how they work: ``_roi_kernels``.

``OP.explain(input_shape, dtype, output_size=..., num_boxes=K)`` reports the forward and backward
kernels and their serial/parallel choice (``fastops._dispatch.parallel_backend`` over the N * C planes,
by an estimate of the elements touched).

Validation beyond torchvision's (which has none of these and reads out of bounds or casts NaN to
int): boxes must be finite, batch indices integers in ``[0, N)``, scaled coordinates within
+-2**30 pixels, ``spatial_scale > 0``.
"""
import math
import numbers

import numpy as np

from .._op import op
from .._validate import float_array, grad_like, int_scalar, real_scalar
from ._roi_kernels import KERNELS as _K

# Scaled box coordinates must stay well inside int range (torchvision casts them to int).
_COORD_LIMIT = float(2**30)


# --- validation ----------------------------------------------------------------------------------


def _output_size(name, output_size):
    def ok(v):
        return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))

    if ok(output_size):
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2 or not all(ok(v) for v in output_size):
        raise TypeError(f"{name}: argument 'output_size' must be an int or a pair of ints, got {output_size!r}")
    ph, pw = int(output_size[0]), int(output_size[1])
    if ph <= 0 or pw <= 0:
        raise ValueError(f"{name}: argument 'output_size' must be positive, got {(ph, pw)}")
    return ph, pw


def _boxes(name, boxes, x):
    """(K, 5) boxes of x's dtype, contiguous, and the batch indices as int64."""
    N = x.shape[0]
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            b = float_array(name, f"boxes[{i}]", b, x.dtype)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"{name}: argument 'boxes[{i}]' must have shape (K_i, 4) in a list of boxes, got {b.shape}")
            parts.append(np.concatenate([np.full((b.shape[0], 1), i, x.dtype), b], axis=1))
        if len(boxes) > N:
            raise ValueError(f"{name}: argument 'boxes' is a list of {len(boxes)} box arrays for an input of batch size {N} (shape {x.shape})")
        b = np.concatenate(parts, axis=0) if parts else np.zeros((0, 5), x.dtype)
    else:
        b = float_array(name, "boxes", boxes, x.dtype)
        if b.ndim != 2 or b.shape[1] != 5:
            raise ValueError(f"{name}: argument 'boxes' must have shape (K, 5) (batch index, x1, y1, x2, y2), got {b.shape}")
    b = np.ascontiguousarray(b)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: argument 'boxes' must be finite (shape {b.shape})")
    bi = b[:, 0]
    if np.any(bi != np.floor(bi)) or np.any(bi < 0) or np.any(bi >= N):
        bad = bi[(bi != np.floor(bi)) | (bi < 0) | (bi >= N)][0]
        raise ValueError(
            f"{name}: argument 'boxes' column 0 must hold integer batch indices in [0, {N}) for an input of "
            f"shape {x.shape}, got {bad} (boxes shape {b.shape})"
        )
    return b, bi.astype(np.int64)


def _validate(name, input, boxes, output_size, spatial_scale, sampling_ratio=None, ps=False):
    x = float_array(name, "input", input)
    if x.ndim != 4:
        raise ValueError(f"{name}: argument 'input' must be 4-D (N, C, H, W), got shape {x.shape}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name}: argument 'input' has an empty spatial extent, shape {x.shape}")
    b, bidx = _boxes(name, boxes, x)
    ph, pw = _output_size(name, output_size)
    scale = real_scalar(name, "spatial_scale", spatial_scale, minimum=0.0, min_open=True)
    if not math.isfinite(scale):
        raise ValueError(f"{name}: argument 'spatial_scale' must be finite, got {scale}")
    if b.size and np.abs(b[:, 1:]).max() * scale >= _COORD_LIMIT:
        raise ValueError(f"{name}: argument 'boxes' scaled by spatial_scale={scale} exceeds +-2**30 pixels")
    if sampling_ratio is not None:
        sampling_ratio = int_scalar(name, "sampling_ratio", sampling_ratio)
    if ps and x.shape[1] % (ph * pw):
        raise ValueError(
            f"{name}: input channels ({x.shape[1]}, input shape {x.shape}) must be a multiple of "
            f"output_size[0] * output_size[1] = {ph * pw}"
        )
    return x, b, bidx, (ph, pw), scale, sampling_ratio


def _image_order(bidx, N):
    """Boxes grouped by image, in box order within an image (the backward's visiting order)."""
    order = np.argsort(bidx, kind="stable").astype(np.int64)
    bstart = np.zeros(N + 1, np.int64)
    np.cumsum(np.bincount(bidx, minlength=N), out=bstart[1:])
    return order, bstart


# --- geometry ------------------------------------------------------------------------------------


def _align_geometry(x, b, PH, PW, scale, sampling_ratio, aligned, ps):
    T = x.dtype.type
    H, W = x.shape[2], x.shape[3]
    offset = T(0.5) if aligned else T(0)
    ratio = int(sampling_ratio)
    axis = _K.kernel("align_axis", x.dtype, "serial")
    force1 = not aligned
    gy, ylo, yn, wy = axis(np.ascontiguousarray(b[:, 2]), np.ascontiguousarray(b[:, 4]), T(scale), offset, force1, ratio, PH, H)
    gx, xlo, xn, wx = axis(np.ascontiguousarray(b[:, 1]), np.ascontiguousarray(b[:, 3]), T(scale), offset, force1, ratio, PW, W)
    if ps:  # torchvision divides by grid_h * grid_w; an empty grid gives 0 here (0/0 there)
        cnt = np.where((gy > 0) & (gx > 0), gy * gx, 1).astype(x.dtype)
    else:
        cnt = np.maximum(gy * gx, 1).astype(x.dtype)
    # the columns any bin of the box reads: [xb, xe) (empty when no sample lies in the image)
    has = xn > 0
    xb = np.where(has, xlo, np.iinfo(np.int64).max).min(axis=1)
    xe = np.where(has, xlo + xn, -1).max(axis=1)
    xb = np.where(xe >= 0, xb, 0).astype(np.int64)
    xe = np.where(xe >= 0, xe, 0).astype(np.int64)
    return ylo, yn, wy, xlo, xn, wx, xb, xe, cnt


def _round_half_away(v):
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= 0.5)
    return np.copysign(r, v).astype(np.int64)


def _pool_geometry(x, b, PH, PW, scale, ps):
    """Bin bounds per box, computed in the input's dtype like torchvision's kernels."""
    T = x.dtype.type
    H, W = x.shape[2], x.shape[3]
    c = _round_half_away(b[:, 1:] * T(scale))  # NumPy keeps float32 * float32 in float32
    extra = 0 if ps else 1
    hi_h, hi_w = (H - 1, W - 1) if ps else (H, W)

    def axis(s, e, P, hi):
        ext = np.maximum(e - s + extra, 1).astype(x.dtype)
        bs = ext / T(P)
        p = np.arange(P, dtype=x.dtype)
        lo = np.floor(p[None, :] * bs[:, None]).astype(np.int64)
        up = np.ceil((p[None, :] + T(1)) * bs[:, None]).astype(np.int64)
        lo = np.clip(lo + s[:, None], 0, hi)
        up = np.clip(up + s[:, None], 0, hi)
        return np.ascontiguousarray(lo), np.ascontiguousarray(up)

    hs, he = axis(c[:, 1], c[:, 3], PH, hi_h)
    ws, we = axis(c[:, 0], c[:, 2], PW, hi_w)
    return hs, he, ws, we


# --- dispatch ------------------------------------------------------------------------------------


def _fwd_work(K, C, PH, PW):
    # ~4 input elements touched per output element in the typical case (a few rows of a few
    # columns per bin, shared between neighbouring bins)
    return K * C * PH * PW * 4


def _explain(name, fwd, bwd, ps):
    def fn(shape, dtype, output_size=7, num_boxes=1, **params):
        N, C, H, W = (tuple(shape) + (1, 1, 1, 1))[:4]
        PH, PW = _output_size(name, output_size)
        CO = C // (PH * PW) if ps else C
        bf = _K.backend(dtype, N * C, _fwd_work(num_boxes, CO, PH, PW))
        bb = _K.backend(dtype, N * C, N * C * H * W + _fwd_work(num_boxes, CO, PH, PW))
        return {
            "kernel": _K.kernel_name(fwd, dtype, bf),
            "backend": bf,
            "backward_kernel": _K.kernel_name(bwd, dtype, bb),
            "backward_backend": bb,
        }

    return fn


def _call(which, dtype, items, work, *args):
    _K.call(which, dtype, items, work, *args)


# --- roi_align -----------------------------------------------------------------------------------


@op
def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """``torchvision.ops.roi_align``: (N, C, H, W) and K boxes -> (K, C, ph, pw).

    ``boxes``: (K, 5) array ``(batch_index, x1, y1, x2, y2)`` of the input's dtype, or a list of
    (K_i, 4) arrays, one per image. ``output_size`` an int or ``(ph, pw)``; ``sampling_ratio <= 0``
    picks ``ceil(roi_size / output_size)`` points per bin and axis; ``aligned=True`` shifts the box
    by -0.5 pixel (pixel-centre model). Each bin is the mean of bilinear samples (see the module
    docstring for the exact rules, those of torchvision's CPU kernel).

    Backward: ``roi_align.backward(grad_output, input, boxes, output_size, ...)`` ->
    ``(grad_input, None)`` (boxes get no gradient, as in torchvision).
    """
    x, b, bidx, (PH, PW), scale, sr = _validate("roi_align", input, boxes, output_size, spatial_scale, sampling_ratio)
    K, C = b.shape[0], x.shape[1]
    out = np.empty((K, C, PH, PW), x.dtype)
    if out.size == 0:
        return out
    geo = _align_geometry(x, b, PH, PW, scale, sr, bool(aligned), False)
    order, bstart = _image_order(bidx, x.shape[0])
    _call("align_fwd", x.dtype, x.shape[0] * C, _fwd_work(K, C, PH, PW), x, order, bstart, *geo, out)
    return out


@roi_align.defbackward
def _(grad_output, input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    x, b, bidx, (PH, PW), scale, sr = _validate("roi_align", input, boxes, output_size, spatial_scale, sampling_ratio)
    N, C = x.shape[:2]
    K = b.shape[0]
    g = grad_like("roi_align", grad_output, (K, C, PH, PW), x.dtype)
    if K == 0 or C == 0:
        return np.zeros(x.shape, x.dtype), None
    gx = np.empty(x.shape, x.dtype)
    geo = _align_geometry(x, b, PH, PW, scale, sr, bool(aligned), False)
    order, bstart = _image_order(bidx, N)
    _call("align_bwd", x.dtype, N * C, x.size + _fwd_work(K, C, PH, PW), g, order, bstart, *geo, gx)
    return gx, None


roi_align.defexplain(_explain("roi_align", "align_fwd", "align_bwd", False))


# --- ps_roi_align --------------------------------------------------------------------------------


@op
def ps_roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    """``torchvision.ops.ps_roi_align`` (position-sensitive RoI align, R-FCN): (N, C, H, W) ->
    (K, C / (ph * pw), ph, pw); output channel ``c`` of bin (i, j) averages bilinear samples of input
    channel ``(c * ph + i) * pw + j``. Geometry as ``roi_align(..., aligned=True)`` (torchvision's).
    An empty sampling grid (a box of zero size with ``sampling_ratio <= 0``) gives 0 (torchvision:
    0/0 = NaN).

    Backward: ``ps_roi_align.backward(grad_output, input, boxes, output_size, ...)`` ->
    ``(grad_input, None)``.
    """
    x, b, bidx, (PH, PW), scale, sr = _validate("ps_roi_align", input, boxes, output_size, spatial_scale, sampling_ratio, ps=True)
    K, CO = b.shape[0], x.shape[1] // (PH * PW)
    out = np.empty((K, CO, PH, PW), x.dtype)
    if out.size == 0:
        return out
    ylo, yn, wy, xlo, xn, wx, _, _, cnt = _align_geometry(x, b, PH, PW, scale, sr, True, True)
    order, bstart = _image_order(bidx, x.shape[0])
    _call("ps_align_fwd", x.dtype, x.shape[0] * x.shape[1], _fwd_work(K, CO, PH, PW), x, order, bstart, ylo, yn, wy, xlo, xn, wx, cnt, out)
    return out


@ps_roi_align.defbackward
def _(grad_output, input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    x, b, bidx, (PH, PW), scale, sr = _validate("ps_roi_align", input, boxes, output_size, spatial_scale, sampling_ratio, ps=True)
    N, C = x.shape[:2]
    K, CO = b.shape[0], C // (PH * PW)
    g = grad_like("ps_roi_align", grad_output, (K, CO, PH, PW), x.dtype)
    if K == 0 or C == 0:
        return np.zeros(x.shape, x.dtype), None
    gx = np.empty(x.shape, x.dtype)
    ylo, yn, wy, xlo, xn, wx, _, _, cnt = _align_geometry(x, b, PH, PW, scale, sr, True, True)
    order, bstart = _image_order(bidx, N)
    _call("ps_align_bwd", x.dtype, N * C, x.size + _fwd_work(K, CO, PH, PW), g, order, bstart, ylo, yn, wy, xlo, xn, wx, cnt, gx)
    return gx, None


ps_roi_align.defexplain(_explain("ps_roi_align", "ps_align_fwd", "ps_align_bwd", True))


# --- roi_pool ------------------------------------------------------------------------------------


@op
def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """``torchvision.ops.roi_pool`` (Fast R-CNN max pooling): (N, C, H, W) -> (K, C, ph, pw).

    Box corners are rounded (half away from zero) after scaling, bins are ``floor``/``ceil`` of
    ``i * (roi_size + 1) / output_size`` clipped to the image; an empty bin gives 0. The maximum is
    the first one in row-major scan order (its position takes the gradient).

    Backward: ``roi_pool.backward(grad_output, input, boxes, output_size, spatial_scale)`` ->
    ``(grad_input, None)``.
    """
    x, b, bidx, (PH, PW), scale, _ = _validate("roi_pool", input, boxes, output_size, spatial_scale)
    K, C = b.shape[0], x.shape[1]
    out = np.empty((K, C, PH, PW), x.dtype)
    if out.size == 0:
        return out
    hs, he, ws, we = _pool_geometry(x, b, PH, PW, scale, False)
    order, bstart = _image_order(bidx, x.shape[0])
    _call("pool_fwd", x.dtype, x.shape[0] * C, _fwd_work(K, C, PH, PW), x, order, bstart, hs, he, ws, we, out)
    return out


@roi_pool.defbackward
def _(grad_output, input, boxes, output_size, spatial_scale=1.0):
    x, b, bidx, (PH, PW), scale, _ = _validate("roi_pool", input, boxes, output_size, spatial_scale)
    N, C = x.shape[:2]
    K = b.shape[0]
    g = grad_like("roi_pool", grad_output, (K, C, PH, PW), x.dtype)
    if K == 0 or C == 0:
        return np.zeros(x.shape, x.dtype), None
    gx = np.empty(x.shape, x.dtype)
    hs, he, ws, we = _pool_geometry(x, b, PH, PW, scale, False)
    order, bstart = _image_order(bidx, N)
    _call("pool_bwd", x.dtype, N * C, x.size + _fwd_work(K, C, PH, PW), x, g, order, bstart, hs, he, ws, we, gx)
    return gx, None


roi_pool.defexplain(_explain("roi_pool", "pool_fwd", "pool_bwd", False))


# --- ps_roi_pool ---------------------------------------------------------------------------------


@op
def ps_roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """``torchvision.ops.ps_roi_pool`` (position-sensitive average RoI pooling, R-FCN):
    (N, C, H, W) -> (K, C / (ph * pw), ph, pw); output channel ``c`` of bin (i, j) averages input
    channel ``(c * ph + i) * pw + j`` over the bin. Bins as torchvision's forward (clipped to
    ``[0, H - 1]``, so the last row and column of the map are never pooled); an empty bin gives 0.

    Backward: ``ps_roi_pool.backward(grad_output, input, boxes, output_size, spatial_scale)`` ->
    ``(grad_input, None)``, the exact gradient of this forward (torchvision's backward clips its
    bins to ``[0, H]`` instead, so near the bottom/right border it differs from the gradient of its
    own forward).
    """
    x, b, bidx, (PH, PW), scale, _ = _validate("ps_roi_pool", input, boxes, output_size, spatial_scale, ps=True)
    K, CO = b.shape[0], x.shape[1] // (PH * PW)
    out = np.empty((K, CO, PH, PW), x.dtype)
    if out.size == 0:
        return out
    hs, he, ws, we = _pool_geometry(x, b, PH, PW, scale, True)
    order, bstart = _image_order(bidx, x.shape[0])
    _call("ps_pool_fwd", x.dtype, x.shape[0] * x.shape[1], _fwd_work(K, CO, PH, PW), x, order, bstart, hs, he, ws, we, out)
    return out


@ps_roi_pool.defbackward
def _(grad_output, input, boxes, output_size, spatial_scale=1.0):
    x, b, bidx, (PH, PW), scale, _ = _validate("ps_roi_pool", input, boxes, output_size, spatial_scale, ps=True)
    N, C = x.shape[:2]
    K, CO = b.shape[0], C // (PH * PW)
    g = grad_like("ps_roi_pool", grad_output, (K, CO, PH, PW), x.dtype)
    if K == 0 or C == 0:
        return np.zeros(x.shape, x.dtype), None
    gx = np.empty(x.shape, x.dtype)
    hs, he, ws, we = _pool_geometry(x, b, PH, PW, scale, True)
    order, bstart = _image_order(bidx, N)
    _call("ps_pool_bwd", x.dtype, N * C, x.size + _fwd_work(K, CO, PH, PW), g, order, bstart, hs, he, ws, we, gx)
    return gx, None


ps_roi_pool.defexplain(_explain("ps_roi_pool", "ps_pool_fwd", "ps_pool_bwd", True))

__all__ = ["roi_pool", "roi_align", "ps_roi_pool", "ps_roi_align"]
