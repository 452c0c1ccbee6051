"""The spatial transformer: ``affine_grid`` (``F.affine_grid``) and ``grid_sample``
(``F.grid_sample``, 4-D input, modes bilinear / nearest / bicubic, padding zeros / border /
reflection, ``align_corners``), forward and backward.

``affine_grid`` is a few NumPy expressions (an (H, W, 3) base grid times theta; three multiply-adds
per output element, no reduction): no kernel. Its theta gradient is a sum over the grid, done by
NumPy's pairwise sum (single-threaded, fixed order).

``grid_sample`` is written as a gather with ``K`` taps per output pixel (nearest 1, bilinear 4,
bicubic 16): a first kernel turns every grid point into ``K`` flat input offsets and weights
(zero for taps outside the input with zeros padding), with the derivatives of the weights along x
and y (PyTorch's conventions: the padding's clip/reflection derivative multiplies the bilinear
weights' derivative; nearest has none; bicubic differentiates the cubic coefficients only); the
other kernels are mode-independent:

* forward: parallel over (n, output row); each row's taps are read once for all C channels;
* grad_input: parallel over (n, c) planes, each plane owned by one iteration, scattered in output
  pixel order (deterministic, no race);
* grad_grid: parallel over (n, output row), summing over channels in order 0..C-1.
"""
import math
import numbers

import numpy as np
from numba import prange

from .._op import op
from .._validate import choice, float_array, float_arrays, grad_like
from .._jit import clone, inline
from ._kernels import Kernels, explain

MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
TAPS = {0: 4, 1: 1, 2: 16}
PADDINGS = {"zeros": 0, "border": 1, "reflection": 2}


# --- affine_grid --------------------------------------------------------------------------------

AG = "affine_grid"


def _ag_validate(theta, size, align_corners):
    t = float_array(AG, "theta", theta)
    if not isinstance(size, (tuple, list)) or len(size) not in (4, 5) or any(
        isinstance(s, (bool, np.bool_)) or not isinstance(s, (numbers.Integral, np.integer)) for s in size
    ):
        raise TypeError(f"{AG}: argument 'size' must be a tuple of 4 (N, C, H, W) or 5 (N, C, D, H, W) ints, got {size!r}")
    size = tuple(int(s) for s in size)
    if min(size) <= 0:
        raise ValueError(f"{AG}: argument 'size' must be positive, got {size}")
    k = len(size) - 2
    if t.shape != (size[0], k, k + 1):
        raise ValueError(
            f"{AG}: argument 'theta' must have shape (N, {k}, {k + 1}) = {(size[0], k, k + 1)} for size {size}, got {t.shape}"
        )
    if not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"{AG}: argument 'align_corners' must be a bool, got {align_corners!r}")
    return t, size, bool(align_corners)


def _linspace(n, align, dtype):
    if n <= 1:
        return np.zeros(max(n, 1), dtype)
    r = np.linspace(-1.0, 1.0, n).astype(dtype)
    if not align:
        r = (r * dtype.type(n - 1) / dtype.type(n)).astype(dtype)
    return r


def _ag_base(size, align, dtype):
    """The coordinates (x, y[, z]) of the output grid, each broadcastable to the spatial shape."""
    sp = size[2:]
    axes = [_linspace(n, align, dtype) for n in sp]  # D?, H, W
    k = len(sp)
    out = []
    for j in range(k):  # x runs along the last dim, y the one before, z the first
        ax = k - 1 - j
        shape = [1] * k
        shape[ax] = sp[ax]
        out.append(axes[ax].reshape(shape))
    return out


@op
def affine_grid(theta, size, align_corners=False):
    """``F.affine_grid(theta, size, align_corners)``: the sampling grid of an affine transform.

    2-D: theta (N, 2, 3), size (N, C, H, W) -> (N, H, W, 2), ``grid[n, h, w] = theta[n] @ (x_w, y_h, 1)``;
    3-D: theta (N, 3, 4), size (N, C, D, H, W) -> (N, D, H, W, 3). The base coordinates are
    ``linspace(-1, 1, n)``, times ``(n - 1) / n`` unless ``align_corners`` (0 for a size-1 dim).

    Backward: ``affine_grid.backward(grad_output, theta, size, align_corners)`` -> ``(grad_theta,)``.
    """
    t, size, align = _ag_validate(theta, size, align_corners)
    k = len(size) - 2
    base = _ag_base(size, align, t.dtype)
    N = size[0]
    out = np.empty((N,) + size[2:] + (k,), t.dtype)
    ex = (slice(None),) + (None,) * k
    for i in range(k):
        acc = np.broadcast_to(t[ex + (i, k)], out.shape[:-1]).copy()
        for j in range(k):
            acc += base[j][None] * t[ex + (i, j)]
        out[..., i] = acc
    return out


@affine_grid.defbackward
def _(grad_output, theta, size, align_corners=False):
    t, size, align = _ag_validate(theta, size, align_corners)
    k = len(size) - 2
    N = size[0]
    g = grad_like(AG, grad_output, (N,) + size[2:] + (k,), t.dtype)
    base = _ag_base(size, align, t.dtype)
    gt = np.empty(t.shape, t.dtype)
    axes = tuple(range(1, k + 1))
    for i in range(k):
        gi = g[..., i]
        for j in range(k):
            gt[:, i, j] = np.sum(gi * base[j][None], axis=axes)
        gt[:, i, k] = np.sum(gi, axis=axes)
    return (gt,)


@affine_grid.defexplain
def _(shape, dtype, **params):
    return {"kernel": "numpy_broadcast", "backend": "numpy"}


# --- grid_sample kernels ------------------------------------------------------------------------


def _clip_template(v, n):
    """PyTorch's clip_coordinates_set_grad: (clipped, derivative); the borders count as outside."""
    if v <= T(0):  # noqa: F821
        return T(0), T(0)  # noqa: F821
    hi = T(n - 1)  # noqa: F821
    if v >= hi:
        return hi, T(0)  # noqa: F821
    return v, T(1)  # noqa: F821


def _reflect_template(v, twice_low, twice_high):
    """PyTorch's reflect_coordinates_set_grad: (reflected, derivative)."""
    if twice_low == twice_high:
        return T(0), T(0)  # noqa: F821
    lo = T(twice_low) / T(2)  # noqa: F821
    span = T(twice_high - twice_low) / T(2)  # noqa: F821
    v = v - lo
    sign = T(1)  # noqa: F821
    if v < T(0):  # noqa: F821
        sign = T(-1)  # noqa: F821
        v = -v
    extra = np.fmod(v, span)
    flips = int(math.floor(v / span))
    if flips % 2 == 0:
        return extra + lo, sign
    return span - extra + lo, -sign


def _source_template(c, n, padding, align, unpadded):
    """Grid value -> input coordinate and d(coordinate)/d(grid value) (unnormalize, then pad)."""
    if align:
        v = (c + T(1)) / T(2) * T(n - 1)  # noqa: F821
        m = T(n - 1) / T(2)  # noqa: F821
    else:
        v = ((c + T(1)) * T(n) - T(1)) / T(2)  # noqa: F821
        m = T(n) / T(2)  # noqa: F821
    if not unpadded:
        if padding == 1:
            v, d = CLIP(v, n)  # noqa: F821
            m = m * d
        elif padding == 2:
            if align:
                v, d = REFLECT(v, 0, 2 * (n - 1))  # noqa: F821
            else:
                v, d = REFLECT(v, -1, 2 * n - 1)  # noqa: F821
            v, d2 = CLIP(v, n)  # noqa: F821
            m = m * d * d2
    # PyTorch's safe_downgrade_to_int_range: non-finite or huge coordinates read nothing
    if not (v > T(-2147483648.0) and v < T(2147483647.0)):  # noqa: F821
        v = T(-100)  # noqa: F821
    return v, m


def _tap_coord_template(i, n, padding, align):
    """An integer cubic tap position after padding (PyTorch's compute_coordinates), or -1 outside."""
    v = T(i)  # noqa: F821
    if padding == 1:
        v, d = CLIP(v, n)  # noqa: F821
    elif padding == 2:
        if align:
            v, d = REFLECT(v, 0, 2 * (n - 1))  # noqa: F821
        else:
            v, d = REFLECT(v, -1, 2 * n - 1)  # noqa: F821
        v, d = CLIP(v, n)  # noqa: F821
    j = int(v)
    if j < 0 or j >= n:
        return -1
    return j


def _cubic_template(t, i):
    """Cubic convolution weight (A = -0.75) of tap i in 0..3 at fractional position t."""
    A = T(-0.75)  # noqa: F821
    if i == 0:
        x = t + T(1)  # noqa: F821
        return ((A * x - T(5) * A) * x + T(8) * A) * x - T(4) * A  # noqa: F821
    if i == 1:
        return ((A + T(2)) * t - (A + T(3))) * t * t + T(1)  # noqa: F821
    x = T(1) - t  # noqa: F821
    if i == 2:
        return ((A + T(2)) * x - (A + T(3))) * x * x + T(1)  # noqa: F821
    x = x + T(1)  # noqa: F821
    return ((A * x - T(5) * A) * x + T(8) * A) * x - T(4) * A  # noqa: F821


def _dcubic_template(t, i):
    """d/dt of ``_cubic_template(t, i)`` (taps 0, 1 move with t, taps 2, 3 against it)."""
    A = T(-0.75)  # noqa: F821
    if i == 0:
        x = t + T(1)  # noqa: F821
        return (T(3) * A * x - T(10) * A) * x + T(8) * A  # noqa: F821
    if i == 1:
        return (T(3) * (A + T(2)) * t - T(2) * (A + T(3))) * t  # noqa: F821
    x = T(1) - t  # noqa: F821
    if i == 2:
        return -((T(3) * (A + T(2)) * x - T(2) * (A + T(3))) * x)  # noqa: F821
    x = x + T(1)  # noqa: F821
    return -((T(3) * A * x - T(10) * A) * x + T(8) * A)  # noqa: F821


def _taps_template(grid4, H, W, mode, padding, align, off, wt, dwx, dwy):
    # off/wt/dwx/dwy: (N, Ho, K, Wo); a tap outside the input gets offset 0 and weights 0
    N, Ho, Wo = grid4.shape[0], grid4.shape[1], grid4.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        ww = wt[n, h]
        dx = dwx[n, h]
        dy = dwy[n, h]
        for w in range(Wo):
            ix, mx = SOURCE(grid4[n, h, w, 0], W, padding, align, mode == 2)  # noqa: F821
            iy, my = SOURCE(grid4[n, h, w, 1], H, padding, align, mode == 2)  # noqa: F821
            if mode == 1:
                xn = int(np.rint(ix))
                yn = int(np.rint(iy))
                if xn >= 0 and xn < W and yn >= 0 and yn < H:
                    o[0, w] = yn * W + xn
                    ww[0, w] = T(1)  # noqa: F821
                else:
                    o[0, w] = 0
                    ww[0, w] = T(0)  # noqa: F821
                dx[0, w] = T(0)  # noqa: F821
                dy[0, w] = T(0)  # noqa: F821
            elif mode == 0:
                fx = np.floor(ix)
                fy = np.floor(iy)
                x0 = int(fx)
                y0 = int(fy)
                bx = ix - fx
                by = iy - fy
                ax = (fx + T(1)) - ix  # noqa: F821
                ay = (fy + T(1)) - iy  # noqa: F821
                for k in range(4):
                    xx = x0 + (k & 1)
                    yy = y0 + (k >> 1)
                    wx = bx if (k & 1) else ax
                    wy = by if (k >> 1) else ay
                    sx = T(1) if (k & 1) else T(-1)  # noqa: F821
                    sy = T(1) if (k >> 1) else T(-1)  # noqa: F821
                    if xx >= 0 and xx < W and yy >= 0 and yy < H:
                        o[k, w] = yy * W + xx
                        ww[k, w] = wx * wy
                        dx[k, w] = sx * wy * mx
                        dy[k, w] = sy * wx * my
                    else:
                        o[k, w] = 0
                        ww[k, w] = T(0)  # noqa: F821
                        dx[k, w] = T(0)  # noqa: F821
                        dy[k, w] = T(0)  # noqa: F821
            else:
                fx = np.floor(ix)
                fy = np.floor(iy)
                tx = ix - fx
                ty = iy - fy
                x0 = int(fx) - 1
                y0 = int(fy) - 1
                for j in range(4):
                    yy = TAP(y0 + j, H, padding, align)  # noqa: F821
                    cy = CUBIC(ty, j)  # noqa: F821
                    dcy = DCUBIC(ty, j)  # noqa: F821
                    for i in range(4):
                        k = 4 * j + i
                        xx = TAP(x0 + i, W, padding, align)  # noqa: F821
                        if xx >= 0 and yy >= 0:
                            cx = CUBIC(tx, i)  # noqa: F821
                            o[k, w] = yy * W + xx
                            ww[k, w] = cx * cy
                            dx[k, w] = DCUBIC(tx, i) * cy * mx  # noqa: F821
                            dy[k, w] = cx * dcy * my
                        else:
                            o[k, w] = 0
                            ww[k, w] = T(0)  # noqa: F821
                            dx[k, w] = T(0)  # noqa: F821
                            dy[k, w] = T(0)  # noqa: F821


def _gather_template(x3, off, wt, out4):
    # One (n, output row) per iteration: its taps are read once and reused for all C channels;
    # the inner loops run over a contiguous output row (vectorized gathers). The 4-tap (bilinear)
    # case is one fused expression: measured 18.8 ms vs 30-35 ms for the tap-by-tap loop on
    # (8, 64, 56, 56) float32, serial, loaded machine; unsigned offsets (no negative-index
    # wraparound select) gained another 1.3-1.5x over int32 ones.
    N, C, Ho, Wo = out4.shape
    K = off.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        ww = wt[n, h]
        o0 = o[0]
        w0 = ww[0]
        if K == 4:
            o1 = o[1]
            o2 = o[2]
            o3 = o[3]
            w1 = ww[1]
            w2 = ww[2]
            w3 = ww[3]
            for c in range(C):
                plane = x3[n, c]
                orow = out4[n, c, h]
                for w in range(Wo):
                    orow[w] = w0[w] * plane[o0[w]] + w1[w] * plane[o1[w]] + w2[w] * plane[o2[w]] + w3[w] * plane[o3[w]]
        else:
            for c in range(C):
                plane = x3[n, c]
                orow = out4[n, c, h]
                for w in range(Wo):
                    orow[w] = w0[w] * plane[o0[w]]
                for k in range(1, K):
                    ok = o[k]
                    wk = ww[k]
                    for w in range(Wo):
                        orow[w] += wk[w] * plane[ok[w]]


def _scatter_template(g4, off, wt, gx3):
    # grad_input: one (n, c) plane per iteration, owned by it; output pixels in order.
    N, C, Ho, Wo = g4.shape
    K = off.shape[2]
    for q in prange(N * C):
        n = q // C
        c = q - n * C
        gp = gx3[n, c]
        for i in range(gp.shape[0]):
            gp[i] = T(0)  # noqa: F821
        for h in range(Ho):
            grow = g4[n, c, h]
            o = off[n, h]
            ww = wt[n, h]
            for k in range(K):
                ok = o[k]
                wk = ww[k]
                for w in range(Wo):
                    if wk[w] != T(0):  # noqa: F821  (taps outside the input: nothing to add)
                        gp[ok[w]] += wk[w] * grow[w]


def _gridgrad_template(x3, g4, off, dwx, dwy, gg4):
    # grad_grid: one (n, output row) per iteration, channels summed in order 0..C-1.
    N, C, Ho, Wo = g4.shape
    K = off.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        ax = np.zeros(Wo, g4.dtype)
        ay = np.zeros(Wo, g4.dtype)
        for c in range(C):
            plane = x3[n, c]
            grow = g4[n, c, h]
            for k in range(K):
                ok = o[k]
                dxk = dwx[n, h, k]
                dyk = dwy[n, h, k]
                for w in range(Wo):
                    v = plane[ok[w]] * grow[w]
                    ax[w] += dxk[w] * v
                    ay[w] += dyk[w] * v
        for w in range(Wo):
            gg4[n, h, w, 0] = ax[w]
            gg4[n, h, w, 1] = ay[w]


class _GridKernels(Kernels):
    """Kernels whose templates call per-dtype inlined helpers (bound as globals with their T)."""

    def get(self, which, dtype, backend):
        dt = np.dtype(dtype)
        key = (which, dt, backend)
        if key not in self._cache:
            sfx = dt.name
            b = {"T": dt.type}
            clip = inline(clone(_clip_template, f"gs_clip_{sfx}", b))
            refl = inline(clone(_reflect_template, f"gs_reflect_{sfx}", b))
            hb = dict(b, CLIP=clip, REFLECT=refl)
            self.bindings = dict(
                SOURCE=inline(clone(_source_template, f"gs_source_{sfx}", hb)),
                TAP=inline(clone(_tap_coord_template, f"gs_tap_{sfx}", hb)),
                CUBIC=inline(clone(_cubic_template, f"gs_cubic_{sfx}", b)),
                DCUBIC=inline(clone(_dcubic_template, f"gs_dcubic_{sfx}", b)),
            )
            return super().get(which, dtype, backend)
        return self._cache[key]


_K = _GridKernels(
    "grid_sample",
    {"taps": _taps_template, "gather": _gather_template, "scatter": _scatter_template, "gridgrad": _gridgrad_template},
)


# --- grid_sample --------------------------------------------------------------------------------

GS = "grid_sample"


def _gs_validate(input, grid, mode, padding_mode, align_corners):
    x, g = float_arrays(GS, ("input", "grid"), (input, grid))
    mode = choice(GS, "mode", mode, tuple(MODES))
    padding_mode = choice(GS, "padding_mode", padding_mode, tuple(PADDINGS))
    if align_corners is None:
        align_corners = False
    if not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"{GS}: argument 'align_corners' must be a bool, got {align_corners!r}")
    if x.ndim != 4:
        raise ValueError(f"{GS}: argument 'input' must be 4-D (N, C, H, W) (5-D is not implemented), got shape {x.shape}")
    if g.ndim != 4 or g.shape[3] != 2 or g.shape[0] != x.shape[0]:
        raise ValueError(
            f"{GS}: argument 'grid' must have shape (N, H_out, W_out, 2) with N = {x.shape[0]} "
            f"(input shape {x.shape}), got {g.shape}"
        )
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{GS}: argument 'input' has an empty spatial extent, shape {x.shape}")
    if x.shape[2] * x.shape[3] >= 2**31:
        raise ValueError(f"{GS}: input planes of 2**31 elements or more are not supported, shape {x.shape}")
    return x, g, MODES[mode], PADDINGS[padding_mode], bool(align_corners)


def _taps(x, g, mode, pad, align):
    N, C, H, W = x.shape
    Ho, Wo = g.shape[1], g.shape[2]
    K = TAPS[mode]
    # uint32 offsets: the forward gather measured 1.3-1.5x faster than with int32 or int64 ones
    # (no negative-index wraparound; 16 lanes per gather)
    off = np.empty((N, Ho, K, Wo), np.uint32)
    wt = np.empty((N, Ho, K, Wo), x.dtype)
    dwx = np.empty((N, Ho, K, Wo), x.dtype)
    dwy = np.empty((N, Ho, K, Wo), x.dtype)
    _K.call("taps", x.dtype, N * Ho, g.size * K, g, H, W, mode, pad, align, off, wt, dwx, dwy)
    return off, wt, dwx, dwy


@op
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """``F.grid_sample(input, grid, mode, padding_mode, align_corners)`` on 4-D input.

    input (N, C, H, W), grid (N, H_out, W_out, 2) of (x, y) in [-1, 1] -> (N, C, H_out, W_out).
    ``mode``: ``"bilinear"``, ``"nearest"`` (round half to even, as PyTorch) or ``"bicubic"``
    (A = -0.75); ``padding_mode``: ``"zeros"``, ``"border"`` or ``"reflection"``;
    ``align_corners``: -1 and 1 are the centres (True) or the outer edges (False) of the corner
    pixels. 5-D (volumetric) input is not implemented.

    Backward: ``grid_sample.backward(grad_output, input, grid, ...)`` -> ``(grad_input,
    grad_grid)``; ``grad_grid`` is zero for ``"nearest"``, and follows PyTorch at the borders
    (clipped coordinates have zero derivative).
    """
    x, g, mode_, pad, align = _gs_validate(input, grid, mode, padding_mode, align_corners)
    N, C, H, W = x.shape
    Ho, Wo = g.shape[1], g.shape[2]
    out = np.empty((N, C, Ho, Wo), x.dtype)
    if out.size == 0:
        return out
    off, wt, _, _ = _taps(x, g, mode_, pad, align)
    _K.call("gather", x.dtype, N * Ho, out.size * TAPS[mode_], x.reshape(N, C, H * W), off, wt, out)
    return out


@grid_sample.defbackward
def _(grad_output, input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    x, g, mode_, pad, align = _gs_validate(input, grid, mode, padding_mode, align_corners)
    N, C, H, W = x.shape
    Ho, Wo = g.shape[1], g.shape[2]
    go = grad_like(GS, grad_output, (N, C, Ho, Wo), x.dtype)
    gx = np.zeros(x.shape, x.dtype)
    gg = np.zeros(g.shape, x.dtype)
    if go.size == 0:
        return gx, gg
    off, wt, dwx, dwy = _taps(x, g, mode_, pad, align)
    K = TAPS[mode_]
    _K.call("scatter", x.dtype, N * C, go.size * K, go, off, wt, gx.reshape(N, C, H * W))
    if mode_ != 1:
        _K.call("gridgrad", x.dtype, N * Ho, go.size * K, x.reshape(N, C, H * W), go, off, dwx, dwy, gg)
    return gx, gg


@grid_sample.defexplain
def _(shape, dtype, grid_shape=None, mode="bilinear", shapes=None, **params):
    """``grid_shape`` (or the second of ``shapes``, as ``python -m fastops explain grid_sample
    --shape 8x64x56x56 8x56x56x2`` passes it): the grid's; default: the input's spatial size."""
    if grid_shape is None and shapes is not None and len(shapes) > 1:
        grid_shape = shapes[1]
    N, C = shape[:2]
    Ho, Wo = (grid_shape[1], grid_shape[2]) if grid_shape is not None else shape[2:]
    K = TAPS[MODES[mode]]
    d = explain(_K, "gather", dtype, N * Ho, N * C * Ho * Wo * K)
    d["taps"] = K
    return d


__all__ = ["affine_grid", "grid_sample"]
