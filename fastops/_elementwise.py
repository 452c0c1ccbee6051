"""Pointwise machinery: one loop template, instantiated per op, dtype and serial/parallel.

An op supplies two scalar functions written against the names the template binds:

* ``f(v, a, b)``: the forward value at ``v`` (``a``, ``b``: the op's float parameters);
* ``df(v, g, a, b)``: the input gradient at ``v`` given the output gradient ``g``.

Inside them ``T`` is the dtype's scalar type (write constants as ``T(0.5)`` so float32 code stays
float32), and ``EXP``, ``EXPM1``, ``TANH``, ``ERFC``, ``LOG``, ``LOG1P`` are the vectorizable variants of ``_math``.
"""
import numpy as np
from numba import prange

from . import _dispatch, _jit, _math, _threads
from ._kernelset import KernelSet, UNBOUND
from ._validate import float_array, grad_like, inplace_target, real_scalar  # noqa: F401  (re-exported for ops)

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
DF = F = UNBOUND

# Work is split in fixed chunks of CHUNK elements (static schedule over chunks): large enough that
# the per-chunk overhead vanishes, small enough that 2-16 threads get balanced shares.
CHUNK = 1 << 14


# Each chunk is taken as slices and indexed from 0: an index ``start + i`` with ``start`` unknown
# to be >= 0 keeps Numba's negative-index wraparound in the loop and stops vectorization
# (numba#4436). Design note: relu's serial kernel alone on 16M float32 ran 5.1 ms with slices, 24.5
# ms with ``x[start + i]`` (commit ad08449).


def _map_template(x, out, a, b):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        os = out[start:stop]
        for i in range(xs.size):
            os[i] = F(xs[i], a, b)


def _grad_template(x, g, out, a, b):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        gs = g[start:stop]
        os = out[start:stop]
        for i in range(xs.size):
            os[i] = DF(xs[i], gs[i], a, b)


def math_bindings(dtype):
    """The globals a scalar function of a kernel for ``dtype`` may use."""
    dt = np.dtype(dtype)
    return dict(
        T=dt.type,
        EXP=_math.EXP[dt],
        EXPM1=_math.EXPM1[dt],
        TANH=_math.TANH[dt],
        ERFC=_math.ERFC[dt],
        LOG=_math.LOG[dt],
        LOG1P=_math.LOG1P[dt],
    )


class Pointwise:
    """Kernels and dispatch of one pointwise op (forward ``f`` and gradient ``df``)."""

    def __init__(self, name, f, df, cost="cheap"):
        self.name, self.f, self.df, self.cost = name, f, df, cost
        self.kernels = KernelSet(name, {"fwd": _map_template, "bwd": _grad_template}, bind=self._bindings)

    def _bindings(self, dt, which, variant):
        scalar = self.f if which == "fwd" else self.df
        fn = _jit.inline(_jit.clone(scalar, f"{self.name}_{which}_scalar_{_jit.SUFFIX[dt]}", math_bindings(dt)))
        return {"F" if which == "fwd" else "DF": fn}

    def kernel(self, which, dtype, backend):
        """The compiled-on-first-call kernel ``which`` ("fwd"/"bwd") for ``dtype`` and ``backend``."""
        return self.kernels.kernel(which, dtype, backend)

    def backend(self, dtype, size):
        return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), self.cost)

    def explain(self, shape, dtype):
        size = int(np.prod(shape))
        be = self.backend(dtype, size)
        return {
            "kernel": self.kernels.kernel_name("fwd", dtype, be),
            "backend": be,
            "size": size,
            "threads": _threads.get_num_threads(),
            "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK[self.cost],
        }

    def _run(self, which, dtype, size, *arrays):
        self.kernels.run(which, dtype, self.backend(dtype, size), *arrays)

    def forward(self, x, inplace=False, a=0.0, b=0.0):
        op = self.name
        if inplace:
            out = x = inplace_target(op, "input", x)
        else:
            x = float_array(op, "input", x)
            out = np.empty(x.shape, dtype=x.dtype)
        if x.size:
            T = x.dtype.type
            self._run("fwd", x.dtype, x.size, x.reshape(-1), out.reshape(-1), T(a), T(b))
        return out

    def grad(self, grad_output, x, a=0.0, b=0.0):
        op = self.name
        x = float_array(op, "input", x)
        g = grad_like(op, grad_output, x.shape, x.dtype)
        out = np.empty(x.shape, dtype=x.dtype)
        if x.size:
            T = x.dtype.type
            self._run("bwd", x.dtype, x.size, x.reshape(-1), g.reshape(-1), out.reshape(-1), T(a), T(b))
        return out
