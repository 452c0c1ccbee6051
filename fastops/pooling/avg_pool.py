"""``avg_pool{1,2,3}d``: PyTorch's ``F.avg_poolNd`` (kernel_size, stride, padding, ceil_mode,
count_include_pad, and divisor_override for 2-D/3-D), batched or unbatched.

Divisor (PyTorch's rule): a window spans [start, min(start + k, L + padding)) per dim; with
``count_include_pad`` the divisor is that span's size (padding counted, the part of a ceil_mode
window running past the padded edge not), else the number of in-range elements;
``divisor_override`` replaces both. A window with no in-range element gives 0.

Backward: ``avg_poolNd.backward(grad_output, input, kernel_size, ...)`` -> ``(grad_input,)``.
"""
import math

import numpy as np

from .._op import op
from .._validate import grad_like
from . import _window as w


def _prepare(name, k, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x = w.input_array(name, k, input)
    ks, st, pd, _, osz = w.geometry(name, k, x, kernel_size, stride, padding, 1, ceil_mode)
    if k == 3 and any(L < kk for L, kk in zip(x.shape[-3:], ks)):
        # torch's avg_pool3d (not the 1-D/2-D ones, nor max_pool3d) needs the kernel to fit the
        # unpadded input: "input image (T: 2 H: 2 W: 2) smaller than kernel size"
        raise ValueError(f"{name}: argument 'input' of shape {x.shape} is smaller than kernel_size={ks} "
                         f"(padding={pd} does not count)")
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'count_include_pad' must be a bool, got {count_include_pad!r}")
    div = 0
    if divisor_override is not None:
        if not w._is_int(divisor_override):
            raise TypeError(f"{name}: argument 'divisor_override' must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{name}: argument 'divisor_override' must be non-zero, got 0")
        if divisor_override < 0:
            raise ValueError(f"{name}: argument 'divisor_override' must be positive, got {divisor_override}")
        div = int(divisor_override)
    P = w.planes(x, k)
    geo = (*w.to3(ks, 1), *w.to3(st, 1), *w.to3(pd, 0), bool(count_include_pad), div)
    return x, P, x.shape[:-k] + osz, geo


def _forward(name, k, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, P, out_shape, geo = _prepare(name, k, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                    divisor_override)
    out = np.empty(out_shape, x.dtype)
    if out.size:
        w.K.call("avg_fwd", x.dtype, P, x.size, x.reshape((P,) + w.to3(x.shape[-k:], 1)),
                 out.reshape((P,) + w.to3(out_shape[-k:], 1)), *geo)
    return out


def _backward(name, k, grad_output, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, P, out_shape, geo = _prepare(name, k, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                    divisor_override)
    g = grad_like(name, grad_output, out_shape, x.dtype)
    gx = np.empty(x.shape, x.dtype)
    if gx.size:
        w.K.call("avg_bwd", x.dtype, P, x.size, g.reshape((P,) + w.to3(out_shape[-k:], 1)),
                 gx.reshape((P,) + w.to3(x.shape[-k:], 1)), *geo)
    return (gx,)


def _explain(k):
    def fn(shape, dtype, **params):
        return w.K.explain("avg_fwd", dtype, math.prod(shape[:-k]), math.prod(shape))

    return fn


@op
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """``F.avg_pool1d`` on (N, C, L) or (C, L): the mean of each window (divisor rule in the module
    docstring). Backward: ``avg_pool1d.backward(grad_output, input, kernel_size, ...)``."""
    return _forward("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@avg_pool1d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _backward("avg_pool1d", 1, grad_output, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


@op
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """``F.avg_pool2d`` on (N, C, H, W) or (C, H, W) (divisor rule in the module docstring).
    Backward: ``avg_pool2d.backward(grad_output, input, kernel_size, ...)`` -> ``(grad_input,)``."""
    return _forward("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)


@avg_pool2d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
      divisor_override=None):
    return _backward("avg_pool2d", 2, grad_output, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


@op
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """``F.avg_pool3d`` on (N, C, D, H, W) or (C, D, H, W) (divisor rule in the module docstring).
    Backward: ``avg_pool3d.backward(grad_output, input, kernel_size, ...)`` -> ``(grad_input,)``."""
    return _forward("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)


@avg_pool3d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
      divisor_override=None):
    return _backward("avg_pool3d", 3, grad_output, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


avg_pool1d.defexplain(_explain(1))
avg_pool2d.defexplain(_explain(2))
avg_pool3d.defexplain(_explain(3))

__all__ = ["avg_pool1d", "avg_pool2d", "avg_pool3d"]
