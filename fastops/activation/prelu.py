"""Parametric ReLU (``torch.nn.functional.prelu``) with a deterministic weight gradient."""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _threads
from .._op import op
from .._validate import float_arrays, grad_like
from .._simd import row_sum
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

OP = "prelu"

# Two layouts, picked by `prelu_layout` from the shape alone:
#
# "rows": x seen as (R, L) with one slope per row (R = N*C rows of L = prod(spatial) elements, or a
#   single row when the weight has one element). Work units are (row, piece of PIECE elements);
#   short rows are grouped, PIECE // L rows per task. The weight gradient of a unit is one lane sum
#   (`_simd.row_sum`) of its masked products; the units' partials are then added per channel in
#   index order (n, then piece).
# "columns": when rows would be shorter than ROWS_MIN_LENGTH (e.g. (N, C) input: L = 1), x is seen
#   as (N, M = C*L) with the slopes repeated along M. Rows are taken in blocks of a fixed number of
#   rows; within a block the masked products are accumulated row after row into an M-long partial,
#   which vectorizes along M without reassociation. The blocks' partials are added in block order,
#   then the L entries of each channel in index order.
#
# Either way every partial is computed by one fixed sequence of operations that depends on the
# shape only: the weight gradient is bitwise the same for any number of threads.
ROWS_MIN_LENGTH = 32
PIECE = 8192
COLUMN_CHUNK = 4096
MAX_BLOCKS = 16
MIN_BLOCK_ROWS = 8


def prelu_layout(shape, weight_size):
    """``(layout, n_rows, channels, row_length)`` for an input of ``shape`` and a weight of
    ``weight_size`` elements (pure; see the comment above for the layouts)."""
    size = math.prod(shape)
    if weight_size == 1 or len(shape) < 2:
        return "rows", 1, 1, size
    outer, c = int(shape[0]), int(shape[1])
    inner = math.prod(shape[2:])
    if inner >= ROWS_MIN_LENGTH:
        return "rows", outer * c, c, inner
    return "columns", outer, c, inner


def _block_rows(n_rows):
    return max(MIN_BLOCK_ROWS, -(-n_rows // MAX_BLOCKS))


# ---------------------------------------------------------------------------------------------
# "rows" kernels: x2 (R, L), slope of row r = w[r % C]. Unit u = r * P + p (P pieces per row),
# task t covers units [t * G, (t + 1) * G).


def _rows_fwd_template(x2, w, out2, P, G):
    R, L = x2.shape
    C = w.size
    U = R * P
    for t in prange((U + G - 1) // G):
        for u in range(t * G, min((t + 1) * G, U)):
            r = u // P
            p = u - r * P
            start = p * PIECE
            stop = min(start + PIECE, L)
            xs = x2[r, start:stop]
            os = out2[r, start:stop]
            a = w[r % C]
            for i in range(xs.size):
                v = xs[i]
                os[i] = v if v > T(0) else a * v


def _rows_bwd_template(x2, g2, w, gx2, partial, P, G):
    R, L = x2.shape
    C = w.size
    U = R * P
    for t in prange((U + G - 1) // G):
        scratch = np.empty(min(L, PIECE), x2.dtype)
        for u in range(t * G, min((t + 1) * G, U)):
            r = u // P
            p = u - r * P
            start = p * PIECE
            stop = min(start + PIECE, L)
            xs = x2[r, start:stop]
            gs = g2[r, start:stop]
            os = gx2[r, start:stop]
            cs = scratch[: stop - start]
            a = w[r % C]
            for i in range(xs.size):
                v = xs[i]
                gv = gs[i]
                pos = v > T(0)
                os[i] = gv if pos else a * gv
                cs[i] = T(0) if pos else v * gv  # ATen: input > 0 ? 0 : input * grad
            partial[u] = row_sum(cs)


def _rows_combine_template(partial, R, C, P, gw):
    # gw[c] = sum over n (rows r = n * C + c), then pieces, in index order
    for c in range(C):
        s = T(0)
        for n in range(R // C):
            base = (n * C + c) * P
            for p in range(P):
                s += partial[base + p]
        gw[c] = s


# ---------------------------------------------------------------------------------------------
# "columns" kernels: x2 (N, M), slope of column m = we[m]. Task t = (row block b, column chunk q).


def _cols_fwd_template(x2, we, out2, BR):
    N, M = x2.shape
    nb = (N + BR - 1) // BR
    nq = (M + COLUMN_CHUNK - 1) // COLUMN_CHUNK
    for t in prange(nb * nq):
        b = t // nq
        q = t - b * nq
        c0 = q * COLUMN_CHUNK
        c1 = min(c0 + COLUMN_CHUNK, M)
        ws = we[c0:c1]
        for n in range(b * BR, min((b + 1) * BR, N)):
            xs = x2[n, c0:c1]
            os = out2[n, c0:c1]
            for i in range(xs.size):
                v = xs[i]
                os[i] = v if v > T(0) else ws[i] * v


def _cols_bwd_template(x2, g2, we, gx2, partial, BR):
    N, M = x2.shape
    nb = (N + BR - 1) // BR
    nq = (M + COLUMN_CHUNK - 1) // COLUMN_CHUNK
    for t in prange(nb * nq):
        b = t // nq
        q = t - b * nq
        c0 = q * COLUMN_CHUNK
        c1 = min(c0 + COLUMN_CHUNK, M)
        ws = we[c0:c1]
        acc = partial[b, c0:c1]
        for i in range(acc.size):
            acc[i] = T(0)
        for n in range(b * BR, min((b + 1) * BR, N)):
            xs = x2[n, c0:c1]
            gs = g2[n, c0:c1]
            os = gx2[n, c0:c1]
            for i in range(xs.size):
                v = xs[i]
                gv = gs[i]
                pos = v > T(0)
                os[i] = gv if pos else ws[i] * gv
                acc[i] += T(0) if pos else v * gv


def _cols_combine_template(partial, C, L, gw):
    nb, M = partial.shape
    tot = np.empty(M, partial.dtype)
    for m in range(M):
        tot[m] = partial[0, m]
    for b in range(1, nb):  # block order
        pb = partial[b]
        for m in range(M):
            tot[m] += pb[m]
    for c in range(C):  # then the L entries of a channel, in order
        s = T(0)
        for k in range(L):
            s += tot[c * L + k]
        gw[c] = s


_TEMPLATES = {
    "rows_fwd": _rows_fwd_template,
    "rows_bwd": _rows_bwd_template,
    "rows_combine": _rows_combine_template,
    "columns_fwd": _cols_fwd_template,
    "columns_bwd": _cols_bwd_template,
    "columns_combine": _cols_combine_template,
}
_KERNELS = KernelSet("prelu", _TEMPLATES, consts=dict(PIECE=PIECE, COLUMN_CHUNK=COLUMN_CHUNK))


def _backend(dtype, size):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "cheap")


def _call(which, dtype, size, *args):
    _KERNELS.run(which, dtype, _backend(dtype, size), *args)


def _validate(input, weight):
    x, w = float_arrays(OP, ("input", "weight"), (input, weight))
    if w.ndim > 1:
        raise ValueError(f"{OP}: argument 'weight' must be 0-d or 1-D, got shape {w.shape}")
    c = x.shape[1] if x.ndim >= 2 else 1
    if w.size != 1 and w.size != c:
        raise ValueError(
            f"{OP}: argument 'weight' has {w.size} elements but must have 1 or as many as the input's "
            f"channels (input.shape[1] for an input of rank >= 2, else 1): input shape {x.shape}, "
            f"weight shape {w.shape}"
        )
    return x, w


def _rows_params(L):
    P = max(1, -(-L // PIECE))
    G = max(1, PIECE // max(L, 1)) if P == 1 else 1
    return P, G


@op
def prelu(input, weight):
    """Parametric ReLU (``torch.nn.functional.prelu``): ``x if x > 0 else a * x``.

    ``weight`` (0-d or 1-D) holds one slope ``a`` for all elements, or one per channel along dim 1
    (``input.shape[1]`` elements). Inputs of rank 0 or 1 have no channel dim: the weight must have
    one element, as in PyTorch.

    Backward: ``prelu.backward(grad_output, input, weight)`` -> ``(grad_input, grad_weight)``, with
    ``grad_input = grad_output if x > 0 else a * grad_output`` and ``grad_weight`` the sum of
    ``x * grad_output`` over the elements with ``x <= 0`` of each channel. That sum is computed in
    a fixed order (see the module comment): bitwise the same for any number of threads.
    """
    x, w = _validate(input, weight)
    out = np.empty(x.shape, x.dtype)
    if x.size == 0:
        return out
    layout, R, C, L = prelu_layout(x.shape, w.size)
    wf = w.reshape(-1)
    if layout == "rows":
        P, G = _rows_params(L)
        _call("rows_fwd", x.dtype, x.size, x.reshape(R, L), wf, out.reshape(R, L), P, G)
    else:
        we = np.repeat(wf, L)
        _call("columns_fwd", x.dtype, x.size, x.reshape(R, C * L), we, out.reshape(R, C * L), _block_rows(R))
    return out


@prelu.defbackward
def _(grad_output, input, weight):
    x, w = _validate(input, weight)
    g = grad_like(OP, grad_output, x.shape, x.dtype)
    gx = np.empty(x.shape, x.dtype)
    gw = np.zeros(w.size, x.dtype)
    if x.size:
        layout, R, C, L = prelu_layout(x.shape, w.size)
        wf = w.reshape(-1)
        if layout == "rows":
            P, G = _rows_params(L)
            partial = np.empty(R * P, x.dtype)
            _call("rows_bwd", x.dtype, x.size, x.reshape(R, L), g.reshape(R, L), wf, gx.reshape(R, L), partial, P, G)
            _KERNELS.kernel("rows_combine", x.dtype)(partial, R, C, P, gw)
        else:
            BR = _block_rows(R)
            partial = np.empty((-(-R // BR), C * L), x.dtype)
            x2, g2 = x.reshape(R, C * L), g.reshape(R, C * L)
            _call("columns_bwd", x.dtype, x.size, x2, g2, np.repeat(wf, L), gx.reshape(R, C * L), partial, BR)
            _KERNELS.kernel("columns_combine", x.dtype)(partial, C, L, gw)
    return gx, gw.reshape(w.shape)


@prelu.defexplain
def _(shape, dtype, weight_shape=(1,), shapes=None, **params):
    if shapes is not None and len(shapes) > 1:  # the CLI: --shape INPUT WEIGHT
        weight_shape = shapes[1]
    size = math.prod(shape)
    layout, R, C, L = prelu_layout(tuple(shape), math.prod(weight_shape))
    be = _backend(dtype, size)
    return {
        "kernel": f"prelu_{layout}_fwd_{_jit.SUFFIX[np.dtype(dtype)]}_{be}",
        "backend": be,
        "layout": layout,
        "rows": R,
        "channels": C,
        "row_length": L,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
    }


__all__ = ["prelu"]
