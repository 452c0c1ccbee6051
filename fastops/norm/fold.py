"""``fold_batch_norm``: an eval-mode batch norm folded into the convolution or linear layer before it.

In eval mode ``batch_norm(conv(x, w, b), running_mean, running_var, gamma, beta, eps)`` is the
affine map ``(conv(x, w, b) - mean) * gamma / sqrt(var + eps) + beta`` per output channel, so it
equals ``conv(x, w', b')`` with::

    s  = gamma / sqrt(running_var + eps)          # per output channel
    w' = w * s  (along the output-channel axis)   # axis 0 of a conv / linear weight
    b' = (b - running_mean) * s + beta            # b = 0 when the layer has no bias

(``torch.nn.utils.fusion.fuse_conv_bn_weights`` / ``fuse_linear_bn_weights``). The folded layer
then runs as one fused conv + bias (+ activation) kernel instead of a conv, a batch-norm pass and
an activation pass. The arithmetic is done in float64 and rounded once to the weight's dtype (torch
rounds each step in the weight's dtype). Only for inference: a training batch norm normalises with
the batch's statistics, which no fixed weight can fold.
"""
import math

import numpy as np

from .._validate import float_arrays, real_scalar

_NAME = "fold_batch_norm"
_ARGS = ("weight", "bias", "running_mean", "running_var", "bn_weight", "bn_bias")


def fold_batch_norm(weight, bias, running_mean, running_var, bn_weight=None, bn_bias=None, eps=1e-5):
    """``(weight', bias')`` of the layer equal to ``layer(weight, bias)`` followed by an eval-mode
    ``batch_norm(., running_mean, running_var, bn_weight, bn_bias, eps=eps)``.

    ``weight``: a convolution weight ``(C_out, C_in / groups, *kernel)`` or a linear weight
    ``(out_features, in_features)`` (the output channels on axis 0, any groups); ``bias``: ``(C_out,)``
    or None; the batch norm's ``running_mean``, ``running_var`` and (None: 1 and 0) ``bn_weight``,
    ``bn_bias``: ``(C_out,)``, all of one float dtype. Returns new arrays of that dtype, C-contiguous,
    ``bias'`` always present; the inputs are not modified.
    """
    arrays = float_arrays(_NAME, _ARGS, (weight, bias, running_mean, running_var, bn_weight, bn_bias))
    weight, bias, running_mean, running_var, bn_weight, bn_bias = arrays
    for arg, a in (("weight", weight), ("running_mean", running_mean), ("running_var", running_var)):
        if a is None:
            raise TypeError(f"{_NAME}: argument '{arg}' must be a float32/float64 numpy.ndarray, got None")
    if weight.ndim < 2:
        raise ValueError(f"{_NAME}: argument 'weight' must be a conv or linear weight (output channels first, "
                         f"at least 2 dims), got shape {weight.shape}")
    C = weight.shape[0]
    for arg, a in zip(_ARGS[1:], arrays[1:]):
        if a is not None and a.shape != (C,):
            raise ValueError(f"{_NAME}: argument '{arg}' must have shape (C_out,) = ({C},) for weight of "
                             f"shape {weight.shape}, got {a.shape}")
    eps = real_scalar(_NAME, "eps", eps, minimum=0.0)
    if not math.isfinite(eps):
        raise ValueError(f"{_NAME}: argument 'eps' must be finite, got {eps}")
    f8 = np.float64
    scale = 1.0 / np.sqrt(running_var.astype(f8) + eps)
    if bn_weight is not None:
        scale = scale * bn_weight.astype(f8)
    shift = -running_mean.astype(f8) if bias is None else bias.astype(f8) - running_mean
    b = shift * scale
    if bn_bias is not None:
        b = b + bn_bias
    w = weight.astype(f8) * scale.reshape((C,) + (1,) * (weight.ndim - 1))
    dt = weight.dtype
    return np.ascontiguousarray(w, dtype=dt), np.ascontiguousarray(b, dtype=dt)
