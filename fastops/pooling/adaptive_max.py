"""``adaptive_max_pool{1,2}d``: PyTorch's ``F.adaptive_max_poolNd(input, output_size,
return_indices=False)`` with PyTorch's bins (start = floor(i*L/out), end = ceil((i+1)*L/out)), so
non-divisible sizes give overlapping or uneven windows exactly as PyTorch.

Indices, ties (first maximum in scan order) and NaN (a NaN is the maximum) as ``max_pool2d``.
Backward: ``adaptive_max_poolNd.backward(grad_output, input, output_size, return_indices=False,
indices=None)`` -> ``(grad_input,)``; ``grad_output`` is the gradient of the pooled values only.
"""
import math

import numpy as np
from numba import prange

from .._op import op
from .._validate import grad_like
from .._kernelset import PlaneSet, UNBOUND
from . import _window as w
from .adaptive import _bins, _validate
from .max_pool import check_indices

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND


def _amax_fwd_template(x3, sh, eh, sw, ew, out3, idx3):
    P, OH, OW = out3.shape
    W = x3.shape[2]
    for p in prange(P):
        xp = x3[p]
        for oh in range(OH):
            for ow in range(OW):
                m = -T(np.inf)
                mi = sh[oh] * W + sw[ow]
                for h in range(sh[oh], eh[oh]):
                    row = xp[h]
                    for c in range(sw[ow], ew[ow]):
                        v = row[c]
                        if v > m or v != v:  # PyTorch: (val > maxval) || isnan(val)
                            m = v
                            mi = h * W + c
                out3[p, oh, ow] = m
                idx3[p, oh, ow] = mi


_K = PlaneSet("adaptive_max", {"fwd": _amax_fwd_template})


def _uniform(spatial, osz):
    """Bins of one size (every input size divisible by its output size) are max_pool windows with
    kernel = stride = L // out: those run the vectorized sweeps of ``_window`` (design note: 56x56
    -> 7x7 on (8, 64) planes ran 0.41x torch with the per-output kernel below, on the shared
    machine, commit a4897cc; ``python -m fastops bench --ops adaptive_max_pool2d --size large``
    times this path on that input)."""
    if all(L % O == 0 for L, O in zip(spatial, osz)):
        return tuple(L // O for L, O in zip(spatial, osz))
    return None


def _geo(k, ks):
    return (*w.to3(ks, 1), *w.to3(ks, 1), 0, 0, 0, 1, 1, 1)


def _forward_idx(name, k, input, output_size, return_indices, need_idx=True):
    x, lead, spatial, osz = _validate(name, k, input, output_size)
    if not isinstance(return_indices, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'return_indices' must be a bool, got {return_indices!r}")
    out = np.empty(lead + osz, x.dtype)
    idx = np.empty(lead + osz, np.int64) if need_idx else None
    if out.size:
        P = math.prod(lead)
        ins = (1,) * (2 - k) + spatial
        outs = (1,) * (2 - k) + osz
        ks = _uniform(spatial, osz)
        if ks is not None and not need_idx:
            w.K.call("max_val", x.dtype, P, x.size, x.reshape((P, 1) + ins), out.reshape((P, 1) + outs), *_geo(k, ks))
        elif ks is not None:
            w.K.call("max_fwd", x.dtype, P, x.size, x.reshape((P, 1) + ins), out.reshape((P, 1) + outs),
                     idx.reshape((P, 1) + outs), *_geo(k, ks))
        else:
            idx_ = idx if need_idx else np.empty(lead + osz, np.int64)
            _K.call("fwd", x.dtype, P, x.size, x.reshape((P,) + ins), *_bins(ins[0], outs[0]),
                    *_bins(ins[1], outs[1]), out.reshape((P,) + outs), idx_.reshape((P,) + outs))
    return x, out, idx


def _forward(name, k, input, output_size, return_indices):
    _, out, idx = _forward_idx(name, k, input, output_size, return_indices, need_idx=bool(return_indices))
    return (out, idx) if return_indices else out


def _backward(name, k, grad_output, input, output_size, return_indices, indices):
    if indices is None:
        x, lead, spatial, osz = _validate(name, k, input, output_size)
        ks = _uniform(spatial, osz)
        if ks is not None:
            g = grad_like(name, grad_output, lead + osz, x.dtype)
            gx = np.empty(x.shape, x.dtype)
            if gx.size:
                P = math.prod(lead)
                w.K.call("max_bwd", x.dtype, P, x.size, g.reshape((P, 1) + (1,) * (2 - k) + osz),
                         x.reshape((P, 1) + (1,) * (2 - k) + spatial), gx.reshape(P, -1), *_geo(k, ks))
            return (gx,)
        x, out, idx = _forward_idx(name, k, input, output_size, return_indices)
    else:
        x, lead, spatial, osz = _validate(name, k, input, output_size)
        idx = check_indices(name, indices, lead + osz, math.prod(spatial))
        out = idx
    g = grad_like(name, grad_output, out.shape, x.dtype)
    gx = np.empty(x.shape, x.dtype)
    if gx.size:
        P = math.prod(x.shape[:-k])
        w.K.call("scatter", x.dtype, P, x.size, g.reshape(P, -1), idx.reshape(P, -1), gx.reshape(P, -1))
    return (gx,)


def _explain(k):
    def fn(shape, dtype, output_size=1, return_indices=False, **params):
        from .adaptive import _output_size

        spatial = tuple(shape[-k:])
        if _uniform(spatial, _output_size("explain", output_size, k, spatial)) is not None:
            which = "max_fwd" if return_indices else "max_val"
            return w.K.explain(which, dtype, math.prod(shape[:-k]), math.prod(shape))
        return _K.explain("fwd", dtype, math.prod(shape[:-k]), math.prod(shape))

    return fn


@op
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """``F.adaptive_max_pool1d`` on (N, C, L) or (C, L) -> (..., output_size); with
    ``return_indices=True`` returns ``(output, indices)``. See the module docstring."""
    return _forward("adaptive_max_pool1d", 1, input, output_size, return_indices)


@adaptive_max_pool1d.defbackward
def _(grad_output, input, output_size, return_indices=False, indices=None):
    return _backward("adaptive_max_pool1d", 1, grad_output, input, output_size, return_indices, indices)


@op
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """``F.adaptive_max_pool2d`` on (N, C, H, W) or (C, H, W); ``output_size`` an int or a pair
    (``None`` keeps that input size). Indices are ``h * W + w``. See the module docstring."""
    return _forward("adaptive_max_pool2d", 2, input, output_size, return_indices)


@adaptive_max_pool2d.defbackward
def _(grad_output, input, output_size, return_indices=False, indices=None):
    return _backward("adaptive_max_pool2d", 2, grad_output, input, output_size, return_indices, indices)


adaptive_max_pool1d.defexplain(_explain(1))
adaptive_max_pool2d.defexplain(_explain(2))

__all__ = ["adaptive_max_pool1d", "adaptive_max_pool2d"]
