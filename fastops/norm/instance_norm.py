"""``instance_norm``: ``F.instance_norm`` on (N, C, *) with 1-3 spatial dims.

``use_input_stats=True``: every (sample, channel) plane is normalised with its own mean and biased
variance; given running statistics are updated in place as PyTorch does (the batch average of the
per-plane means and *unbiased* variances, blended with ``momentum``). ``use_input_stats=False``:
the running statistics (required) normalise every sample, like batch_norm in eval mode.
With input statistics: group_norm's fused kernels with one group per plane; with running
statistics: batch_norm's eval-mode plane kernels.
"""
import math

import numpy as np

from .. import _epilogue
from .._op import op
from .._validate import float_arrays, grad_like
from . import _stats
from .batch_norm import check_channel_param, check_running, common_scalars, update_running

_NAMES = ("input", "running_mean", "running_var", "weight", "bias")
_IDENTITY = _epilogue.parse("instance_norm", None)


def _validate(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps):
    name = "instance_norm"
    x, rm, rv, w, b = float_arrays(name, _NAMES, [input, running_mean, running_var, weight, bias])
    if not 3 <= x.ndim <= 5:
        raise ValueError(f"instance_norm: argument 'input' must be 3-D to 5-D (N, C, spatial...), got shape {x.shape}")
    N, C = x.shape[0], x.shape[1]
    for arg, a in zip(_NAMES[1:], (rm, rv, w, b)):
        check_channel_param(name, arg, a, C, x)
    if not isinstance(use_input_stats, (bool, np.bool_)):
        raise TypeError(f"instance_norm: argument 'use_input_stats' must be a bool, got {type(use_input_stats).__name__}")
    momentum, eps = common_scalars(name, momentum, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError("instance_norm: running_mean and running_var must be given together")
    if not use_input_stats and rm is None:
        raise ValueError("instance_norm: running_mean and running_var must be given when use_input_stats=False")
    S = math.prod(x.shape[2:])
    if use_input_stats and S == 1:  # as torch: an empty plane gives an empty result
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when use_input_stats=True, got input of shape {x.shape}"
        )
    check_running(name, use_input_stats, running_mean, running_var)
    return x, rm, rv, w, b, bool(use_input_stats), momentum, eps, N, C, S


def _channel(v, C, T, fill):
    return np.full(C, fill, T) if v is None else v


@op
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """``F.instance_norm``: ``(x - mean) / sqrt(var + eps) * weight + bias`` per (sample, channel).

    ``running_mean``/``running_var`` (C,) or None, updated in place when ``use_input_stats`` (see
    the module docstring); ``weight``/``bias`` (C,) or None; ``momentum`` in [0, 1].

    Backward: ``instance_norm.backward(grad_output, <the forward's arguments>)`` ->
    ``(grad_input, None, None, grad_weight, grad_bias)``; running statistics are not touched.
    """
    x, rm, rv, w, b, use, momentum, eps, N, C, S = _validate(
        input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
    T = x.dtype.type
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    if use:
        out, st = _stats.fused_group_forward(x, N, C, S, C, _channel(w, C, T, 1), _channel(b, C, T, 0), eps)
        if running_mean is not None:
            update_running(running_mean, st[:, 0].reshape(N, C).mean(axis=0), momentum)
            update_running(running_var, (st[:, 1] * T(S / (S - 1))).reshape(N, C).mean(axis=0), momentum)
        return out
    x2 = x.reshape(N * C, S)
    groups = _stats.Groups("channel", N, C, S)
    rstd = T(1) / np.sqrt(rv + T(eps))
    out = _stats.planes_forward(x2, groups, rm, rstd, _stats.per_channel(w, N, C, T, 1),
                                _stats.per_channel(b, N, C, T, 0), _IDENTITY)
    return out.reshape(x.shape)


@instance_norm.defbackward
def _(grad_output, input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
      momentum=0.1, eps=1e-5):
    x, rm, rv, w, b, use, momentum, eps, N, C, S = _validate(
        input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
    g = grad_like("instance_norm", grad_output, x.shape, x.dtype)
    T = x.dtype.type
    if x.size == 0:
        z = np.zeros(C, x.dtype)
        return (np.zeros(x.shape, x.dtype), None, None, None if w is None else z, None if b is None else z.copy())
    if use:
        gx, sums = _stats.fused_group_backward(x, g, N, C, S, C, _channel(w, C, T, 1), eps)
    else:
        x2 = x.reshape(N * C, S)
        groups = _stats.Groups("channel", N, C, S)
        rstd = T(1) / np.sqrt(rv + T(eps))
        gx, sums = _stats.planes_backward(x2, g.reshape(N * C, S), groups, rm, rstd,
                                          _stats.per_channel(w, N, C, T, 1), _stats.per_channel(b, N, C, T, 0),
                                          _IDENTITY, False)
        gx = gx.reshape(x.shape)
    ch = sums.reshape(N, C, 2).sum(axis=0)
    gw = None if w is None else np.ascontiguousarray(ch[:, 1])
    gb = None if b is None else np.ascontiguousarray(ch[:, 0])
    return gx.reshape(x.shape), None, None, gw, gb


@instance_norm.defexplain
def _(shape, dtype, use_input_stats=True, **params):
    if use_input_stats:
        return _stats.explain("grp_fwd", dtype, shape[0] * shape[1], math.prod(shape))
    return _stats.explain("affine", dtype, shape[0] * shape[1], math.prod(shape), _IDENTITY)
