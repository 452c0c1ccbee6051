"""eltwise: Caffe ``Eltwise`` over any number of same-shape inputs: ``op="sum"`` (with optional
``coeffs``), ``"prod"`` or ``"max"``.

Kernels take the inputs as one tuple (a kernel per number of inputs, compiled on first use) and
make one pass over memory: the output is produced in blocks of ``BLOCK`` elements that stay in L1
while every input's block is folded in, in input order (Caffe's order: ``top = c0*x0``, then
``top += ci*xi``; products left to right; for max, input 0 then 1, 2, ...).

``"max"`` sends the gradient to the first maximal input of each element (in input order). Caffe's
own forward compares ``x0 > x1`` and so gives a tie between inputs 0 and 1 to input 1; fastops takes
the first one throughout, which is what ``torch.max(torch.stack(xs), 0)`` does. NaN propagates
(the first NaN input wins and gets the gradient).
"""
import numpy as np
from numba import prange

from .. import _dispatch, _threads
from .._op import op as make_op
from .._validate import choice, float_array, grad_like, real_scalar
from .binary import apply, passthrough
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

BLOCK = 4096  # elements per unit: a float32 output block is 16 KB and stays in L1

# ---------------------------------------------------------------------------------------------
# forward templates: xs is a homogeneous tuple of flat arrays, coeffs a (k,) array


def _sum_template(xs, coeffs, out):
    n = out.size
    k = len(xs)
    for c in prange((n + BLOCK - 1) // BLOCK):
        start = c * BLOCK
        stop = min(start + BLOCK, n)
        os = out[start:stop]
        x0 = xs[0][start:stop]
        c0 = coeffs[0]
        for i in range(os.size):
            os[i] = c0 * x0[i]
        for j in range(1, k):
            xj = xs[j][start:stop]
            cj = coeffs[j]
            for i in range(os.size):
                os[i] += cj * xj[i]


def _prod_template(xs, coeffs, out):
    n = out.size
    k = len(xs)
    for c in prange((n + BLOCK - 1) // BLOCK):
        start = c * BLOCK
        stop = min(start + BLOCK, n)
        os = out[start:stop]
        x0 = xs[0][start:stop]
        for i in range(os.size):
            os[i] = x0[i]
        for j in range(1, k):
            xj = xs[j][start:stop]
            for i in range(os.size):
                os[i] *= xj[i]


def _max_template(xs, coeffs, out):
    n = out.size
    k = len(xs)
    for c in prange((n + BLOCK - 1) // BLOCK):
        start = c * BLOCK
        stop = min(start + BLOCK, n)
        os = out[start:stop]
        x0 = xs[0][start:stop]
        for i in range(os.size):
            os[i] = x0[i]
        for j in range(1, k):
            xj = xs[j][start:stop]
            for i in range(os.size):
                v = xj[i]
                m = os[i]
                # strictly greater: ties keep the earlier input; a NaN replaces a number once
                os[i] = v if (v > m or (v != v and m == m)) else m


# ---------------------------------------------------------------------------------------------
# backward templates: grads is (k, n); every input's gradient in one pass


def _prod_grad_template(xs, g, grads):
    # grad_i = (product of the other inputs, in input order) * g (Caffe's stable_prod_grad)
    n = g.size
    k = len(xs)
    for c in prange((n + BLOCK - 1) // BLOCK):
        start = c * BLOCK
        stop = min(start + BLOCK, n)
        gs = g[start:stop]
        for t in range(k):
            gt = grads[t, start:stop]
            first = True
            for j in range(k):
                if j == t:
                    continue
                xj = xs[j][start:stop]
                if first:
                    for i in range(gt.size):
                        gt[i] = xj[i]
                    first = False
                else:
                    for i in range(gt.size):
                        gt[i] *= xj[i]
            if first:  # a single input: d x0 / d x0 = 1
                for i in range(gt.size):
                    gt[i] = gs[i]
            else:
                for i in range(gt.size):
                    gt[i] *= gs[i]


def _max_grad_template(xs, g, grads):
    # grad goes to the first maximal input (the forward's rule), 0 to the others
    n = g.size
    k = len(xs)
    for c in prange((n + BLOCK - 1) // BLOCK):
        start = c * BLOCK
        stop = min(start + BLOCK, n)
        gs = g[start:stop]
        w = stop - start
        m = np.empty(w, xs[0].dtype)
        idx = np.zeros(w, np.int64)
        x0 = xs[0][start:stop]
        for i in range(w):
            m[i] = x0[i]
        for j in range(1, k):
            xj = xs[j][start:stop]
            for i in range(w):
                v = xj[i]
                mi = m[i]
                take = v > mi or (v != v and mi == mi)
                m[i] = v if take else mi
                idx[i] = j if take else idx[i]
        for t in range(k):
            gt = grads[t, start:stop]
            for i in range(w):
                gt[i] = gs[i] if idx[i] == t else T(0)


_TEMPLATES = {
    "sum": _sum_template,
    "prod": _prod_template,
    "max": _max_template,
    "prod_grad": _prod_grad_template,
    "max_grad": _max_grad_template,
}
KERNELS = KernelSet("eltwise", _TEMPLATES, consts=dict(BLOCK=BLOCK))


def kernel_name(which, dtype, backend):
    return KERNELS.kernel_name(which, dtype, backend)


def _backend(dtype, size, k):
    # a pass over k inputs: "cheap" per element read; the threshold is on the elements touched
    return _dispatch.parallel_backend(dtype, size * max(k, 1), _threads.get_num_threads(), "cheap")


_OPS = ("sum", "prod", "max")


def _prepare(xs, op_, coeffs):
    op_ = choice("eltwise", "op", op_, _OPS)
    if len(xs) == 0:
        raise ValueError("eltwise: needs at least one input array")
    arrays, dtype = [], None
    for i, x in enumerate(xs):
        x = float_array("eltwise", f"xs[{i}]", x, dtype)
        dtype = x.dtype
        arrays.append(x)
    shapes = [x.shape for x in arrays]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"eltwise: all inputs must have the same shape, got {shapes}")
    if coeffs is not None:
        if op_ != "sum":
            raise ValueError(f"eltwise: 'coeffs' is only supported with op='sum' (Caffe), got op={op_!r}")
        if isinstance(coeffs, (str, bytes)) or not hasattr(coeffs, "__len__"):
            raise TypeError(f"eltwise: 'coeffs' must be a sequence of {len(xs)} real numbers, got {coeffs!r}")
        if len(coeffs) != len(xs):
            raise ValueError(f"eltwise: 'coeffs' has {len(coeffs)} entries for {len(xs)} inputs")
        coeffs = [real_scalar("eltwise", f"coeffs[{i}]", c) for i, c in enumerate(coeffs)]
    return arrays, op_, coeffs, dtype


@make_op
def eltwise(*xs, op="sum", coeffs=None):
    """Caffe ``Eltwise``: ``op="sum"`` (``sum_i coeffs[i] * xs[i]``, coeffs default 1), ``"prod"``
    (elementwise product) or ``"max"`` (elementwise maximum) of same-shape arrays.

    Parameters
    ----------
    *xs : ndarrays, one shape and dtype (float32 or float64), at least one
    op : {"sum", "prod", "max"}
    coeffs : sequence of real numbers, one per input, only with ``op="sum"``

    Backward: ``eltwise.backward(grad_output, *xs, op=..., coeffs=None)`` -> one gradient per
    input: ``coeffs[i] * grad_output`` (sum; **a read-only view of ``grad_output``** where the
    coefficient is 1: autograd's pass-through, no copy), ``grad_output`` times the product of the
    other inputs (prod), ``grad_output`` at the elements where the input is the first maximal one,
    else 0 (max).
    """
    arrays, op_, coeffs, dtype = _prepare(xs, op, coeffs)
    out = np.empty(arrays[0].shape, dtype)
    if out.size == 0:
        return out
    c = np.asarray(coeffs if coeffs is not None else [1.0] * len(arrays), dtype)
    be = _backend(dtype, out.size, len(arrays))
    KERNELS.run(op_, dtype, be, tuple(a.reshape(-1) for a in arrays), c, out.reshape(-1))
    return out


@eltwise.defbackward
def _(grad_output, *xs, op="sum", coeffs=None):
    arrays, op_, coeffs, dtype = _prepare(xs, op, coeffs)
    shape = arrays[0].shape
    g = grad_like("eltwise", grad_output, shape, dtype)
    k = len(arrays)
    if op_ == "sum":
        cs = coeffs if coeffs is not None else [1.0] * k
        return tuple(passthrough(g, shape) if ci == 1.0 else apply("mul", g, ci, shape, dtype) for ci in cs)
    grads = np.empty((k,) + shape, dtype)
    if g.size:
        be = _backend(dtype, g.size, k)
        KERNELS.run(op_ + "_grad", dtype, be, tuple(a.reshape(-1) for a in arrays), g.reshape(-1), grads.reshape(k, -1))
    return tuple(grads[i, ...] for i in range(k))  # [i, ...]: a 0-d array for 0-d inputs, not a scalar


@eltwise.defexplain
def _(shape, dtype, op="sum", n_inputs=2, shapes=None, **params):
    if shapes is not None:
        n_inputs = len(shapes)
    size = int(np.prod(shape, dtype=np.int64))
    be = _backend(dtype, size, n_inputs)
    return dict(kernel=kernel_name(op, dtype, be), backend=be, inputs=n_inputs, block=BLOCK,
                threads=_threads.get_num_threads())


__all__ = ["eltwise"]
