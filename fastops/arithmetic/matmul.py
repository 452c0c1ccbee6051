"""matmul: ``torch.matmul`` (1-D, 2-D, batched with broadcast batch dims), forward and backward.

The products run on fastops' GEMM engine (``fastops._gemm``: packed panels, a register-tiled
micro-kernel, fastops' threads; the result does not depend on the thread count). This module adds
the torch semantics, validation, the backward, and the batch-dim reduction of the gradients of
broadcast operands (deterministic, ``fastops._reduce``). A batched ``(..., M, K) @ (K, N)`` is
computed as one ``(B*M, K) @ (K, N)`` product, and its weight gradient as one ``(K, B*M) @ (B*M,
N)`` product (no batch loop, no reduction). Transposed operands of the backward are strided views
read by the engine's packing, never copied first.
"""
import numpy as np

from .. import _gemm, _reduce, _threads
from .._op import op
from .._validate import float_array, grad_like


def _prepare(input, other):
    a = float_array("matmul", "input", input)
    b = float_array("matmul", "other", other, a.dtype)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both arguments need at least 1 dim, got shapes {a.shape} and {b.shape}"
        )
    a2 = a.reshape(1, -1) if a.ndim == 1 else a  # 1-D input: a row vector (dim removed after)
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b  # 1-D other: a column vector
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: input shape {a.shape} and other shape {b.shape} "
            f"({a2.shape[-1]} != {b2.shape[-2]})"
        )
    try:
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"matmul: batch dims {a.shape[:-2]} and {b.shape[:-2]} of shapes {a.shape} and {b.shape} "
            f"are not broadcastable"
        ) from None
    M, K, N = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    out_shape = batch + ((M,) if a.ndim > 1 else ()) + ((N,) if b.ndim > 1 else ())
    return a, b, a2, b2, batch, (M, K, N), out_shape


def _mm(a2, b2, batch, M, N):
    """``a2 @ b2`` as an array of shape ``batch + (M, N)`` (never a NumPy scalar)."""
    if b2.ndim == 2 and a2.ndim > 2:
        # (..., M, K) @ (K, N): one GEMM over all rows
        rows = int(np.prod(a2.shape[:-1], dtype=np.int64))
        return _gemm.gemm(a2.reshape(rows, a2.shape[-1]), b2).reshape(batch + (M, N))
    return _gemm.gemm(a2, b2).reshape(batch + (M, N))


@op
def matmul(input, other):
    """Matrix product with ``torch.matmul`` semantics.

    1-D @ 1-D: dot product (0-d result); 2-D @ 2-D: matrix product; a 1-D ``input`` is a row vector
    and a 1-D ``other`` a column vector, whose dim is removed from the result; N-D: batched over the
    leading dims, which broadcast (NumPy rules). float32 or float64, one dtype.

    Backward: ``matmul.backward(grad_output, input, other)`` -> ``(grad_input, grad_other)``,
    ``grad_input = grad_output @ other^T`` and ``grad_other = input^T @ grad_output``, summed over
    the batch dims along which the operand was broadcast.
    """
    a, b, a2, b2, batch, (M, K, N), out_shape = _prepare(input, other)
    return _mm(a2, b2, batch, M, N).reshape(out_shape)


@matmul.defbackward
def _(grad_output, input, other):
    a, b, a2, b2, batch, (M, K, N), out_shape = _prepare(input, other)
    g = grad_like("matmul", grad_output, out_shape, a.dtype)
    g2 = g.reshape(batch + (M, N))
    # grad_input: g @ b^T over the broadcast batch, summed to a's batch dims
    ga = _gemm.gemm(g2, np.swapaxes(b2, -1, -2))
    ga = _reduce.sum_to_shape(ga, a2.shape)
    # grad_other: a^T @ g
    if b2.ndim == 2:
        # other is one matrix shared by the whole batch: sum_i a_i^T g_i = A^T G, one GEMM
        rows = int(np.prod(a2.shape[:-1], dtype=np.int64))
        gb = _gemm.gemm(a2.reshape(rows, K).T, g2.reshape(rows, N))
    else:
        gb = _gemm.gemm(np.swapaxes(a2, -1, -2), g2)
        gb = _reduce.sum_to_shape(gb, b2.shape)
    return np.ascontiguousarray(ga).reshape(a.shape), np.ascontiguousarray(gb).reshape(b.shape)


@matmul.defexplain
def _(shape, dtype, other=None, shapes=None, **params):
    """``other``: the second operand's shape (default: the transpose of ``shape``'s last 2 dims);
    ``shapes``: both shapes (``python -m fastops explain matmul --shape 8x64x32 32x16``)."""
    shape = tuple(shape)
    if shapes is not None and len(shapes) > 1:
        other = shapes[1]
    if other is None:
        other = shape[:-2] + (shape[-1], shape[-2]) if len(shape) >= 2 else shape
    a, b = np.empty(shape, dtype), np.empty(tuple(other), dtype)  # shapes only (never read)
    _, _, a2, b2, batch, (M, K, N), out_shape = _prepare(a, b)
    nb = int(np.prod(batch, dtype=np.int64))
    folded = b2.ndim == 2 and a2.ndim > 2
    if folded:
        M, nb = M * nb, 1
    be = _gemm.backend(M, N, K, nb, dtype=dtype)
    return dict(
        kernel="fastops._gemm" + (" (batch folded into M)" if folded else ""),
        backend=be,
        m=M, n=N, k=K, batch=batch,
        out_shape=out_shape,
        threads=_threads.get_num_threads(),
    )


__all__ = ["matmul"]
