"""Local response normalization across channels (``torch.nn.functional.local_response_norm``)."""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _math, _threads
from .._op import op
from .._validate import float_array, grad_like, int_scalar, real_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = EXP = LOG = UNBOUND

OP = "local_response_norm"

# Layout: the input is viewed as (N, C, M), M = the product of the spatial dims. Output plane
# (n, c) needs the window sum S[n, c, :] = sum of x[n, c', :]**2 over c' in [c - size//2,
# c + (size-1)//2] (clipped to [0, C), as torch's zero padding). Each plane is one unit of work
# (prange over N*C planes; no unit writes another's output, so no races) that sums its window
# row by row into a private accumulator of length M, in increasing c' (a fixed order: results do
# not depend on the thread count). The window is re-summed for every plane (size adds per element)
# rather than kept as a running sum: a running sum subtracts and can drift below 0 (then
# (k + a*S)**-beta is NaN for k = 0), and the pow (an exp and a log) costs more than the adds.
# Every inner loop runs over the contiguous M axis and vectorizes (the pow uses fastops' vectorizable
# exp/log, _math). On the loaded shared machine, (16, 96, 55, 55) float32, size 5, 2 threads: 64 ms
# vs torch F.local_response_norm 488 ms (torch: pad + avg_pool3d + pow + div; commit def1320,
# ``python -m fastops bench --ops local_response_norm --size large --threads 2``).


def _fwd_template(x, out, lo, hi, a, beta, k):
    N, C, M = x.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        acc = np.zeros(M, x.dtype)
        for cc in range(max(c - lo, 0), min(c + hi, C - 1) + 1):
            xr = x[n, cc]
            for m in range(M):
                acc[m] += xr[m] * xr[m]
        xs = x[n, c]
        os = out[n, c]
        for m in range(M):
            os[m] = xs[m] * EXP(-beta * LOG(k + a * acc[m]))


# y_c = x_c * d_c**-beta, d_c = k + a * S_c, a = alpha / size. With t_c = g_c * x_c * d_c**(-beta-1):
# grad_j = g_j * d_j**-beta - 2 * a * beta * x_j * sum of t_c over the planes c whose window holds j,
# i.e. c in [j - (size-1)//2, j + size//2]. Two parallel passes: d**-beta and t for every plane,
# then the reversed window sums of t.
def _bwd_template(x, g, gi, q, t, lo, hi, a, beta, k):
    N, C, M = x.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        acc = np.zeros(M, x.dtype)
        for cc in range(max(c - lo, 0), min(c + hi, C - 1) + 1):
            xr = x[n, cc]
            for m in range(M):
                acc[m] += xr[m] * xr[m]
        xs = x[n, c]
        gs = g[n, c]
        qs = q[n, c]
        ts = t[n, c]
        for m in range(M):
            d = k + a * acc[m]
            qm = EXP(-beta * LOG(d))
            qs[m] = qm
            ts[m] = gs[m] * xs[m] * (qm / d)
    two_ab = T(2) * a * beta
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        acc = np.zeros(M, x.dtype)
        for cc in range(max(c - hi, 0), min(c + lo, C - 1) + 1):
            tr = t[n, cc]
            for m in range(M):
                acc[m] += tr[m]
        xs = x[n, c]
        gs = g[n, c]
        qs = q[n, c]
        os = gi[n, c]
        for m in range(M):
            os[m] = gs[m] * qs[m] - two_ab * xs[m] * acc[m]


_KERNELS = KernelSet(
    "lrn", {"fwd": _fwd_template, "bwd": _bwd_template}, bind=lambda dt, which, variant: {"EXP": _math.EXP[dt], "LOG": _math.LOG[dt]}
)


def _backend(dtype, shape, size):
    planes = shape[0] * shape[1]
    return _dispatch.parallel_backend(dtype, math.prod(shape), _threads.get_num_threads(), "transcendental", units=planes)


def _params(x, size, alpha, beta, k):
    if x.ndim < 3:
        raise ValueError(
            f"{OP}: argument 'input' must have 3 or more dims (N, C, *spatial), got shape {x.shape}"
        )
    size = int_scalar(OP, "size", size)
    if size < 1:
        raise ValueError(f"{OP}: argument 'size' must be >= 1, got {size}")
    alpha = real_scalar(OP, "alpha", alpha)
    beta = real_scalar(OP, "beta", beta)
    k = real_scalar(OP, "k", k)
    T = x.dtype.type
    return size, T(alpha / size), T(beta), T(k)


def _view(x):
    return x.reshape(x.shape[0], x.shape[1], -1)


@op
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels, AlexNet's LRN
    (``torch.nn.functional.local_response_norm``).

    ``out[n, c] = x[n, c] / (k + alpha / size * sum_{c'} x[n, c']**2) ** beta`` with ``c'`` over
    ``[c - size//2, c + (size - 1)//2]`` clipped to the channels (torch zero-pads ``size//2`` channels
    in front and ``(size - 1)//2`` behind, and averages over the window with the padding counted:
    the division by ``size`` is always by ``size``). Input ``(N, C, *spatial)`` with at least one
    spatial dim (3-D to any rank, as torch); ``size`` an int >= 1.

    The power is computed as ``exp(-beta * log(d))``, multiplied (torch divides by ``d**beta``):
    results agree to a few ulp.

    Backward: ``local_response_norm.backward(grad_output, input, size, alpha, beta, k)`` ->
    ``(grad_input,)``, analytic: ``g * d**-beta - 2 * alpha / size * beta * x * sum_c (g x
    d**(-beta-1))_c`` over the channels whose window contains the element's channel.
    """
    x = float_array(OP, "input", input)
    size, a, b, kk = _params(x, size, alpha, beta, k)
    out = np.empty(x.shape, x.dtype)
    if x.size:
        be = _backend(x.dtype, x.shape, size)
        _KERNELS.run("fwd", x.dtype, be, _view(x), _view(out), size // 2, (size - 1) // 2, a, b, kk)
    return out


@local_response_norm.defbackward
def _(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0):
    x = float_array(OP, "input", input)
    size, a, b, kk = _params(x, size, alpha, beta, k)
    g = grad_like(OP, grad_output, x.shape, x.dtype)
    gi = np.empty(x.shape, x.dtype)
    if x.size:
        q = np.empty(x.shape, x.dtype)
        t = np.empty(x.shape, x.dtype)
        be = _backend(x.dtype, x.shape, size)
        _KERNELS.run("bwd", x.dtype, be,
            _view(x), _view(g), _view(gi), _view(q), _view(t), size // 2, (size - 1) // 2, a, b, kk
        )
    return (gi,)


@local_response_norm.defexplain
def _(shape, dtype, size=5, **params):
    if len(shape) < 3:
        raise ValueError(f"{OP}: shape must have 3 or more dims, got {shape}")
    be = _backend(dtype, shape, size)
    return {
        "kernel": f"lrn_fwd_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "planes": shape[0] * shape[1],
        "threads": _threads.get_num_threads(),
    }


__all__ = ["local_response_norm"]
