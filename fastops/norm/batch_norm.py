"""``batch_norm``: ``F.batch_norm`` on (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W), with a fused
``activation=`` epilogue.

Training: per-channel batch statistics over N and the spatial dims (biased variance to normalise),
the running statistics (when given) updated in place exactly as PyTorch does:
``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* variance.
``momentum=None`` (the cumulative average of ``nn.BatchNorm`` modules, which keep the step count)
is not accepted, as in ``F.batch_norm`` (TypeError). Eval: the running statistics normalise.

Kernels (``_stats``): one read of the input for the shifted per-plane sums, one read + one write
for the normalisation + activation. Backward: (training) the statistics again, then one pass for
the sums ``sum g'`` and ``sum g' * xhat`` (``g'``: the gradient through the activation, recomputed
from x and the statistics, never materialised) and one pass for grad_input.
"""
import math

import numpy as np

from .. import _epilogue
from .._op import op
from .._validate import float_arrays, grad_like, real_scalar
from . import _stats

_NAMES = ("input", "running_mean", "running_var", "weight", "bias")


def check_channel_param(name, arg, a, C, x):
    if a is not None and a.shape != (C,):
        raise ValueError(
            f"{name}: argument '{arg}' must have shape (C,) = ({C},) for input of shape {x.shape}, got {a.shape}"
        )


def check_running(name, training, running_mean, running_var):
    """In-place updated running statistics must be writeable ndarrays."""
    if training:
        for arg, a in (("running_mean", running_mean), ("running_var", running_var)):
            if a is not None and not a.flags.writeable:
                raise ValueError(f"{name}: argument '{arg}' is updated in place in training and must be writeable")


def common_scalars(name, momentum, eps):
    if momentum is None:
        raise TypeError(
            f"{name}: argument 'momentum' must be a float in [0, 1] (None, the cumulative average of "
            "nn.BatchNorm modules, is not supported by the functional form)"
        )
    momentum = real_scalar(name, "momentum", momentum, minimum=0.0, maximum=1.0)
    eps = real_scalar(name, "eps", eps, minimum=0.0)
    if not math.isfinite(eps):
        raise ValueError(f"{name}: argument 'eps' must be finite, got {eps}")
    return momentum, eps


def update_running(running, new_value, momentum):
    """``running = (1 - momentum) * running + momentum * new`` in place (in running's dtype)."""
    T = running.dtype.type
    running[...] = T(1.0 - momentum) * running + T(momentum) * new_value.astype(running.dtype, copy=False)


def _validate(input, running_mean, running_var, weight, bias, training, momentum, eps, activation, activation_param):
    name = "batch_norm"
    x, rm, rv, w, b = float_arrays(name, _NAMES, [input, running_mean, running_var, weight, bias])
    if not 2 <= x.ndim <= 5:
        raise ValueError(f"batch_norm: argument 'input' must be 2-D to 5-D (N, C, ...), got shape {x.shape}")
    C = x.shape[1]
    for arg, a in zip(_NAMES[1:], (rm, rv, w, b)):
        check_channel_param(name, arg, a, C, x)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"batch_norm: argument 'training' must be a bool, got {type(training).__name__}")
    momentum, eps = common_scalars(name, momentum, eps)
    epi = _epilogue.parse(name, activation, activation_param)
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: running_mean and running_var must be given in eval mode (training=False)")
    N = x.shape[0]
    S = math.prod(x.shape[2:])
    if training and N * S == 1:  # as torch: an empty batch or plane gives an empty result
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}")
    check_running(name, training, running_mean, running_var)
    return x, rm, rv, w, b, bool(training), momentum, eps, epi, N, C, S


def _stats_of(x2, rm, rv, training, eps, groups):
    T = x2.dtype.type
    if training:
        return _stats.batch_stats(x2, groups, eps)
    return rm, rv, T(1) / np.sqrt(rv + T(eps))


@op
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5, activation=None, activation_param=None):
    """``F.batch_norm`` + fused activation: ``ACT((x - mean) / sqrt(var + eps) * weight + bias)``.

    Parameters follow PyTorch. ``input`` (N, C, *) with 0-3 spatial dims; ``running_mean``,
    ``running_var`` (C,) or None (training only); in training they are updated in place (see the
    module docstring; ``momentum`` in [0, 1], ``None`` not supported); ``weight``/``bias`` (C,) or None.
    ``activation``: None or one of ``fastops._epilogue.NAMES`` with ``activation_param``.

    Backward: ``batch_norm.backward(grad_output, <the forward's arguments>)`` ->
    ``(grad_input, None, None, grad_weight, grad_bias)`` (``None`` for an absent weight/bias). It
    does not touch the running statistics. ``batch_norm.vjp(...)`` keeps the forward's statistics
    for its pullback (training: the backward's pass over the input for them is saved).
    """
    v = _validate(input, running_mean, running_var, weight, bias, training, momentum, eps, activation,
                  activation_param)
    return _forward(*v, running_mean, running_var)[0]


def _forward(x, rm, rv, w, b, training, momentum, eps, epi, N, C, S, running_mean, running_var):
    """The output and the statistics that normalised it, ``(mean, rstd)`` (None for an empty input)."""
    T = x.dtype.type
    if x.size == 0:
        return np.empty(x.shape, x.dtype), None
    x2 = x.reshape(N * C, S)
    groups = _stats.Groups("channel", N, C, S)
    mean, var, rstd = _stats_of(x2, rm, rv, training, eps, groups)
    out = _stats.planes_forward(x2, groups, mean, rstd, _stats.per_channel(w, N, C, T, 1),
                                _stats.per_channel(b, N, C, T, 0), epi)
    if training:
        M = N * S
        if running_mean is not None:
            update_running(running_mean, mean, momentum)
        if running_var is not None:
            update_running(running_var, var * T(M / (M - 1)), momentum)
    return out.reshape(x.shape), (mean, rstd)


def _pullback(x, rm, rv, w, b, training, eps, epi, N, C, S, grad_output, stats=None):
    """The backward's entries; ``stats``: the forward's ``(mean, rstd)`` (else computed here)."""
    g = grad_like("batch_norm", grad_output, x.shape, x.dtype)
    T = x.dtype.type
    if x.size == 0:
        z = np.zeros(C, x.dtype)
        return (np.zeros(x.shape, x.dtype), None, None, None if w is None else z, None if b is None else z.copy())
    x2 = x.reshape(N * C, S)
    groups = _stats.Groups("channel", N, C, S)
    if stats is None:
        mean, _, rstd = _stats_of(x2, rm, rv, training, eps, groups)
    else:
        mean, rstd = stats
    gx, sums = _stats.planes_backward(x2, g.reshape(N * C, S), groups, mean, rstd,
                                      _stats.per_channel(w, N, C, T, 1), _stats.per_channel(b, N, C, T, 0),
                                      epi, training)
    ch = sums.reshape(N, C, 2).sum(axis=0)
    gw = None if w is None else np.ascontiguousarray(ch[:, 1])
    gb = None if b is None else np.ascontiguousarray(ch[:, 0])
    return gx.reshape(x.shape), None, None, gw, gb


@batch_norm.defbackward
def _(grad_output, input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
      eps=1e-5, activation=None, activation_param=None):
    x, rm, rv, w, b, training, momentum, eps, epi, N, C, S = _validate(
        input, running_mean, running_var, weight, bias, training, momentum, eps, activation, activation_param)
    return _pullback(x, rm, rv, w, b, training, eps, epi, N, C, S, grad_output)


@batch_norm.defvjp
def _(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
      activation=None, activation_param=None):
    # the pullback keeps the forward's statistics (training: no second pass over the input for them)
    v = _validate(input, running_mean, running_var, weight, bias, training, momentum, eps, activation,
                  activation_param)
    out, stats = _forward(*v, running_mean, running_var)
    x, rm, rv, w, b, training, momentum, eps, epi, N, C, S = v
    return out, lambda g, needs: _pullback(x, rm, rv, w, b, training, eps, epi, N, C, S, g, stats)


@batch_norm.defexplain
def _(shape, dtype, training=False, activation=None, activation_param=None, **params):
    N, C = shape[0], shape[1]
    size = math.prod(shape)
    epi = _epilogue.parse("batch_norm", activation, activation_param)
    d = _stats.explain("affine", dtype, N * C, size, epi)
    d["stats"] = "batch (shifted sums per plane)" if training else "running"
    return d
