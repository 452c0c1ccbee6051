"""The convolution core shared by conv1d/2d/3d, conv_transpose1d/2d/3d and separable_conv2d.

Everything runs on canonical 5-D arrays: 1-D and 2-D convolutions are 3-D ones with D = H = 1
(and KD = KH = 1). Non-zero padding modes are applied before the core (``fastops.pad``), so the
core sees a padded input ``xp``; zero padding is handed to it (``pads=``, the input unpadded): the
depthwise kernels pad plane by plane in their own buffers, the other paths with ``np.pad`` here.

Three functions, each dispatched by :func:`fastops._dispatch.conv_plan` (with its direction):

* :func:`forward` (xp, w) -> ``ACT(conv(xp, w) + bias)``;
* :func:`backward_data` (g, w) -> gradient w.r.t. the padded input (also conv_transpose's forward);
* :func:`backward_weight` (xp, g) -> gradient w.r.t. the weight.

Paths: ``gemm_1x1`` (the input is already the GEMM operand), ``im2col_gemm`` (Numba im2col of
a chunk of the batch, then one GEMM per chunk on fastops' engine (``fastops._gemm``); chunks
sized by :func:`batch_chunk` so every temporary stays under ``WORKSPACE_MAX_BYTES`` whatever N
is), ``depthwise`` (one channel per group, 1-D / 2-D: ``_kernels.dw_*`` treat a whole zero-padded
plane, split into phase planes when strided, as flat runs, one per tap; they take the unpadded
input and pad in their own buffers: ``pads=``), ``direct`` (Numba direct kernel for other small
per-group channel products: channel multipliers, 3-D depthwise), ``direct_blocked`` (register-blocked direct forward kernel, ``_kernels.blocked_fwd``,
float32 groups-1 convolutions with >= 32 outputs, measured in
``_dispatch``; its temporaries are the packed weight and a per-tap offset table, independent of N;
it also runs the stride-1 data gradient of such convolutions with >= 32 inputs and rows of >= 16,
as the forward convolution of the padded output gradient with the flipped, transposed weight;
their weight gradient has its own register-blocked kernel, ``_kernels.blocked_bwd_weight``, that
reads the padded input directly; strided data gradients run im2col + GEMM).

The big GEMM operands live in a per-thread reusable workspace (``_workspace``: three slots, at
most 64 MiB each kept, so at most 192 MiB per calling thread; ``release_workspace()`` frees it)
and the memory-bound passes around the GEMM run serial (``_dispatch.CONV_PASS_BACKEND``): the only
parallel region of a GEMM path is the GEMM itself.

The GEMM engine fixes its summation order by shape, so its results do not depend on the thread
count; the conv kernels are deterministic by construction (see ``_kernels``). The weight gradient
is one GEMM per batch chunk whose K dim is the chunk's pixels, the chunks added in order.
"""
import itertools
import math
import threading
import typing

import numpy as np

from .. import _dispatch, _epilogue, _threads
from .. import _gemm as _engine
from . import _kernels as K


def backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp, dilation=(1, 1, 1), direction=_dispatch.Direction.FORWARD):
    return _dispatch.conv_plan(dtype, N, C, O, groups, tuple(kernel), tuple(stride), bool(padded), tuple(out_sp),
                               _threads.get_num_threads(), dilation=tuple(dilation), direction=direction)


# Per-thread reusable workspace for the big GEMM operands (im2col matrix, its gradient, the GEMM
# result before unpacking). A fresh buffer over glibc's 32 MiB mmap threshold is page-faulted in on
# every call: np.empty + fill of the 58 MB im2col matrix of the 8x64x56x56 3x3 conv took 17.5 ms vs
# 2.5 ms for the same fill of a reused buffer (loaded 2-core machine; commit dac318a), i.e. ~15 ms
# per big buffer per call. Bound: at most WORKSPACE_MAX_BYTES (64 MiB: the largest flagship
# im2col, 58 MB, still fits) kept per thread and slot kind; a larger
# request is allocated fresh and not kept. Thread-local, so concurrent callers never share it; no
# result returned to the user ever aliases it.
WORKSPACE_MAX_BYTES = 64 << 20
_tls = threading.local()


def release_workspace():
    """Free the calling thread's conv workspace (it is re-created on the next call)."""
    _tls.bufs = {}


def _workspace(slot, shape, dtype):
    """An uninitialized C-contiguous array of ``shape`` carved from this thread's buffer ``slot``."""
    dt = np.dtype(dtype)
    n = math.prod(shape)
    nbytes = n * dt.itemsize
    if nbytes > WORKSPACE_MAX_BYTES:
        return np.empty(shape, dt)
    bufs = getattr(_tls, "bufs", None)
    if bufs is None:
        bufs = _tls.bufs = {}
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[slot] = np.empty(nbytes, np.uint8)
    return buf[:nbytes].view(dt).reshape(shape)


PASS_BACKEND = _dispatch.CONV_PASS_BACKEND


def _ks(w):
    return w.shape[2], w.shape[3], w.shape[4]


def zero_pad(x, pads):
    """``x`` (5-D) zero-padded by ``pads`` (three (lo, hi) pairs)."""
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads)) if any(lo or hi for lo, hi in pads) else x


def _padded_shape(shape, pads):
    """The spatial dims of a 5-D ``shape`` after the padding ``pads``."""
    return tuple(L + lo + hi for L, (lo, hi) in zip(shape[2:], pads))


# planes per prange unit of the depthwise forward and data-gradient kernels (their buffers are
# zeroed once per unit)
DW_PLANES_PER_UNIT = 4


def forward(xp, w, bias, epi, stride, dilation, groups, out_sp, padded=True, pads=None):
    """``ACT(conv(xp, w) + bias)`` on 5-D arrays; ``out_sp`` the output (OD, OH, OW). ``pads``
    (three (lo, hi) pairs): ``xp`` is the unpadded input of a convolution with that zero padding
    (the depthwise kernels pad in their own buffers; the other paths pad here)."""
    N, C = xp.shape[:2]
    O = w.shape[0]
    dt = xp.dtype
    out = np.empty((N, O) + tuple(out_sp), dt)
    if out.size == 0:
        return out
    b = bias if bias is not None else np.zeros(O, dt)
    path, be = backend(dt, N, C, O, groups, _ks(w), stride, padded, out_sp, dilation)
    if path == "depthwise":
        pads = pads or ((0, 0),) * 3
        K.call("dw_fwd", dt, be, np.ascontiguousarray(xp), w, b, epi.a, epi.b, *stride[1:], *dilation[1:],
               pads[1][0], pads[2][0], *_padded_shape(xp.shape, pads)[1:], DW_PLANES_PER_UNIT, out, epi=epi)
        return out
    if pads is not None:
        xp = zero_pad(xp, pads)
    if path == "direct":
        K.call("direct_fwd", dt, be, xp, w, b, epi.a, epi.b, *stride, *dilation, out, epi=epi)
        return out
    if path == "direct_blocked":
        K.call("blocked_fwd", dt, be, np.ascontiguousarray(xp), pack_weight_blocked(w), b, epi.a, epi.b, *stride, *dilation,
               BLOCKED_PIXELS, BLOCKED_TAPS, out, epi=epi)
        return out
    be = PASS_BACKEND
    L = math.prod(out_sp)
    if path == "gemm_1x1" and L >= CONV_1X1_BATCHED_MIN_PIXELS:
        # (O, C) @ (C, L) per image, batched, straight into the output (bias and activation in the
        # engine's epilogue): no packed copy of the input, no unpacking pass
        _engine.gemm(w.reshape(O, C), xp.reshape(N, C, L), out.reshape(N, O, L), row_bias=bias, epi=epi)
        return out
    KD, KH, KW = _ks(w)
    nb = batch_chunk(N, dt.itemsize * L * max(C * KD * KH * KW, O))
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        cols = _cols(xp[n0:n1], w, stride, dilation, out_sp, path, be)
        tmp = _gemm(w.reshape(O, -1), cols, groups, out=_workspace("res", (O, cols.shape[1]), dt))
        K.call("unpack", dt, be, tmp, b, epi.a, epi.b, out[n0:n1].reshape(n1 - n0, O, L), epi=epi)
    return out


# The 1x1 path (stride 1, no padding) runs one GEMM per image on the arrays as they are from
# CONV_1X1_BATCHED_MIN_PIXELS output pixels on; smaller maps pack the batch into one (C, N*L)
# operand first (a 7x7 map's 49 columns fill 1.5 column tiles of 32). MobileNetV2's 1x1 convs, 4
# images, float32, 2 threads, forward / data / weight gradient ms, per image vs packed: 24->144 at
# 56 1.18 / 1.04 / 3.41 vs 2.68 / 2.61 / 5.30, 64->384 at 14 0.38 / 0.50 / 0.88 vs 0.45 / 0.64 /
# 0.94, 160->960 at 7 0.99 / 1.34 / 0.95 vs 0.69 / 0.94 / 0.87 (per image: ``python -m
# fastops.conv.bench --pointwise``; packed: the same script's figures at commit 2843add).
CONV_1X1_BATCHED_MIN_PIXELS = 128


# Blocking of blocked_fwd: a prange unit owns BLOCKED_PIXELS output pixels of one sample and one
# block of 64 output channels; the reduction runs in chunks of BLOCKED_TAPS taps (a 64-channel
# weight slab of 144 KiB float32, kept in L2 while every pixel group of the unit uses it).
BLOCKED_PIXELS = 64
BLOCKED_TAPS = 576


def pack_weight_blocked(w, flip=False, taps=None):
    """(O, C, KD, KH, KW) -> (ceil(O/NR), C, KD, KH, KW, NR), output channels innermost
    (OIHW[NR o]), zero-padded to a multiple of NR: the weight layout of ``blocked_fwd``, in one pass
    (``_kernels.pack_weight``). ``flip``: that layout of the transposed weight flipped along the
    kernel dims (``w[:, :, ::-1, ::-1, ::-1]`` with O and C swapped: (ceil(C/NR), O, KD, KH, KW,
    NR)). ``taps`` (three index lists, one per kernel dim): the sub-kernel ``w[:, :, taps[0]][:, :,
    :, taps[1]][..., taps[2]]`` instead of the whole kernel (with ``flip``: a stride phase's)."""
    NR = K.BLOCK_NR
    O, C = w.shape[:2]
    ks = w.shape[2:]
    if taps is None:
        taps = [range(k) for k in ks]
    sub = tuple(len(t) for t in taps)
    flat = np.array([(a * ks[1] + b) * ks[2] + c for a in taps[0] for b in taps[1] for c in taps[2]], np.int64)
    if flip:
        flat = flat[::-1].copy()
    B, R = (-(-C // NR), O) if flip else (-(-O // NR), C)
    wp = np.empty((B, R) + sub + (NR,), w.dtype)
    if wp.size:
        be = _dispatch.parallel_backend(w.dtype, wp.size, _threads.get_num_threads(), units=B * R)
        K.call("pack_weight", w.dtype, be, np.ascontiguousarray(w).reshape(O, C, -1), bool(flip), flat,
               wp.reshape(B, -1, NR))
    return wp


def batch_chunk(N, per_sample_bytes):
    """Samples per chunk of the im2col / GEMM paths: the most whose largest temporary (im2col
    matrix, GEMM result, packed output gradient: ``per_sample_bytes`` each per sample) fits in
    ``WORKSPACE_MAX_BYTES``, at least 1. Bound: each of the three workspace slots holds at most
    ``max(WORKSPACE_MAX_BYTES, per_sample_bytes)`` (64 MiB unless one sample's im2col is larger),
    whatever N is; before, the whole batch was one im2col (a (256,64,56,56) 3x3 batch: 1.85 GB).
    Depends on the shapes only: the chunking (and so the weight gradient's summation order) is
    the same for any thread count. The issue's flagship cases all fit in one chunk except conv3d
    3x3x3 C32 16x32x32 N=2 (113 MB im2col: two chunks of one sample, now reused workspace
    instead of a fresh, page-faulted 113 MB buffer per call)."""
    return max(1, min(N, WORKSPACE_MAX_BYTES // max(per_sample_bytes, 1)))


def _gemm(a, b, groups, trans_a=False, trans_b=False, out=None):
    """Per-group products of row blocks: ``op(a_g) @ op(b_g)`` with a (G*Ma, Ka), b (G*Mb, Kb),
    ``op`` the optional transpose; the results stacked as rows. One 2-D GEMM without groups, one
    batched product over groups otherwise, both on fastops' GEMM engine (transposes are views)."""
    G = groups
    a3 = a.reshape(G, a.shape[0] // G, a.shape[1])
    b3 = b.reshape(G, b.shape[0] // G, b.shape[1])
    if trans_a:
        a3 = a3.transpose(0, 2, 1)
    if trans_b:
        b3 = b3.transpose(0, 2, 1)
    if G == 1:
        return _engine.gemm(a3[0], b3[0], out)
    r = _engine.gemm(a3, b3, None if out is None else out.reshape(G, -1, out.shape[-1]))
    return r.reshape(-1, r.shape[-1])


def _cols(xp, w, stride, dilation, out_sp, path, be):
    """The im2col matrix (C*K, N*L) of the batch (chunk) ``xp``: with batch and pixels on the GEMM's
    N side the GEMM is (O, C*K) @ (C*K, N*L), one call per chunk (see batch_chunk).
    Design note, measured when these GEMMs were OpenBLAS's (8x64x56x56, 3x3, 2 threads, loaded
    machine): 164-225 ms as one GEMM vs 530-800 ms as 8 per-sample (64 x 576) @ (576 x 3136) GEMMs
    (OpenBLAS is slow with a 64-row A), torch.matmul 213-226 ms (commit ac99d42)."""
    N, C = xp.shape[:2]
    if path == "gemm_1x1" and N == 1:
        return xp.reshape(C, math.prod(xp.shape[2:]))  # not -1: C may be 0
    KD, KH, KW = _ks(w)
    cols = _workspace("cols", (C * KD * KH * KW, N * math.prod(out_sp)), xp.dtype)
    K.call("im2col", xp.dtype, be, xp, KD, KH, KW, *stride, *dilation, *out_sp, cols)
    return cols


def _pack(g, be):
    N, O = g.shape[:2]
    if N == 1:
        return g.reshape(O, -1)
    tmp = _workspace("gpack", (O, g.size // O), g.dtype)
    K.call("pack", g.dtype, be, g.reshape(N, O, -1), tmp)
    return tmp


def backward(xp, g, w, stride, dilation, groups, padded=True, need_data=True, need_weight=True, pads=None):
    """``(grad of the padded input or None, grad of the weight or None)`` of ``conv(xp, w)`` given
    ``g`` (N, O, OD, OH, OW). The output gradient is packed once for both GEMMs. ``pads`` (three
    (lo, hi) pairs): ``xp`` is the unpadded input of a convolution with that zero padding, and the
    data gradient is the unpadded input's."""
    if pads is None:
        pads = ((0, 0),) * 3
    else:
        padded = any(lo or hi for lo, hi in pads)
    return _backward_zero_padded(xp, g, w, stride, dilation, groups, pads, padded, need_data, need_weight)


def _backward(xp, g, w, stride, dilation, groups, padded, need_data, need_weight):
    """:func:`backward` of the padded input ``xp``."""
    N, C = xp.shape[:2]
    O = g.shape[1]
    dt = g.dtype
    out_sp = g.shape[2:]
    if g.size == 0 or w.size == 0 or xp.size == 0:
        return (np.zeros(xp.shape, dt) if need_data else None), (np.zeros(w.shape, dt) if need_weight else None)
    # every kernel below writes all of gxp (col2im and direct_bwd_data zero each plane first, unpack
    # writes every element) and all of gw: no np.zeros pass needed
    # (the blocked and depthwise data gradients ran in _backward_zero_padded, the only caller: a data
    # gradient asked for here is an im2col / direct one, e.g. that of a non-finite weight)
    gxp = None
    gw = None
    if need_weight:
        wpath, wbe = backend(dt, N, C, O, groups, _ks(w), stride, padded, out_sp, dilation,
                             _dispatch.Direction.BACKWARD_WEIGHT)
        if wpath == "direct_blocked":
            gw = _weight_blocked(xp, g, w.shape, stride, dilation, wbe)
            need_weight = False
            if not need_data:
                return gxp, gw
    if need_data:
        gxp = np.empty(xp.shape, dt)
    if need_weight:
        gw = np.empty(w.shape, dt)
    direction = _dispatch.Direction.BACKWARD_DATA if need_data else _dispatch.Direction.BACKWARD_WEIGHT
    path, be = backend(dt, N, C, O, groups, _ks(w), stride, padded, out_sp, dilation, direction)
    if path == "direct" or path == "depthwise":  # depthwise here: a non-finite weight's data gradient
        # (_backward_zero_padded runs the depthwise kernels otherwise)
        if need_data:
            K.call("direct_bwd_data", dt, be, g, w, *stride, *dilation, gxp)
        if need_weight:
            K.call("direct_bwd_weight", dt, be, xp, g, *stride, *dilation, gw)
        return gxp, gw
    be = PASS_BACKEND
    KD, KH, KW = _ks(w)
    CK = C * KD * KH * KW
    L = math.prod(out_sp)
    if path == "gemm_1x1" and L >= CONV_1X1_BATCHED_MIN_PIXELS:
        # per image, on the arrays as they are (no packed copies, no unpacking pass): the data
        # gradient (C, O) @ (O, L) batched into gxp; the weight gradient summed over the images in
        # order (each product's order fixed by its shapes), as (O, L) @ (L, C) or, when that wastes
        # less of the edge tiles (MR rows x NR columns), its transpose (C, L) @ (L, O)
        g3, x3 = g.reshape(N, O, L), xp.reshape(N, C, L)
        if need_data:
            _engine.gemm(w.reshape(O, C).T, g3, gxp.reshape(N, C, L))
        if need_weight:
            mr, nr = _engine.MR, _engine.nr(dt)
            if -(-O // mr) * mr * -(-C // nr) * nr <= -(-C // mr) * mr * -(-O // nr) * nr:
                gw2 = gw.reshape(O, C)
                for n in range(N):
                    _engine.gemm(g3[n], x3[n].T, gw2, accumulate=n > 0)
            else:
                gwt = np.empty((C, O), dt)
                for n in range(N):
                    _engine.gemm(x3[n], g3[n].T, gwt, accumulate=n > 0)
                gw.reshape(O, C)[...] = gwt.T
        return gxp, gw
    w2 = w.reshape(O, -1)  # (O, Cg*K)
    G = groups
    acc = None
    nb = batch_chunk(N, dt.itemsize * L * max(CK, O))
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        g2 = _pack(g[n0:n1], be)  # (O, nb*L)
        if need_weight:
            cols = _cols(xp[n0:n1], w, stride, dilation, out_sp, path, be)
            # One GEMM per group and chunk with the chunk's pixels as its K dim (the engine's
            # summation order depends on the shapes only; chunk partials added in chunk order),
            # computed as gw^T = cols @ g2^T (M = C*K rows, the larger side).
            r = _engine.gemm(cols.reshape(G, cols.shape[0] // G, cols.shape[1]), g2.reshape(G, -1, g2.shape[1]).transpose(0, 2, 1))
            if acc is None:
                acc = r
            else:
                acc += r
        if need_data:
            # into the "cols" workspace: the weight gradient above is done with the im2col matrix
            gcols = _gemm(w2, g2, groups, trans_a=True, out=_workspace("cols", (CK, g2.shape[1]), dt))
            gxc = gxp[n0:n1]
            if path == "gemm_1x1":
                K.call("unpack", dt, be, gcols, np.zeros(C, dt), 0.0, 0.0, gxc.reshape(n1 - n0, C, -1), epi=_IDENTITY)
            else:
                K.call("col2im", dt, be, gcols, KD, KH, KW, *stride, *dilation, *out_sp, gxc)
    if need_weight:
        gw[...] = acc.transpose(0, 2, 1).reshape(w.shape)
    return gxp, gw


def _dw_data(g, w, stride, dilation, pads, x_shape, be):
    """The depthwise data gradient (of the unpadded input of shape ``x_shape``, zero padding
    ``pads``) by ``_kernels.dw_bwd_data``."""
    gx = np.empty(x_shape, g.dtype)
    Hp, Wp = _padded_shape(x_shape, pads)[1:]
    K.call("dw_bwd_data", g.dtype, be, np.ascontiguousarray(g), w, *stride[1:], *dilation[1:], pads[1][0],
           pads[2][0], Hp, Wp, DW_PLANES_PER_UNIT, gx)
    return gx


def _dw_weight(x, g, w_shape, stride, dilation, pads, be):
    """The depthwise weight gradient by ``_kernels.dw_bwd_weight`` (``x`` unpadded, zero padding
    ``pads``)."""
    gw = np.empty(w_shape, g.dtype)
    Hp, Wp = _padded_shape(x.shape, pads)[1:]
    sz = math.prod(-(-L // s) * s for L, s in zip((Hp, Wp), stride[1:]))  # the phase planes' size
    K.call("dw_bwd_weight", g.dtype, be, np.ascontiguousarray(x), np.ascontiguousarray(g), *stride[1:],
           *dilation[1:], pads[1][0], pads[2][0], Hp, Wp, max(1, DW_WEIGHT_PLANES // sz), gw)
    return gw


# The depthwise weight gradient builds the padded (phase) planes of a chunk of the batch at once,
# at most DW_WEIGHT_PLANES elements (256 KiB float32, in L2), and makes one pass over the chunk per
# group of taps.
DW_WEIGHT_PLANES = 1 << 16


def _backward_zero_padded(x, g, w, stride, dilation, groups, pads, padded, need_data, need_weight):
    """:func:`backward` of a convolution of the unpadded ``x`` with zero padding ``pads`` (all 0
    for an already padded input): the depthwise kernels take ``x`` as it is; the other paths
    (:func:`_backward`) get the padded input and their data gradient is cropped."""
    N, C = x.shape[:2]
    O = g.shape[1]
    dt = g.dtype
    gx = gw = None
    if g.size and w.size and x.size:
        D = _dispatch.Direction
        dpath, dbe = backend(dt, N, C, O, groups, _ks(w), stride, padded, g.shape[2:], dilation, D.BACKWARD_DATA)
        # the depthwise kernel adds 0 * w over its garbage columns, and as a forward convolution the
        # blocked data gradient's border taps meet the zero padding of g, where an inf or NaN weight
        # would give a NaN the gradient does not have: exact for finite weights only
        if need_data and dpath == "depthwise" and np.isfinite(w).all():
            gx, need_data = _dw_data(g, w, stride, dilation, pads, x.shape, dbe), False
        elif need_data and dpath == "direct_blocked" and np.isfinite(w).all():
            gx, need_data = _data_by_forward(g, w, stride, dilation, x.shape[2:], pads), False
        wpath, wbe = backend(dt, N, C, O, groups, _ks(w), stride, padded, g.shape[2:], dilation, D.BACKWARD_WEIGHT)
        if need_weight and wpath == "depthwise":
            gw, need_weight = _dw_weight(x, g, w.shape, stride, dilation, pads, wbe), False
    if need_data or need_weight:
        gxp, gw2 = _backward(zero_pad(x, pads), g, w, stride, dilation, groups, padded, need_data, need_weight)
        if need_data:
            gx = gxp if not any(lo or hi for lo, hi in pads) else np.ascontiguousarray(
                gxp[(slice(None), slice(None)) + tuple(slice(lo, lo + L) for (lo, hi), L in zip(pads, x.shape[2:]))])
        if need_weight:
            gw = gw2
    return gx, gw


# Blocking of blocked_bwd_weight: a unit owns WEIGHT_CHANNEL_BLOCK input channels (all their tap
# groups) when the input has at least WEIGHT_SPLIT_TAPS_BELOW channels, else one channel and one
# group of 4 taps (the 7x7 stem's 3 channels: 39 units instead of 1).
WEIGHT_CHANNEL_BLOCK = 8
WEIGHT_SPLIT_TAPS_BELOW = 16
# ... and sums WEIGHT_PIXEL_BLOCK output pixels (flattened over the rows: a 7x7 map is one block)
# in registers before adding them to its accumulators (a 64 KiB block of the packed gradient)
WEIGHT_PIXEL_BLOCK = 256


def _weight_blocked(xp, g, w_shape, stride, dilation, be):
    """The weight gradient (``w_shape``, 5-D) by the blocked kernel (``_kernels.blocked_bwd_weight``):
    no im2col matrix; the output gradient packed once with its channels innermost."""
    N, C = xp.shape[:2]
    O = g.shape[1]
    KD, KH, KW = w_shape[2:]
    NR = K.BLOCK_NR
    OBn = -(-O // NR)
    dt = g.dtype
    L = math.prod(g.shape[2:])
    gq = _workspace("res", (N, OBn, L, NR), dt)
    K.call("pack_grad", dt, be, np.ascontiguousarray(g).reshape(N, O, L), gq)
    KT = KD * KH * KW
    ngr = KT // 4 + KT % 4
    if C >= WEIGHT_SPLIT_TAPS_BELOW:
        cb, gb = WEIGHT_CHANNEL_BLOCK, ngr
    else:
        cb, gb = 1, 1
    gw = np.empty(w_shape, dt)
    K.call("blocked_bwd_weight", dt, be, np.ascontiguousarray(xp), gq, *stride, *dilation, KD, KH, KW,
           *g.shape[2:], cb, gb, WEIGHT_PIXEL_BLOCK, gw.reshape(O, C, KT))
    return gw


class _Phase(typing.NamedTuple):
    """One stride phase of a data gradient along one dim: the padded input positions ``s * q + a``
    for ``q0 <= q < q1`` (those inside the unpadded input, the first at unpadded index ``i0``)
    receive ``sum_j g[q - shift + j * step] * w[taps[-1 - j]]``."""

    taps: list
    shift: int
    step: int
    q0: int
    q1: int
    i0: int


def _phases(K, s, d, lo, L):
    """The non-empty stride phases (:class:`_Phase`) of a data gradient along one dim: kernel size
    ``K``, stride ``s``, dilation ``d``, zero padding ``lo`` below, ``L`` unpadded positions. Phase
    ``a`` has the taps k (ascending) with ``d * k = a (mod s)``: position ``s * q + a`` receives
    ``g[q - (d * k - a) // s]`` from tap k."""
    out = []
    for a in range(s):
        taps = [k for k in range(K) if (d * k - a) % s == 0]
        q0 = max(0, -(-(lo - a) // s))
        q1 = -(-(lo + L - a) // s)
        if q1 > q0:
            step = (d * (taps[1] - taps[0])) // s if len(taps) > 1 else 1
            shift = (d * taps[-1] - a) // s if taps else 0
            out.append(_Phase(taps, shift, step, q0, q1, s * q0 + a - lo))
    return out


def _data_by_forward(g, w, stride, dilation, in_sp, pads=((0, 0),) * 3):
    """The data gradient of a groups-1 convolution as forward convolutions by the blocked forward
    kernel, of the unpadded input (spatial shape ``in_sp``; ``pads``: the forward's zero padding (lo,
    hi) per dim). Stride 1: one convolution of ``g``, zero-padded by ``dilation * (k - 1) - lo``
    below and ``dilation * (k - 1) - hi`` above (cropped where the padding is wider), with ``w``
    transposed (O and C swapped) and flipped along the kernel dims (``pack_weight_blocked(w,
    flip=True)``). Stride s: the input positions split into the s (per dim) phases
    ``i = s * q + a`` of the padded input; phase a receives the taps ``k`` with ``d * k = a (mod s)``
    only, so each phase is a stride-1 convolution of ``g`` with that sub-kernel, flipped (dilation
    ``d * (k step) / s``), written to every s-th position: the taps of all phases together are the
    kernel once, no multiply-add meets a zero inserted between the output gradient's pixels (what
    im2col + col2im of a strided convolution, or a transposed convolution on a zero-upsampled
    gradient, spend most of their work on). A phase without taps is zero. Every element is one
    fixed-order sum (the forward kernel's), so it does not depend on the thread count."""
    N, O, C = g.shape[0], g.shape[1], w.shape[1]
    dt = g.dtype
    per_dim = [_phases(k, s, d, p[0], L) for k, s, d, p, L in zip(_ks(w), stride, dilation, pads, in_sp)]
    if all(s == 1 for s in stride):
        gx = None  # one phase: the convolution's output is the gradient
    else:
        gx = np.empty((N, C) + tuple(in_sp), dt)
    for ph in itertools.product(*per_dim):
        dst = (slice(None), slice(None)) + tuple(slice(p.i0, None, s) for p, s in zip(ph, stride))
        if not all(p.taps for p in ph):
            gx[dst] = 0
            continue
        # out[q - q0] = sum_j gp[q - q0 + j * step] * wf[j], with gp[i] = g[i + q0 - shift]
        osp = tuple(p.q1 - p.q0 for p in ph)
        gp = np.zeros((N, O) + tuple(n + p.step * (len(p.taps) - 1) for n, p in zip(osp, ph)), dt)
        src, tgt = [slice(None)] * 2, [slice(None)] * 2
        for p, n, G in zip(ph, gp.shape[2:], g.shape[2:]):
            off = p.q0 - p.shift
            i0, i1 = max(0, -off), max(0, min(n, G - off))
            src.append(slice(i0 + off, max(i0, i1) + off))
            tgt.append(slice(i0, max(i0, i1)))
        gp[tuple(tgt)] = g[tuple(src)]
        out = np.empty((N, C) + osp, dt)
        dil = tuple(p.step for p in ph)
        taps = tuple(p.taps for p in ph)
        _, be = backend(dt, N, O, C, 1, tuple(map(len, taps)), (1, 1, 1), True, osp, dil)
        K.call("blocked_fwd", dt, be, gp, pack_weight_blocked(w, flip=True, taps=taps), np.zeros(C, dt), 0.0, 0.0,
               1, 1, 1, *dil, BLOCKED_PIXELS, BLOCKED_TAPS, out, epi=_IDENTITY)
        if gx is None:
            return out
        gx[dst] = out
    return gx


def backward_data(g, w, stride, dilation, groups, in_shape, padded=True):
    """Gradient w.r.t. the (padded) input of shape ``in_shape`` (5-D) given ``g``."""
    return backward(_Shape(in_shape, g.dtype), g, w, stride, dilation, groups, padded, need_weight=False)[0]


def backward_weight(xp, g, w_shape, stride, dilation, groups, padded=True):
    """Gradient w.r.t. the weight (shape ``w_shape``, 5-D) of ``conv(xp, w)`` given ``g``."""
    return backward(xp, g, _Shape(w_shape, g.dtype), stride, dilation, groups, padded, need_data=False)[1]


class _Shape:
    """Stands for an array of which only the shape is needed (no allocation)."""

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.size = math.prod(shape)
        self.dtype = dtype
        self.ndim = len(shape)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        if -1 in shape:
            i = shape.index(-1)
            rest = math.prod(shape[:i] + shape[i + 1:])
            shape = shape[:i] + (self.size // rest,) + shape[i + 1:]
        return _Shape(shape, self.dtype)


_IDENTITY = _epilogue.parse("conv", None)


def explain(dtype, N, C, O, groups, kernel, stride, padded, out_sp, epi=None, which="fwd", dilation=(1, 1, 1)):
    direction = _dispatch.Direction.FORWARD if which == "fwd" else _dispatch.Direction.BACKWARD_DATA
    path, be = backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp, dilation, direction)
    extra = {}
    if path == "direct_blocked":
        extra = {"block_out_channels": K.BLOCK_NR, "block_out_pixels": K.BLOCK_MR}
    if which == "fwd":
        bwd, _ = backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp, dilation, _dispatch.Direction.BACKWARD_DATA)
        bww, _ = backend(dtype, N, C, O, groups, kernel, stride, padded, out_sp, dilation,
                         _dispatch.Direction.BACKWARD_WEIGHT)
        extra.update(backward_path=bwd, backward_data_path=bwd, backward_weight_path=bww)
    return {**extra,
        "path": path,
        "backend": be,
        "pass_backend": be if path == "direct" else PASS_BACKEND,
        "threads": _threads.get_num_threads(),
        "direct_max_group_channels": _dispatch.CONV_DIRECT_MAX_GROUP_CHANNELS,
        "parallel_min_macs": _dispatch.PARALLEL_MIN_WORK["conv"],
    }
