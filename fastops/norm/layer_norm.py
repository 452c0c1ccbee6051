"""``layer_norm``: ``F.layer_norm(input, normalized_shape, weight, bias, eps)``.

Each row of ``prod(normalized_shape)`` trailing elements is normalised with its own mean and biased
variance, then the element-wise affine (``weight``/``bias`` of shape ``normalized_shape``) applies.

Kernel (``_stats._ln_fwd_template``): ``prange`` over fixed chunks of rows; a row is read once from
memory for its shifted sums (``moments``), then again from L1/L2 to write the output: one read and
one write of the data. Backward: per row, statistics again, ``xhat`` and ``g * weight`` in
L1 scratch rows, two lane-ordered row reductions, grad_input; the weight/bias gradients are
summed per chunk of rows into the chunk's own partial row, then the partials in chunk order.
"""
import math
import numbers

import numpy as np

from .._op import op
from .._validate import float_arrays, grad_like
from . import _stats
from .batch_norm import common_scalars


def _shape(normalized_shape):
    if isinstance(normalized_shape, (numbers.Integral, np.integer)) and not isinstance(normalized_shape, (bool, np.bool_)):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, (tuple, list)) and normalized_shape and all(
        isinstance(s, (numbers.Integral, np.integer)) and not isinstance(s, (bool, np.bool_)) for s in normalized_shape
    ):
        return tuple(int(s) for s in normalized_shape)
    raise TypeError(
        f"layer_norm: argument 'normalized_shape' must be an int or a non-empty tuple of ints, got {normalized_shape!r}"
    )


def _validate(input, normalized_shape, weight, bias, eps):
    name = "layer_norm"
    x, w, b = float_arrays(name, ("input", "weight", "bias"), [input, weight, bias])
    ns = _shape(normalized_shape)
    k = len(ns)
    if x.ndim < k or x.shape[x.ndim - k:] != ns:
        raise ValueError(
            f"layer_norm: argument 'normalized_shape'={ns} must match the trailing dims of input of shape {x.shape}"
        )
    for arg, a in (("weight", w), ("bias", b)):
        if a is not None and a.shape != ns:
            raise ValueError(f"layer_norm: argument '{arg}' must have shape normalized_shape={ns}, got {a.shape}")
    _, eps = common_scalars(name, 0.0, eps)
    L = math.prod(ns)
    R = x.size // L if L else math.prod(x.shape[: x.ndim - k])
    return x, ns, w, b, eps, R, L


def _affine_rows(w, b, L, T):
    wr = np.ones(L, T) if w is None else w.reshape(L)
    br = np.zeros(L, T) if b is None else b.reshape(L)
    return wr, br


@op
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``F.layer_norm``: ``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing
    ``normalized_shape`` dims (an int or a tuple); ``weight``, ``bias`` of that shape, or None.

    Backward: ``layer_norm.backward(grad_output, input, normalized_shape, weight, bias, eps=...)``
    -> ``(grad_input, grad_weight, grad_bias)``: one entry per array parameter, in signature order
    (``normalized_shape`` is not an array and has none); ``None`` for an absent weight/bias.
    """
    x, ns, w, b, eps, R, L = _validate(input, normalized_shape, weight, bias, eps)
    T = x.dtype.type
    out = np.empty(x.shape, x.dtype)
    if x.size == 0:
        return out
    wr, br = _affine_rows(w, b, L, T)
    _stats.run("ln_fwd", x.dtype, R, x.size, x.reshape(R, L), wr, br, out.reshape(R, L), T(eps), T(1.0 / L),
               _stats.row_chunk(R, L))
    return out


@layer_norm.defbackward
def _(grad_output, input, normalized_shape, weight=None, bias=None, eps=1e-5):
    x, ns, w, b, eps, R, L = _validate(input, normalized_shape, weight, bias, eps)
    g = grad_like("layer_norm", grad_output, x.shape, x.dtype)
    T = x.dtype.type
    gx = np.empty(x.shape, x.dtype)
    if x.size == 0:
        gx[...] = 0
        z = np.zeros(ns, x.dtype)
        return gx, None if w is None else z, None if b is None else z.copy()
    wr, _ = _affine_rows(w, None, L, T)
    chunk = _stats.row_chunk(R, L)
    U = -(-R // chunk)
    pw = np.empty((U, L), x.dtype)
    pb = np.empty((U, L), x.dtype)
    _stats.run("ln_bwd", x.dtype, U, 2 * x.size, x.reshape(R, L), g.reshape(R, L), wr, gx.reshape(R, L), pw, pb,
               T(eps), T(1.0 / L), chunk)
    gw = None if w is None else pw.sum(axis=0).reshape(ns)
    gb = None if b is None else pb.sum(axis=0).reshape(ns)
    return gx, gw, gb


@layer_norm.defexplain
def _(shape, dtype, normalized_shape=None, **params):
    k = 1 if normalized_shape is None else len(_shape(normalized_shape))
    L = math.prod(shape[len(shape) - k:])
    R = math.prod(shape[: len(shape) - k])
    U = -(-R // _stats.row_chunk(R, L)) if R else 0
    d = _stats.explain("ln_fwd", dtype, U, math.prod(shape))
    d["rows"], d["row_length"], d["rows_per_unit"] = R, L, _stats.row_chunk(R, L) if R else 0
    return d
