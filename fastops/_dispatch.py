"""Kernel selection: pure functions of dtype, shape, parameters and thread count.

Every op asks one of these which kernel runs; tests call them directly ("this shape picks that
kernel"), and ``python -m fastops explain OP --shape ...`` prints their answer. Nothing here
touches array data.

Thresholds (serial below, parallel at or above), measured with ``python -m fastops.tools.crossover``
on the project machine (2 cores, Zen 5, omp threading layer), float32, 2 threads: entering a
``prange`` region costs ~2-3 us.
 - "cheap" pointwise ops (relu, add, ...: ~0.1 ns/element serial, memory-bound): 2**16 elements
   (relu: serial 6.3 us vs parallel 5.4 us at 2**16; 3.4 vs 4.2 us at 2**15);
 - "transcendental" ones (sigmoid, gelu, ...: ~1.3 ns/element): 2**15 elements (gelu: 42 vs 34 us
   at 2**15, 21 vs 23 us at 2**14). The two threads of this machine gain only 1.3x on such
   compute-bound loops (the second is an SMT sibling), 1.7-1.9x on memory-bound ones;
 - row-wise ops (softmax over a dim): by rows x row length, like "transcendental".
"""
import functools

import numpy as np

PARALLEL_MIN_ELEMENTS = {"cheap": 1 << 16, "transcendental": 1 << 15}


def pointwise_backend(dtype, size, num_threads, cost="cheap"):
    """``"serial"`` or ``"parallel"`` for an elementwise kernel over ``size`` elements."""
    if num_threads <= 1 or size < PARALLEL_MIN_ELEMENTS[cost]:  # KeyError: unknown cost class
        return "serial"
    return "parallel"


def broadcast_backend(shape_a, shape_b, out_shape):
    """How a binary op reads its operands (shapes of C-contiguous operands; ``None`` for a scalar).

    ``"same"``: both operands have the output's elements in the output's order (equal shapes, or
    shapes that differ by size-1 dims only): one flat loop;
    ``"scalar_a"``/``"scalar_b"``: that operand has a single element, the other one the output's;
    ``"strided"``: general broadcasting (operands read through 0-strides, see
    :func:`broadcast_collapse`).
    """
    size = _size(out_shape)
    if shape_b is None:
        return "scalar_b"
    if shape_a is None:
        return "scalar_a"
    size_a, size_b = _size(shape_a), _size(shape_b)
    if size_a == size and size_b == size:
        return "same"
    if size_b == 1 and size_a == size:
        return "scalar_b"
    if size_a == 1 and size_b == size:
        return "scalar_a"
    return "strided"


def _size(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _contiguous_strides(shape):
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= s
    return st[::-1]


@functools.lru_cache(maxsize=4096)  # pure function of shapes, called on every binary op
def broadcast_collapse(out_shape, *shapes):
    """The general broadcast problem in its fewest dims: ``(dims, strides)``.

    Every operand ``shapes[i]`` (C-contiguous, broadcastable to ``out_shape``) is read through
    element strides, 0 along the dims it is broadcast in. Size-1 dims are dropped and adjacent dims
    merged where every operand's strides allow it (the same broadcast pattern on both sides), so
    ``(N, C, H, W) + (1, C, 1, 1)`` becomes ``dims (N, C, H*W)``, strides ``(C*H*W, H*W, 1)`` and
    ``(0, 1, 0)``. Returns ``dims`` (a tuple, ``()`` for a single element) and one tuple of strides
    per operand.
    """
    out_shape = tuple(int(s) for s in out_shape)
    n = len(out_shape)
    per = []
    for shp in shapes:
        shp = (1,) * (n - len(shp)) + tuple(int(s) for s in shp)
        cs = _contiguous_strides(shp)
        per.append([0 if (shp[i] == 1 and out_shape[i] != 1) else cs[i] for i in range(n)])
    dims, strides = [], [[] for _ in shapes]
    for i in range(n):
        if out_shape[i] == 1:
            continue
        if dims and all(st[-1] == p[i] * out_shape[i] for st, p in zip(strides, per)):
            dims[-1] *= out_shape[i]
            for st, p in zip(strides, per):
                st[-1] = p[i]
            continue
        dims.append(out_shape[i])
        for st, p in zip(strides, per):
            st.append(p[i])
    return tuple(dims), tuple(tuple(st) for st in strides)


def rowwise_backend(dtype, rows, row_len, num_threads):
    """Row-wise kernels (softmax along a dim): serial for small problems, else parallel over rows."""
    np.dtype(dtype)
    if num_threads <= 1 or rows < 2 or rows * row_len < PARALLEL_MIN_ELEMENTS["transcendental"]:
        return "serial"
    return "parallel"


# Below this many multiply-adds a matrix product runs serial: a parallel region's launch and join
# cost more than the work (a (32 x 64) @ (64 x 128) product is 2.6e5 multiply-adds, ~5 us).
GEMM_SERIAL_MACS = 1 << 18


def gemm_backend(dtype, m, n, k, batch, num_threads):
    """``"serial"`` or ``"parallel"`` for one ``_gemm`` product of ``batch`` (m x k) @ (k x n)
    matrices. The result does not depend on the answer (the engine fixes its summation order by
    shape)."""
    np.dtype(dtype)
    if num_threads <= 1 or batch * m * n * k < GEMM_SERIAL_MACS:
        return "serial"
    return "parallel"


def reduction_backend(dtype, size, num_threads):
    """``"serial"`` or ``"parallel"`` for one pass of ``_reduce`` over ``size`` input elements.

    A sum reads each element once (memory-bound, like a "cheap" pointwise op): same threshold. The
    result does not depend on the answer (``_reduce`` fixes its chunking by shape)."""
    np.dtype(dtype)
    if num_threads <= 1 or size < PARALLEL_MIN_ELEMENTS["cheap"]:
        return "serial"
    return "parallel"


def plane_backend(dtype, planes, size, num_threads):
    """Plane-wise copy/gather kernels (shape, pad, resampling, pooling over N*C planes): serial
    below the "cheap" pointwise threshold of elements touched, else parallel over planes. Each
    plane is handled by one thread in a fixed order, so results do not depend on the answer."""
    np.dtype(dtype)
    if num_threads <= 1 or planes < 2 or size < PARALLEL_MIN_ELEMENTS["cheap"]:
        return "serial"
    return "parallel"


# --- conv family: deform_conv2d and correlation --------------------------------------------------


def conv_extra_backend(dtype, items, work, num_threads):
    """deform_conv2d / correlation kernels: ``"serial"`` or ``"parallel"`` over ``items``
    independent work units (planes, rows, (n, group, k) rows), each written by one iteration in a
    fixed order, so results do not depend on the answer. ``work`` counts the flops-ish operations
    of the kernel; every one does several per element touched (gathers, bilinear weights,
    multiply-adds), so the "transcendental" threshold applies."""
    np.dtype(dtype)
    if num_threads <= 1 or items < 2 or work < PARALLEL_MIN_ELEMENTS["transcendental"]:
        return "serial"
    return "parallel"
# --- convolution family (fastops/conv) ----------------------------------------------------------

# Per-group channel product (C/groups * O/groups) at or below which a convolution runs the direct
# Numba kernel instead of im2col + BLAS GEMM: one GEMM per group of (O/g x C/g*K) @ (C/g*K x L)
# degenerates into GEMV-like calls (depthwise: 1 x 9 @ 9 x L, one BLAS call per sample and
# channel), while the direct kernel streams the plane once with a broadcast weight.
CONV_DIRECT_MAX_GROUP_CHANNELS = 16
# Multiply-adds below which a conv kernel runs serially (a compute-bound kernel: the
# "transcendental" element threshold of the pointwise ops, ~1 ns of work per unit).
CONV_PARALLEL_MIN_MACS = 1 << 15


# Blocked direct forward kernel (``direct_blocked``, fastops/conv/_kernels.py blocked_fwd: 4-pixel x
# 64-output-channel register tiles, FMA): chosen for float32 groups == 1 convolutions with a kernel
# larger than 1x1 and at least CONV_BLOCKED_MIN_OUT_CHANNELS output channels (the packed weight pads
# O to a multiple of 64; conv3d C32 -> 32 still ran 2.2x faster than im2col); float64 stays on im2col + GEMM (a 4 x 64 f64 tile
# needs all 32 zmm and spills). The choice depends on shapes and dtype only, never on the thread
# count (results stay bitwise equal for 1 and 2 threads). Measured interleaved A/B in one process
# (float32, 2 threads, machine shared with 5 other jobs at load ~13: noisy; median over rounds of
# im2col_time / blocked_time of fastops' forward incl. padding and weight packing, 5 rounds, min-max):
# 7x7 s2 3->64 224 1.20 (1.09-1.53), 3x3 C64 56 1.37 (1.30-1.61), 3x3 dil 2 C64 56 1.55 (1.36-1.62),
# 3x3 C128 28 1.45 (1.05-1.65), 3x3 C256 14 1.77 (1.58-1.93), conv1d k5 C128 1024 1.34 (1.11-1.47),
# conv3d 3x3x3 C32 -> 32 16x32x32 2.16 (1.25-2.24). Kernel design measurements: _kernels.BLOCK_NR.
CONV_BLOCKED_ENABLED = True
CONV_BLOCKED_MIN_OUT_CHANNELS = 32


def conv_backend(dtype, batch, in_channels, out_channels, groups, kernel, stride, padded, out_spatial,
                 num_threads, dilation=(1, 1, 1)):
    """Kernel choice of a convolution (also the data/weight gradients and conv_transpose, which
    run the same core): returns ``(path, backend)``.

    ``path``: ``"gemm_1x1"`` (1x1 kernel, stride 1, no padding: the input already is the GEMM
    operand, one BLAS call per sample), ``"direct"`` (small per-group channel product, e.g.
    depthwise: the direct Numba kernel, bias + activation fused), ``"direct_blocked"`` (float32,
    groups 1, kernel > 1x1, >= CONV_BLOCKED_MIN_OUT_CHANNELS outputs: the register-blocked direct
    forward kernel; its gradients run im2col + GEMM), else ``"im2col_gemm"`` (Numba
    im2col, BLAS GEMM, fused bias + activation pass). ``backend``: ``"serial"`` or ``"parallel"``
    for the Numba kernels of that path.
    """
    cg, og = in_channels // max(groups, 1), out_channels // max(groups, 1)
    ksize = _size(kernel)
    if groups == 1 and ksize == 1 and all(s == 1 for s in stride) and not padded:
        path = "gemm_1x1"
    elif cg * og <= CONV_DIRECT_MAX_GROUP_CHANNELS:
        path = "direct"
    elif (CONV_BLOCKED_ENABLED and np.dtype(dtype) == np.float32 and groups == 1 and ksize > 1
          and out_channels >= CONV_BLOCKED_MIN_OUT_CHANNELS):
        path = "direct_blocked"
    else:
        path = "im2col_gemm"
    macs = batch * out_channels * cg * ksize * _size(out_spatial)
    if num_threads <= 1 or macs < CONV_PARALLEL_MIN_MACS or batch * max(in_channels, out_channels) < 2:
        return path, "serial"
    return path, "parallel"


# ---------------------------------------------------------------------------------------------
# normalization: local_response_norm, l2_normalize


def lrn_backend(dtype, planes, size, window, num_threads):
    """local_response_norm over ``planes`` = N*C output planes of ``size`` elements in all, with a
    channel window of ``window``: parallel over planes above the "transcendental" threshold (each
    element costs ``window`` adds, an exp and a log), serial below, or with a single plane. Each
    plane is summed by one thread in a fixed order: the result does not depend on the answer."""
    np.dtype(dtype)
    if num_threads <= 1 or planes < 2 or size < PARALLEL_MIN_ELEMENTS["transcendental"]:
        return "serial"
    return "parallel"


def l2_normalize_backend(dtype, units, size, num_threads):
    """l2_normalize: ``units`` = (sample, spatial block) work units over ``size`` elements; parallel
    over units above the "cheap" threshold (memory-bound: two reads and a write per element)."""
    np.dtype(dtype)
    if num_threads <= 1 or units < 2 or size < PARALLEL_MIN_ELEMENTS["cheap"]:
        return "serial"
    return "parallel"


# ---------------------------------------------------------------------------------------------
# normalization (batch_norm, instance_norm, group_norm, layer_norm)


def norm_backend(dtype, units, size, num_threads, kernel=""):
    """Normalization kernels (over N*C planes, or chunks of layer_norm rows): memory-bound like a
    "cheap" pointwise op, so serial below that threshold of elements touched, else parallel over
    units. Each unit is handled by one thread in a fixed order: results do not depend on the answer.

    The fused group_norm/instance_norm backward (``kernel="grp_bwd"``) follows the same rule. It
    used to be forced serial after its parallel build measured 10.9 ms wall against 2.6 ms serial
    on a machine at load ~10 on 2 cores, where a parallel region waits for its preempted thread.
    Process CPU time shows no parfor overhead: (16,256,28,28) f32, 60 rounds, median 3.3 ms CPU
    parallel vs 3.1 ms serial (forward 1.67 vs 1.69), so on an idle machine 2 threads halve it."""
    np.dtype(dtype)
    if num_threads <= 1 or units < 2 or size < PARALLEL_MIN_ELEMENTS["cheap"]:
        return "serial"
    return "parallel"


# ---------------------------------------------------------------------------------------------
# attention


def attention_backend(dtype, batch, L, S, E, Ev, num_threads):
    """``scaled_dot_product_attention``: serial when there is a single task (one batch entry and
    at most one block of 64 query rows) or under ~2**15 multiply-adds (L * S * (E + Ev) per
    batch entry; a parallel region costs ~2-3 us, about that much work), else parallel over
    (batch, query blocks) in the forward and dQ pass and (key batch, key blocks) in the dK/dV pass.
    The kernels give each task its own output rows, so the results do not depend on the answer."""
    np.dtype(dtype)
    tasks = batch * -(-L // 64)
    if num_threads <= 1 or tasks < 2 or batch * L * S * (E + Ev) < (1 << 15):
        return "serial"
    return "parallel"


# Sizes of the rows path of scaled_dot_product_attention (fastops/attention/_rows.py): score blocks of
# at most ATTENTION_BLOCK_BYTES (a block of query rows x all keys), at least ATTENTION_MIN_ROWS rows.
ATTENTION_BLOCK_BYTES = 1 << 20
ATTENTION_MIN_ROWS = 32
ATTENTION_ROWS_MIN_WORK = 1 << 21


TILE_NR = 64  # fastops._tile.NR: the tiled attention path needs E and Ev multiples of it


def attention_path(dtype, batch, L, S, E, Ev, num_threads):
    """``"tiled"``: the "rows" blocks with the products in fastops' register-tiled micro-kernel, one
    parallel Numba kernel per direction (``attention._tiled``), for float32 with E and Ev multiples
    of 64 (its 4 x 64 register tile; float64 would spill); measured in ``attention._tiled``.
    ``"rows"``: score blocks (query rows x all keys) through the GEMM engine (serial, one block per
    thread), softmax in a fused Numba kernel (``attention._rows``); ``"blocked"``: the all-Numba
    online-softmax kernels. Rows from ~2**21 multiply-adds per batch entry (L * S * (E + Ev): each
    block costs a few Python-level calls, ~30-50 us), when ATTENTION_MIN_ROWS rows of keys fit the
    block budget (S <= 8192 float32); longer key sequences stay blocked (their memory does not
    grow with S)."""
    dt = np.dtype(dtype)
    if L * S * (E + Ev) < ATTENTION_ROWS_MIN_WORK or S * dt.itemsize * ATTENTION_MIN_ROWS > ATTENTION_BLOCK_BYTES:
        return "blocked"
    if dt == np.float32 and E > 0 and Ev > 0 and E % TILE_NR == 0 and Ev % TILE_NR == 0:
        return "tiled"
    return "rows"
