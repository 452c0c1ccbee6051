"""Average pooling: ``global_avg_pool2d`` (Keras GlobalAveragePooling2D on NCHW) and
``adaptive_avg_pool{1,2,3}d`` (PyTorch bins: start = floor(i*L/out), end = ceil((i+1)*L/out)).

All run one kernel over (planes, D, H, W) (1-D and 2-D as D = H = 1); every plane is handled by one
thread in a fixed order, so results are bitwise the same for any number of threads. The global
pool sums each plane with the lane-ordered ``row_sum``.
"""
import math
import numbers

import numpy as np
from numba import prange

from .._op import op
from .._validate import float_array, grad_like, nonbatch_nonempty
from .._simd import row_sum
from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND


def _adaptive_fwd_template(x4, sd, ed, sh, eh, sw, ew, out4):
    P, OD, OH, OW = out4.shape
    for p in prange(P):
        xp = x4[p]
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    s = T(0)
                    for d in range(sd[od], ed[od]):
                        for h in range(sh[oh], eh[oh]):
                            row = xp[d, h]
                            for w in range(sw[ow], ew[ow]):
                                s += row[w]
                    cnt = (ed[od] - sd[od]) * (eh[oh] - sh[oh]) * (ew[ow] - sw[ow])
                    out4[p, od, oh, ow] = s / T(cnt)


def _adaptive_bwd_template(g4, sd, ed, sh, eh, sw, ew, gx4):
    P, OD, OH, OW = g4.shape
    for p in prange(P):
        gp = gx4[p]
        for d in range(gp.shape[0]):
            for h in range(gp.shape[1]):
                for w in range(gp.shape[2]):
                    gp[d, h, w] = T(0)
        for od in range(OD):
            for oh in range(OH):
                for ow in range(OW):
                    cnt = (ed[od] - sd[od]) * (eh[oh] - sh[oh]) * (ew[ow] - sw[ow])
                    v = g4[p, od, oh, ow] / T(cnt)
                    for d in range(sd[od], ed[od]):
                        for h in range(sh[oh], eh[oh]):
                            row = gp[d, h]
                            for w in range(sw[ow], ew[ow]):
                                row[w] += v


def _global_fwd_template(x2, out):
    P, L = x2.shape
    for p in prange(P):
        out[p] = row_sum(x2[p]) / T(L)


def _global_bwd_template(g, gx2):
    P, L = gx2.shape
    for p in prange(P):
        v = g[p] / T(L)
        row = gx2[p]
        for i in range(L):
            row[i] = v


_K = PlaneSet(
    "avg_pool",
    {
        "adaptive_fwd": _adaptive_fwd_template,
        "adaptive_bwd": _adaptive_bwd_template,
        "global_fwd": _global_fwd_template,
        "global_bwd": _global_bwd_template,
    },
)


# --- global_avg_pool2d --------------------------------------------------------------------------


def _g_validate(input):
    x = float_array("global_avg_pool2d", "input", input)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: argument 'input' must be 4-D (N, C, H, W), got shape {x.shape}")
    return x


@op
def global_avg_pool2d(input):
    """Keras ``GlobalAveragePooling2D`` on NCHW: (N, C, H, W) -> (N, C), the mean of each plane.

    Backward: ``global_avg_pool2d.backward(grad_output, input)`` -> ``(grad_input,)``.
    """
    x = _g_validate(input)
    N, C, H, W = x.shape
    out = np.empty((N, C), x.dtype)
    if H * W == 0:
        out.fill(np.nan)  # the mean of an empty plane (as torch's x.mean((2, 3)))
    elif out.size:
        _K.call("global_fwd", x.dtype, N * C, x.size, x.reshape(N * C, H * W), out.reshape(N * C))
    return out


@global_avg_pool2d.defbackward
def _(grad_output, input):
    x = _g_validate(input)
    N, C, H, W = x.shape
    g = grad_like("global_avg_pool2d", grad_output, (N, C), x.dtype)
    gx = np.empty(x.shape, x.dtype)
    if gx.size:
        _K.call("global_bwd", x.dtype, N * C, x.size, g.reshape(N * C), gx.reshape(N * C, H * W))
    return (gx,)


@global_avg_pool2d.defexplain
def _(shape, dtype, **params):
    return _K.explain("global_fwd", dtype, math.prod(shape[:2]), math.prod(shape))


# --- adaptive_avg_pool{1,2,3}d ------------------------------------------------------------------


def _output_size(name, output_size, k, spatial):
    if output_size is None or (
        isinstance(output_size, (numbers.Integral, np.integer)) and not isinstance(output_size, (bool, np.bool_))
    ):
        output_size = (output_size,) * k
    if not isinstance(output_size, (tuple, list)) or len(output_size) != k:
        raise TypeError(f"{name}: argument 'output_size' must be an int or a tuple of {k} ints/None, got {output_size!r}")
    out = []
    for o, L in zip(output_size, spatial):
        if o is None:
            out.append(int(L))
            continue
        if isinstance(o, (bool, np.bool_)) or not isinstance(o, (numbers.Integral, np.integer)):
            raise TypeError(f"{name}: argument 'output_size' must hold ints or None, got {output_size!r}")
        if o <= 0:
            raise ValueError(f"{name}: argument 'output_size' must be positive, got {tuple(output_size)}")
        out.append(int(o))
    return tuple(out)


def _validate(name, k, input, output_size):
    x = float_array(name, "input", input)
    if x.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"{name}: argument 'input' must be {k + 1}-D or {k + 2}-D ((N,) C, spatial...), got shape {x.shape}"
        )
    spatial = x.shape[-k:]
    if any(s == 0 for s in spatial):
        raise ValueError(f"{name}: argument 'input' has an empty spatial dim, shape {x.shape}")
    if name not in ("adaptive_avg_pool1d", "adaptive_avg_pool2d"):
        # as torch: adaptive_avg_pool3d and the adaptive max pools need a non-zero size in dims 1..
        # (0 channels raise); adaptive_avg_pool1d/2d return an empty result
        nonbatch_nonempty(name, "input", x, 1)
    osz = _output_size(name, output_size, k, spatial)
    lead = x.shape[:-k]
    return x, lead, tuple(int(s) for s in spatial), osz


def _bins(L, O):
    i = np.arange(O, dtype=np.int64)
    return (i * L) // O, ((i + 1) * L + O - 1) // O


def _geometry(spatial, osz):
    pad_in = (1,) * (3 - len(spatial)) + spatial
    pad_out = (1,) * (3 - len(osz)) + osz
    bins = []
    for L, O in zip(pad_in, pad_out):
        bins.extend(_bins(L, O))
    return pad_in, pad_out, bins


def _adaptive_forward(name, k, input, output_size):
    x, lead, spatial, osz = _validate(name, k, input, output_size)
    out = np.empty(lead + osz, x.dtype)
    if out.size:
        P = math.prod(lead)
        if all(o == 1 for o in osz):
            # one bin per plane: the global kernel's lane-vectorized row sum (the bin loop's scalar
            # running sum does not vectorize: (8,64,56,56) -> 1x1 took 0.86 ms, 0.25x torch, this
            # kernel 0.44 ms; commit 9968288; ``python -m fastops bench --ops adaptive_avg_pool2d``)
            _K.call("global_fwd", x.dtype, P, x.size, x.reshape(P, -1), out.reshape(P))
            return out
        ins, outs, bins = _geometry(spatial, osz)
        _K.call("adaptive_fwd", x.dtype, P, x.size, x.reshape((P,) + ins), *bins, out.reshape((P,) + outs))
    return out


def _adaptive_backward(name, k, grad_output, input, output_size):
    x, lead, spatial, osz = _validate(name, k, input, output_size)
    g = grad_like(name, grad_output, lead + osz, x.dtype)
    if g.size and all(o == 1 for o in osz):
        gx = np.empty(x.shape, x.dtype)
        P = math.prod(lead)
        _K.call("global_bwd", x.dtype, P, x.size, g.reshape(P), gx.reshape(P, -1))
        return (gx,)
    gx = np.zeros(x.shape, x.dtype)
    if g.size:
        P = math.prod(lead)
        ins, outs, bins = _geometry(spatial, osz)
        _K.call("adaptive_bwd", x.dtype, P, x.size, g.reshape((P,) + outs), *bins, gx.reshape((P,) + ins))
    return (gx,)


def _adaptive_explain(k):
    def fn(shape, dtype, output_size=1, **params):
        return _K.explain("adaptive_fwd", dtype, math.prod(shape[:-k]), math.prod(shape))

    return fn


@op
def adaptive_avg_pool1d(input, output_size):
    """``F.adaptive_avg_pool1d``: (N, C, L) or (C, L) -> (..., output_size), PyTorch's bins.

    Backward: ``adaptive_avg_pool1d.backward(grad_output, input, output_size)`` -> ``(grad_input,)``.
    """
    return _adaptive_forward("adaptive_avg_pool1d", 1, input, output_size)


@adaptive_avg_pool1d.defbackward
def _(grad_output, input, output_size):
    return _adaptive_backward("adaptive_avg_pool1d", 1, grad_output, input, output_size)


@op
def adaptive_avg_pool2d(input, output_size):
    """``F.adaptive_avg_pool2d``: (N, C, H, W) or (C, H, W); ``output_size`` an int or a pair
    (``None`` keeps that input size). Backward: ``adaptive_avg_pool2d.backward(grad_output, input,
    output_size)`` -> ``(grad_input,)``.
    """
    return _adaptive_forward("adaptive_avg_pool2d", 2, input, output_size)


@adaptive_avg_pool2d.defbackward
def _(grad_output, input, output_size):
    return _adaptive_backward("adaptive_avg_pool2d", 2, grad_output, input, output_size)


@op
def adaptive_avg_pool3d(input, output_size):
    """``F.adaptive_avg_pool3d``: (N, C, D, H, W) or (C, D, H, W); ``output_size`` an int or a
    triple (``None`` keeps that input size). Backward: ``adaptive_avg_pool3d.backward(grad_output,
    input, output_size)`` -> ``(grad_input,)``.
    """
    return _adaptive_forward("adaptive_avg_pool3d", 3, input, output_size)


@adaptive_avg_pool3d.defbackward
def _(grad_output, input, output_size):
    return _adaptive_backward("adaptive_avg_pool3d", 3, grad_output, input, output_size)


adaptive_avg_pool1d.defexplain(_adaptive_explain(1))
adaptive_avg_pool2d.defexplain(_adaptive_explain(2))
adaptive_avg_pool3d.defexplain(_adaptive_explain(3))

__all__ = ["global_avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"]
