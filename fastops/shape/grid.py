"""``grid_sample`` (``F.grid_sample``, 4-D input with modes bilinear / nearest / bicubic, 5-D input
with trilinear ("bilinear") / nearest; padding zeros / border / reflection, ``align_corners``),
forward and backward. (``affine_grid``, which makes the grids, is ``shape/affine_grid.py``.)

``grid_sample`` is written as a gather with ``K`` taps per output pixel (nearest 1, bilinear 4,
trilinear 8, bicubic 16): a first kernel (one per rank: ``taps``, ``taps3``, sharing the
coordinate/padding helpers) turns every grid point into ``K`` flat input offsets and weights, with
the derivatives of the weights along x, y (and z) (PyTorch's conventions: the padding's
clip/reflection derivative multiplies the bilinear weights' derivative; nearest has none; bicubic
differentiates the cubic coefficients only). A tap outside the input (zeros padding) gets weight 0
(NaN for a NaN coordinate) and offset 0 when element 0 of every plane (and, backward, grad_output)
is finite, else the plane size, a sentinel the masked loops read as 0: it contributes nothing,
never 0 * NaN, and finite inputs keep the unmasked loops. The other kernels are mode- and
rank-independent (5-D: the output rows are the D_out * H_out (d, h) pairs):

* forward: parallel over (n, output row); each row's taps are read once for all C channels;
* grad_input: parallel over (n, c) planes, each plane owned by one iteration, scattered in output
  pixel order (deterministic, no race);
* grad_grid: parallel over (n, output row), summing over channels in order 0..C-1.
"""
import math

import numpy as np
from numba import prange

from .._op import op
from .._validate import choice, float_arrays, grad_like
from .._jit import clone, inline
from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = CLIP = CUBIC = DCUBIC = FLOOR = NEAREST = READ = REFLECT = SOURCE = TAP = UNBOUND

MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
TAPS = {0: 4, 1: 1, 2: 16}
PADDINGS = {"zeros": 0, "border": 1, "reflection": 2}


# --- grid_sample kernels ------------------------------------------------------------------------


def _clip_template(v, n):
    """PyTorch's clip_coordinates_set_grad: (clipped, derivative); the borders count as outside."""
    if v <= T(0):
        return T(0), T(0)
    hi = T(n - 1)
    if v >= hi:
        return hi, T(0)
    return v, T(1)


def _reflect_template(v, twice_low, twice_high):
    """PyTorch's reflect_coordinates_set_grad: (reflected, derivative)."""
    if twice_low == twice_high:
        return T(0), T(0)
    lo = T(twice_low) / T(2)
    span = T(twice_high - twice_low) / T(2)
    v = v - lo
    sign = T(1)
    if v < T(0):
        sign = T(-1)
        v = -v
    extra = np.fmod(v, span)
    flips = int(math.floor(v / span))
    if flips % 2 == 0:
        return extra + lo, sign
    return span - extra + lo, -sign


def _source_template(c, n, padding, align, unpadded):
    """Grid value -> input coordinate and d(coordinate)/d(grid value) (unnormalize, then pad)."""
    if align:
        v = (c + T(1)) / T(2) * T(n - 1)
        m = T(n - 1) / T(2)
    else:
        v = ((c + T(1)) * T(n) - T(1)) / T(2)
        m = T(n) / T(2)
    if not unpadded and v == v:  # a NaN coordinate stays NaN (no padding: it has no position)
        if padding == 1:
            v, d = CLIP(v, n)
            m = m * d
        elif padding == 2:
            if align:
                v, d = REFLECT(v, 0, 2 * (n - 1))
            else:
                v, d = REFLECT(v, -1, 2 * n - 1)
            v, d2 = CLIP(v, n)
            m = m * d * d2
    # PyTorch's safe_downgrade_to_int_range: infinite or huge coordinates read nothing; a NaN one
    # stays NaN (the taps give it NaN weights: a NaN output, as PyTorch's bilinear/bicubic kernels)
    if (v <= T(-2147483648.0) or v >= T(2147483647.0)):
        v = T(-100)
    return v, m


def _floor_int_template(v):
    """floor(v) as an int, -2 for NaN (every tap of a NaN coordinate falls outside)."""
    if v != v:
        return -2
    return int(np.floor(v))


def _nearest_int_template(v):
    """round-half-to-even(v) as an int (PyTorch's nearbyint), -2 for NaN."""
    if v != v:
        return -2
    return int(np.rint(v))


def _read_template(plane, o, n):
    """plane[o] for an offset inside the plane, 0 for the out-of-bounds sentinel (o >= n)."""
    inside = o < n
    v = plane[o if inside else np.uint32(0)]
    return v if inside else T(0)


def _tap_coord_template(i, n, padding, align):
    """An integer cubic tap position after padding (PyTorch's compute_coordinates), or -1 outside."""
    v = T(i)
    if padding == 1:
        v, d = CLIP(v, n)
    elif padding == 2:
        if align:
            v, d = REFLECT(v, 0, 2 * (n - 1))
        else:
            v, d = REFLECT(v, -1, 2 * n - 1)
        v, d = CLIP(v, n)
    j = int(v)
    if j < 0 or j >= n:
        return -1
    return j


def _cubic_template(t, i):
    """Cubic convolution weight (A = -0.75) of tap i in 0..3 at fractional position t."""
    A = T(-0.75)
    if i == 0:
        x = t + T(1)
        return ((A * x - T(5) * A) * x + T(8) * A) * x - T(4) * A
    if i == 1:
        return ((A + T(2)) * t - (A + T(3))) * t * t + T(1)
    x = T(1) - t
    if i == 2:
        return ((A + T(2)) * x - (A + T(3))) * x * x + T(1)
    x = x + T(1)
    return ((A * x - T(5) * A) * x + T(8) * A) * x - T(4) * A


def _dcubic_template(t, i):
    """d/dt of ``_cubic_template(t, i)`` (taps 0, 1 move with t, taps 2, 3 against it)."""
    A = T(-0.75)
    if i == 0:
        x = t + T(1)
        return (T(3) * A * x - T(10) * A) * x + T(8) * A
    if i == 1:
        return (T(3) * (A + T(2)) * t - T(2) * (A + T(3))) * t
    x = T(1) - t
    if i == 2:
        return -((T(3) * (A + T(2)) * x - T(2) * (A + T(3))) * x)
    x = x + T(1)
    return -((T(3) * A * x - T(10) * A) * x + T(8) * A)


def _taps_template(grid4, H, W, mode, padding, align, oob, off, wt, dwx, dwy):
    # off/wt/dwx/dwy: (N, Ho, K, Wo). A tap outside the input gets offset ``oob`` (0, or the
    # plane size: the sentinel the masked kernels read as 0) and its weights times 0: 0, or NaN
    # for a NaN coordinate (whose every tap is outside: a NaN output, reading nothing)
    N, Ho, Wo = grid4.shape[0], grid4.shape[1], grid4.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        ww = wt[n, h]
        dx = dwx[n, h]
        dy = dwy[n, h]
        for w in range(Wo):
            ix, mx = SOURCE(grid4[n, h, w, 0], W, padding, align, mode == 2)
            iy, my = SOURCE(grid4[n, h, w, 1], H, padding, align, mode == 2)
            if mode == 1:
                xn = NEAREST(ix)
                yn = NEAREST(iy)
                if xn >= 0 and xn < W and yn >= 0 and yn < H:
                    o[0, w] = yn * W + xn
                    ww[0, w] = T(1)
                else:
                    o[0, w] = oob
                    ww[0, w] = (ix + iy) * T(0)  # 0, NaN for a NaN coordinate
                dx[0, w] = T(0)
                dy[0, w] = T(0)
            elif mode == 0:
                fx = np.floor(ix)
                fy = np.floor(iy)
                x0 = FLOOR(ix)
                y0 = FLOOR(iy)
                bx = ix - fx
                by = iy - fy
                ax = (fx + T(1)) - ix
                ay = (fy + T(1)) - iy
                for k in range(4):
                    xx = x0 + (k & 1)
                    yy = y0 + (k >> 1)
                    wx = bx if (k & 1) else ax
                    wy = by if (k >> 1) else ay
                    sx = T(1) if (k & 1) else T(-1)
                    sy = T(1) if (k >> 1) else T(-1)
                    if xx >= 0 and xx < W and yy >= 0 and yy < H:
                        o[k, w] = yy * W + xx
                        ww[k, w] = wx * wy
                        dx[k, w] = sx * wy * mx
                        dy[k, w] = sy * wx * my
                    else:
                        o[k, w] = oob
                        ww[k, w] = T(0) * (wx * wy)
                        dx[k, w] = T(0) * (wy * mx)
                        dy[k, w] = T(0) * (wx * my)
            else:
                fx = np.floor(ix)
                fy = np.floor(iy)
                tx = ix - fx
                ty = iy - fy
                x0 = FLOOR(ix) - 1
                y0 = FLOOR(iy) - 1
                nan = ix != ix or iy != iy
                for j in range(4):
                    yy = -1 if nan else TAP(y0 + j, H, padding, align)
                    cy = CUBIC(ty, j)
                    dcy = DCUBIC(ty, j)
                    for i in range(4):
                        k = 4 * j + i
                        xx = -1 if nan else TAP(x0 + i, W, padding, align)
                        cx = CUBIC(tx, i)
                        if xx >= 0 and yy >= 0:
                            o[k, w] = yy * W + xx
                            ww[k, w] = cx * cy
                            dx[k, w] = DCUBIC(tx, i) * cy * mx
                            dy[k, w] = cx * dcy * my
                        else:
                            o[k, w] = oob
                            ww[k, w] = T(0) * (cx * cy)
                            dx[k, w] = T(0) * (DCUBIC(tx, i) * cy)
                            dy[k, w] = T(0) * (cx * dcy)


def _taps3_template(grid4, D, H, W, mode, padding, align, oob, off, wt, dwx, dwy, dwz):
    # 5-D input: grid4 is the (N, D_out * H_out, W_out, 3) grid, off/wt/dw*: (N, D_out * H_out,
    # K, W_out), K = 8 (trilinear: tap k at x0 + bit 0, y0 + bit 1, z0 + bit 2, PyTorch's order)
    # or 1 (nearest); out-of-bounds taps as in _taps_template
    N, Ro, Wo = grid4.shape[0], grid4.shape[1], grid4.shape[2]
    for r in prange(N * Ro):
        n = r // Ro
        h = r - n * Ro
        o = off[n, h]
        ww = wt[n, h]
        dx = dwx[n, h]
        dy = dwy[n, h]
        dz = dwz[n, h]
        for w in range(Wo):
            ix, mx = SOURCE(grid4[n, h, w, 0], W, padding, align, False)
            iy, my = SOURCE(grid4[n, h, w, 1], H, padding, align, False)
            iz, mz = SOURCE(grid4[n, h, w, 2], D, padding, align, False)
            if mode == 1:
                xn = NEAREST(ix)
                yn = NEAREST(iy)
                zn = NEAREST(iz)
                if xn >= 0 and xn < W and yn >= 0 and yn < H and zn >= 0 and zn < D:
                    o[0, w] = (zn * H + yn) * W + xn
                    ww[0, w] = T(1)
                else:
                    o[0, w] = oob
                    ww[0, w] = (ix + iy + iz) * T(0)  # 0, NaN for a NaN coordinate
                dx[0, w] = T(0)
                dy[0, w] = T(0)
                dz[0, w] = T(0)
            else:
                fx = np.floor(ix)
                fy = np.floor(iy)
                fz = np.floor(iz)
                x0 = FLOOR(ix)
                y0 = FLOOR(iy)
                z0 = FLOOR(iz)
                bx = ix - fx
                by = iy - fy
                bz = iz - fz
                ax = (fx + T(1)) - ix
                ay = (fy + T(1)) - iy
                az = (fz + T(1)) - iz
                for k in range(8):
                    xx = x0 + (k & 1)
                    yy = y0 + ((k >> 1) & 1)
                    zz = z0 + (k >> 2)
                    wx = bx if (k & 1) else ax
                    wy = by if ((k >> 1) & 1) else ay
                    wz = bz if (k >> 2) else az
                    sx = T(1) if (k & 1) else T(-1)
                    sy = T(1) if ((k >> 1) & 1) else T(-1)
                    sz = T(1) if (k >> 2) else T(-1)
                    if xx >= 0 and xx < W and yy >= 0 and yy < H and zz >= 0 and zz < D:
                        o[k, w] = (zz * H + yy) * W + xx
                        ww[k, w] = wx * wy * wz
                        dx[k, w] = sx * wy * wz * mx
                        dy[k, w] = sy * wx * wz * my
                        dz[k, w] = sz * wx * wy * mz
                    else:
                        o[k, w] = oob
                        ww[k, w] = T(0) * (wx * wy * wz)
                        dx[k, w] = T(0) * (wy * wz * mx)
                        dy[k, w] = T(0) * (wx * wz * my)
                        dz[k, w] = T(0) * (wx * wy * mz)


def _gather_template(x3, off, wt, oob, out4):
    # One (n, output row) per iteration: its taps are read once and reused for all C channels;
    # the inner loops run over a contiguous output row (vectorized gathers). The 4-tap (bilinear)
    # case is one fused expression, with unsigned offsets (no negative-index wraparound select).
    # Design note, (8, 64, 56, 56) float32, serial, loaded machine: the fused expression ran 18.8 ms
    # vs 30-35 ms for the tap-by-tap loop, and unsigned offsets gained another 1.3-1.5x over int32
    # ones (commit 62f1564).
    # oob == 0: out-of-bounds taps read element 0 (finite: the caller checked) times 0; otherwise
    # they hold the sentinel oob (the plane size) and read as 0 (masked loop, no 0 * NaN).
    N, C, Ho, Wo = out4.shape
    K = off.shape[2]
    P = x3.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        ww = wt[n, h]
        o0 = o[0]
        w0 = ww[0]
        if oob != 0:
            for c in range(C):
                plane = x3[n, c]
                orow = out4[n, c, h]
                for w in range(Wo):
                    orow[w] = w0[w] * READ(plane, o0[w], P)
                for k in range(1, K):
                    ok = o[k]
                    wk = ww[k]
                    for w in range(Wo):
                        orow[w] += wk[w] * READ(plane, ok[w], P)
        elif K == 4:
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


def _scatter_template(g4, off, wt, oob, gx3):
    # grad_input: one (n, c) plane per iteration, owned by it; output pixels in order. Taps
    # outside the input add nothing: the sentinel offset (oob != 0), or (oob == 0: grad_output
    # finite, checked by the caller) a zero or NaN weight (an in-bounds zero weight adds 0 anyway)
    N, C, Ho, Wo = g4.shape
    K = off.shape[2]
    for q in prange(N * C):
        n = q // C
        c = q - n * C
        gp = gx3[n, c]
        for i in range(gp.shape[0]):
            gp[i] = T(0)
        for h in range(Ho):
            grow = g4[n, c, h]
            o = off[n, h]
            ww = wt[n, h]
            for k in range(K):
                ok = o[k]
                wk = ww[k]
                if oob != 0:
                    for w in range(Wo):
                        if ok[w] != oob:
                            gp[ok[w]] += wk[w] * grow[w]
                else:
                    for w in range(Wo):
                        if wk[w] != T(0) and wk[w] == wk[w]:
                            gp[ok[w]] += wk[w] * grow[w]


def _gridgrad_template(x3, g4, off, dw, oob, gg4):
    # grad_grid: one (n, output row) per iteration, channels summed in order 0..C-1; dw holds the
    # weights' derivatives along each of the S = 2 (x, y) or 3 (x, y, z) grid components.
    N, C, Ho, Wo = g4.shape
    K = off.shape[2]
    S = dw.shape[0]
    P = x3.shape[2]
    for r in prange(N * Ho):
        n = r // Ho
        h = r - n * Ho
        o = off[n, h]
        acc = np.zeros((S, Wo), g4.dtype)
        v = np.empty(Wo, g4.dtype)
        for c in range(C):
            plane = x3[n, c]
            grow = g4[n, c, h]
            for k in range(K):
                ok = o[k]
                if oob != 0:
                    for w in range(Wo):
                        v[w] = READ(plane, ok[w], P) * grow[w]
                else:
                    for w in range(Wo):
                        v[w] = plane[ok[w]] * grow[w]
                for s in range(S):
                    a = acc[s]
                    d = dw[s, n, h, k]
                    for w in range(Wo):
                        a[w] += d[w] * v[w]
        for w in range(Wo):
            for s in range(S):
                gg4[n, h, w, s] = acc[s, w]


def _grid_bindings(dt, which, variant):
    """The per-dtype inlined helpers the grid_sample templates call (each with its T)."""
    sfx = dt.name
    b = {"T": dt.type}
    clip = inline(clone(_clip_template, f"gs_clip_{sfx}", b))
    refl = inline(clone(_reflect_template, f"gs_reflect_{sfx}", b))
    hb = dict(b, CLIP=clip, REFLECT=refl)
    return dict(
        SOURCE=inline(clone(_source_template, f"gs_source_{sfx}", hb)),
        TAP=inline(clone(_tap_coord_template, f"gs_tap_{sfx}", hb)),
        CUBIC=inline(clone(_cubic_template, f"gs_cubic_{sfx}", b)),
        DCUBIC=inline(clone(_dcubic_template, f"gs_dcubic_{sfx}", b)),
        FLOOR=inline(clone(_floor_int_template, f"gs_floor_{sfx}", b)),
        NEAREST=inline(clone(_nearest_int_template, f"gs_nearest_{sfx}", b)),
        READ=inline(clone(_read_template, f"gs_read_{sfx}", b)),
    )


_K = PlaneSet(
    "grid_sample",
    {"taps": _taps_template, "taps3": _taps3_template, "gather": _gather_template, "scatter": _scatter_template, "gridgrad": _gridgrad_template},
    bind=_grid_bindings,
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
    if x.ndim not in (4, 5):
        raise ValueError(f"{GS}: argument 'input' must be 4-D (N, C, H, W) or 5-D (N, C, D, H, W), got shape {x.shape}")
    k = x.ndim - 2
    if g.ndim != x.ndim or g.shape[-1] != k or g.shape[0] != x.shape[0]:
        names = "H_out, W_out, 2" if k == 2 else "D_out, H_out, W_out, 3"
        raise ValueError(
            f"{GS}: argument 'grid' must have shape (N, {names}) with N = {x.shape[0]} "
            f"for {x.ndim}-D input (input shape {x.shape}), got {g.shape}"
        )
    if k == 3 and mode == "bicubic":
        raise ValueError(f"{GS}: argument 'mode' 'bicubic' supports only 4-D input (as PyTorch), got shape {x.shape}")
    P = int(np.prod(x.shape[2:]))
    if P == 0:
        raise ValueError(f"{GS}: argument 'input' has an empty spatial extent, shape {x.shape}")
    if P >= 2**31:
        raise ValueError(f"{GS}: input planes of 2**31 elements or more are not supported, shape {x.shape}")
    return x, g, MODES[mode], PADDINGS[padding_mode], bool(align_corners)


def _taps(x, g, mode, pad, align, masked):
    """The taps of every grid point: offsets (N, R, K, W_out) into the flattened input planes,
    weights and the weights' derivatives dw (S, N, R, K, W_out), R = the output rows (H_out, or
    D_out * H_out for 5-D input), S = 2 or 3 grid components. Out-of-bounds taps get offset 0
    (fast kernels, when element 0 of every plane and grad_output are finite) or, ``masked``, the
    plane size (read as 0)."""
    N = x.shape[0]
    sp = x.shape[2:]
    S = len(sp)
    P = int(np.prod(sp))
    Wo = g.shape[-2]
    R = int(np.prod(g.shape[1:-2]))
    K = TAPS[mode] if S == 2 else (8 if mode == 0 else 1)
    oob = P if masked else 0
    # uint32 offsets: the forward gather measured 1.3-1.5x faster than with int32 or int64 ones
    # (no negative-index wraparound; 16 lanes per gather; commit 62f1564)
    off = np.empty((N, R, K, Wo), np.uint32)
    wt = np.empty((N, R, K, Wo), x.dtype)
    dw = np.empty((S, N, R, K, Wo), x.dtype)
    g4 = g.reshape(N, R, Wo, S)
    if S == 2:
        _K.call("taps", x.dtype, N * R, g.size * K, g4, sp[0], sp[1], mode, pad, align, oob, off, wt, dw[0], dw[1])
    else:
        _K.call("taps3", x.dtype, N * R, g.size * K, g4, sp[0], sp[1], sp[2], mode, pad, align, oob, off, wt,
                dw[0], dw[1], dw[2])
    return off, wt, dw, oob


def _plane0_finite(x3):
    """Element 0 of every plane finite: the one the fast kernels' out-of-bounds taps read."""
    return bool(np.isfinite(x3[:, :, 0]).all())


@op
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """``F.grid_sample(input, grid, mode, padding_mode, align_corners)``.

    4-D: input (N, C, H, W), grid (N, H_out, W_out, 2) of (x, y) in [-1, 1] -> (N, C, H_out, W_out);
    5-D: input (N, C, D, H, W), grid (N, D_out, H_out, W_out, 3) of (x, y, z) -> (N, C, D_out,
    H_out, W_out). ``mode``: ``"bilinear"`` (trilinear for 5-D), ``"nearest"`` (round half to
    even, as PyTorch) or ``"bicubic"`` (A = -0.75, 4-D only); ``padding_mode``: ``"zeros"``,
    ``"border"`` or ``"reflection"``; ``align_corners``: -1 and 1 are the centres (True) or the
    outer edges (False) of the corner pixels.

    Non-finite values: a tap outside the input (zeros padding) contributes nothing, whatever the
    input holds; an infinite or huge coordinate reads nothing (0 with zeros padding, the clipped
    border otherwise); a NaN coordinate gives NaN in every channel, adds nothing to grad_input,
    and NaN to grad_grid as PyTorch's bilinear/bicubic kernels.

    Backward: ``grid_sample.backward(grad_output, input, grid, ...)`` -> ``(grad_input,
    grad_grid)``; ``grad_grid`` is zero for ``"nearest"``, and follows PyTorch at the borders
    (clipped coordinates have zero derivative).
    """
    x, g, mode_, pad, align = _gs_validate(input, grid, mode, padding_mode, align_corners)
    N, C = x.shape[:2]
    osp = g.shape[1:-1]
    out = np.empty((N, C) + osp, x.dtype)
    if out.size == 0:
        return out
    x3 = x.reshape(N, C, -1)
    off, wt, _, oob = _taps(x, g, mode_, pad, align, not _plane0_finite(x3))
    R, Wo = off.shape[1], off.shape[3]
    _K.call("gather", x.dtype, N * R, out.size * off.shape[2], x3, off, wt, oob, out.reshape(N, C, R, Wo))
    return out


@grid_sample.defbackward
def _(grad_output, input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    x, g, mode_, pad, align = _gs_validate(input, grid, mode, padding_mode, align_corners)
    N, C = x.shape[:2]
    osp = g.shape[1:-1]
    go = grad_like(GS, grad_output, (N, C) + osp, x.dtype)
    gx = np.zeros(x.shape, x.dtype)
    gg = np.zeros(g.shape, x.dtype)
    if go.size == 0:
        return gx, gg
    x3 = x.reshape(N, C, -1)
    # the fast kernels need element 0 of every plane finite (gridgrad reads it for out-of-bounds
    # taps) and grad_output finite (scatter skips zero weights: 0 * inf); a non-finite sum (also
    # on overflow) takes the masked ones
    masked = not (_plane0_finite(x3) and np.isfinite(np.sum(go)))
    off, wt, dw, oob = _taps(x, g, mode_, pad, align, masked)
    R, K, Wo = off.shape[1], off.shape[2], off.shape[3]
    go4 = go.reshape(N, C, R, Wo)
    _K.call("scatter", x.dtype, N * C, go.size * K, go4, off, wt, oob, gx.reshape(N, C, -1))
    if mode_ != 1:
        _K.call("gridgrad", x.dtype, N * R, go.size * K, x3, go4, off, dw, oob, gg.reshape(N, R, Wo, -1))
    return gx, gg


@grid_sample.defexplain
def _(shape, dtype, grid_shape=None, mode="bilinear", shapes=None, **params):
    """``grid_shape`` (or the second of ``shapes``, as ``python -m fastops explain grid_sample
    --shape 8x64x56x56 8x56x56x2`` passes it): the grid's; default: the input's spatial size."""
    if grid_shape is None and shapes is not None and len(shapes) > 1:
        grid_shape = shapes[1]
    N, C = shape[:2]
    osp = tuple(grid_shape[1:-1]) if grid_shape is not None else tuple(shape[2:])
    R, Wo = int(np.prod(osp[:-1])), osp[-1]
    K = TAPS[MODES[mode]] if len(shape) == 4 else (8 if mode == "bilinear" else 1)
    d = _K.explain("gather", dtype, N * R, N * C * R * Wo * K)
    d["taps"] = K
    return d


__all__ = ["grid_sample"]
