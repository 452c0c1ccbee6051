"""``sum`` and ``mean`` over given dims: ``torch.sum(input, dim, keepdim)``,
``torch.mean(input, dim, keepdim)`` on float32/float64 arrays, in the input's dtype.

``dim``: None (every dim), an int or a tuple of ints (negative from the end; a dim named twice is
an error, as in torch; ``()`` means every dim, as torch's ``dim=[]``). ``keepdim`` keeps the summed
dims with size 1. An empty reduction gives 0 (``sum``) or NaN (``mean``), as torch.

Kernel: ``fastops._reduce.sum_to_shape`` (a fixed summation order: bitwise the same result at any
thread count; lane-parallel partial sums with a two-level cascade, float64-precise). ``mean``
divides the sums by the count. Backward: the output gradient broadcast back over the summed dims
(divided by the count for ``mean``): ``(grad_input,)``.
"""
import builtins
import math

import numpy as np

from .. import _reduce
from .._op import op
from .._validate import float_array, grad_like


def _dims(name, x, dim, keepdim):
    """``(dims, kept shape, output shape)`` for a reduction of ``x`` over ``dim``."""
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'keepdim' must be a bool, got {type(keepdim).__name__}")
    nd = x.ndim
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        dims = tuple(range(nd))
    else:
        raw = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
        span = builtins.max(nd, 1)  # a 0-d input takes dim 0 or -1, as torch
        dims = []
        for d in raw:
            if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
                raise TypeError(f"{name}: argument 'dim' must be None, an int or a tuple of ints, got {dim!r}")
            if not -span <= d < span:
                raise ValueError(f"{name}: argument 'dim' {d} is out of range for a {nd}-D input "
                                 f"(expected in [{-span}, {span - 1}])")
            d = int(d) % span
            if d in dims:
                raise ValueError(f"{name}: argument 'dim': dim {d} appears multiple times in {dim!r}")
            dims.append(d)
        dims = tuple(sorted(d for d in dims if d < nd))
    kept = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    out = kept if keepdim else tuple(s for i, s in enumerate(x.shape) if i not in dims)
    return dims, kept, out


def _sum(x, kept, out_shape):
    r = _reduce.sum_to_shape(x, kept)
    if r.base is not None or r is x:  # nothing summed: a view of x, handed out as a new array
        r = np.array(r, copy=True)
    return r.reshape(out_shape)


def _count(x, dims):
    return math.prod(x.shape[d] for d in dims)


@op
def sum(input, dim=None, keepdim=False):
    """``torch.sum(input, dim, keepdim)``: the sum over ``dim`` (None: all), in the input's dtype.

    Backward: ``sum.backward(grad_output, input, dim=None, keepdim=False)`` -> ``(grad_input,)``.
    """
    x = float_array("sum", "input", input)
    dims, kept, out_shape = _dims("sum", x, dim, keepdim)
    return _sum(x, kept, out_shape)


@sum.defbackward
def _(grad_output, input, dim=None, keepdim=False):
    x = float_array("sum", "input", input)
    dims, kept, out_shape = _dims("sum", x, dim, keepdim)
    g = grad_like("sum", grad_output, out_shape, x.dtype)
    return (np.broadcast_to(g.reshape(kept), x.shape).copy(),)


@op
def mean(input, dim=None, keepdim=False):
    """``torch.mean(input, dim, keepdim)``: the mean over ``dim`` (None: all), in the input's dtype
    (NaN over an empty set, as torch).

    Backward: ``mean.backward(grad_output, input, dim=None, keepdim=False)`` -> ``(grad_input,)``.
    """
    x = float_array("mean", "input", input)
    dims, kept, out_shape = _dims("mean", x, dim, keepdim)
    s = _sum(x, kept, out_shape)
    n = _count(x, dims)
    with np.errstate(invalid="ignore", divide="ignore"):
        s /= x.dtype.type(n)  # 0 / 0: NaN for an empty reduction
    return s


@mean.defbackward
def _(grad_output, input, dim=None, keepdim=False):
    x = float_array("mean", "input", input)
    dims, kept, out_shape = _dims("mean", x, dim, keepdim)
    g = grad_like("mean", grad_output, out_shape, x.dtype)
    n = _count(x, dims)
    with np.errstate(invalid="ignore", divide="ignore"):
        gs = g.reshape(kept) / x.dtype.type(n) if n else np.zeros(kept, x.dtype)
    return (np.broadcast_to(gs, x.shape).copy(),)


def _explain(shape, dtype, dim=None, keepdim=False, **params):
    x = np.empty(shape, dtype)
    dims, kept, _ = _dims("sum", x, dim, keepdim)
    passes = _reduce.explain(shape, kept, dtype)
    return {"dims": dims, "passes": passes, "kernels": [p["kernel"] for p in passes],
            "backend": passes[0]["backend"] if passes else "none (nothing summed: a copy)"}


sum.defexplain(_explain)
mean.defexplain(_explain)

__all__ = ["sum", "mean"]
