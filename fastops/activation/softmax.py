"""Softmax along a dim (``torch.nn.functional.softmax``), and the row-wise machinery that
``log_softmax`` shares.

Layouts (``softmax_layout``, from the shape and dim alone):

* ``"last"``: the dim is the last one that is not of size 1 after it, i.e. every softmax row is
  contiguous. Per row: max (``_simd.row_max``), then ``e = exp(x - max)`` written to the output
  and summed in the same pass (``_simd.row_exp_sum``: ``vexp`` on whole vectors, a masked tail),
  then ``e * (1 / sum)``. A row of a few thousand elements stays in L1 between the passes, so only
  the first pass reads memory, and the exp pass prefetches the next row. Parallel over rows.
  Forward of float32 (4096, 1000), 2 threads: 1.0-1.1 ms (``python -m fastops bench --ops softmax
  --size large --threads 2``). Design note: a scalar ``_math.exp32`` loop then ``row_sum`` ran
  2.2-2.4 ms (torch 1.9-2.3 ms), ``vexp`` fused with the sum but no prefetch 1.4-1.5 ms (commit
  cb4dd25).
* ``"strided"``: the input seen as (outer, D, inner) with the dim in the middle and ``inner > 1``.
  A task takes ``inner`` columns ``[i0, i1)`` of one ``outer`` index and walks ``d = 0 .. D-1``
  three times (max, exp-and-sum, scale) with per-column accumulators: every loop runs along
  ``inner``, contiguous, so it vectorizes without reassociation and without a transposed copy.
  Sums run in ``d`` order. Parallel over tasks.

Numerics as in ATen: the row max is subtracted before ``exp``; a NaN anywhere in a row makes the
row NaN; ``-inf`` inputs get probability 0 (``log_softmax``: ``-inf``); a row of only ``-inf`` (and
any row with ``+inf``) gives NaN, as ``inf - inf`` does in PyTorch. Results do not depend on the
thread count (row sums in a fixed lane order, see ``fastops._simd``).
"""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _math, _threads
from .._op import op
from .._validate import FLOAT_DTYPES, dim as check_dim, float_array, grad_like
from .._simd import (nlanes, prefetch, row_dot, row_exp_sum, row_max, row_sum, vexp, vload, vload_part, vmul,
                     vsplat, vstore, vstore_part, vsub)
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = EXP = LOG = UNBOUND

# Columns per task of the strided layout. Whole rows of the (D, inner) slice when inner is at most
# STRIDED_MAX_WIDTH: the three passes then stream through memory in order. Longer rows go in pieces
# of STRIDED_LONG_ROW_WIDTH columns. Rows are split for parallelism only when a task's D x width
# block is cache-resident (at most STRIDED_SPLIT_MAX_BYTES: compute-bound), into TASKS_PER_THREAD
# tasks per thread. Design note, float32 forward by columns per task (commit b2e6ff6):
# (1, 4096, 1000) dim 1 serial: 16: 17.5 ms, 64: 5.9 ms, 256: 8.5 ms, 512: 8.9 ms, whole rows
# 3.8 ms (the last-dim layout on the same data: 3.6 ms); 2 threads: 2 tasks of 512 columns 5.0 ms,
# whole rows on one thread 3.8 ms. (2, 21, 262144), 2 threads: 2048 columns 7.7 ms, whole rows
# 9.1 ms. (1, 64, 1000), 2 threads: whole rows 0.09 ms, 64 columns 0.05 ms.
STRIDED_MAX_WIDTH = 4096
STRIDED_LONG_ROW_WIDTH = 2048
STRIDED_MIN_WIDTH = 16
STRIDED_SPLIT_MAX_BYTES = 1 << 20
TASKS_PER_THREAD = 4


def softmax_layout(shape, dim):
    """``("last", rows, row_length)`` or ``("strided", outer, D, inner)`` for a softmax of an array
    of ``shape`` along the (normalized, non-negative) ``dim`` (pure)."""
    shape = tuple(int(s) for s in shape) or (1,)
    outer = math.prod(shape[:dim])
    d = shape[dim]
    inner = math.prod(shape[dim + 1 :])
    if inner == 1:
        return ("last", outer, d)
    return ("strided", outer, d, inner)


def strided_width(outer, d, inner, itemsize, num_threads):
    """Columns per task in the strided layout (results do not depend on it: each column is summed
    over ``d`` in order whatever the width)."""
    w = inner if inner <= STRIDED_MAX_WIDTH else STRIDED_LONG_ROW_WIDTH
    tasks = outer * -(-inner // max(w, 1))
    if num_threads > 1 and tasks < TASKS_PER_THREAD * num_threads and d * w * itemsize <= STRIDED_SPLIT_MAX_BYTES:
        per_outer = -(-TASKS_PER_THREAD * num_threads // max(outer, 1))
        w = -(-inner // per_outer)
        w = max(STRIDED_MIN_WIDTH, -(-w // STRIDED_MIN_WIDTH) * STRIDED_MIN_WIDTH)
    return min(w, inner)


# ---------------------------------------------------------------------------------------------
# kernel templates; LOG (bool), T (scalar type) and EXP are bound per op and dtype


def _last_fwd_template(x2, out2):
    R, L = x2.shape
    for r in prange(R):
        xs = x2[r]
        os = out2[r]
        m = row_max(xs)
        s = row_exp_sum(xs, T(1), m, os, x2[min(r + 1, R - 1)])  # os[i] = exp(xs[i] - m); next row prefetched
        if LOG:
            ls = T(math.log(s))  # one log per row
            for i in range(L):
                os[i] = (xs[i] - m) - ls
        else:
            inv = T(1) / s
            for i in range(L):
                os[i] *= inv


def _last_bwd_template(y2, g2, out2):
    R, L = y2.shape
    vl = nlanes(y2[0]) if R > 0 else 1
    for r in prange(R):
        ys = y2[r]
        gs = g2[r]
        os = out2[r]
        yn = y2[min(r + 1, R - 1)]  # the next rows, prefetched during the second pass
        gn = g2[min(r + 1, R - 1)]
        if LOG:  # grad = g - exp(y) * sum(g)
            sv = vsplat(ys, row_sum(gs))
        else:  # grad = y * (g - sum(g * y))
            sv = vsplat(ys, row_dot(gs, ys))
        nv = L // vl
        for b in range(nv + (1 if nv * vl < L else 0)):
            o = b * vl
            prefetch(yn, o)
            prefetch(gn, o)
            if b < nv:
                yv = vload(ys, o)
                gv = vload(gs, o)
            else:  # the tail: a masked load and store
                yv = vload_part(ys, o, 0.0)
                gv = vload_part(gs, o, 0.0)
            if LOG:
                v = vsub(gv, vmul(vexp(yv), sv))
            else:
                v = vmul(yv, vsub(gv, sv))
            if b < nv:
                vstore(os, o, v)
            else:
                vstore_part(os, o, v)


def _strided_fwd_template(x3, out3, W):
    O, D, I = x3.shape
    nq = (I + W - 1) // W
    for t in prange(O * nq):
        o = t // nq
        q = t - o * nq
        i0 = q * W
        n = min(W, I - i0)
        m = np.empty(n, x3.dtype)
        s = np.empty(n, x3.dtype)
        for i in range(n):
            m[i] = -np.inf
            s[i] = T(0)
        for d in range(D):
            xs = x3[o, d, i0 : i0 + n]
            for i in range(n):
                v = xs[i]
                m[i] = v if v > m[i] else m[i]  # NaN is skipped: it propagates through exp below
        for d in range(D):
            xs = x3[o, d, i0 : i0 + n]
            os = out3[o, d, i0 : i0 + n]
            for i in range(n):
                e = EXP(xs[i] - m[i])
                os[i] = e
                s[i] += e
        if LOG:
            for i in range(n):
                s[i] = T(math.log(s[i]))
            for d in range(D):
                xs = x3[o, d, i0 : i0 + n]
                os = out3[o, d, i0 : i0 + n]
                for i in range(n):
                    os[i] = (xs[i] - m[i]) - s[i]
        else:
            for i in range(n):
                s[i] = T(1) / s[i]
            for d in range(D):
                os = out3[o, d, i0 : i0 + n]
                for i in range(n):
                    os[i] *= s[i]


def _strided_bwd_template(y3, g3, out3, W):
    O, D, I = y3.shape
    nq = (I + W - 1) // W
    for t in prange(O * nq):
        o = t // nq
        q = t - o * nq
        i0 = q * W
        n = min(W, I - i0)
        s = np.empty(n, y3.dtype)
        for i in range(n):
            s[i] = T(0)
        for d in range(D):
            ys = y3[o, d, i0 : i0 + n]
            gs = g3[o, d, i0 : i0 + n]
            for i in range(n):
                if LOG:
                    s[i] += gs[i]
                else:
                    s[i] += gs[i] * ys[i]
        for d in range(D):
            ys = y3[o, d, i0 : i0 + n]
            gs = g3[o, d, i0 : i0 + n]
            os = out3[o, d, i0 : i0 + n]
            for i in range(n):
                if LOG:
                    os[i] = gs[i] - EXP(ys[i]) * s[i]
                else:
                    os[i] = ys[i] * (gs[i] - s[i])


_TEMPLATES = {
    ("fwd", "last"): _last_fwd_template,
    ("bwd", "last"): _last_bwd_template,
    ("fwd", "strided"): _strided_fwd_template,
    ("bwd", "strided"): _strided_bwd_template,
}


def _float_dtype(op_name, dtype):
    """The ``dtype=`` argument: None, or float32/float64 in any form ``numpy.dtype`` accepts."""
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{op_name}: argument 'dtype' must be None, numpy.float32 or numpy.float64, got {dtype!r}")
    return dt


class Rowwise:
    """Kernels, dispatch and argument handling of softmax (``log=False``) or log_softmax."""

    def __init__(self, name, log):
        self.name, self.log = name, log
        self.kernels = KernelSet(
            name,
            lambda which, layout: _TEMPLATES[(which, layout)],
            consts={"LOG": log},
            bind=lambda dt, which, layout: {"EXP": _math.EXP[dt]},
            kernel_name=lambda which, dt, backend, layout: f"{name}_{layout}_{which}_{_jit.SUFFIX[dt]}_{backend}",
        )

    def plan(self, shape, dim, dtype):
        """The dispatch decision for an input of ``shape`` (dim already normalized)."""
        lay = softmax_layout(shape, dim)
        threads = _threads.get_num_threads()
        if lay[0] == "last":
            rows, row_len = lay[1], lay[2]
        else:
            rows, row_len = lay[1] * lay[3], lay[2]
        be = _dispatch.parallel_backend(dtype, rows * row_len, threads, "transcendental", units=rows)
        plan = {
            "kernel": self.kernels.kernel_name("fwd", dtype, be, lay[0]),
            "backend": be,
            "layout": lay[0],
            "rows": rows,
            "row_length": row_len,
            "threads": threads,
        }
        if lay[0] == "strided":
            plan["outer"], plan["inner"] = lay[1], lay[3]
            nt = threads if be == "parallel" else 1
            plan["columns_per_task"] = strided_width(lay[1], lay[2], lay[3], np.dtype(dtype).itemsize, nt)
        return plan

    def _run(self, which, x, dim, *arrays):
        """Run kernel ``which`` on ``arrays`` (all of x's shape), viewed in the layout of ``dim``."""
        p = self.plan(x.shape, dim, x.dtype)
        if x.size == 0:
            return
        if p["layout"] == "last":
            args = [a.reshape(p["rows"], p["row_length"]) for a in arrays]
        else:
            shape3 = (p["outer"], p["row_length"], p["inner"])
            args = [a.reshape(shape3) for a in arrays] + [p["columns_per_task"]]
        self.kernels.run(which, x.dtype, p["backend"], *args, variant=p["layout"])

    def _prepare(self, input, dim, dtype):
        x = float_array(self.name, "input", input)
        if dim is None:
            raise ValueError(
                f"{self.name}: argument 'dim' is required (PyTorch's implicit dim choice is deprecated); "
                f"pass the dim to normalize over, e.g. dim=-1"
            )
        d = check_dim(self.name, "dim", dim, x.ndim)
        dt = _float_dtype(self.name, dtype)
        xc = x if dt is None or dt == x.dtype else x.astype(dt)
        return x, xc, d

    def forward(self, input, dim, dtype):
        _, x, d = self._prepare(input, dim, dtype)
        out = np.empty(x.shape, x.dtype)
        self._run("fwd", x, d, x, out)
        return out

    def backward(self, grad_output, input, dim, dtype, output):
        x0, x, d = self._prepare(input, dim, dtype)
        g = grad_like(self.name, grad_output, x.shape, x.dtype)
        if output is None:
            y = np.empty(x.shape, x.dtype)
            self._run("fwd", x, d, x, y)
        else:
            y = grad_like(self.name, output, x.shape, x.dtype, name="output")
        gx = np.empty(x.shape, x.dtype)
        self._run("bwd", x, d, y, g, gx)
        return gx if gx.dtype == x0.dtype else gx.astype(x0.dtype)

    def explain(self, shape, dtype, dim=None, **params):
        if dim is None:
            raise ValueError(f"{self.name}.explain: pass dim=")
        return self.plan(tuple(shape), check_dim(self.name, "dim", dim, len(shape)), dtype)


SOFTMAX = Rowwise("softmax", log=False)


@op
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Softmax along ``dim`` (``torch.nn.functional.softmax``): ``exp(x - max) / sum(exp(x - max))``.

    ``dim`` is required (``ValueError`` if None: PyTorch's implicit choice is deprecated).
    ``dtype`` (None, ``numpy.float32`` or ``numpy.float64``): cast the input to it first, as in
    PyTorch; the output then has that dtype. ``_stacklevel`` is accepted for signature compatibility
    and ignored. NaN/Inf rows: see the module docstring.

    Backward: ``softmax.backward(grad_output, input, dim, dtype=None, output=None)`` ->
    ``(grad_input,)`` with ``grad_input = y * (grad_output - sum(grad_output * y))`` per row;
    ``output=`` (the forward's result) skips recomputing ``y``. With ``dtype=``, ``grad_output``
    has that dtype and ``grad_input`` the input's.
    """
    return SOFTMAX.forward(input, dim, dtype)


@softmax.defbackward
def _(grad_output, input, dim=None, _stacklevel=3, dtype=None, output=None):
    return (SOFTMAX.backward(grad_output, input, dim, dtype, output),)


softmax.defexplain(SOFTMAX.explain)

__all__ = ["softmax"]
