"""``deform_conv2d``: deformable convolution v1/v2 with ``torchvision.ops.deform_conv2d`` semantics.

Reference: torchvision ``ops/deform_conv2d.py`` and ``csrc/ops/cpu/deform_conv2d_kernel.cpp``:

* input (N, C_in, H, W), weight (C_out, C_in // groups, kh, kw) (``groups = C_in // weight.shape[1]``),
  offset (N, 2 * offset_groups * kh * kw, H_out, W_out) with ``offset_groups = offset.shape[1] //
  (2 * kh * kw)``; for offset group ``g`` and kernel position ``k = i * kw + j`` the channels
  ``g*2*kh*kw + 2*k`` and ``+ 1`` hold (dy, dx). Input channel ``c`` uses offset group
  ``c // (C_in // offset_groups)``. Optional mask (N, offset_groups * kh * kw, H_out, W_out)
  multiplies each sample (DCNv2).
* Sample position ``y = oh*stride_h - pad_h + i*dil_h + dy`` (``x`` likewise), bilinear
  interpolation with zeros outside: a position with ``y <= -1 or y >= H or x <= -1 or x >= W``
  gives 0, otherwise each of the 4 corners inside the image contributes ``weight * value``.
* ``out = W (groups, C_out/groups, C_in/groups*kh*kw) @ columns + bias``.

Implementation (deformable im2col, as torchvision, but deterministic):

1. ``coords``: per (n, offset group, k) row of H_out*W_out positions, the 4 corner indices (int32,
   0 for a corner outside, whose weight is 0) and their bilinear weights times the mask. Parallel over
   (n, offset group, k): each iteration writes its own row.
2. ``im2col``: columns (C_in*kh*kw, N, H_out*W_out) gathered from those tables, parallel over
   (n, offset group, k), in blocks of positions whose tables stay in L1. The tables are computed
   once per (n, group, k) and reused by every channel of the group instead of redoing the ~20
   flops of coordinate arithmetic per channel.
3. GEMM on fastops' engine (``fastops._gemm``), one per group over the whole batch.
4. Backward: grad_columns = W^T @ grad_out (matmul); grad_input by col2im parallel over (n, block of
   channels): each iteration owns its input-gradient planes and scatters into them in a fixed
   order (no races, bitwise the same for any thread count, unlike torchvision's atomics); grad_offset and grad_mask
   per (n, offset group, k): each iteration owns its two offset rows and mask row and sums over the
   channels of the group in order. grad_weight = grad_out (C_out, N*L) @ columns^T, grad_bias = sum.

Out-of-image corners index a zero sentinel appended to each input plane (and a dropped extra
element of each input-gradient plane), so they contribute exactly 0 even next to a NaN/inf pixel,
as in torchvision, with branch-free gathers.
"""
import math
import numbers

import numpy as np
from numba import prange

from .. import _dispatch, _gemm, _threads
from .._op import op
from .._validate import float_arrays, grad_like, int_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

# --- kernels ------------------------------------------------------------------------------------


def _coords_template(off, msk, use_mask, KW, sh, sw, ph, pw, dh, dw, H, W, Wo, idx, wts):
    # off (N, G, K, 2, L), msk (N, G, K, L) (or (1, 1, 1, 1) unused), idx (N, G, K, 4, L) int32,
    # wts (N, G, K, 4, L)
    N, G, K = idx.shape[0], idx.shape[1], idx.shape[2]
    L = idx.shape[4]
    for r in prange(N * G * K):
        n = r // (G * K)
        g = (r // K) % G
        k = r % K
        ki = k // KW
        kj = k % KW
        oy = off[n, g, k, 0]
        ox = off[n, g, k, 1]
        ii = idx[n, g, k]
        ww = wts[n, g, k]
        for l in range(L):
            oh = l // Wo
            ow = l - oh * Wo
            y = T(oh * sh - ph + ki * dh) + oy[l]
            x = T(ow * sw - pw + kj * dw) + ox[l]
            m = msk[n, g, k, l] if use_mask else T(1)
            for q in range(4):
                ii[q, l] = H * W  # the zero sentinel after the plane (see _padded)
                ww[q, l] = T(0)
            if not (y <= T(-1) or y >= T(H) or x <= T(-1) or x >= T(W)):
                fy = math.floor(y)
                fx = math.floor(x)
                ly = y - fy
                lx = x - fx
                hy = T(1) - ly
                hx = T(1) - lx
                y0 = int(fy)
                x0 = int(fx)
                y1 = y0 + 1
                x1 = x0 + 1
                vy0 = y0 >= 0
                vy1 = y1 <= H - 1
                vx0 = x0 >= 0
                vx1 = x1 <= W - 1
                if vy0 and vx0:
                    ii[0, l] = y0 * W + x0
                    ww[0, l] = m * (hy * hx)
                if vy0 and vx1:
                    ii[1, l] = y0 * W + x1
                    ww[1, l] = m * (hy * lx)
                if vy1 and vx0:
                    ii[2, l] = y1 * W + x0
                    ww[2, l] = m * (ly * hx)
                if vy1 and vx1:
                    ii[3, l] = y1 * W + x1
                    ww[3, l] = m * (ly * lx)


def _im2col_template(x3, idx, wts, LB, cols):
    # x3 (N, C, H*W), cols (C*K, N, L). One (n, offset group, k) per iteration: it writes the rows
    # of its group's channels for that k. Positions are done in blocks of LB so the block of the
    # 4 index + 4 weight tables (LB * 32 bytes) stays in L1 while every channel of the group uses
    # it: looping over (n, c) planes with whole-row tables re-read ~0.9 MB per channel from L2/L3
    # and took 224 ms for 8x64x56x56 3x3 (2 threads, loaded machine; commit 2e7dce6).
    N, C = x3.shape[0], x3.shape[1]
    G, K, L = idx.shape[1], idx.shape[2], idx.shape[4]
    Cog = C // G
    for r in prange(N * G * K):
        n = r // (G * K)
        g = (r // K) % G
        k = r % K
        for l0 in range(0, L, LB):
            nb = min(LB, L - l0)
            i0 = idx[n, g, k, 0, l0:l0 + nb]
            i1 = idx[n, g, k, 1, l0:l0 + nb]
            i2 = idx[n, g, k, 2, l0:l0 + nb]
            i3 = idx[n, g, k, 3, l0:l0 + nb]
            w0 = wts[n, g, k, 0, l0:l0 + nb]
            w1 = wts[n, g, k, 1, l0:l0 + nb]
            w2 = wts[n, g, k, 2, l0:l0 + nb]
            w3 = wts[n, g, k, 3, l0:l0 + nb]
            for c in range(g * Cog, (g + 1) * Cog):
                xp = x3[n, c]
                row = cols[c * K + k, n, l0:l0 + nb]
                for l in range(nb):
                    row[l] = w0[l] * xp[i0[l]] + w1[l] * xp[i1[l]] + w2[l] * xp[i2[l]] + w3[l] * xp[i3[l]]


def _col2im_template(gcols, idx, wts, CB, LB, gx3):
    # gcols (C*K, N, L) -> gx3 (N, C, H*W). One (n, block of CB channels of one offset group) per
    # iteration: it owns those gradient planes and scatters into them in a fixed order (no races,
    # bitwise the same for any thread count). Blocks of LB positions keep the tables in L1 across
    # the CB channels (same reason as im2col).
    N, C, HW = gx3.shape
    G, K, L = idx.shape[1], idx.shape[2], idx.shape[4]
    Cog = C // G
    NB = (Cog + CB - 1) // CB
    for r in prange(N * G * NB):
        n = r // (G * NB)
        g = (r // NB) % G
        c0 = g * Cog + (r % NB) * CB
        c1 = min(c0 + CB, (g + 1) * Cog)
        for c in range(c0, c1):
            gp = gx3[n, c]
            for p in range(HW):
                gp[p] = T(0)
        for k in range(K):
            for l0 in range(0, L, LB):
                nb = min(LB, L - l0)
                i0 = idx[n, g, k, 0, l0:l0 + nb]
                i1 = idx[n, g, k, 1, l0:l0 + nb]
                i2 = idx[n, g, k, 2, l0:l0 + nb]
                i3 = idx[n, g, k, 3, l0:l0 + nb]
                w0 = wts[n, g, k, 0, l0:l0 + nb]
                w1 = wts[n, g, k, 1, l0:l0 + nb]
                w2 = wts[n, g, k, 2, l0:l0 + nb]
                w3 = wts[n, g, k, 3, l0:l0 + nb]
                for c in range(c0, c1):
                    gp = gx3[n, c]
                    row = gcols[c * K + k, n, l0:l0 + nb]
                    for l in range(nb):
                        v = row[l]
                        gp[i0[l]] += w0[l] * v
                        gp[i1[l]] += w1[l] * v
                        gp[i2[l]] += w2[l] * v
                        gp[i3[l]] += w3[l] * v


def _offset_grad_template(x3, off, msk, use_mask, gcols, KW, sh, sw, ph, pw, dh, dw, H, W, Wo, LB, goff, gmsk):
    # goff (N, G, K, 2, L), gmsk (N, G, K, L): one (n, g, k) row set per iteration
    N, G, K = goff.shape[0], goff.shape[1], goff.shape[2]
    L = goff.shape[4]
    C = x3.shape[1]
    Cog = C // G
    for r in prange(N * G * K):
        n = r // (G * K)
        g = (r // K) % G
        k = r % K
        ki = k // KW
        kj = k % KW
        oy = off[n, g, k, 0]
        ox = off[n, g, k, 1]
        ii = np.full((4, L), H * W, np.uint32)  # invalid corners read the zero sentinel
        A = np.zeros((4, L), T)  # d(mask*value)/dy per corner
        B = np.zeros((4, L), T)  # d(mask*value)/dx per corner
        V = np.zeros((4, L), T)  # value (without mask) per corner
        for l in range(L):
            oh = l // Wo
            ow = l - oh * Wo
            y = T(oh * sh - ph + ki * dh) + oy[l]
            x = T(ow * sw - pw + kj * dw) + ox[l]
            m = msk[n, g, k, l] if use_mask else T(1)
            if not (y <= T(-1) or y >= T(H) or x <= T(-1) or x >= T(W)):
                fy = math.floor(y)
                fx = math.floor(x)
                ly = y - fy
                lx = x - fx
                hy = T(1) - ly
                hx = T(1) - lx
                y0 = int(fy)
                x0 = int(fx)
                y1 = y0 + 1
                x1 = x0 + 1
                vy0 = y0 >= 0
                vy1 = y1 <= H - 1
                vx0 = x0 >= 0
                vx1 = x1 <= W - 1
                # value = hy*hx*v00 + hy*lx*v01 + ly*hx*v10 + ly*lx*v11
                if vy0 and vx0:
                    ii[0, l] = y0 * W + x0
                    V[0, l] = hy * hx
                    A[0, l] = -m * hx
                    B[0, l] = -m * hy
                if vy0 and vx1:
                    ii[1, l] = y0 * W + x1
                    V[1, l] = hy * lx
                    A[1, l] = -m * lx
                    B[1, l] = m * hy
                if vy1 and vx0:
                    ii[2, l] = y1 * W + x0
                    V[2, l] = ly * hx
                    A[2, l] = m * hx
                    B[2, l] = -m * ly
                if vy1 and vx1:
                    ii[3, l] = y1 * W + x1
                    V[3, l] = ly * lx
                    A[3, l] = m * lx
                    B[3, l] = m * ly
        gy = goff[n, g, k, 0]
        gxr = goff[n, g, k, 1]
        gm = gmsk[n, g, k]
        # The three gradients are linear in the 4 corner values: sum gcol * value per corner over
        # the channels first (4 multiply-adds per channel and position instead of 15), then combine
        # with the coefficients once. Blocks of LB positions keep the rows in L1 across channels.
        S = np.empty((4, LB), T)
        for l0 in range(0, L, LB):
            nb = min(LB, L - l0)
            i0 = ii[0, l0:l0 + nb]
            i1 = ii[1, l0:l0 + nb]
            i2 = ii[2, l0:l0 + nb]
            i3 = ii[3, l0:l0 + nb]
            s0 = S[0, :nb]
            s1 = S[1, :nb]
            s2 = S[2, :nb]
            s3 = S[3, :nb]
            for l in range(nb):
                s0[l] = T(0)
                s1[l] = T(0)
                s2[l] = T(0)
                s3[l] = T(0)
            for c in range(g * Cog, (g + 1) * Cog):
                xp = x3[n, c]
                gc = gcols[c * K + k, n, l0:l0 + nb]
                for l in range(nb):
                    gv = gc[l]
                    s0[l] += gv * xp[i0[l]]
                    s1[l] += gv * xp[i1[l]]
                    s2[l] += gv * xp[i2[l]]
                    s3[l] += gv * xp[i3[l]]
            for l in range(nb):
                q = l0 + l
                gy[q] = A[0, q] * s0[l] + A[1, q] * s1[l] + A[2, q] * s2[l] + A[3, q] * s3[l]
                gxr[q] = B[0, q] * s0[l] + B[1, q] * s1[l] + B[2, q] * s2[l] + B[3, q] * s3[l]
                gm[q] = V[0, q] * s0[l] + V[1, q] * s1[l] + V[2, q] * s2[l] + V[3, q] * s3[l]


# Positions per block (tables of LB * 32 bytes stay in L1) and channels per col2im iteration.
_LB = 512
_CB = 8

_TEMPLATES = {
    "coords": _coords_template,
    "im2col": _im2col_template,
    "col2im": _col2im_template,
    "offset_grad": _offset_grad_template,
}
_KERNELS = KernelSet("deform_conv2d", _TEMPLATES)


def _run(which, dtype, items, work, *args):
    _KERNELS.run(which, dtype, _dispatch.parallel_backend(dtype, work, _threads.get_num_threads(), "transcendental", units=items), *args)


# --- validation and geometry --------------------------------------------------------------------

_OP = "deform_conv2d"


def _pair(name, v, minimum):
    if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = (v, v)
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError(f"{_OP}: argument '{name}' must be an int or a pair of ints, got {v!r}")
    v = tuple(int_scalar(_OP, name, e) for e in v)
    if min(v) < minimum:
        raise ValueError(f"{_OP}: argument '{name}' must be >= {minimum}, got {v}")
    return v


def _prepare(input, offset, weight, bias, stride, padding, dilation, mask):
    x, off, w, b, m = float_arrays(_OP, ("input", "offset", "weight", "bias", "mask"), (input, offset, weight, bias, mask))
    for name, a in (("input", x), ("offset", off), ("weight", w)):
        if a.ndim != 4:
            raise ValueError(f"{_OP}: argument '{name}' must be 4-D, got shape {a.shape}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    dh, dw = _pair("dilation", dilation, 1)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    K = kh * kw
    if Cg == 0 or kh == 0 or kw == 0 or O == 0:
        raise ValueError(f"{_OP}: argument 'weight' has an empty dimension, shape {w.shape}")
    if C % Cg:
        raise ValueError(
            f"{_OP}: input channels {C} (input {x.shape}) are not a multiple of weight.shape[1]={Cg} (weight {w.shape})"
        )
    if C == 0:  # (with weight.shape[1] > 0: 0 groups)
        raise ValueError(f"{_OP}: argument 'input' has 0 channels (input {x.shape}, weight {w.shape})")
    G = C // Cg
    if O % G:
        raise ValueError(f"{_OP}: output channels {O} (weight {w.shape}) are not divisible by groups={G} (input {x.shape})")
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if H + 2 * ph < ekh or W + 2 * pw < ekw:
        raise ValueError(
            f"{_OP}: kernel {kh}x{kw} with dilation {(dh, dw)} (extent {ekh}x{ekw}) is larger than the padded "
            f"input {(H + 2 * ph, W + 2 * pw)} (input {x.shape}, padding {(ph, pw)})"
        )
    Ho = (H + 2 * ph - ekh) // sh + 1
    Wo = (W + 2 * pw - ekw) // sw + 1
    if off.shape[1] == 0 or off.shape[1] % (2 * K):
        raise ValueError(
            f"{_OP}: offset channels {off.shape[1]} (offset {off.shape}) must be a positive multiple of "
            f"2*kh*kw={2 * K} (weight {w.shape})"
        )
    OG = off.shape[1] // (2 * K)
    if C % OG:
        raise ValueError(f"{_OP}: input channels {C} (input {x.shape}) are not divisible by offset_groups={OG} (offset {off.shape})")
    if off.shape[0] != N or off.shape[2:] != (Ho, Wo):
        raise ValueError(
            f"{_OP}: offset shape {off.shape} must be ({N}, {off.shape[1]}, {Ho}, {Wo}) for input {x.shape}, "
            f"weight {w.shape}, stride {(sh, sw)}, padding {(ph, pw)}, dilation {(dh, dw)}"
        )
    if m is not None and m.shape != (N, OG * K, Ho, Wo):
        raise ValueError(f"{_OP}: mask shape {m.shape} must be {(N, OG * K, Ho, Wo)} (offset {off.shape}, weight {w.shape})")
    if b is not None and b.shape != (O,):
        raise ValueError(f"{_OP}: bias shape {b.shape} must be ({O},) (weight {w.shape})")
    if H * W >= 2**31:
        raise ValueError(f"{_OP}: input planes of {H * W} elements exceed the int32 index range (input {x.shape})")
    geo = dict(N=N, C=C, H=H, W=W, O=O, Cg=Cg, kh=kh, kw=kw, K=K, G=G, OG=OG, Ho=Ho, Wo=Wo,
               sh=sh, sw=sw, ph=ph, pw=pw, dh=dh, dw=dw)
    return x, off, w, b, m, geo


def _tables(x, off, m, geo):
    N, OG, K, Ho, Wo = geo["N"], geo["OG"], geo["K"], geo["Ho"], geo["Wo"]
    L = Ho * Wo
    idx = np.empty((N, OG, K, 4, L), np.uint32)
    wts = np.empty((N, OG, K, 4, L), x.dtype)
    off5 = off.reshape(N, OG, K, 2, L)
    msk = m.reshape(N, OG, K, L) if m is not None else np.ones((1, 1, 1, 1), x.dtype)
    _run("coords", x.dtype, N * OG * K, N * OG * K * L * 8, off5, msk, m is not None, geo["kw"],
         geo["sh"], geo["sw"], geo["ph"], geo["pw"], geo["dh"], geo["dw"], geo["H"], geo["W"], Wo, idx, wts)
    return idx, wts, off5, msk


def _padded(x):
    """(N, C, H*W + 1): the input planes, each followed by a 0 that every out-of-image corner
    indexes (with weight 0). Reading such corners at index 0 instead let a NaN/inf at pixel (0, 0)
    leak into out-of-image samples (0 * NaN = NaN); torchvision skips them. A sentinel keeps the
    gathers branch-free; the extra copy is one memory-bound pass over the input."""
    N, C = x.shape[:2]
    x3 = np.empty((N, C, x.shape[2] * x.shape[3] + 1), x.dtype)
    x3[:, :, :-1] = x.reshape(N, C, -1)
    x3[:, :, -1] = 0
    return x3


def _columns(x3, idx, wts, geo):
    # (C*K, N, L) = (groups, C_in/groups*kh*kw, N*L): one GEMM per group over the whole batch
    N, C, K, L = geo["N"], geo["C"], geo["K"], geo["Ho"] * geo["Wo"]
    cols = np.empty((C * K, N, L), x3.dtype)
    OG = geo["OG"]
    _run("im2col", x3.dtype, N * OG * K, N * C * K * L * 4, x3, idx, wts, _LB, cols)
    return cols


@op
def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """``torchvision.ops.deform_conv2d``: deformable convolution (DCNv1; DCNv2 with ``mask``).

    Parameters
    ----------
    input : (N, C_in, H, W)
    offset : (N, 2 * offset_groups * kh * kw, H_out, W_out), (dy, dx) interleaved per kernel position
    weight : (C_out, C_in // groups, kh, kw)
    bias : (C_out,) or None
    stride, padding, dilation : int or (int, int)
    mask : (N, offset_groups * kh * kw, H_out, W_out) or None

    Returns (N, C_out, H_out, W_out), ``H_out = (H + 2*pad_h - dil_h*(kh-1) - 1) // stride_h + 1``.

    Backward: ``deform_conv2d.backward(grad_output, input, offset, weight, bias, ..., mask=mask)``
    -> ``(grad_input, grad_offset, grad_weight, grad_bias, grad_mask)`` (``None`` for an absent
    bias / mask).
    """
    x, off, w, b, m, geo = _prepare(input, offset, weight, bias, stride, padding, dilation, mask)
    N, O, G, Ho, Wo = geo["N"], geo["O"], geo["G"], geo["Ho"], geo["Wo"]
    L = Ho * Wo
    if N == 0:  # an empty batch: an empty result (as torchvision)
        return np.empty((0, O, Ho, Wo), x.dtype)
    idx, wts, _, _ = _tables(x, off, m, geo)
    cols = _columns(_padded(x), idx, wts, geo)
    # One GEMM per group with N*L columns (fastops' engine), not one per image.
    res = _gemm.gemm(w.reshape(G, O // G, -1), cols.reshape(G, -1, N * L)).reshape(O, N, L).transpose(1, 0, 2)
    out = np.empty((N, O, L), x.dtype)
    if b is not None:
        np.add(res, b.reshape(1, O, 1), out=out)
    else:
        out[...] = res
    return out.reshape(N, O, Ho, Wo)


@deform_conv2d.defbackward
def _(grad_output, input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    x, off, w, b, m, geo = _prepare(input, offset, weight, bias, stride, padding, dilation, mask)
    N, C, O, G, OG, K, Ho, Wo = (geo[k] for k in ("N", "C", "O", "G", "OG", "K", "Ho", "Wo"))
    L = Ho * Wo
    g = grad_like(_OP, grad_output, (N, O, Ho, Wo), x.dtype)
    if N == 0:  # an empty batch: empty gradients, 0 for weight and bias (sums over nothing)
        return (np.zeros(x.shape, x.dtype), np.zeros(off.shape, x.dtype), np.zeros(w.shape, x.dtype),
                np.zeros(O, x.dtype) if b is not None else None, np.zeros(m.shape, x.dtype) if m is not None else None)
    gt = np.ascontiguousarray(g.reshape(N, O, L).transpose(1, 0, 2)).reshape(G, O // G, N * L)
    w3 = w.reshape(G, O // G, -1)
    idx, wts, off5, msk = _tables(x, off, m, geo)
    x3 = _padded(x)
    cols = _columns(x3, idx, wts, geo)
    # single GEMMs over the whole batch (K = N*L for grad_weight, N = N*L for grad_columns) on
    # fastops' engine; grad_weight computed transposed, columns (CgK, N*L) @ grad_out^T (N*L, Og)
    # (M = CgK rows, the larger side).
    gw = _gemm.gemm(cols.reshape(G, -1, N * L), gt.transpose(0, 2, 1)).transpose(0, 2, 1)
    gw = np.ascontiguousarray(gw).reshape(w.shape)
    gcols = _gemm.gemm(w3.transpose(0, 2, 1), gt).reshape(C * K, N, L)
    # one extra element per plane: the scatter target of out-of-image corners (weight 0), dropped
    gx = np.empty((N, C, geo["H"] * geo["W"] + 1), x.dtype)
    _run("col2im", x.dtype, N * OG * -(-(C // OG) // _CB), N * C * K * L * 4, gcols, idx, wts, _CB, _LB, gx)
    goff = np.empty((N, OG, K, 2, L), x.dtype)
    gm = np.empty((N, OG, K, L), x.dtype)
    _run("offset_grad", x.dtype, N * OG * K, N * C * K * L * 12, x3, off5, msk, m is not None,
         gcols, geo["kw"], geo["sh"], geo["sw"], geo["ph"], geo["pw"], geo["dh"], geo["dw"], geo["H"], geo["W"], Wo,
         _LB, goff, gm)
    gb = g.sum(axis=(0, 2, 3)) if b is not None else None
    return (
        np.ascontiguousarray(gx[:, :, :-1]).reshape(x.shape),
        goff.reshape(off.shape),
        gw,
        gb,
        gm.reshape(m.shape) if m is not None else None,
    )


@deform_conv2d.defexplain
def _(shape, dtype="float32", weight_shape=(1, 1, 3, 3), offset_groups=1, stride=1, padding=0, dilation=1,
      shapes=None, **params):
    """``shapes`` (from ``python -m fastops explain --shape INPUT OFFSET WEIGHT``) gives the weight
    shape and the offset groups; else ``weight_shape=`` and ``offset_groups=``."""
    if shapes is not None and len(shapes) >= 3:
        weight_shape = shapes[2]
        offset_groups = max(1, shapes[1][1] // (2 * shapes[2][2] * shapes[2][3]))
    if len(shape) != 4 or len(weight_shape) != 4:
        raise ValueError(f"{_OP}.explain: input and weight shapes must be 4-D, got {shape} and {weight_shape}")
    N, C, H, W = shape
    O, Cg, kh, kw = weight_shape
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    dh, dw = _pair("dilation", dilation, 1)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    K, L = kh * kw, max(Ho, 0) * max(Wo, 0)
    nt = _threads.get_num_threads()
    be = {
        "coords": _dispatch.parallel_backend(dtype, N * offset_groups * K * L * 8, nt, "transcendental", units=N * offset_groups * K),
        "im2col": _dispatch.parallel_backend(dtype, N * C * K * L * 4, nt, "transcendental", units=N * offset_groups * K),
        "col2im": _dispatch.parallel_backend(dtype, N * C * K * L * 4, nt, "transcendental",
                                             units=N * offset_groups * -(-(C // offset_groups) // _CB)),
        "offset_grad": _dispatch.parallel_backend(dtype, N * C * K * L * 12, nt, "transcendental", units=N * offset_groups * K),
    }
    return {
        "kernel": _KERNELS.kernel_name("im2col", dtype, be["im2col"]),
        "backend": be["im2col"],
        "backends": be,
        "gemm": "fastops._gemm",
        "threads": nt,
        "output_shape": (N, O, Ho, Wo),
    }


__all__ = ["deform_conv2d"]
