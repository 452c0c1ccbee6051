"""The convolution core shared by conv1d/2d/3d, conv_transpose1d/2d/3d and separable_conv2d.

Everything runs on canonical 5-D arrays: 1-D and 2-D convolutions are 3-D ones with D = H = 1
(and KD = KH = 1). Padding is applied before the core (zeros by ``np.pad``, other modes by
``fastops.pad``), so the core sees a padded input ``xp`` and no padding.

Three functions, each dispatched by :func:`fastops._dispatch.conv_backend`:

* :func:`forward` (xp, w) -> ``ACT(conv(xp, w) + bias)``;
* :func:`backward_data` (g, w) -> gradient w.r.t. the padded input (also conv_transpose's forward);
* :func:`backward_weight` (xp, g) -> gradient w.r.t. the weight.

Paths: ``gemm_1x1`` (the input is already the GEMM operand), ``im2col_gemm`` (Numba im2col, then
one BLAS GEMM per sample through ``np.matmul``; OpenBLAS sgemm ~220 GFLOP/s here, NUMBA_NOTES),
``direct`` (Numba direct kernel for small per-group channel products: depthwise and friends).
BLAS partitions a GEMM over M and N, never over K, so its results do not depend on its thread
count; fastops' own kernels are deterministic by construction (see ``_kernels``). The weight
gradient sums the per-sample GEMMs in sample order.
"""
import math

import numpy as np

from .. import _dispatch, _threads
from . import _kernels as K


def backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp):
    return _dispatch.conv_backend(dtype, N, C, O, groups, tuple(kernel), tuple(stride), bool(padded), tuple(out_sp),
                                  _threads.get_num_threads())


def _ks(w):
    return w.shape[2], w.shape[3], w.shape[4]


def forward(xp, w, bias, epi, stride, dilation, groups, out_sp, padded=True):
    """``ACT(conv(xp, w) + bias)`` on 5-D arrays; ``out_sp`` the output (OD, OH, OW)."""
    N, C = xp.shape[:2]
    O = w.shape[0]
    dt = xp.dtype
    out = np.empty((N, O) + tuple(out_sp), dt)
    if out.size == 0:
        return out
    b = bias if bias is not None else np.zeros(O, dt)
    path, be = backend(dt, N, C, O, groups, _ks(w), stride, padded, out_sp)
    if path == "direct":
        K.call("direct_fwd", dt, be, xp, w, b, epi.a, epi.b, *stride, *dilation, out, epi=epi)
        return out
    L = math.prod(out_sp)
    cols = _cols(xp, w, stride, dilation, out_sp, path, be)
    G = groups
    Og = O // G
    CgK = cols.shape[1] // G
    o3 = out.reshape(N, O, L)
    if G == 1:
        np.matmul(w.reshape(O, CgK), cols, out=o3)
    else:
        np.matmul(w.reshape(G, Og, CgK), cols.reshape(N, G, CgK, L), out=o3.reshape(N, G, Og, L))
    if bias is not None or not epi.identity:
        K.call("epilogue_rows", dt, be, o3, b, epi.a, epi.b, epi=epi)
    return out


def _cols(xp, w, stride, dilation, out_sp, path, be):
    N, C = xp.shape[:2]
    if path == "gemm_1x1":
        return xp.reshape(N, C, -1)
    KD, KH, KW = _ks(w)
    cols = np.empty((N, C * KD * KH * KW, math.prod(out_sp)), xp.dtype)
    K.call("im2col", xp.dtype, be, xp, KD, KH, KW, *stride, *dilation, *out_sp, cols)
    return cols


def backward_data(g, w, stride, dilation, groups, in_shape, padded=True):
    """Gradient w.r.t. the (padded) input of shape ``in_shape`` (5-D) given ``g`` (N, O, OD, OH, OW)."""
    N, O = g.shape[:2]
    C = in_shape[1]
    dt = g.dtype
    out_sp = g.shape[2:]
    gxp = np.empty(in_shape, dt)
    if gxp.size == 0:
        return gxp
    if g.size == 0 or w.size == 0:
        gxp[...] = 0
        return gxp
    path, be = backend(dt, N, C, O, groups, _ks(w), stride, padded, out_sp)
    if path == "direct":
        K.call("direct_bwd_data", dt, be, g, w, *stride, *dilation, gxp)
        return gxp
    G = groups
    Og = O // G
    KD, KH, KW = _ks(w)
    CgK = (C // G) * KD * KH * KW
    L = math.prod(out_sp)
    if path == "gemm_1x1":
        np.matmul(w.reshape(O, C).T, g.reshape(N, O, L), out=gxp.reshape(N, C, L))
        return gxp
    gcols = np.empty((N, C * KD * KH * KW, L), dt)
    if G == 1:
        np.matmul(w.reshape(O, CgK).T, g.reshape(N, O, L), out=gcols)
    else:
        np.matmul(w.reshape(G, Og, CgK).transpose(0, 2, 1), g.reshape(N, G, Og, L), out=gcols.reshape(N, G, CgK, L))
    K.call("col2im", dt, be, gcols, KD, KH, KW, *stride, *dilation, *out_sp, gxp)
    return gxp


def backward_weight(xp, g, w_shape, stride, dilation, groups, padded=True):
    """Gradient w.r.t. the weight (shape ``w_shape``, 5-D) of ``conv(xp, w)`` given ``g``."""
    N, C = xp.shape[:2]
    O = g.shape[1]
    dt = xp.dtype
    out_sp = g.shape[2:]
    gw = np.zeros(w_shape, dt)
    if gw.size == 0 or g.size == 0:
        return gw
    ks = tuple(w_shape[2:])
    path, be = backend(dt, N, C, O, groups, ks, stride, padded, out_sp)
    if path == "direct":
        K.call("direct_bwd_weight", dt, be, xp, g, *stride, *dilation, gw)
        return gw
    G = groups
    Og = O // G
    CgK = math.prod(w_shape[1:])
    L = math.prod(out_sp)
    if path == "gemm_1x1":
        cols = xp.reshape(N, C, L)
    else:
        cols = np.empty((N, C * math.prod(ks), L), dt)
        K.call("im2col", dt, be, xp, *ks, *stride, *dilation, *out_sp, cols)
    g3 = g.reshape(N, O, L)
    gw3 = gw.reshape(G, Og, CgK)
    tmp = np.empty_like(gw3)
    for n in range(N):  # fixed sample order: deterministic
        np.matmul(g3[n].reshape(G, Og, L), cols[n].reshape(G, CgK, L).transpose(0, 2, 1), out=tmp)
        gw3 += tmp
    return gw


def explain(dtype, N, C, O, groups, kernel, stride, padded, out_sp, epi=None, which="fwd"):
    path, be = backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp)
    return {
        "path": path,
        "backend": be,
        "threads": _threads.get_num_threads(),
        "direct_max_group_channels": _dispatch.CONV_DIRECT_MAX_GROUP_CHANNELS,
        "parallel_min_macs": _dispatch.CONV_PARALLEL_MIN_MACS,
    }
