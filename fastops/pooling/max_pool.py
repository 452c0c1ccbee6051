"""``max_pool{1,2,3}d``: PyTorch's ``F.max_poolNd`` (kernel_size, stride, padding, dilation,
ceil_mode, return_indices), batched or unbatched.

Indices are int64 flat positions inside each input plane, exactly PyTorch's (they feed
``max_unpoolNd``). Ties: the first maximum in scan order (d, h, w) wins and gets the gradient; a NaN
in the window is the maximum (PyTorch's ``val > max || isnan(val)``: the last NaN's index).

Backward: ``max_poolNd.backward(grad_output, input, kernel_size, ..., indices=None)`` -> ``(grad_input,)``.
``grad_output`` is the gradient of the pooled values only (also when ``return_indices=True``, where
the forward returns ``(output, indices)``: indices are not differentiable). Passing the forward's
``indices=`` skips recomputing the argmax.
"""
import numpy as np

from .._op import op
from .._validate import grad_like
from . import _window as w


def _prepare(name, k, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = w.input_array(name, k, input)
    ks, st, pd, dl, osz = w.geometry(name, k, x, kernel_size, stride, padding, dilation, ceil_mode)
    if not isinstance(return_indices, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'return_indices' must be a bool, got {return_indices!r}")
    return x, ks, st, pd, dl, x.shape[:-k] + osz


def _run_forward(x, k, ks, st, pd, dl, out_shape):
    P = w.planes(x, k)
    out = np.empty(out_shape, x.dtype)
    idx = np.empty(out_shape, np.int64)
    if out.size:
        ins = w.to3(x.shape[-k:], 1)
        outs = w.to3(out_shape[-k:], 1)
        w.K.call(
            "max_fwd", x.dtype, P, x.size,
            x.reshape((P,) + ins), out.reshape((P,) + outs), idx.reshape((P,) + outs),
            *w.to3(ks, 1), *w.to3(st, 1), *w.to3(pd, 0), *w.to3(dl, 1),
        )
    return out, idx


def _forward(name, k, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, ks, st, pd, dl, out_shape = _prepare(
        name, k, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )
    if return_indices:
        return _run_forward(x, k, ks, st, pd, dl, out_shape)
    out = np.empty(out_shape, x.dtype)
    if out.size:
        P = w.planes(x, k)
        w.K.call(
            "max_val", x.dtype, P, x.size,
            x.reshape((P,) + w.to3(x.shape[-k:], 1)), out.reshape((P,) + w.to3(out_shape[-k:], 1)),
            *w.to3(ks, 1), *w.to3(st, 1), *w.to3(pd, 0), *w.to3(dl, 1),
        )
    return out


def check_indices(name, indices, shape, plane_size, arg="indices"):
    """int64 indices of ``shape`` with values in [0, plane_size); returned native and contiguous."""
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"{name}: argument '{arg}' must be a numpy.ndarray of int64, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name}: argument '{arg}' must have an integer dtype (int64), got {indices.dtype}")
    if indices.shape != tuple(shape):
        raise ValueError(f"{name}: argument '{arg}' has shape {indices.shape}, expected {tuple(shape)}")
    idx = np.ascontiguousarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= plane_size):
        bad = idx[(idx < 0) | (idx >= plane_size)].flat[0]
        raise ValueError(f"{name}: argument '{arg}' holds an invalid max index {bad} (plane size {plane_size})")
    return idx


def _backward(name, k, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              indices):
    x, ks, st, pd, dl, out_shape = _prepare(
        name, k, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )
    g = grad_like(name, grad_output, out_shape, x.dtype)
    L = int(np.prod(x.shape[-k:]))
    gx = np.empty(x.shape, x.dtype)
    P = w.planes(x, k)
    if indices is None:
        if gx.size:
            w.K.call(
                "max_bwd", x.dtype, P, x.size,
                g.reshape((P,) + w.to3(out_shape[-k:], 1)), x.reshape((P,) + w.to3(x.shape[-k:], 1)),
                gx.reshape(P, L), *w.to3(ks, 1), *w.to3(st, 1), *w.to3(pd, 0), *w.to3(dl, 1),
            )
        return (gx,)
    idx = check_indices(name, indices, out_shape, L)
    if gx.size:
        w.K.call("scatter", x.dtype, P, x.size, g.reshape(P, -1), idx.reshape(P, -1), gx.reshape(P, L))
    return (gx,)


def _explain(k):
    def fn(shape, dtype, **params):
        import math

        which = "max_fwd" if params.get("return_indices") else "max_val"
        return w.K.explain(which, dtype, math.prod(shape[:-k]), math.prod(shape))

    return fn


@op
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """``F.max_pool1d`` on (N, C, L) or (C, L): ``out[l] = max_j x[l*stride - padding + j*dilation]``
    over the window's in-range elements. See the module docstring for ties, NaN and backward."""
    return _forward("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@max_pool1d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
      indices=None):
    return _backward("max_pool1d", 1, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, indices)


@op
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """``F.max_pool2d`` on (N, C, H, W) or (C, H, W); indices are ``h * W + w``. See the module
    docstring for ties, NaN and backward."""
    return _forward("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@max_pool2d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
      indices=None):
    return _backward("max_pool2d", 2, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, indices)


@op
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """``F.max_pool3d`` on (N, C, D, H, W) or (C, D, H, W); indices are ``(d * H + h) * W + w``. See
    the module docstring for ties, NaN and backward."""
    return _forward("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@max_pool3d.defbackward
def _(grad_output, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
      indices=None):
    return _backward("max_pool3d", 3, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, indices)


max_pool1d.defexplain(_explain(1))
max_pool2d.defexplain(_explain(2))
max_pool3d.defexplain(_explain(3))

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d"]
