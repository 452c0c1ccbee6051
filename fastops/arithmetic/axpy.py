"""axpy: ``a * x + y`` (Caffe ``Axpy``, used by SENet-style channel scaling: ``a`` of shape (N, C)
scales each (H, W) plane of ``x`` (N, C, H, W) before ``y`` is added).

``a`` is a real scalar or an array whose shape, padded with **trailing** 1s to ``x``'s rank (Caffe
semantics: ``(N, C)`` against ``(N, C, H, W)`` is ``(N, C, 1, 1)``), broadcasts to ``x``; ``x`` and
``y`` have the same shape, which is the output's.

Kernel: one fused pass (reads ``x``, ``y`` and ``a``, writes the output). The broadcast of ``a``
collapses like a binary op's (``fastops._dispatch.broadcast_collapse``); the innermost loop reads
``a`` either as a contiguous row or as one value (``(N, C, H*W)``: one value per row of ``H*W``),
so it vectorizes; a scalar ``a`` is a 1-element array read at stride 0.
"""
import numpy as np
from numba import prange

from .. import _dispatch, _jit, _reduce, _threads
from .._elementwise import CHUNK
from .._op import op
from .._validate import float_array, grad_like, operand
from .binary import _pad4, _scalar, apply, passthrough
from .._kernelset import KernelSet


def _axpy_template(a, x, y, out, d, sa):
    # out, x, y: flat, C order of dims d = (D0, D1, D2, D3); a read at element strides sa.
    D0, D1, D2, D3 = d
    nrows = D0 * D1 * D2
    if D3 >= CHUNK:
        ncc = (D3 + CHUNK - 1) // CHUNK
        rpu = 1
    else:
        ncc = 1
        rpu = CHUNK // D3
    nru = (nrows + rpu - 1) // rpu
    a_in = sa[3]
    for u in prange(nru * ncc):
        ru = u // ncc
        cc = u - ru * ncc
        c0 = cc * CHUNK
        c1 = min(c0 + CHUNK, D3)
        w = c1 - c0
        r0 = ru * rpu
        r1 = min(r0 + rpu, nrows)
        for r in range(r0, r1):
            i2 = r % D2
            t = r // D2
            i1 = t % D1
            i0 = t // D1
            oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + c0 * a_in
            o0 = r * D3 + c0
            xr = x[o0 : o0 + w]
            yr = y[o0 : o0 + w]
            orow = out[o0 : o0 + w]
            if a_in == 1:
                ar = a[oa : oa + w]
                for i in range(orow.size):
                    orow[i] = ar[i] * xr[i] + yr[i]
            else:
                av = a[oa]
                for i in range(orow.size):
                    orow[i] = av * xr[i] + yr[i]


KERNELS = KernelSet(
    "axpy", {"axpy": _axpy_template}, consts=dict(CHUNK=CHUNK),
    kernel_name=lambda which, dt, backend, v: f"axpy_{_jit.SUFFIX[dt]}_{backend}",
)


def kernel_name(dtype, backend):
    return KERNELS.kernel_name("axpy", dtype, backend)


def _prepare(a, x, y):
    a = operand("axpy", "a", a)
    x = float_array("axpy", "x", x)
    y = float_array("axpy", "y", y, x.dtype)
    if y.shape != x.shape:
        raise ValueError(f"axpy: 'x' and 'y' must have the same shape, got x {x.shape} and y {y.shape}")
    if isinstance(a, np.ndarray):
        a = float_array("axpy", "a", a, x.dtype)
        if a.ndim > x.ndim:
            raise ValueError(f"axpy: 'a' of shape {a.shape} has more dims than 'x' of shape {x.shape}")
        ap = a.shape + (1,) * (x.ndim - a.ndim)  # Caffe: trailing 1s
        if any(s != 1 and s != t for s, t in zip(ap, x.shape)):
            raise ValueError(
                f"axpy: 'a' of shape {a.shape} (as {ap}, padded with trailing 1s) does not broadcast "
                f"to 'x' of shape {x.shape}"
            )
        a = a.reshape(ap)
    else:
        a = _scalar("axpy", "a", a, x.dtype)
    return a, x, y


def _plan(a_shape, x_shape, dtype):
    size = int(np.prod(x_shape, dtype=np.int64))
    be = _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "cheap")
    dims, (sa,) = _dispatch.broadcast_collapse(x_shape, a_shape)
    # the fused kernel has 4 dims; x and y are contiguous, so only a's pattern splits dims: more
    # than 4 needs rank >= 5 with alternating broadcast dims, e.g. a (2, 1, 2, 1, 2)
    return be, dims, sa


@op
def axpy(a, x, y):
    """``a * x + y`` (Caffe ``Axpy``).

    Parameters
    ----------
    a : real scalar or ndarray
        A scalar (taking ``x``'s dtype), or an array whose shape padded with trailing 1s to
        ``x.ndim`` broadcasts to ``x.shape`` (Caffe: ``a`` (N, C) scales the (H, W) planes of
        ``x`` (N, C, H, W)).
    x, y : ndarray, same shape and dtype (float32 or float64)

    Backward: ``axpy.backward(grad_output, a, x, y)`` -> ``(grad_a, grad_x, grad_y)``: ``grad_a =
    sum(grad_output * x)`` over the dims ``a`` broadcasts along (``None`` for a scalar ``a``),
    ``grad_x = a * grad_output``, and **``grad_y`` a read-only view of ``grad_output``** (autograd's
    pass-through: no copy; copy it before writing to it).
    """
    a, x, y = _prepare(a, x, y)
    out = np.empty(x.shape, x.dtype)
    if out.size == 0:
        return out
    a_arr = a if isinstance(a, np.ndarray) else np.full((1,) * x.ndim, a, x.dtype)
    be, dims, sa = _plan(a_arr.shape, x.shape, x.dtype)
    k = KERNELS.ready("axpy", x.dtype, be)
    af, xf, yf, of = a_arr.reshape(-1), x.reshape(-1), y.reshape(-1), out.reshape(-1)
    if len(dims) <= 4:
        d4, sa4 = _pad4(dims, sa)
        k(af, xf, yf, of, d4, sa4)
    else:  # leading dims looped over here (rank >= 5 with alternating broadcast dims only)
        lead, d4 = dims[:-4], dims[-4:]
        block = int(np.prod(d4))
        for idx in np.ndindex(*lead):
            oa = sum(i * s for i, s in zip(idx, sa))
            oo = int(np.ravel_multi_index(idx, lead)) * block
            k(af[oa:], xf[oo : oo + block], yf[oo : oo + block], of[oo : oo + block], d4, sa[-4:])
    return out


@axpy.defbackward
def _(grad_output, a, x, y):
    a_orig = a
    a, x, y = _prepare(a, x, y)
    g = grad_like("axpy", grad_output, x.shape, x.dtype)
    ga = None
    if isinstance(a, np.ndarray):
        gx_prod = apply("mul", g, x, x.shape, x.dtype)
        ga = _reduce.sum_to_shape(gx_prod, a.shape).reshape(np.shape(a_orig))
    gx = apply("mul", g, a, x.shape, x.dtype)
    return ga, gx, passthrough(g, y.shape)


@axpy.defexplain
def _(shape, dtype, a=None, shapes=None, **params):
    """``shape``: ``x``'s shape; ``a``: ``a``'s shape (default: a scalar); ``shapes``: the shapes
    of ``a, x[, y]`` in argument order (``python -m fastops explain axpy --shape 8x16 8x16x7x7``)."""
    if shapes is not None and len(shapes) > 1:
        a, shape = shapes[0], shapes[1]
    shape = tuple(shape)
    a_shape = (1,) * len(shape) if a is None else tuple(a) + (1,) * (len(shape) - len(tuple(a)))
    be, dims, sa = _plan(a_shape, shape, dtype)
    return dict(
        kernel=kernel_name(dtype, be),
        backend=be,
        a_shape=a_shape,
        dims=dims,
        strides_a=sa,
        inner="a row" if sa and sa[-1] == 1 else "a value per row",
        threads=_threads.get_num_threads(),
        backward_reduce=_reduce.explain(shape, a_shape, dtype) if a is not None else [],
    )


__all__ = ["axpy"]
