"""Dropout (``torch.nn.functional.dropout``) and channel dropout (``torch.nn.functional.dropout2d``).

The mask is counter-based (``fastops._random``): element ``i`` (flat C-order index; for
``dropout2d``, plane ``i`` = (sample, channel) pair) is kept iff ``uniform(key(seed), i) >= p``,
with ``uniform`` the dtype's uniform (``uniform32``: multiples of 2**-24, ``uniform64``: of
2**-53). The mask is a pure function of the seed and the index: the backward given the same seed
reproduces it, on any number of threads. The kept elements are scaled by ``1 / (1 - p)``.
"""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _random, _threads
from .._elementwise import CHUNK
from .._op import op
from .._validate import float_array, grad_like, inplace_target, real_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = BITS = SHIFT = UNBOUND

# The test ``uniform >= p`` is done on the integer bits: ``(bits >> SHIFT) >= ceil(p * 2**(64 - SHIFT))``
# is exactly ``uniform >= p`` (the uniform is ``(bits >> SHIFT) * 2**-(64 - SHIFT)``, and ``p *
# 2**k`` is exact in float64), and it skips the int -> float conversion. Kept elements are
# multiplied by ``scale``, dropped ones by 0 (so -x gives -0 and NaN stays NaN, as torch's
# ``input * mask``), selected branch-free so that the loop vectorizes: RNG (64-bit multiplies,
# AVX-512) and multiply in one pass over the data. 16M float32, 2 threads, shared noisy machine:
# 8 ms vs torch F.dropout 283 ms; under heavier load 90 ms vs relu's 59 ms (a memory-bound single
# pass) and torch's 1400 ms, i.e. the RNG adds ~1.5x a copy (commit def1320; ``python -m fastops
# bench --ops dropout relu --size large --threads 2``).
_SHIFT = {np.dtype(np.float32): 40, np.dtype(np.float64): 11}


def _mask_template(x, out, key, thresh, scale):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        os = out[start:stop]
        for i in range(xs.size):
            keep = (BITS(key, start + i) >> SHIFT) >= thresh
            os[i] = xs[i] * (scale if keep else T(0))


# dropout2d: ``out[j, :] = x[j, :] * f[j]`` with ``f`` the per-plane factors (computed by the
# kernel above on a vector of ones, so that they are exactly ``scale`` or 0). Work units are
# (plane, chunk of the plane) pairs, so that few large planes still use every thread; each unit
# is a slice indexed from 0 (vectorizes, numba#4436).
def _planes_template(x, f, out):
    P, S = x.shape
    nb = (S + CHUNK - 1) // CHUNK
    for u in prange(P * nb):
        j = u // nb
        start = (u - j * nb) * CHUNK
        stop = min(start + CHUNK, S)
        xs = x[j, start:stop]
        os = out[j, start:stop]
        fj = f[j]
        for i in range(xs.size):
            os[i] = xs[i] * fj


_KERNELS = KernelSet(
    "dropout", {"mask": _mask_template, "planes": _planes_template},
    bind=lambda dt, which, v: dict(SHIFT=np.uint64(_SHIFT[dt]), BITS=_random.bits) if which == "mask" else {},
)


def _backend(dtype, size):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "cheap")


def _call(which, dtype, size, *args):
    _KERNELS.run(which, dtype, _backend(dtype, size), *args)


def _params(name, p, training, seed, backward):
    """Validated ``(p, training, key)``; ``key`` is None where no mask is drawn."""
    p = real_scalar(name, "p", p, minimum=0.0, maximum=1.0)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'training' must be a bool, got {type(training).__name__}")
    training = bool(training)
    if seed is None:
        if backward and training and 0.0 < p < 1.0:
            raise ValueError(
                f"{name}.backward: training=True with 0 < p < 1 needs the seed= the forward used: the mask "
                f"is a function of the seed. (A forward called with seed=None drew a seed from NumPy's "
                f"global generator that cannot be recovered: pass seed= to the forward as well.)"
            )
        if training and 0.0 < p < 1.0:
            # torch draws from its global generator; fastops from NumPy's (np.random.seed makes it
            # reproducible, like torch.manual_seed).
            seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
        else:
            return p, training, None
    key = _random.key(name, seed)  # validated even where unused
    return p, training, key


def _threshold_scale(dtype, p):
    dt = np.dtype(dtype)
    thresh = np.uint64(math.ceil(p * 2.0 ** (64 - _SHIFT[dt])))
    scale = dt.type(0.0) if p == 1.0 else dt.type(1.0 / (1.0 - p))
    return thresh, scale


def _apply_mask(x, out, key, p):
    """``out = x * mask * scale`` elementwise (flat index mask)."""
    thresh, scale = _threshold_scale(x.dtype, p)
    if key is None:  # p == 0 or p == 1: the mask does not depend on the seed
        key = np.uint64(0)
    if x.size:
        _call("mask", x.dtype, x.size, x.reshape(-1), out.reshape(-1), key, thresh, scale)
    return out


def _plane_factors(dtype, planes, key, p):
    f = np.ones(planes, dtype)
    return _apply_mask(f, f, key, p)  # elementwise in place: f[j] = scale or 0


def _apply_planes(x, out, key, p):
    planes = x.shape[0] * x.shape[1]
    if x.size == 0:
        return out
    f = _plane_factors(x.dtype, planes, key, p)
    x2 = x.reshape(planes, -1)
    _call("planes", x.dtype, x.size, x2, f, out.reshape(planes, -1))
    return out


def _input(name, x, inplace):
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'inplace' must be a bool, got {type(inplace).__name__}")
    if not inplace:
        return float_array(name, "input", x), None
    x = inplace_target(name, "input", x)
    return x, x


def _check_2d_rank(x, name="dropout2d"):
    if x.ndim < 2:
        raise ValueError(
            f"{name}: argument 'input' must have at least 2 dims (N, C, ...) (channels are dim 1), got shape {x.shape}"
        )


# ---------------------------------------------------------------------------------------------


@op
def dropout(input, p=0.5, training=True, inplace=False, seed=None):
    """Dropout (``torch.nn.functional.dropout``): zero each element with probability ``p`` and scale
    the others by ``1 / (1 - p)``.

    Element ``i`` (flat C-order index) is kept iff ``fastops._random.uniform(seed, i) >= p``, drawn
    in the input's dtype (see the module docstring); the mask is not torch's (different generator),
    its distribution is.

    ``seed``: an int fixes the mask; ``dropout.backward`` needs the same seed. ``seed=None`` (the
    default, torch-like) draws a seed from NumPy's global generator (``np.random.seed`` makes it
    reproducible, as ``torch.manual_seed`` does for torch); that seed is not returned, so a
    backward with ``seed=None`` raises ``ValueError`` (unless the mask does not depend on the seed:
    ``training=False``, ``p == 0`` or ``p == 1``). Pass your own seed for training.

    ``training=False``: the identity, and, like torch, the input itself is returned (no copy; a
    non-contiguous or byte-swapped input comes back as a contiguous native copy). ``p == 0``: a
    copy (``x * 1``); ``p == 1``: all zeros (``x * 0``: -0.0 for negative x, NaN stays NaN; no
    division by zero). ``p`` outside [0, 1] raises ``ValueError``. ``inplace=True`` writes into
    ``input`` and returns it.

    Backward: ``dropout.backward(grad_output, input, p, training, inplace, seed)`` ->
    ``(grad_input,)`` = ``grad_output * mask / (1 - p)`` (the input's values are not needed, so
    ``inplace=True`` forwards are fine).
    """
    p, training, key = _params("dropout", p, training, seed, False)
    x, out = _input("dropout", input, inplace)
    if not training:
        return x
    if out is None:
        out = np.empty(x.shape, x.dtype)
    return _apply_mask(x, out, key, p)


@dropout.defbackward
def _(grad_output, input, p=0.5, training=True, inplace=False, seed=None):
    p, training, key = _params("dropout", p, training, seed, True)
    x = float_array("dropout", "input", input)
    g = grad_like("dropout", grad_output, x.shape, x.dtype)
    out = np.empty(x.shape, x.dtype)
    if not training:
        out[...] = g
        return (out,)
    return (_apply_mask(g, out, key, p),)


@dropout.defexplain
def _(shape, dtype, training=True, **params):
    if not training:
        return {"kernel": "identity", "backend": "none", "mode": "eval (returns the input)"}
    size = math.prod(shape)
    be = _backend(dtype, size)
    return {
        "kernel": f"dropout_mask_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "mode": "training (counter-based mask, fastops._random)",
        "size": size,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
    }


@op
def dropout2d(input, p=0.5, training=True, inplace=False, seed=None):
    """Channel dropout (``torch.nn.functional.dropout2d``): zero whole channels with probability
    ``p`` and scale the others by ``1 / (1 - p)``.

    Input ``(N, C, *rest)``: one draw per (sample, channel) plane ``j = n * C + c``, kept iff
    ``fastops._random.uniform(seed, j) >= p``. This is torch's behaviour for every rank it accepts:
    4-D ``(N, C, H, W)``; 3-D is taken as ``(N, C, L)`` (torch 2.x warns that this "will change in a
    future release" to ``(C, H, W)`` without batch, but today masks per (dim 0, dim 1) pair, and so
    does fastops, without the warning); 2-D ``(N, C)`` and 5-D are accepted as in torch (per
    element of the first two dims). 0-D and 1-D raise ``ValueError``.

    ``p``, ``training``, ``inplace``, ``seed`` and the backward as in :func:`dropout` (the same seed
    rules, the same ``p == 0`` / ``p == 1`` / eval behaviour).
    """
    p, training, key = _params("dropout2d", p, training, seed, False)
    x, out = _input("dropout2d", input, inplace)
    _check_2d_rank(x)
    if not training:
        return x
    if out is None:
        out = np.empty(x.shape, x.dtype)
    return _apply_planes(x, out, key, p)


@dropout2d.defbackward
def _(grad_output, input, p=0.5, training=True, inplace=False, seed=None):
    p, training, key = _params("dropout2d", p, training, seed, True)
    x = float_array("dropout2d", "input", input)
    _check_2d_rank(x)
    g = grad_like("dropout2d", grad_output, x.shape, x.dtype)
    out = np.empty(x.shape, x.dtype)
    if not training:
        out[...] = g
        return (out,)
    return (_apply_planes(g, out, key, p),)


@dropout2d.defexplain
def _(shape, dtype, training=True, **params):
    if not training:
        return {"kernel": "identity", "backend": "none", "mode": "eval (returns the input)"}
    size = math.prod(shape)
    be = _backend(dtype, size)
    return {
        "kernel": f"dropout_planes_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "mode": "training (one counter-based draw per (N, C) plane)",
        "planes": math.prod(shape[:2]),
        "size": size,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
    }


__all__ = ["dropout", "dropout2d"]
