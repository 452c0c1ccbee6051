"""bias_add: ``x + bias`` along dim 1 (the bias of conv/linear layers; TensorFlow ``bias_add`` on
NCHW, Caffe ``Bias``).

Runs the ``add`` kernels of :mod:`fastops.arithmetic.binary` with ``bias`` viewed as ``(1, C, 1,
..., 1)``: the broadcast collapses to ``(N, C, H*W)`` with the bias read once per row of ``H*W``
(inner loop "row + value"), or to ``(N, C)`` for 2-D input (inner loop "row + row").
"""
from .. import _reduce
from .._op import op
from .._validate import float_array, grad_like
from .binary import _explain_binary, apply, passthrough


def _prepare(x, bias):
    x = float_array("bias_add", "x", x)
    bias = float_array("bias_add", "bias", bias, x.dtype)
    if x.ndim < 2:
        raise ValueError(f"bias_add: argument 'x' must have at least 2 dims (N, C, ...), got shape {x.shape}")
    if bias.ndim != 1 or bias.shape[0] != x.shape[1]:
        raise ValueError(
            f"bias_add: argument 'bias' must have shape ({x.shape[1]},) (C = x.shape[1]), "
            f"got bias shape {bias.shape} for x shape {x.shape}"
        )
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return x, bias.reshape(bshape), bshape


@op
def bias_add(x, bias):
    """``x + bias.reshape(1, C, 1, ..., 1)``: a per-channel bias added along dim 1.

    Parameters
    ----------
    x : ndarray, shape (N, C, ...) (rank >= 2), float32 or float64
    bias : ndarray, shape (C,), same dtype

    Backward: ``bias_add.backward(grad_output, x, bias)`` -> ``(grad_x, grad_bias)``:
    ``grad_bias`` is ``grad_output`` summed over every dim but 1 (deterministic, see
    ``fastops._reduce``); **``grad_x`` is a read-only view of ``grad_output``** (autograd's
    pass-through: no copy; copy it before writing to it).
    """
    x, b, _ = _prepare(x, bias)
    return apply("add", x, b, x.shape, x.dtype, 1.0)


@bias_add.defbackward
def _(grad_output, x, bias):
    x, b, bshape = _prepare(x, bias)
    g = grad_like("bias_add", grad_output, x.shape, x.dtype)
    gb = _reduce.sum_to_shape(g, bshape)
    if gb.size == g.size:  # N == 1 and no spatial dims: a view of g, hand out a copy
        gb = gb.copy()
    return passthrough(g, x.shape), gb.reshape(bshape[1])


@bias_add.defexplain
def _(shape, dtype, **params):
    shape = tuple(shape)
    bshape = (1, shape[1]) + (1,) * (len(shape) - 2)
    d = _explain_binary("add", shape, dtype, bshape)
    d["backward_reduce"] = _reduce.explain(shape, bshape, dtype)
    return d


__all__ = ["bias_add"]
