"""``affine_grid`` (``F.affine_grid``): the sampling grids of a spatial transformer, for
``grid_sample`` (``shape/grid.py``), forward and backward.

A few NumPy expressions (an (H, W, 3) base grid, or (D, H, W, 4) for 5-D, times theta; three or
four multiply-adds per output element, no reduction): no kernel. Its theta gradient is a sum over
the grid, done by NumPy's pairwise sum (single-threaded, fixed order).
"""
import numbers

import numpy as np

from .._op import op
from .._validate import float_array, grad_like

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
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in the math (and torch, silently)
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
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(k):
            gi = g[..., i]
            for j in range(k):
                gt[:, i, j] = np.sum(gi * base[j][None], axis=axes)
            gt[:, i, k] = np.sum(gi, axis=axes)
    return (gt,)


@affine_grid.defexplain
def _(shape, dtype, **params):
    return {"kernel": "numpy_broadcast", "backend": "numpy"}


__all__ = ["affine_grid"]
