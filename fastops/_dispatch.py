"""Kernel selection: pure functions of dtype, shape, parameters and thread count.

Every op asks one of these which kernel runs; tests call them directly ("this shape picks that
kernel") or force a choice with :func:`force`, and ``python -m fastops explain OP --shape ...``
prints their answer. Nothing here touches array data. Every rule of the package is here: the one
serial/parallel rule (:func:`parallel_backend` and its cost table), the binary ops' broadcast
patterns, and the plans of convolution (:func:`conv_plan`) and attention (:func:`attention_plan`),
which return named paths.

Thresholds of the cost table (serial below, parallel at or above), measured with ``python -m fastops.tools.crossover``
on the project machine (2 cores, Zen 5, omp threading layer), float32, 2 threads: entering a
``prange`` region costs ~2-3 us.
 - "cheap" pointwise ops (relu, add, ...: ~0.1 ns/element serial, memory-bound): 2**16 elements
   (relu: serial 6.3 us vs parallel 5.4 us at 2**16; 3.4 vs 4.2 us at 2**15);
 - "transcendental" ones (sigmoid, gelu, ...: ~1.3 ns/element): 2**15 elements (gelu: 42 vs 34 us
   at 2**15, 21 vs 23 us at 2**14). The two threads of this machine gain only 1.3x on such
   compute-bound loops (the second is an SMT sibling), 1.7-1.9x on memory-bound ones;
 - row-wise ops (softmax over a dim): by rows x row length, like "transcendental".
"""
import contextlib
import contextvars
import enum
import functools

import numpy as np

# ---------------------------------------------------------------------------------------------
# The one serial/parallel rule: a kernel runs its parallel build when fastops has more than one
# thread, the kernel has at least two independent work units, and its work reaches the threshold of
# its cost class (units of work per class: elements for the elementwise classes, multiply-adds for
# the products). Every op's backend comes from :func:`parallel_backend`; the results never depend
# on the answer (every kernel fixes its summation order by shape).
PARALLEL_MIN_WORK = {
    "cheap": 1 << 16,  # memory-bound elementwise (relu, add, copies, gathers, sums, norms): elements
    "transcendental": 1 << 15,  # exp/tanh/erfc per element, row-wise ops, gather-heavy conv kernels
    "gemm": 1 << 18,  # multiply-adds of one engine product: a (32 x 64) @ (64 x 128) one runs serial
                      # (~5 us, commit c977959)
    "conv": 1 << 15,  # multiply-adds of a convolution kernel (~1 ns of work each, commit 2ddf878)
    "attention": 1 << 15,  # multiply-adds L * S * (E + Ev) of the blocked attention kernels
}


def parallel_backend(dtype, work, num_threads, cost="cheap", units=2):
    """``"serial"`` or ``"parallel"`` for a kernel of cost class ``cost`` doing ``work`` units of
    work split over ``units`` independent tasks (KeyError: unknown cost class)."""
    if num_threads <= 1 or units < 2 or work < PARALLEL_MIN_WORK[cost]:
        return "serial"
    return "parallel"


# Packing a right operand for the GEMM engine (a copy): serial below GEMM_PACK_SERIAL_ELEMENTS
# packed elements (256 KiB of float32), else the caller's backend (the product's), else the "gemm"
# rule over its K * N elements per batch entry.
GEMM_PACK_SERIAL_ELEMENTS = 1 << 16


def gemm_pack_backend(dtype, packed, elements, num_threads, given=None):
    if packed < GEMM_PACK_SERIAL_ELEMENTS:
        return "serial"
    return given if given is not None else parallel_backend(dtype, elements, num_threads, "gemm")


# ---------------------------------------------------------------------------------------------
# Forcing a choice (tests, ``explain``, experiments): ``with force(conv_path="direct"):`` makes the
# plans below return that path inside the block (in the calling thread or task only: a context
# variable). Every path computes the same op; a forced path that cannot run the problem (say the
# float32-only tiled attention for float64) raises ValueError from the plan.


class _Named(str, enum.Enum):
    """A named choice: equal to, printed and formatted as its string value."""

    def __str__(self):
        return self.value

    def __format__(self, spec):
        return format(self.value, spec)


class ConvPath(_Named):
    """How a convolution runs (compares equal to its string value)."""

    GEMM_1X1 = "gemm_1x1"  # 1x1 kernel, stride 1, no padding: the input already is the GEMM operand
    DEPTHWISE = "depthwise"  # the depthwise plane kernels (one channel per group, 1-D / 2-D)
    DIRECT = "direct"  # the direct Numba kernel (small per-group channel products)
    DIRECT_BLOCKED = "direct_blocked"  # the register-blocked direct forward kernel
    IM2COL_GEMM = "im2col_gemm"  # Numba im2col, the GEMM engine, a fused bias + activation pass


class AttentionPath(_Named):
    """How ``scaled_dot_product_attention`` runs (compares equal to its string value)."""

    BLOCKED = "blocked"  # the all-Numba online-softmax kernels (attention._kernels)
    ROWS = "rows"  # score blocks through the GEMM engine, softmax in a Numba kernel (attention._rows)
    TILED = "tiled"  # the rows blocks with fastops' register-tiled micro-kernel (attention._tiled)


class Direction(_Named):
    """Which pass of an op a plan is for."""

    FORWARD = "forward"
    BACKWARD_DATA = "backward_data"
    BACKWARD_WEIGHT = "backward_weight"


_FORCEABLE = {
    "conv_path": ConvPath,
    "attention_path": AttentionPath,
    "attention_block_rows": int,  # query rows per score block of the rows/tiled paths
}
_forced = contextvars.ContextVar("fastops_dispatch_forced", default={})


@contextlib.contextmanager
def force(**choices):
    """Force dispatch choices inside the block: ``conv_path=`` (a :class:`ConvPath` or its
    name), ``attention_path=`` (an :class:`AttentionPath`), ``attention_block_rows=`` (an int >= 1).
    Blocks nest (the inner one wins per key)."""
    new = dict(_forced.get())
    for k, v in choices.items():
        kind = _FORCEABLE.get(k)
        if kind is None:
            raise TypeError(f"force: unknown choice {k!r}; known: {sorted(_FORCEABLE)}")
        if kind is int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"force: {k} must be an int >= 1, got {v!r}")
            v = int(v)
        else:
            try:
                v = kind(v)
            except ValueError:
                raise ValueError(f"force: {k} must be one of {[m.value for m in kind]}, got {v!r}") from None
        new[k] = v
    token = _forced.set(new)
    try:
        yield
    finally:
        _forced.reset(token)


def forced(key):
    """The forced choice ``key`` in effect here, or None."""
    return _forced.get().get(key)


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


# ---------------------------------------------------------------------------------------------
# convolution (fastops/conv)

# Per-group channel product (C/groups * O/groups) at or below which a convolution runs the direct
# Numba kernel instead of im2col + GEMM: one GEMM per group of (O/g x C/g*K) @ (C/g*K x L)
# degenerates into GEMV-like products (depthwise: 1 x 9 @ 9 x L per sample and channel), while the
# direct kernel streams the plane once with a broadcast weight.
CONV_DIRECT_MAX_GROUP_CHANNELS = 16

# The blocked direct forward kernel (fastops/conv/_kernels.py blocked_fwd: 4-pixel x
# 64-output-channel register tiles, FMA) runs float32 groups == 1 convolutions other than GEMM_1X1's
# (so 1x1 kernels with a stride or padding too: ResNet's stride-2 1x1 downsampling, 4 images,
# 64->128 56x56 forward / weight gradient 0.80 / 1.70 ms on im2col + GEMM, 0.44 / 0.51 blocked:
# python -m fastops.conv.bench, row (4, 64, 56, 128, 1, 2); their data gradient stays on im2col +
# GEMM, 1.10 vs 1.47 ms blocked, where 3 of the 4 stride phases are zeros) with at least
# CONV_BLOCKED_MIN_OUT_CHANNELS output channels (the packed weight pads O to a multiple of 64);
# float64 stays on im2col + GEMM (a 4 x 64 float64 tile needs all 32 zmm registers and spills). It
# also computes the data gradient of a convolution with at least that many *input* channels (as
# forward convolutions, one per stride phase, see conv/_core.py _data_by_forward); the weight
# gradient of the forward's cases has its own blocked kernel (blocked_bwd_weight). Any map size: the
# kernels' 4-pixel groups run over the flattened output pixels (a group may span rows), so narrow
# maps no longer leave single pixels (there was a rule sending rows under 8 / 16 pixels to im2col).
# The blocked kernels against im2col + GEMM forced, 3x3 stride 1 padding 1, 4 images, float32, 2
# threads, one process (ms; forward / data / weight gradient): C512 7x7 6.7 / 7.5 / 7.8 vs 8.8 / 8.8
# / 20.0, C256 14x14 5.7 / 5.5 / 7.4 vs 9.9 / 8.2 / 11.1 (``python -m fastops.conv.bench``), C128
# 7x7 0.69 / 0.61 / 0.75 vs 1.48 / 0.96 / 1.22, C64 4x4 0.19 / 0.16 / 0.20 vs 0.34 / 0.30 / 0.32,
# C512 4x4 3.9 / 5.2 / 4.5 vs 4.1 / 4.4 / 15.9 (``python -m fastops.conv.bench --small``; the one
# loss: packing the flipped weight is 2 ms of it). Earlier A/Bs, when im2col's GEMM was OpenBLAS:
# the forward 1.20x (7x7 s2 3->64 224) to 2.16x (conv3d 3x3x3 C32 16x32x32) faster blocked (commit
# b4465a2).
CONV_BLOCKED_MIN_OUT_CHANNELS = 32


# Backend of the memory-bound passes around a convolution's GEMM (im2col, col2im, pack, unpack +
# epilogue): always serial. One core streams these copies about as fast as two, and a parallel
# region waits for its slowest thread: under load a descheduled thread stalls the pass for a whole
# scheduler slice. Design note, each pass timed alone (8x64x56x56 3x3, float32, 2 threads, loaded
# shared machine, median / min of 7): unpack serial 0.5-0.7 / 0.3-0.55 ms vs parallel 0.1-24 /
# 0.1-20 ms; pack serial 0.45-0.65 ms vs parallel up to 28 ms; im2col serial 23 / 18.7 ms vs
# parallel 24 / 20 ms; col2im serial 28 / 24.7 ms vs parallel 48 / 21 ms, the parallel maxima being
# the 16-28 ms stalls (commit 46a6f40). The compute-bound direct kernels keep conv_plan's backend.
CONV_PASS_BACKEND = "serial"


def conv_plan(dtype, batch, in_channels, out_channels, groups, kernel, stride, padded, out_spatial,
              num_threads, dilation=(1, 1, 1), direction=Direction.FORWARD):
    """Kernel choice of one pass of a convolution (``direction``: forward, backward-data or
    backward-weight; conv_transpose runs the same core): ``(ConvPath, backend)``.

    ``GEMM_1X1`` for a 1x1 kernel with stride 1 and no padding (groups 1); ``DEPTHWISE`` for one
    input and one output channel per group in 1-D or 2-D (``_kernels.dw_*``: whole planes as flat
    runs, bias + activation fused, any stride and dilation); ``DIRECT`` for another small
    per-group channel product (the direct Numba kernel, bias + activation fused; 3-D depthwise);
    ``DIRECT_BLOCKED`` for the forward of another float32 groups-1 convolution with at least
    CONV_BLOCKED_MIN_OUT_CHANNELS outputs; for the data gradient of one with that many
    inputs (the transposed convolution, run by the same forward kernel, one call per stride phase); and
    for the weight gradient of the forward's cases (``_kernels.blocked_bwd_weight``); else
    ``IM2COL_GEMM``. ``backend``: the build of the
    Numba kernels of that path (the "conv" cost class over the multiply-adds). The choice depends on
    dtype, shapes and direction only, never on the thread count."""
    cg, og = in_channels // max(groups, 1), out_channels // max(groups, 1)
    ksize = _size(kernel)
    one_by_one = groups == 1 and ksize == 1 and all(s == 1 for s in stride) and not padded
    # the canonical 5-D problem of a 1-D / 2-D convolution has D = KD = 1 (and stride 1 along D)
    depthwise = cg == 1 and og == 1 and kernel[0] == 1 and out_spatial[0] == 1 and stride[0] == 1
    path = forced("conv_path")
    if path is not None:
        if path is ConvPath.GEMM_1X1 and not one_by_one:
            raise ValueError("force: conv_path 'gemm_1x1' needs a 1x1 kernel, stride 1, no padding and groups 1")
        if path is ConvPath.DIRECT_BLOCKED and (np.dtype(dtype) != np.float32 or groups != 1):
            raise ValueError("force: conv_path 'direct_blocked' needs float32 and groups 1")
        if path is ConvPath.DEPTHWISE and not depthwise:
            raise ValueError("force: conv_path 'depthwise' needs one input and one output channel per group "
                             "and a 1-D or 2-D convolution")
    elif one_by_one:
        path = ConvPath.GEMM_1X1
    elif depthwise:
        path = ConvPath.DEPTHWISE
    elif cg * og <= CONV_DIRECT_MAX_GROUP_CHANNELS:
        path = ConvPath.DIRECT
    elif (np.dtype(dtype) == np.float32 and groups == 1
          and (in_channels if Direction(direction) is Direction.BACKWARD_DATA else out_channels)
          >= CONV_BLOCKED_MIN_OUT_CHANNELS
          and not (ksize == 1 and Direction(direction) is Direction.BACKWARD_DATA)):
        path = ConvPath.DIRECT_BLOCKED
    else:
        path = ConvPath.IM2COL_GEMM
    macs = batch * out_channels * cg * ksize * _size(out_spatial)
    return path, parallel_backend(dtype, macs, num_threads, "conv", units=batch * max(in_channels, out_channels))


# ---------------------------------------------------------------------------------------------
# attention (fastops/attention)

# Sizes of the rows and tiled paths: score blocks of at most ATTENTION_BLOCK_BYTES (a block of query
# rows x all keys), at least ATTENTION_MIN_ROWS rows; those paths from ATTENTION_ROWS_MIN_WORK
# multiply-adds L * S * (E + Ev) per batch entry (each block costs a few Python-level calls:
# ~30-50 us on the BLAS path that this threshold was set for, commit 31b8ecc).
ATTENTION_BLOCK_BYTES = 1 << 20
ATTENTION_MIN_ROWS = 32
ATTENTION_ROWS_MIN_WORK = 1 << 21
# The tiled path's register tile is TILE_MR query rows x TILE_NR keys (fastops._tile reads its
# tile from here): E and Ev must be multiples of TILE_NR.
TILE_MR = 4
TILE_NR = 64


def attention_plan(dtype, batch, L, S, E, Ev, num_threads):
    """``(AttentionPath, backend)`` of ``scaled_dot_product_attention``.

    ``TILED`` for float32 with E and Ev multiples of TILE_NR (its 4 x 64 register tile; float64
    would spill), ``ROWS`` otherwise, both from ATTENTION_ROWS_MIN_WORK multiply-adds per batch
    entry when ATTENTION_MIN_ROWS rows of keys fit the block budget (S <= 8192 float32); else
    ``BLOCKED`` (longer key sequences too: their memory does not grow with S).

    ``backend``: TILED: ``"parallel"`` whenever fastops has more than one thread (one parallel
    kernel per direction); ROWS: the same (its blocks go one after the other, each stage on
    fastops' threads: the GEMMs and the softmax kernels pick their builds by size); BLOCKED: the "attention" cost class over the multiply-adds, with the
    (batch, 64-row query block) tasks as units. Each task writes its own output rows, so results do
    not depend on the backend."""
    dt = np.dtype(dtype)
    tiled_ok = dt == np.float32 and E > 0 and Ev > 0 and E % TILE_NR == 0 and Ev % TILE_NR == 0
    path = forced("attention_path")
    if path is None:
        if L * S * (E + Ev) < ATTENTION_ROWS_MIN_WORK or S * dt.itemsize * ATTENTION_MIN_ROWS > ATTENTION_BLOCK_BYTES:
            path = AttentionPath.BLOCKED
        else:
            path = AttentionPath.TILED if tiled_ok else AttentionPath.ROWS
    elif path is AttentionPath.TILED and not tiled_ok:
        raise ValueError(f"force: attention_path 'tiled' needs float32 and E, Ev multiples of {TILE_NR}")
    if path in (AttentionPath.TILED, AttentionPath.ROWS):
        return path, "parallel" if num_threads > 1 else "serial"
    tasks = batch * -(-L // 64)
    return path, parallel_backend(dt, batch * L * S * (E + Ev), num_threads, "attention", units=tasks)


def attention_block_rows(L, S, itemsize):
    """Query rows per score block of the rows and tiled paths: as many as fit ATTENTION_BLOCK_BYTES,
    a multiple of 16, at most L (``force(attention_block_rows=...)`` sets it, still at most L)."""
    bm = forced("attention_block_rows")
    if bm is None:
        bm = ATTENTION_BLOCK_BYTES // max(1, S * itemsize)
        bm = max(16, (bm // 16) * 16)
    return min(bm, max(L, 1))
