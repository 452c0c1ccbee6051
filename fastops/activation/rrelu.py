"""Randomized leaky ReLU (``torch.nn.functional.rrelu``)."""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _random, _threads
from .._elementwise import CHUNK
from .._op import op
from .._validate import float_array, grad_like, inplace_target, real_scalar
from .._activations import LEAKY_RELU
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNIFORM = UNBOUND

OP = "rrelu"


# Element i's slope is lo + span * uniform(key, i) with i the flat C-order index: the same in the
# forward and the backward, and whatever the thread count (see fastops._random). It is computed for
# every element and selected, so the loop stays branch-free and vectorizes (4M float32 serial:
# 1.7 ms, the time of a copy; commit a79dd50). Chunks are indexed from 0, as in _elementwise
# (numba#4436).


def _fwd_template(x, out, key, lo, span):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        os = out[start:stop]
        for i in range(xs.size):
            v = xs[i]
            r = lo + span * UNIFORM(key, start + i)
            os[i] = v if v > T(0) else v * r  # NaN > 0 is False: NaN * r propagates


def _bwd_template(x, g, out, key, lo, span):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        gs = g[start:stop]
        os = out[start:stop]
        for i in range(xs.size):
            r = lo + span * UNIFORM(key, start + i)
            os[i] = gs[i] if xs[i] > T(0) else gs[i] * r


_KERNELS = KernelSet(
    "rrelu_train", {"fwd": _fwd_template, "bwd": _bwd_template}, bind=lambda dt, which, variant: {"UNIFORM": _random.UNIFORM[dt]}
)


def _backend(dtype, size):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "cheap")


def _run(which, dtype, size, *args):
    _KERNELS.run(which, dtype, _backend(dtype, size), *args)


def _params(lower, upper, training, seed):
    """Validated (lower, upper, training, key); key is None in eval mode."""
    lo = real_scalar(OP, "lower", lower)
    hi = real_scalar(OP, "upper", upper)
    if lo > hi:
        raise ValueError(f"{OP}: argument 'lower' ({lo}) must be <= argument 'upper' ({hi})")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{OP}: argument 'training' must be a bool, got {type(training).__name__}")
    if seed is None:
        if training:
            raise ValueError(
                f"{OP}: training=True needs seed= (an int): the random slopes are a function of the seed, "
                f"and rrelu.backward must be given the same seed to reproduce them. For a fresh random "
                f"seed use e.g. seed=int(np.random.default_rng().integers(2**63))."
            )
        return lo, hi, False, None
    key = _random.key(OP, seed)  # validated in eval mode too, although unused there
    return lo, hi, bool(training), (key if training else None)


def _input(x, inplace):
    if not inplace:
        return float_array(OP, "input", x), None
    x = inplace_target(OP, "input", x)
    return x, x


@op
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, seed=None):
    """Randomized leaky ReLU (``torch.nn.functional.rrelu``).

    ``training=False`` (the default, as in ``F.rrelu``): ``leaky_relu`` with the fixed slope
    ``(lower + upper) / 2``.

    ``training=True``: ``x if x > 0 else a * x``, with ``a`` drawn uniformly from ``[lower, upper]``
    for each element: ``a = lower + (upper - lower) * u`` with ``u = fastops._random.uniform`` of the
    seed and the element's flat index. ``seed=`` (an int) is then **required** (``ValueError``
    otherwise): the slopes are a function of the seed only, so ``rrelu.backward`` given the same
    seed reproduces them exactly, on any number of threads. The slopes are not PyTorch's (which
    come from torch's generator state); their distribution is. For a fresh draw each step pass
    e.g. ``seed=int(rng.integers(2**63))`` with your own ``numpy.random.Generator``, and the same
    value to the backward. ``seed`` is ignored (but type-checked) in eval mode.

    ``lower <= upper`` is required (as in PyTorch). ``inplace=True`` overwrites ``input``; the
    backward still needs the original input values.

    Backward: ``rrelu.backward(grad_output, input, lower, upper, training, inplace, seed)`` ->
    ``(grad_input,)``: ``grad_output`` where ``input > 0``, else ``grad_output * a``.
    """
    lo, hi, training, key = _params(lower, upper, training, seed)
    x, out = _input(input, inplace)  # validated here, so that errors name rrelu
    if not training:
        return LEAKY_RELU.forward(x, inplace, (lo + hi) / 2)
    if out is None:
        out = np.empty(x.shape, x.dtype)
    if x.size:
        T = x.dtype.type
        _run("fwd", x.dtype, x.size, x.reshape(-1), out.reshape(-1), key, T(lo), T(hi - lo))
    return out


@rrelu.defbackward
def _(grad_output, input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, seed=None):
    lo, hi, training, key = _params(lower, upper, training, seed)
    x = float_array(OP, "input", input)
    g = grad_like(OP, grad_output, x.shape, x.dtype)
    if not training:
        return (LEAKY_RELU.grad(g, x, (lo + hi) / 2),)
    out = np.empty(x.shape, x.dtype)
    if x.size:
        T = x.dtype.type
        _run("bwd", x.dtype, x.size, x.reshape(-1), g.reshape(-1), out.reshape(-1), key, T(lo), T(hi - lo))
    return (out,)


@rrelu.defexplain
def _(shape, dtype, training=False, **params):
    if not training:
        return dict(LEAKY_RELU.explain(shape, dtype), mode="eval (leaky_relu with slope (lower + upper) / 2)")
    size = math.prod(shape)
    be = _backend(dtype, size)
    return {
        "kernel": f"rrelu_train_fwd_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "mode": "training (counter-based slopes, fastops._random)",
        "size": size,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
    }


__all__ = ["rrelu"]
