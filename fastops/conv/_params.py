"""Validation of the convolution hyper-parameters and arrays (shared by conv, conv_transpose,
separable). Errors name the op, the argument and the shapes."""
import numbers

import numpy as np

from .._validate import float_arrays


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def tuple_arg(op, name, v, k, minimum):
    """An int or a tuple of ``k`` ints, each >= ``minimum``; returns a tuple."""
    if _is_int(v):
        v = (int(v),) * k
    if not isinstance(v, (tuple, list)) or len(v) != k or not all(_is_int(e) for e in v):
        raise TypeError(f"{op}: argument '{name}' must be an int or a tuple of {k} ints, got {v!r}")
    v = tuple(int(e) for e in v)
    if any(e < minimum for e in v):
        raise ValueError(f"{op}: argument '{name}' must be >= {minimum}, got {v}")
    return v


def groups_arg(op, groups):
    if not _is_int(groups):
        raise TypeError(f"{op}: argument 'groups' must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: argument 'groups' must be >= 1, got {groups}")
    return int(groups)


def arrays(op, k, input, weight, bias, weight_desc):
    """Validate (input, weight, bias) of a k-D conv; returns them plus whether input was batched."""
    x, w, b = float_arrays(op, ("input", "weight", "bias"), (input, weight, bias))
    if x.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"{op}: argument 'input' must be {k + 1}-D (unbatched) or {k + 2}-D (batched), got shape {x.shape}"
        )
    if w.ndim != k + 2:
        raise ValueError(f"{op}: argument 'weight' must be {k + 2}-D {weight_desc}, got shape {w.shape}")
    batched = x.ndim == k + 2
    if not batched:
        x = x.reshape((1,) + x.shape)
    if b is not None and b.ndim != 1:
        raise ValueError(f"{op}: argument 'bias' must be 1-D, got shape {b.shape}")
    return x, w, b, batched


def to5(a, k):
    """View an (N, C, *k spatial) array as (N, C, D, H, W)."""
    return a.reshape(a.shape[:2] + (1,) * (3 - k) + a.shape[2:])


def pad3(v, k, fill):
    return (fill,) * (3 - k) + tuple(v)
