"""``max_unpool{1,2,3}d``: PyTorch's ``F.max_unpoolNd(input, indices, kernel_size, stride=None,
padding=0, output_size=None)``, the partial inverse of ``max_poolNd(..., return_indices=True)``.

Output planes are zero except ``out[p, indices[p, i]] = input[p, i]`` (flat per-plane positions; a
repeated index keeps the last value written, as PyTorch's CPU kernel). Default output size per dim:
``(in - 1) * stride - 2 * padding + kernel_size``; ``output_size`` (``k`` or ``k + 2`` entries) must lie
strictly between ``default - stride`` and ``default + stride`` (PyTorch's check). Indices outside the
output plane raise ``ValueError``.

Backward: ``max_unpoolNd.backward(grad_output, input, indices, kernel_size, ...)`` ->
``(grad_input, None)``, ``grad_input[p, i] = grad_output[p, indices[p, i]]`` (a gather, as PyTorch).
"""
import math

import numpy as np

from .._op import op
from .._validate import float_array, grad_like, nonbatch_nonempty
from . import _window as w
from .max_pool import check_indices


class _Shape:
    """What ``_out_size`` reads of its input: the shape (``explain`` has no array)."""

    def __init__(self, shape):
        self.shape = shape


def _out_size(name, k, x, kernel_size, stride, padding, output_size):
    ks = w.int_tuple(name, "kernel_size", kernel_size, k)
    st = ks if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else w.int_tuple(
        name, "stride", stride, k)
    pd = w.int_tuple(name, "padding", padding, k)
    if any(v <= 0 for v in ks):
        raise ValueError(f"{name}: argument 'kernel_size' must be positive, got {ks}")
    if any(v <= 0 for v in st):
        raise ValueError(f"{name}: argument 'stride' must be positive, got {st}")
    if any(v < 0 for v in pd):
        raise ValueError(f"{name}: argument 'padding' must be non-negative, got {pd}")
    spatial = x.shape[-k:]
    default = tuple((L - 1) * s - 2 * p + kk for L, s, p, kk in zip(spatial, st, pd, ks))
    if output_size is None:
        out = default
    else:
        if not isinstance(output_size, (tuple, list)) or not all(w._is_int(v) for v in output_size):
            raise TypeError(f"{name}: argument 'output_size' must be a sequence of ints, got {output_size!r}")
        osz = tuple(int(v) for v in output_size)
        if len(osz) == k + 2:
            osz = osz[2:]
        if len(osz) != k:
            raise ValueError(
                f"{name}: argument 'output_size' should be a sequence containing {k} or {k + 2} elements, "
                f"but it has a length of {len(output_size)}"
            )
        for d in range(k):
            lo, hi = default[d] - st[d], default[d] + st[d]
            if not lo < osz[d] < hi:
                raise ValueError(
                    f"{name}: invalid output_size {tuple(output_size)} (dim {d} must be between {lo} and {hi}) "
                    f"for input of shape {x.shape}"
                )
        out = osz
    if any(o <= 0 for o in out):
        raise ValueError(f"{name}: output size {out} is not positive (input shape {x.shape}, kernel_size={ks}, "
                         f"stride={st}, padding={pd})")
    return out


def _prepare(name, k, input, indices, kernel_size, stride, padding, output_size):
    x = float_array(name, "input", input)
    if x.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"{name}: argument 'input' must be {k + 1}-D or {k + 2}-D ((N,) C, spatial...), got shape {x.shape}"
        )
    nonbatch_nonempty(name, "input", x, 1)  # as torch (0 channels raise; an empty batch does not)
    osz = _out_size(name, k, x, kernel_size, stride, padding, output_size)
    if isinstance(indices, np.ndarray) and indices.shape != x.shape:
        raise ValueError(f"{name}: argument 'indices' has shape {indices.shape}, expected the input's {x.shape}")
    L = math.prod(osz)
    idx = check_indices(name, indices, x.shape, L)
    P = w.planes(x, k)
    return x, idx, P, x.shape[:-k] + osz, L


def _forward(name, k, input, indices, kernel_size, stride, padding, output_size):
    x, idx, P, out_shape, L = _prepare(name, k, input, indices, kernel_size, stride, padding, output_size)
    out = np.empty(out_shape, x.dtype)
    if out.size:
        w.K.call("unpool_fwd", x.dtype, P, out.size, x.reshape(P, -1), idx.reshape(P, -1), out.reshape(P, L))
    return out


def _backward(name, k, grad_output, input, indices, kernel_size, stride, padding, output_size):
    x, idx, P, out_shape, L = _prepare(name, k, input, indices, kernel_size, stride, padding, output_size)
    g = grad_like(name, grad_output, out_shape, x.dtype)
    gx = np.empty(x.shape, x.dtype)
    if gx.size:
        w.K.call("gather", x.dtype, P, g.size, g.reshape(P, L), idx.reshape(P, -1), gx.reshape(P, -1))
    return (gx, None)


def _explain(k):
    def fn(shape, dtype, kernel_size=None, stride=None, padding=0, output_size=None, **params):
        """The forward's kernel, sized (as the forward is) by the output: from ``kernel_size``,
        ``stride``, ``padding`` and ``output_size`` (without ``kernel_size``: by the input)."""
        shape = tuple(shape)
        size = math.prod(shape)
        if kernel_size is not None:
            spatial = _out_size(f"max_unpool{k}d", k, _Shape(shape), kernel_size,
                                stride, padding, output_size)
            size = math.prod(shape[:-k]) * math.prod(spatial)
        return w.K.explain("unpool_fwd", dtype, math.prod(shape[:-k]), size)

    return fn


@op
def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``F.max_unpool1d`` on (N, C, L) or (C, L) (see the module docstring).
    Backward: ``max_unpool1d.backward(grad_output, input, indices, kernel_size, ...)`` -> ``(grad_input, None)``."""
    return _forward("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


@max_unpool1d.defbackward
def _(grad_output, input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _backward("max_unpool1d", 1, grad_output, input, indices, kernel_size, stride, padding, output_size)


@op
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``F.max_unpool2d`` on (N, C, H, W) or (C, H, W) (see the module docstring).
    Backward: ``max_unpool2d.backward(grad_output, input, indices, kernel_size, ...)`` -> ``(grad_input, None)``."""
    return _forward("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


@max_unpool2d.defbackward
def _(grad_output, input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _backward("max_unpool2d", 2, grad_output, input, indices, kernel_size, stride, padding, output_size)


@op
def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``F.max_unpool3d`` on (N, C, D, H, W) or (C, D, H, W) (see the module docstring).
    Backward: ``max_unpool3d.backward(grad_output, input, indices, kernel_size, ...)`` -> ``(grad_input, None)``."""
    return _forward("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


@max_unpool3d.defbackward
def _(grad_output, input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _backward("max_unpool3d", 3, grad_output, input, indices, kernel_size, stride, padding, output_size)


max_unpool1d.defexplain(_explain(1))
max_unpool2d.defexplain(_explain(2))
max_unpool3d.defexplain(_explain(3))

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]
