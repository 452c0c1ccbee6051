"""``flatten`` and ``reshape``: NumPy views of the (validated) input, returned read-only.

The result aliases the input's memory where NumPy can (as ``torch.reshape`` does); it is marked
non-writable so that no write through it can modify the caller's input. Backward reshapes the
gradient back (a fresh array).
"""
import math
import numbers

import numpy as np

from .._op import op
from .._validate import dim, float_array, grad_like


def _flatten_shape(shape, start_dim, end_dim):
    nd = len(shape)
    s = dim("flatten", "start_dim", start_dim, nd)
    e = dim("flatten", "end_dim", end_dim, nd)
    if nd == 0:
        return (1,)
    if s > e:
        raise ValueError(
            f"flatten: argument 'start_dim' ({start_dim}) must not come after 'end_dim' ({end_dim}) "
            f"for an input of shape {tuple(shape)}"
        )
    return tuple(shape[:s]) + (math.prod(shape[s : e + 1]),) + tuple(shape[e + 1 :])


def _view(x, shape):
    out = x.reshape(shape)
    if np.shares_memory(out, x) or out.base is not None:
        out = out.view()
        out.flags.writeable = False
    return out


@op
def flatten(input, start_dim=0, end_dim=-1):
    """``torch.flatten``: dims ``start_dim..end_dim`` merged into one (a 0-d input gives shape (1,)).

    Returns a read-only view of the input where possible. Backward:
    ``flatten.backward(grad_output, input, start_dim, end_dim)`` -> ``(grad_input,)``.
    """
    x = float_array("flatten", "input", input)
    return _view(x, _flatten_shape(x.shape, start_dim, end_dim))


@flatten.defbackward
def _(grad_output, input, start_dim=0, end_dim=-1):
    x = float_array("flatten", "input", input)
    shape = _flatten_shape(x.shape, start_dim, end_dim)
    g = grad_like("flatten", grad_output, shape, x.dtype)
    return (g.reshape(x.shape).copy(),)


@flatten.defexplain
def _(shape, dtype, start_dim=0, end_dim=-1, **params):
    return {"kernel": "numpy_view", "backend": "view", "output_shape": _flatten_shape(tuple(shape), start_dim, end_dim)}


def _reshape_shape(in_shape, shape):
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or any(
        isinstance(s, (bool, np.bool_)) or not isinstance(s, (numbers.Integral, np.integer)) for s in shape
    ):
        raise TypeError(f"reshape: argument 'shape' must be a tuple of ints, got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if sum(s == -1 for s in shape) > 1:
        raise ValueError(f"reshape: argument 'shape' {shape} may contain at most one -1")
    if any(s < -1 for s in shape):
        raise ValueError(f"reshape: argument 'shape' {shape} has a negative size")
    size = math.prod(in_shape)
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"reshape: shape {shape} is invalid for an input of shape {tuple(in_shape)} ({size} elements)")
        shape = tuple(size // known if s == -1 else s for s in shape)
    elif known != size:
        raise ValueError(f"reshape: shape {shape} is invalid for an input of shape {tuple(in_shape)} ({size} elements)")
    return shape


@op
def reshape(input, shape):
    """``torch.reshape``: the input with a new shape (one entry may be -1).

    Returns a read-only view of the input where possible. Backward:
    ``reshape.backward(grad_output, input, shape)`` -> ``(grad_input,)``.
    """
    x = float_array("reshape", "input", input)
    return _view(x, _reshape_shape(x.shape, shape))


@reshape.defbackward
def _(grad_output, input, shape):
    x = float_array("reshape", "input", input)
    out_shape = _reshape_shape(x.shape, shape)
    g = grad_like("reshape", grad_output, out_shape, x.dtype)
    return (g.reshape(x.shape).copy(),)


@reshape.defexplain
def _(shape, dtype, new_shape=None, **params):
    d = {"kernel": "numpy_view", "backend": "view"}
    if new_shape is not None:
        d["output_shape"] = _reshape_shape(tuple(shape), new_shape)
    return d


__all__ = ["flatten", "reshape"]
