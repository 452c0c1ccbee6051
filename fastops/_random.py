"""Counter-based random numbers for the random ops (``rrelu`` in training, later ``dropout``).

A random op draws element ``i`` of its mask as ``uniform(key, i)``: a pure function of the seed's
key and the flat (C-order) index, with no generator state. Hence the forward and the backward
(given the same ``seed=``) see the same mask, and the mask does not depend on the thread count,
the chunking or the order in which elements are visited.

Generator: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
OOPSLA 2014; the output function is Stafford's "Mix13" finalizer). ``bits(key, i)`` is the
``i``-th output of the SplitMix64 stream whose state starts at ``key``:
``mix64(key + i * GAMMA)`` (64-bit wrapping arithmetic). SplitMix64 passes BigCrush. The key of a
seed is itself the first SplitMix64 output of the state ``seed``, so neighbouring seeds give
unrelated streams (two streams overlap only if their keys differ by less than the array size
times GAMMA, modulo 2**64: probability ~ size / 2**64). Everything is integer adds, shifts, xors
and multiplies: it vectorizes (AVX-512 has 64-bit multiplies) and needs no tables.

Floats: ``uniform32`` takes the top 24 bits, ``uniform64`` the top 53 bits, scaled by 2**-24 /
2**-53: exactly representable values in [0, 1) (1.0 is never returned), and the float32 value is
the float64 value truncated to 24 bits, so both dtypes draw (nearly) the same mask.

Seeds: any int in [-2**63, 2**64) (negative seeds are taken modulo 2**64, like ``torch.manual_seed``).
"""
import numbers

import numpy as np
from numba import prange

from . import _jit
from ._jit import inline
from ._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
U = UNBOUND

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

# typed constants for the kernels (module globals are frozen into compiled code as constants)
GAMMA = np.uint64(_GAMMA)
M1 = np.uint64(_M1)
M2 = np.uint64(_M2)
S30, S27, S31 = np.uint64(30), np.uint64(27), np.uint64(31)
S40, S11 = np.uint64(40), np.uint64(11)


def _mix64_py(z):
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def key(op, seed, name="seed"):
    """Validate ``seed`` for ``op`` and return the stream key (``np.uint64``) the kernels take.

    Raises ``TypeError`` unless ``seed`` is an int (``bool`` is refused) and ``ValueError`` outside
    [-2**63, 2**64).
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{op}: argument '{name}' must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(1 << 63) <= seed <= _MASK64:
        raise ValueError(f"{op}: argument '{name}' must be in [-2**63, 2**64), got {seed}")
    return np.uint64(_mix64_py(((seed & _MASK64) + _GAMMA) & _MASK64))


@inline
def bits(key, index):
    """64 random bits for element ``index`` of the stream ``key`` (a uint64)."""
    z = key + np.uint64(index) * GAMMA
    z = (z ^ (z >> S30)) * M1
    z = (z ^ (z >> S27)) * M2
    return z ^ (z >> S31)


@inline
def uniform32(key, index):
    """A float32 uniform on [0, 1) for element ``index`` (multiples of 2**-24)."""
    return np.float32(np.int64(bits(key, index) >> S40)) * np.float32(5.9604644775390625e-08)


@inline
def uniform64(key, index):
    """A float64 uniform on [0, 1) for element ``index`` (multiples of 2**-53)."""
    return np.float64(np.int64(bits(key, index) >> S11)) * 1.1102230246251565e-16


UNIFORM = {np.dtype(np.float32): uniform32, np.dtype(np.float64): uniform64}


def _fill_template(out, key, offset):
    for i in prange(out.size):
        out[i] = U(key, offset + i)


_FILL = KernelSet(
    "uniform", {"fill": _fill_template}, bind=lambda dt, which, v: {"U": UNIFORM[dt]},
    kernel_name=lambda which, dt, be, v: f"uniform_fill_{_jit.SUFFIX[dt]}",
)


def uniform(seed, size, dtype=np.float64, offset=0):
    """``size`` uniforms on [0, 1): element ``i`` is ``uniform(key(seed), offset + i)``, exactly the
    values a random op with this ``seed`` draws for flat indices ``offset .. offset + size - 1``.
    (A helper for tests and for inspecting masks; ops call the inlined functions in their kernels.)"""
    dt = np.dtype(dtype)
    if dt not in UNIFORM:
        raise TypeError(f"uniform: dtype must be float32 or float64, got {dt}")
    out = np.empty(int(size), dt)
    _FILL.kernel("fill", dt)(out, key("uniform", seed), np.int64(offset))
    return out
