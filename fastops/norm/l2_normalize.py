"""SSD / Caffe ``Normalize`` layer: L2 normalization over channels (or over C*H*W) with a learned scale."""
import numpy as np
from numba import prange

from .. import _dispatch, _jit, _threads
from .._op import op
from .._validate import float_array, float_arrays, grad_like, real_scalar
from .._simd import row_dot, row_sum
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

OP = "l2_normalize"

# Layout: x viewed as (N, C, M), M = product of the spatial dims. Work unit = (sample n, block b of
# BM spatial positions), all C channels: the sums over channels are vertical (acc[i] += x[c, i]**2,
# c outer, i inner and contiguous: vectorizes; each position's sum is added in channel order, so the
# result does not depend on the thread count). BM is a pure function of (C, dtype): the unit's
# C x BM slab stays within ~256 KB, so that the second read of the slab (to write the output) can
# hit L2 (1 MB per core here) instead of memory; rows of at least 64 elements keep the loops
# vectorized. (Design rationale; the slab size was not tuned on a quiet machine. On the loaded
# machine, (16, 512, 38, 38) float32, 2 threads: 106 ms vs torch F.normalize(x, dim=1) * scale
# 480 ms; commit def1320, ``python -m fastops bench --ops l2_normalize --size large --threads 2``.)
# across_spatial=True needs the sum over all of (C, M): per-unit partial sums (lane order,
# _simd.row_sum), combined per sample in block order by every unit of the second pass.
SLAB_BYTES = 256 * 1024


def block_size(C, M, itemsize):
    """Spatial positions per work unit (a pure function of the shape: determinism)."""
    bm = SLAB_BYTES // max(C * itemsize, 1)
    bm = max(64, min(4096, (bm // 64) * 64))
    return min(bm, max(M, 1))


def _fwd_template(x, s, out, part, across, eps, bm):
    N, C, M = x.shape
    nb = part.shape[1]
    for u in prange(N * nb):
        n = u // nb
        m0 = (u - n * nb) * bm
        m1 = min(m0 + bm, M)
        acc = np.zeros(m1 - m0, x.dtype)
        for c in range(C):
            xr = x[n, c, m0:m1]
            for i in range(acc.size):
                acc[i] += xr[i] * xr[i]
        if across:
            part[n, u - n * nb] = row_sum(acc)
        else:
            for i in range(acc.size):
                acc[i] = T(1) / np.sqrt(acc[i] + eps)
            for c in range(C):
                xr = x[n, c, m0:m1]
                orow = out[n, c, m0:m1]
                sc = s[c]
                for i in range(acc.size):
                    orow[i] = xr[i] * acc[i] * sc
    if across:
        for u in prange(N * nb):
            n = u // nb
            m0 = (u - n * nb) * bm
            m1 = min(m0 + bm, M)
            tot = T(0)
            for b in range(nb):
                tot += part[n, b]
            r = T(1) / np.sqrt(tot + eps)
            for c in range(C):
                xr = x[n, c, m0:m1]
                orow = out[n, c, m0:m1]
                rs = r * s[c]
                for i in range(m1 - m0):
                    orow[i] = xr[i] * rs


# y = x * r * s_c with r = (sum over the group of x**2 + eps)**-1/2 (group: the channels of one
# position, or all of one sample). grad_x = r * s_c * g - x * r**3 * D, D = sum over the group of
# g * s_c * x; grad_s[c] = sum over n and positions of g * x * r, from per-unit partials gsp[u, c]
# (summed over units afterwards, in unit order).
def _bwd_template(x, g, s, gi, gsp, part, across, eps, bm):
    N, C, M = x.shape
    nb = part.shape[1]
    for u in prange(N * nb):
        n = u // nb
        m0 = (u - n * nb) * bm
        m1 = min(m0 + bm, M)
        L = m1 - m0
        acc = np.zeros(L, x.dtype)
        for c in range(C):
            xr = x[n, c, m0:m1]
            for i in range(L):
                acc[i] += xr[i] * xr[i]
        if across:
            part[n, u - n * nb, 0] = row_sum(acc)
            d = T(0)
            for c in range(C):
                gx = row_dot(g[n, c, m0:m1], x[n, c, m0:m1])
                gsp[u, c] = gx
                d += s[c] * gx
            part[n, u - n * nb, 1] = d
        else:
            dd = np.zeros(L, x.dtype)
            tmp = np.empty(L, x.dtype)
            for i in range(L):
                acc[i] = T(1) / np.sqrt(acc[i] + eps)
            for c in range(C):
                xr = x[n, c, m0:m1]
                gr = g[n, c, m0:m1]
                sc = s[c]
                for i in range(L):
                    tmp[i] = gr[i] * xr[i]
                    dd[i] += sc * tmp[i]
                gsp[u, c] = row_dot(tmp, acc)
            for i in range(L):
                dd[i] = dd[i] * (acc[i] * acc[i] * acc[i])
            for c in range(C):
                xr = x[n, c, m0:m1]
                gr = g[n, c, m0:m1]
                orow = gi[n, c, m0:m1]
                sc = s[c]
                for i in range(L):
                    orow[i] = acc[i] * sc * gr[i] - xr[i] * dd[i]
    if across:
        for u in prange(N * nb):
            n = u // nb
            m0 = (u - n * nb) * bm
            m1 = min(m0 + bm, M)
            tot = T(0)
            d = T(0)
            for b in range(nb):
                tot += part[n, b, 0]
                d += part[n, b, 1]
            r = T(1) / np.sqrt(tot + eps)
            coef = r * r * r * d
            for c in range(C):
                xr = x[n, c, m0:m1]
                gr = g[n, c, m0:m1]
                orow = gi[n, c, m0:m1]
                rs = r * s[c]
                for i in range(m1 - m0):
                    orow[i] = rs * gr[i] - xr[i] * coef


_KERNELS = KernelSet("l2_normalize", {"fwd": _fwd_template, "bwd": _bwd_template})


def _plan(dtype, shape):
    N, C = shape[0], shape[1]
    M = 1
    for d in shape[2:]:
        M *= d
    bm = block_size(C, M, np.dtype(dtype).itemsize)
    nb = -(-M // bm) if M else 0
    return N, C, M, bm, nb


def _backend(dtype, shape):
    N, C, M, bm, nb = _plan(dtype, shape)
    return _dispatch.parallel_backend(dtype, N * C * M, _threads.get_num_threads(), units=N * nb)


def _validate(x, scale, across_spatial, channel_shared, eps):
    x, scale = float_arrays(OP, ("x", "scale"), (x, scale))
    if x.ndim < 2:
        raise ValueError(f"{OP}: argument 'x' must have 2 or more dims (N, C, *spatial), got shape {x.shape}")
    for name, v in (("across_spatial", across_spatial), ("channel_shared", channel_shared)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{OP}: argument '{name}' must be a bool, got {type(v).__name__}")
    eps = real_scalar(OP, "eps", eps, minimum=0.0)
    C = x.shape[1]
    if scale is not None:
        want = (1,) if channel_shared else (C,)
        if scale.shape != want:
            kind = "channel_shared=True: one value" if channel_shared else f"one value per channel (C = {C})"
            raise ValueError(
                f"{OP}: argument 'scale' must have shape {want} ({kind}), got shape {scale.shape} for x of shape {x.shape}"
            )
    return x, scale, bool(across_spatial), bool(channel_shared), x.dtype.type(eps)


def _scale_vector(x, scale):
    C = x.shape[1]
    if scale is None:
        return np.ones(C, x.dtype)
    if scale.shape[0] != C:
        return np.full(C, scale[0], x.dtype)
    return scale


@op
def l2_normalize(x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    """L2 normalization with a scale, the SSD / Caffe ``Normalize`` layer.

    ``across_spatial=False`` (SSD's conv4_3 setting): every position of every sample is divided by
    the L2 norm over channels, ``y[n, c, p] = x[n, c, p] / sqrt(sum_c' x[n, c', p]**2 + eps) *
    scale[c]``. ``across_spatial=True``: one norm per sample over all of (C, *spatial).
    ``eps`` is added to the sum of squares before the square root, as Caffe's NormalizeLayer does
    (``torch.nn.functional.normalize`` instead takes ``max(norm, eps)``: the two agree unless the
    norm is below ~sqrt(eps)). ``scale``: ``None`` (no scaling), an array of shape ``(C,)``, or,
    with ``channel_shared=True``, of shape ``(1,)``. ``x``: ``(N, C, *spatial)``, 2-D or more.

    Backward: ``l2_normalize.backward(grad_output, x, scale, ...)`` -> ``(grad_x, grad_scale)``
    (``grad_scale`` None when ``scale`` is None, shape ``(1,)`` when shared).
    """
    x, scale, across, shared, eps = _validate(x, scale, across_spatial, channel_shared, eps)
    out = np.empty(x.shape, x.dtype)
    if x.size == 0:
        return out
    N, C, M, bm, nb = _plan(x.dtype, x.shape)
    part = np.empty((N, nb), x.dtype)
    be = _backend(x.dtype, x.shape)
    _KERNELS.run(
        "fwd", x.dtype, be, x.reshape(N, C, M), _scale_vector(x, scale), out.reshape(N, C, M), part, across, eps, bm
    )
    return out


@l2_normalize.defbackward
def _(grad_output, x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    x, scale, across, shared, eps = _validate(x, scale, across_spatial, channel_shared, eps)
    g = grad_like(OP, grad_output, x.shape, x.dtype)
    gi = np.empty(x.shape, x.dtype)
    N, C = x.shape[0], x.shape[1]
    if x.size == 0:
        gs = None if scale is None else np.zeros(scale.shape, x.dtype)
        return gi, gs
    N, C, M, bm, nb = _plan(x.dtype, x.shape)
    part = np.empty((N, nb, 2), x.dtype)
    gsp = np.empty((N * nb, C), x.dtype)
    be = _backend(x.dtype, x.shape)
    _KERNELS.run(
        "bwd", x.dtype, be,
        x.reshape(N, C, M), g.reshape(N, C, M), _scale_vector(x, scale), gi.reshape(N, C, M), gsp, part, across, eps, bm,
    )
    if scale is None:
        return gi, None
    # per-unit partials summed in unit order (NumPy's reduction order depends on the shape only)
    if across:
        tot = part[:, :, 0].sum(axis=1)
        r = (1 / np.sqrt(tot + eps)).astype(x.dtype)
        gs = (gsp.reshape(N, nb, C).sum(axis=1) * r[:, None]).sum(axis=0)
    else:
        gs = gsp.sum(axis=0)
    if shared:
        gs = gs.sum(keepdims=True)
    return gi, gs.astype(x.dtype, copy=False)


@l2_normalize.defexplain
def _(shape, dtype, **params):
    if len(shape) < 2:
        raise ValueError(f"{OP}: shape must have 2 or more dims, got {shape}")
    N, C, M, bm, nb = _plan(dtype, shape)
    be = _backend(dtype, shape)
    return {
        "kernel": f"l2_normalize_fwd_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "units": N * nb,
        "block": bm,
        "threads": _threads.get_num_threads(),
    }


__all__ = ["l2_normalize"]
