"""``upsample_nearest2d(x, size=(2, 2))``: Keras ``UpSampling2D`` on NCHW (rows and columns
repeated); backward sums each block, plane by plane."""
import math
import numbers

import numpy as np
from numba import prange

from .._op import op
from .._validate import float_array, grad_like
from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

OP = "upsample_nearest2d"


def _fwd_template(x3, out3, sh, sw):
    P, H, W = x3.shape
    for p in prange(P):
        for h in range(H):
            row = x3[p, h]
            for i in range(sh):
                orow = out3[p, h * sh + i]
                for w in range(W):
                    v = row[w]
                    for j in range(sw):
                        orow[w * sw + j] = v


def _bwd_template(g3, gx3, sh, sw):
    P, H, W = gx3.shape
    for p in prange(P):
        for h in range(H):
            orow = gx3[p, h]
            for w in range(W):
                orow[w] = T(0)
            for i in range(sh):
                row = g3[p, h * sh + i]
                for w in range(W):
                    s = orow[w]
                    for j in range(sw):
                        s += row[w * sw + j]
                    orow[w] = s


_K = PlaneSet("upsample_nearest2d", {"fwd": _fwd_template, "bwd": _bwd_template})


def _size(size):
    if isinstance(size, (numbers.Integral, np.integer)) and not isinstance(size, (bool, np.bool_)):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (numbers.Integral, np.integer)) for s in size)
    ):
        raise TypeError(f"{OP}: argument 'size' must be an int or a pair of ints, got {size!r}")
    sh, sw = int(size[0]), int(size[1])
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{OP}: argument 'size' must be positive, got {(sh, sw)}")
    return sh, sw


def _validate(x, size):
    x = float_array(OP, "x", x)
    if x.ndim != 4:
        raise ValueError(f"{OP}: argument 'x' must be 4-D (N, C, H, W), got shape {x.shape}")
    sh, sw = _size(size)
    N, C, H, W = x.shape
    return x, sh, sw, (N, C, H * sh, W * sw)


@op
def upsample_nearest2d(x, size=(2, 2)):
    """Keras ``UpSampling2D(size)`` on NCHW: (N, C, H, W) -> (N, C, H*sh, W*sw), each element
    repeated over an ``sh x sw`` block.

    Backward: ``upsample_nearest2d.backward(grad_output, x, size)`` -> ``(grad_x,)``, the sum of
    each block.
    """
    x, sh, sw, out_shape = _validate(x, size)
    out = np.empty(out_shape, x.dtype)
    if out.size:
        N, C, H, W = x.shape
        P = N * C
        _K.call("fwd", x.dtype, P, out.size, x.reshape(P, H, W), out.reshape(P, H * sh, W * sw), sh, sw)
    return out


@upsample_nearest2d.defbackward
def _(grad_output, x, size=(2, 2)):
    x, sh, sw, out_shape = _validate(x, size)
    g = grad_like(OP, grad_output, out_shape, x.dtype)
    gx = np.zeros(x.shape, x.dtype)
    if g.size:
        N, C, H, W = x.shape
        P = N * C
        _K.call("bwd", x.dtype, P, g.size, g.reshape(P, H * sh, W * sw), gx.reshape(P, H, W), sh, sw)
    return (gx,)


@upsample_nearest2d.defexplain
def _(shape, dtype, size=(2, 2), **params):
    sh, sw = _size(size)
    return _K.explain("fwd", dtype, math.prod(shape[:2]), math.prod(shape) * sh * sw)


__all__ = ["upsample_nearest2d"]
