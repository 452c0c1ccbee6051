"""Kernel selection: pure functions of dtype, shape, parameters and thread count.

Every op asks one of these which kernel runs; tests call them directly ("this shape picks that
kernel"), and ``python -m fastops explain OP --shape ...`` prints their answer. Nothing here
touches array data.

Thresholds (serial below, parallel at or above), measured with ``python -m fastops.tools.crossover``
on the project machine (2 cores, Zen 5, omp threading layer): entering a ``prange`` region costs
~2-5 us, so a parallel kernel only pays once the serial one takes longer than ~10 us.
 - "cheap" pointwise ops (relu, add, ...: ~0.1 ns/element serial, memory-bound): 2**16 elements;
 - "transcendental" ones (sigmoid, gelu, ...: 0.5-2 ns/element): 2**13 elements;
 - row-wise ops (softmax over a dim): by rows x row length, like "transcendental".
"""
import numpy as np

PARALLEL_MIN_ELEMENTS = {"cheap": 1 << 16, "transcendental": 1 << 13}


def pointwise_backend(dtype, size, num_threads, cost="cheap"):
    """``"serial"`` or ``"parallel"`` for an elementwise kernel over ``size`` elements."""
    if cost not in PARALLEL_MIN_ELEMENTS:
        raise ValueError(f"unknown cost class {cost!r}")
    np.dtype(dtype)  # validates
    if num_threads <= 1 or size < PARALLEL_MIN_ELEMENTS[cost]:
        return "serial"
    return "parallel"


def broadcast_backend(shape_a, shape_b, out_shape):
    """How a binary op reads its operands.

    ``"same"``: both operands have the output's shape (one flat loop);
    ``"scalar_a"``/``"scalar_b"``: one operand has a single element;
    ``"strided"``: general broadcasting (operands read through 0-strides, at most 4 collapsed dims).
    """
    size_a, size_b = int(np.prod(shape_a)), int(np.prod(shape_b))
    out = tuple(out_shape)
    if tuple(shape_a) == out and tuple(shape_b) == out:
        return "same"
    if size_b == 1 and tuple(shape_a) == out:
        return "scalar_b"
    if size_a == 1 and tuple(shape_b) == out:
        return "scalar_a"
    return "strided"


def rowwise_backend(dtype, rows, row_len, num_threads):
    """Row-wise kernels (softmax along a dim): serial for small problems, else parallel over rows."""
    np.dtype(dtype)
    if num_threads <= 1 or rows < 2 or rows * row_len < PARALLEL_MIN_ELEMENTS["transcendental"]:
        return "serial"
    return "parallel"


def matmul_backend(dtype, m, n, k, batch):
    """``"numpy"`` (BLAS through np.matmul: OpenBLAS sgemm ~220 GFLOP/s here, above what a Numba
    GEMM reaches, see NUMBA_NOTES) for every size. A Numba GEMM is the conv family's concern."""
    np.dtype(dtype)
    return "blas"
