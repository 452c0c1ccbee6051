"""``channel_shuffle`` (ShuffleNet) and ``pixel_shuffle`` (sub-pixel convolution): plane copies."""
import math

import numpy as np
from numba import prange

from .._op import op
from .._validate import float_array, grad_like, int_scalar
from .._kernelset import PlaneSet


def _gather_planes_template(x3, perm, out3):
    # out3[n, c, :] = x3[n, perm[c], :]
    N, C, L = out3.shape
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        src = x3[n, perm[c]]
        dst = out3[n, c]
        for i in range(L):
            dst[i] = src[i]


def _pixel_shuffle_template(x4, out4, r):
    # x4 (B, C*r*r, H, W) -> out4 (B, C, H*r, W*r)
    B, C, HR, WR = out4.shape
    H = HR // r
    W = WR // r
    for t in prange(B * C):
        b = t // C
        c = t - b * C
        for i in range(r):
            for j in range(r):
                src = x4[b, c * r * r + i * r + j]
                for h in range(H):
                    row = src[h]
                    orow = out4[b, c, h * r + i]
                    for w in range(W):
                        orow[w * r + j] = row[w]


def _pixel_unshuffle_template(g4, out4, r):
    # g4 (B, C, H*r, W*r) -> out4 (B, C*r*r, H, W)
    B, C, HR, WR = g4.shape
    H = HR // r
    W = WR // r
    for t in prange(B * C):
        b = t // C
        c = t - b * C
        for i in range(r):
            for j in range(r):
                dst = out4[b, c * r * r + i * r + j]
                for h in range(H):
                    row = g4[b, c, h * r + i]
                    orow = dst[h]
                    for w in range(W):
                        orow[w] = row[w * r + j]


_K = PlaneSet(
    "shuffle",
    {
        "gather_planes": _gather_planes_template,
        "pixel_shuffle": _pixel_shuffle_template,
        "pixel_unshuffle": _pixel_unshuffle_template,
    },
)


# --- channel_shuffle ----------------------------------------------------------------------------


def _cs_validate(input, groups):
    x = float_array("channel_shuffle", "input", input)
    g = int_scalar("channel_shuffle", "groups", groups)
    if x.ndim < 3:
        raise ValueError(f"channel_shuffle: argument 'input' must have rank >= 3 (N, C, *), got shape {x.shape}")
    if g <= 0:
        raise ValueError(f"channel_shuffle: argument 'groups' must be positive, got {g}")
    if x.shape[1] % g:
        raise ValueError(
            f"channel_shuffle: argument 'groups' ({g}) must divide the channels (input.shape[1] = {x.shape[1]}), "
            f"input shape {x.shape}"
        )
    return x, g


def _cs_perm(C, g):
    # output channel j * g + i comes from input channel i * (C // g) + j
    co = np.arange(C)
    return ((co % g) * (C // g) + co // g).astype(np.int64)


def _gather(x, perm):
    N, C = x.shape[0], x.shape[1]
    L = math.prod(x.shape[2:])
    out = np.empty(x.shape, x.dtype)
    if x.size:
        _K.call("gather_planes", x.dtype, N * C, x.size, x.reshape(N, C, L), perm, out.reshape(N, C, L))
    return out


@op
def channel_shuffle(input, groups):
    """``F.channel_shuffle(input, groups)``: channels seen as (groups, C // groups), transposed.

    Backward: ``channel_shuffle.backward(grad_output, input, groups)`` -> ``(grad_input,)`` (the
    inverse permutation, i.e. a shuffle with ``C // groups`` groups).
    """
    x, g = _cs_validate(input, groups)
    return _gather(x, _cs_perm(x.shape[1], g))


@channel_shuffle.defbackward
def _(grad_output, input, groups):
    x, g = _cs_validate(input, groups)
    go = grad_like("channel_shuffle", grad_output, x.shape, x.dtype)
    perm = _cs_perm(x.shape[1], g)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    return (_gather(go, inv),)


@channel_shuffle.defexplain
def _(shape, dtype, groups=1, **params):
    planes = shape[0] * shape[1] if len(shape) >= 2 else 1
    return _K.explain("gather_planes", dtype, planes, math.prod(shape))


# --- pixel_shuffle ------------------------------------------------------------------------------


def _ps_validate(input, upscale_factor):
    x = float_array("pixel_shuffle", "input", input)
    r = int_scalar("pixel_shuffle", "upscale_factor", upscale_factor)
    if x.ndim < 3:
        raise ValueError(f"pixel_shuffle: argument 'input' must have rank >= 3 (*, C, H, W), got shape {x.shape}")
    if r <= 0:
        raise ValueError(f"pixel_shuffle: argument 'upscale_factor' must be positive, got {r}")
    if x.shape[-3] % (r * r):
        raise ValueError(
            f"pixel_shuffle: the channels (input.shape[-3] = {x.shape[-3]}) must be divisible by "
            f"upscale_factor**2 = {r * r}, input shape {x.shape}"
        )
    lead = x.shape[:-3]
    C, H, W = x.shape[-3] // (r * r), x.shape[-2], x.shape[-1]
    return x, r, lead, C, H, W


@op
def pixel_shuffle(input, upscale_factor):
    """``F.pixel_shuffle``: (*, C*r*r, H, W) -> (*, C, H*r, W*r).

    Backward: ``pixel_shuffle.backward(grad_output, input, upscale_factor)`` -> ``(grad_input,)``
    (a pixel unshuffle of the gradient).
    """
    x, r, lead, C, H, W = _ps_validate(input, upscale_factor)
    B = math.prod(lead)
    out = np.empty(lead + (C, H * r, W * r), x.dtype)
    if x.size:
        _K.call("pixel_shuffle", x.dtype, B * C, x.size, x.reshape(B, C * r * r, H, W), out.reshape(B, C, H * r, W * r), r)
    return out


@pixel_shuffle.defbackward
def _(grad_output, input, upscale_factor):
    x, r, lead, C, H, W = _ps_validate(input, upscale_factor)
    B = math.prod(lead)
    g = grad_like("pixel_shuffle", grad_output, lead + (C, H * r, W * r), x.dtype)
    gx = np.empty(x.shape, x.dtype)
    if x.size:
        _K.call("pixel_unshuffle", x.dtype, B * C, x.size, g.reshape(B, C, H * r, W * r), gx.reshape(B, C * r * r, H, W), r)
    return (gx,)


@pixel_shuffle.defexplain
def _(shape, dtype, upscale_factor=1, **params):
    r = upscale_factor
    planes = math.prod(shape[:-3]) * (shape[-3] // (r * r)) if len(shape) >= 3 else 1
    return _K.explain("pixel_shuffle", dtype, planes, math.prod(shape))


__all__ = ["channel_shuffle", "pixel_shuffle"]
