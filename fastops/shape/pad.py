"""``pad`` (``F.pad``): constant padding (any dims, negative pads crop) by NumPy slicing; reflect,
replicate and circular padding of the last 1-3 dims by a Numba gather through per-dim index maps,
whose backward scatter-adds each plane's gradient in a fixed order (deterministic)."""
import math
import numbers

import numpy as np
from numba import prange

from .._op import op
from .._validate import choice, float_array, grad_like, nonbatch_nonempty, real_scalar
from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

OP = "pad"
MODES = ("constant", "reflect", "replicate", "circular")


def _gather_template(x4, md, mh, mw, out4):
    B, OD, OH, OW = out4.shape
    for b in prange(B):
        for d in range(OD):
            sd = md[d]
            for h in range(OH):
                row = x4[b, sd, mh[h]]
                orow = out4[b, d, h]
                for w in range(OW):
                    orow[w] = row[mw[w]]


def _scatter_template(g4, md, mh, mw, gx4):
    B, OD, OH, OW = g4.shape
    for b in prange(B):
        dst = gx4[b]
        for i in range(dst.shape[0]):
            for j in range(dst.shape[1]):
                for k in range(dst.shape[2]):
                    dst[i, j, k] = T(0)
        for d in range(OD):
            sd = md[d]
            for h in range(OH):
                row = g4[b, d, h]
                orow = dst[sd, mh[h]]
                for w in range(OW):
                    orow[mw[w]] += row[w]


_K = PlaneSet("pad", {"gather": _gather_template, "scatter": _scatter_template})


def _validate(input, pad, mode, value):
    x = float_array(OP, "input", input)
    mode = choice(OP, "mode", mode, MODES)
    if not isinstance(pad, (tuple, list)) or any(
        isinstance(p, (bool, np.bool_)) or not isinstance(p, (numbers.Integral, np.integer)) for p in pad
    ):
        raise TypeError(f"{OP}: argument 'pad' must be a tuple of ints, got {pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"{OP}: argument 'pad' must have an even length, got {pad} (input shape {x.shape})")
    k = len(pad) // 2
    if k > x.ndim:
        raise ValueError(
            f"{OP}: argument 'pad' {pad} pads {k} dims but the input has only {x.ndim} (shape {x.shape})"
        )
    if mode == "constant":
        value = 0.0 if value is None else real_scalar(OP, "value", value)
    else:
        if value is not None and value != 0:
            raise ValueError(f"{OP}: mode '{mode}' does not take a 'value' (got {value!r})")
        value = 0.0
        if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
            raise ValueError(
                f"{OP}: mode '{mode}' pads the last 1, 2 or 3 dims of a (k+1)- or (k+2)-D input; got pad {pad} "
                f"(k = {k}) for an input of shape {x.shape}"
            )
        if mode in ("reflect", "replicate"):  # torch: non-zero size for the non-batch dims
            nonbatch_nonempty(OP, "input", x, 1 if x.ndim == k + 2 else 0)
    # per padded dim (last dim first in `pad`): (size, left, right)
    dims = []
    for i in range(k):
        ax = x.ndim - 1 - i
        L, lo, hi = x.shape[ax], pad[2 * i], pad[2 * i + 1]
        if L + lo + hi < 0:
            raise ValueError(f"{OP}: pad {pad} gives a negative size for dim {ax} of the input of shape {x.shape}")
        if mode == "reflect" and (lo >= L or hi >= L):
            raise ValueError(
                f"{OP}: reflect padding ({lo}, {hi}) must be < the size {L} of dim {ax} (input shape {x.shape})"
            )
        if mode == "circular" and (lo > L or hi > L or (L - max(-lo, 0) - max(-hi, 0) <= 0 and (lo > 0 or hi > 0))):
            raise ValueError(
                f"{OP}: circular padding ({lo}, {hi}) must be <= the size {L} of dim {ax} (input shape {x.shape})"
            )
        if mode == "replicate" and L == 0 and (lo > 0 or hi > 0):
            raise ValueError(f"{OP}: replicate padding of the empty dim {ax} (input shape {x.shape})")
        dims.append((ax, L, lo, hi))
    out_shape = list(x.shape)
    for ax, L, lo, hi in dims:
        out_shape[ax] = L + lo + hi
    return x, pad, mode, value, dims, tuple(out_shape)


def _index_map(L, lo, hi, mode):
    i = np.arange(L + lo + hi, dtype=np.int64) - lo
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= L, 2 * (L - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, L - 1)
    else:  # circular, as PyTorch: negative pads crop first, positive ones wrap around the cropped range
        c0, c1 = max(-lo, 0), L - max(-hi, 0)
        i = c0 + (np.arange(L + lo + hi, dtype=np.int64) - max(lo, 0)) % max(c1 - c0, 1)
    return np.ascontiguousarray(i, dtype=np.int64)


def _geometry(x, dims, mode, out_shape):
    """(B, in DHW, out DHW, maps) with the padded dims as the last three (size-1 fillers)."""
    k = len(dims)
    maps = [_index_map(L, lo, hi, mode) for ax, L, lo, hi in reversed(dims)]  # in dim order
    ins = [L for ax, L, lo, hi in reversed(dims)]
    outs = [m.size for m in maps]
    while len(maps) < 3:
        maps.insert(0, np.zeros(1, np.int64))
        ins.insert(0, 1)
        outs.insert(0, 1)
    B = math.prod(x.shape[: x.ndim - k])
    return B, tuple(ins), tuple(outs), maps


def _slices(dims, ndim):
    src, dst = [slice(None)] * ndim, [slice(None)] * ndim
    for ax, L, lo, hi in dims:
        s0, s1 = max(-lo, 0), L - max(-hi, 0)
        n = max(s1 - s0, 0)
        src[ax] = slice(s0, s0 + n)
        d0 = max(lo, 0)
        dst[ax] = slice(d0, d0 + n)
    return tuple(src), tuple(dst)


@op
def pad(input, pad, mode="constant", value=None):
    """``F.pad(input, pad, mode, value)``: ``pad`` lists (left, right) for the last dim first.

    ``"constant"`` pads any of the dims with ``value`` (default 0); negative pads crop.
    ``"reflect"`` (pad < size), ``"replicate"`` and ``"circular"`` (pad <= size) pad the last 1, 2
    or 3 dims of a 2-3, 3-4 or 4-5-D input, as in PyTorch.

    Backward: ``pad.backward(grad_output, input, pad, mode, value)`` -> ``(grad_input,)``; for the
    non-constant modes every output gradient is added to the input element it was read from.
    """
    x, pad_, mode, value, dims, out_shape = _validate(input, pad, mode, value)
    if mode == "constant":
        out = np.full(out_shape, value, x.dtype)
        src, dst = _slices(dims, x.ndim)
        out[dst] = x[src]
        return out
    out = np.empty(out_shape, x.dtype)
    if out.size == 0:
        return out
    B, ins, outs, maps = _geometry(x, dims, mode, out_shape)
    _K.call("gather", x.dtype, B, out.size, x.reshape((B,) + ins), *maps, out.reshape((B,) + outs))
    return out


@pad.defbackward
def _(grad_output, input, pad, mode="constant", value=None):
    x, pad_, mode, value, dims, out_shape = _validate(input, pad, mode, value)
    g = grad_like(OP, grad_output, out_shape, x.dtype)
    if mode == "constant":
        gx = np.zeros(x.shape, x.dtype)
        src, dst = _slices(dims, x.ndim)
        gx[src] = g[dst]
        return (gx,)
    gx = np.zeros(x.shape, x.dtype)
    if g.size == 0 or x.size == 0:
        return (gx,)
    B, ins, outs, maps = _geometry(x, dims, mode, out_shape)
    _K.call("scatter", x.dtype, B, g.size, g.reshape((B,) + outs), *maps, gx.reshape((B,) + ins))
    return (gx,)


@pad.defexplain
def _(shape, dtype, pad=(), mode="constant", **params):
    if mode == "constant":
        return {"kernel": "numpy_slices", "backend": "numpy"}
    k = len(pad) // 2
    B = math.prod(shape[: len(shape) - k])
    return _K.explain("gather", dtype, B, math.prod(shape))


__all__ = ["pad"]
