"""Binary arithmetic with NumPy broadcasting: add, sub, mul, div (``torch.add/sub/mul/div``).

Operands are float32/float64 arrays of one dtype, or Python/NumPy real scalars (a scalar takes the
array's dtype, as in PyTorch: ``x_f32 + 0.1`` adds ``float32(0.1)``); at least one is an array
(when neither is, NumPy float32/float64 scalars are taken as 0-d arrays; two Python numbers raise).

Kernels (one per function, dtype, read pattern and serial/parallel, compiled on first use; the
pattern comes from :func:`fastops._dispatch.broadcast_backend`):

* ``same``: both operands have the output's elements in order: one flat chunked loop (the loop of
  ``fastops._elementwise``: chunks taken as slices indexed from 0, so the loop vectorizes);
* ``scalar_a`` / ``scalar_b``: one operand is a single value, held in a register;
* ``strided``: general broadcasting. :func:`fastops._dispatch.broadcast_collapse` merges the dims
  to at most 4 (``(N, C, H, W) + (1, C, 1, 1)`` is ``(N, C, H*W)``); operands are read through
  element strides, 0 along broadcast dims. The innermost loop is specialised by its strides:
  ``(1, 1)`` (two contiguous rows), ``(1, 0)`` / ``(0, 1)`` (a row and a value), so it vectorizes
  like the flat loop. Problems that still need more than 4 dims after merging (alternating
  broadcast patterns such as ``(2, 1, 2, 1, 2) + (1, 2, 1, 2, 1)``) loop over the leading dims
  in Python, calling the 4-dim kernel per block.

Parallel at or above ``_dispatch.PARALLEL_MIN_WORK["cheap"]`` output elements, serial below.

Backward: ``OP.backward(grad_output, input, other, ...)`` -> ``(grad_input, grad_other)``; the
gradient of an operand broadcast in the forward is summed over the broadcast axes by
``fastops._reduce`` (deterministic, independent of the thread count); a scalar operand gets
``None``.
"""
import functools
import numbers

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _reduce, _threads
from .._elementwise import CHUNK
from .._op import op
from .._validate import choice, float_array, grad_like, operand, real_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = F = UNBOUND

# ---------------------------------------------------------------------------------------------
# scalar functions f(x, y, p) (T: the dtype's scalar type, bound per kernel; p: a float parameter)


def _add_f(x, y, p):  # add: x + alpha * y (sub is add with -alpha, as in ATen)
    return x + p * y


def _mul_f(x, y, p):
    return x * y


def _div_f(x, y, p):
    return x / y


def _div_trunc_f(x, y, p):
    return np.trunc(x / y)


def _div_floor_f(x, y, p):
    # ATen's div_floor_floating (Python's float floor division): exact for representable quotients
    if y == T(0):
        return x / y
    mod = np.fmod(x, y)
    div = (x - mod) / y
    if mod != T(0) and ((y < T(0)) != (mod < T(0))):
        div -= T(1)
    if div != T(0):
        fl = np.floor(div)
        if div - fl > T(0.5):
            fl += T(1)
        return fl
    return np.copysign(T(0), x / y)


def _negdiv_f(x, y, p):  # backward helper: -(x / y)
    return -(x / y)


FUNCS = {
    "add": _add_f,
    "mul": _mul_f,
    "div": _div_f,
    "div_trunc": _div_trunc_f,
    "div_floor": _div_floor_f,
    "negdiv": _negdiv_f,
}

# ---------------------------------------------------------------------------------------------
# loop templates (F bound per kernel)


def _same_template(x, y, out, p):
    n = out.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        ys = y[start:stop]
        os = out[start:stop]
        for i in range(os.size):
            os[i] = F(xs[i], ys[i], p)


def _scalar_a_template(s, y, out, p):
    n = out.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        ys = y[start:stop]
        os = out[start:stop]
        for i in range(os.size):
            os[i] = F(s, ys[i], p)


def _scalar_b_template(x, s, out, p):
    n = out.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        start = c * CHUNK
        stop = min(start + CHUNK, n)
        xs = x[start:stop]
        os = out[start:stop]
        for i in range(os.size):
            os[i] = F(xs[i], s, p)


def _strided_template(a, b, out, d, sa, sb, p):
    # out: flat, C order of dims d = (D0, D1, D2, D3); a, b: flat, read at element strides sa, sb
    # (0 along broadcast dims). A unit is a block of rows (short rows) or a CHUNK of one row.
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
    b_in = sb[3]
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
            ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + c0 * b_in
            o0 = r * D3 + c0
            orow = out[o0 : o0 + w]
            # innermost loop specialised by its strides (each version vectorizes)
            if a_in == 1 and b_in == 1:
                ar = a[oa : oa + w]
                br = b[ob : ob + w]
                for i in range(orow.size):
                    orow[i] = F(ar[i], br[i], p)
            elif b_in == 0:
                ar = a[oa : oa + w]
                bv = b[ob]
                for i in range(orow.size):
                    orow[i] = F(ar[i], bv, p)
            else:
                av = a[oa]
                br = b[ob : ob + w]
                for i in range(orow.size):
                    orow[i] = F(av, br[i], p)


_TEMPLATES = {
    "same": _same_template,
    "scalar_a": _scalar_a_template,
    "scalar_b": _scalar_b_template,
    "strided": _strided_template,
}


def _bindings(dt, pattern, fname):
    f = _jit.inline(_jit.clone(FUNCS[fname], f"{fname}_scalar_{_jit.SUFFIX[dt]}", dict(T=dt.type)))
    return dict(F=f, CHUNK=CHUNK)


# which: the read pattern; variant: the function's name in FUNCS
KERNELS = KernelSet(
    "binary", _TEMPLATES, bind=_bindings,
    kernel_name=lambda pattern, dt, backend, fname: f"{fname}_{pattern}_{_jit.SUFFIX[dt]}_{backend}",
)


def kernel_name(fname, pattern, dtype, backend):
    return KERNELS.kernel_name(pattern, dtype, backend, fname)


def kernel(fname, pattern, dtype, backend):
    """The compiled-on-first-call kernel of function ``fname`` for a read ``pattern``."""
    return KERNELS.kernel(pattern, dtype, backend, fname)


def backend(dtype, size):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "cheap")


def _pad4(dims, *strides):
    k = 4 - len(dims)
    return ((1,) * k + tuple(dims),) + tuple((0,) * k + tuple(s) for s in strides)


def plan(shape_a, shape_b, out_shape, dtype):
    """The dispatch decision for ``f(a, b)`` (``None`` for a scalar operand): a dict."""
    pattern = _dispatch.broadcast_backend(shape_a, shape_b, out_shape)
    size = int(np.prod(out_shape, dtype=np.int64))
    d = dict(pattern=pattern, backend=backend(dtype, size), size=size, out_shape=tuple(out_shape))
    if pattern == "strided":
        dims, (sa, sb) = _dispatch.broadcast_collapse(out_shape, shape_a, shape_b)
        d.update(dims=dims, strides_a=sa, strides_b=sb, python_loop_dims=max(0, len(dims) - 4))
    return d


_pattern = functools.lru_cache(maxsize=4096)(_dispatch.broadcast_backend)  # a pure function of shapes


@functools.lru_cache(maxsize=4096)
def _strided_args(out_shape, sa, sb):
    """Kernel arguments of the strided pattern (cached: pure function of the shapes):
    ``(lead, d4, sa4, sb4)``; ``lead``: dims looped over in Python (``()`` in all but rare cases)."""
    dims, (st_a, st_b) = _dispatch.broadcast_collapse(out_shape, sa, sb)
    if len(dims) <= 4:
        return ((),) + _pad4(dims, st_a, st_b)
    return (tuple(zip(dims[:-4], st_a[:-4], st_b[:-4])), dims[-4:], st_a[-4:], st_b[-4:])


def apply(fname, a, b, out_shape, dtype, p=0.0, out=None):
    """``out = F(a, b, p)`` with broadcasting. ``a``/``b``: C-contiguous native arrays of ``dtype``,
    or scalars of ``dtype``; ``out``: a C-contiguous array of ``out_shape`` (may be ``a`` or ``b``
    when that operand has the output's shape), else allocated."""
    dt = np.dtype(dtype)
    T = dt.type
    if out is None:
        out = np.empty(out_shape, dt)
    if out.size == 0:
        return out
    sa = a.shape if isinstance(a, np.ndarray) else None
    sb = b.shape if isinstance(b, np.ndarray) else None
    pattern = _pattern(sa, sb, out.shape)
    k = KERNELS.ready(pattern, dt, backend(dt, out.size), fname)
    of = out.reshape(-1)
    p = T(p)
    if pattern == "same":
        k(a.reshape(-1), b.reshape(-1), of, p)
    elif pattern == "scalar_b":
        k(a.reshape(-1), T(b if sb is None else b.reshape(-1)[0]), of, p)
    elif pattern == "scalar_a":
        k(T(a if sa is None else a.reshape(-1)[0]), b.reshape(-1), of, p)
    else:
        af, bf = a.reshape(-1), b.reshape(-1)
        lead, d4, sa4, sb4 = _strided_args(tuple(out_shape), sa, sb)
        if not lead:
            k(af, bf, of, d4, sa4, sb4, p)
        else:
            # more than 4 dims even after merging: the leading dims are looped over here
            block = int(np.prod(d4))
            for idx in np.ndindex(*(n for n, _, _ in lead)):
                oa = sum(i * s for i, (_, s, _) in zip(idx, lead))
                ob = sum(i * s for i, (_, _, s) in zip(idx, lead))
                oo = int(np.ravel_multi_index(idx, [n for n, _, _ in lead])) * block
                k(af[oa:], bf[ob:], of[oo : oo + block], d4, sa4, sb4, p)
    return out


# ---------------------------------------------------------------------------------------------
# validation shared by the ops


def _scalar(op, name, v, dtype):
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{op}: scalar argument '{name}'={v!r} does not fit a float") from None
    with np.errstate(over="ignore"):
        return np.dtype(dtype).type(f)


@functools.lru_cache(maxsize=4096)
def _broadcast_shapes(sa, sb):
    return tuple(np.broadcast_shapes(sa, sb))


def prepare(op, input, other, names=("input", "other")):
    """Validate two operands: ``(a, b, out_shape, dtype)`` with arrays C-contiguous and native and
    scalars converted to the arrays' dtype."""
    a = operand(op, names[0], input)
    b = operand(op, names[1], other)
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        # no array: NumPy float scalars then count as 0-d arrays (NumPy's own view of them; what
        # arithmetic on 0-d arrays returns), so add(np.float32(1), np.float32(2)) is a 0-d float32
        if isinstance(a, (np.float32, np.float64)):
            a = np.asarray(a)
        if isinstance(b, (np.float32, np.float64)):
            b = np.asarray(b)
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        raise TypeError(
            f"{op}: at least one of '{names[0]}' and '{names[1]}' must be a numpy.ndarray, "
            f"got {type(input).__name__} and {type(other).__name__}"
        )
    dtype = None
    if isinstance(a, np.ndarray):
        a = float_array(op, names[0], a)
        dtype = a.dtype
    if isinstance(b, np.ndarray):
        b = float_array(op, names[1], b, dtype)
        dtype = b.dtype
    sa = a.shape if isinstance(a, np.ndarray) else ()
    sb = b.shape if isinstance(b, np.ndarray) else ()
    try:
        out_shape = _broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {sa} ('{names[0]}') and {sb} ('{names[1]}') are not broadcastable"
        ) from None
    if not isinstance(a, np.ndarray):
        a = _scalar(op, names[0], a, dtype)
    if not isinstance(b, np.ndarray):
        b = _scalar(op, names[1], b, dtype)
    return a, b, tuple(out_shape), dtype


def passthrough(g, shape):
    """``g`` as a read-only view of ``shape`` (same number of elements): the gradient of an operand
    that was added unchanged (autograd's pass-through; no copy of a possibly large array)."""
    v = g.reshape(shape).view()
    v.flags.writeable = False
    return v


def reduce_grad(g, operand_):
    """The gradient of ``operand_`` from the full-size gradient ``g``: summed over broadcast axes
    (a new array), or ``g`` reshaped when nothing is summed. ``None`` for a scalar operand."""
    if not isinstance(operand_, np.ndarray):
        return None
    return _reduce.sum_to_shape(g, operand_.shape)


def _alpha(op, alpha):
    return real_scalar(op, "alpha", alpha)


def _explain_binary(fname, shape, dtype, other, note=None, shapes=None):
    """``other``: the other operand's shape, a number for a scalar, None for ``shape``;
    ``shapes``: both shapes (``python -m fastops explain add --shape 2x3x4 3x1``)."""
    shape = tuple(shape)
    if shapes is not None and len(shapes) > 1:
        other = shapes[1]
    if other is None:
        other = shape
    elif isinstance(other, numbers.Real):
        other = None
    else:
        other = tuple(other)
    out_shape = tuple(np.broadcast_shapes(shape, other or ()))
    d = plan(shape, other, out_shape, dtype)
    d = dict(kernel=kernel_name(fname, d["pattern"], dtype, d["backend"]), **d)
    d["threads"] = _threads.get_num_threads()
    d["parallel_min_elements"] = _dispatch.PARALLEL_MIN_WORK["cheap"]
    if note:
        d["note"] = note
    return d


# ---------------------------------------------------------------------------------------------
# add / sub


def _add_backward(op, grad_output, input, other, alpha):
    a, b, out_shape, dtype = prepare(op, input, other)
    g = grad_like(op, grad_output, out_shape, dtype)
    ga = gb = None
    if isinstance(a, np.ndarray):
        ga = passthrough(g, a.shape) if a.size == g.size else _reduce.sum_to_shape(g, a.shape)
    if isinstance(b, np.ndarray):
        if alpha == 1.0 and b.size == g.size:
            gb = passthrough(g, b.shape)
        else:
            gb = _reduce.sum_to_shape(g, b.shape)
            if gb.size == g.size:  # a view of g: scale into a new array
                gb = apply("mul", gb, alpha, gb.shape, dtype)
            elif gb.size:
                apply("mul", gb, alpha, gb.shape, dtype, out=gb)
    return ga, gb


@op
def add(input, other, alpha=1):
    """``input + alpha * other`` with NumPy broadcasting (``torch.add``).

    Parameters
    ----------
    input, other : ndarray or real scalar
        float32/float64 arrays of one dtype, or a Python/NumPy real scalar, which takes the array's
        dtype (as in PyTorch). At least one must be an array.
    alpha : real
        Multiplier of ``other``, converted to the dtype.

    Backward: ``add.backward(grad_output, input, other, alpha=1)`` -> ``(grad_input, grad_other)``:
    ``grad_output`` summed to each operand's shape (``alpha * ...`` for ``other``), ``None`` for a
    scalar. **An operand with as many elements as the output gets a read-only view of
    ``grad_output``** (autograd's pass-through: no copy; copy it before writing to it).
    """
    alpha = _alpha("add", alpha)
    a, b, out_shape, dtype = prepare("add", input, other)
    return apply("add", a, b, out_shape, dtype, alpha)


@add.defbackward
def _(grad_output, input, other, alpha=1):
    return _add_backward("add", grad_output, input, other, _alpha("add", alpha))


@add.defexplain
def _(shape, dtype, other=None, alpha=1, shapes=None, **params):
    """``other``: the other operand's shape (default: ``shape``), or a number for a scalar."""
    return _explain_binary("add", shape, dtype, other, shapes=shapes)


@op
def sub(input, other, alpha=1):
    """``input - alpha * other`` with NumPy broadcasting (``torch.sub``; computed as ``add`` with
    ``-alpha``, like ATen).

    Backward: ``sub.backward(grad_output, input, other, alpha=1)`` -> ``(grad_input, grad_other)``:
    ``grad_input`` as in :func:`add` (**a read-only view of ``grad_output``** when ``input`` has the
    output's size), ``grad_other = -alpha * grad_output`` summed to ``other``'s shape (a new array).
    """
    alpha = _alpha("sub", alpha)
    a, b, out_shape, dtype = prepare("sub", input, other)
    return apply("add", a, b, out_shape, dtype, -alpha)


@sub.defbackward
def _(grad_output, input, other, alpha=1):
    alpha = _alpha("sub", alpha)
    a, b, out_shape, dtype = prepare("sub", input, other)
    g = grad_like("sub", grad_output, out_shape, dtype)
    ga = gb = None
    if isinstance(a, np.ndarray):
        ga = passthrough(g, a.shape) if a.size == g.size else _reduce.sum_to_shape(g, a.shape)
    if isinstance(b, np.ndarray):
        gb = _reduce.sum_to_shape(g, b.shape)
        gb = apply("mul", gb, -alpha, gb.shape, dtype, out=None if gb.size == g.size else gb)
    return ga, gb


@sub.defexplain
def _(shape, dtype, other=None, alpha=1, shapes=None, **params):
    return _explain_binary("add", shape, dtype, other, note="sub runs the add kernel with -alpha", shapes=shapes)


# ---------------------------------------------------------------------------------------------
# mul / div


@op
def mul(input, other):
    """``input * other`` with NumPy broadcasting (``torch.mul``).

    Backward: ``mul.backward(grad_output, input, other)`` -> ``(grad_output * other,
    grad_output * input)``, each summed to its operand's shape; ``None`` for a scalar operand.
    """
    a, b, out_shape, dtype = prepare("mul", input, other)
    return apply("mul", a, b, out_shape, dtype)


@mul.defbackward
def _(grad_output, input, other):
    a, b, out_shape, dtype = prepare("mul", input, other)
    g = grad_like("mul", grad_output, out_shape, dtype)
    ga = gb = None
    if isinstance(a, np.ndarray):
        ga = _reduce.sum_to_shape(apply("mul", g, b, out_shape, dtype), a.shape)
    if isinstance(b, np.ndarray):
        gb = _reduce.sum_to_shape(apply("mul", g, a, out_shape, dtype), b.shape)
    return ga, gb


@mul.defexplain
def _(shape, dtype, other=None, shapes=None, **params):
    return _explain_binary("mul", shape, dtype, other, shapes=shapes)


_ROUNDING = {None: "div", "trunc": "div_trunc", "floor": "div_floor"}


def _rounding(rounding_mode):
    return _ROUNDING[choice("div", "rounding_mode", rounding_mode, list(_ROUNDING))]


@op
def div(input, other, rounding_mode=None):
    """``input / other`` with NumPy broadcasting (``torch.div``; Caffe "RealDiv").

    ``rounding_mode``: ``None`` (true division), ``"trunc"`` (rounded toward zero) or ``"floor"``
    (rounded down, Python's ``//`` on floats, ATen's algorithm). Division by zero gives inf/nan.

    Backward: ``div.backward(grad_output, input, other, rounding_mode=None)`` -> ``(grad_output /
    other, -grad_output * (input / other) / other)``, summed to each operand's shape; with a
    rounding mode both are zero (as in PyTorch); ``None`` for a scalar operand.
    """
    fname = _rounding(rounding_mode)
    a, b, out_shape, dtype = prepare("div", input, other)
    return apply(fname, a, b, out_shape, dtype)


@div.defbackward
def _(grad_output, input, other, rounding_mode=None):
    fname = _rounding(rounding_mode)
    a, b, out_shape, dtype = prepare("div", input, other)
    g = grad_like("div", grad_output, out_shape, dtype)
    arrays = [isinstance(a, np.ndarray), isinstance(b, np.ndarray)]
    if fname != "div":
        return tuple(np.zeros(x.shape, dtype) if is_arr else None for x, is_arr in zip((a, b), arrays))
    ga = gb = None
    if arrays[0]:
        ga = _reduce.sum_to_shape(apply("div", g, b, out_shape, dtype), a.shape)
    if arrays[1]:
        q = apply("div", a, b, out_shape, dtype)  # a / b
        apply("mul", g, q, out_shape, dtype, out=q)  # g * (a / b)
        apply("negdiv", q, b, out_shape, dtype, out=q)  # -(g * (a / b)) / b
        gb = _reduce.sum_to_shape(q, b.shape)
    return ga, gb


@div.defexplain
def _(shape, dtype, other=None, rounding_mode=None, shapes=None, **params):
    return _explain_binary(_rounding(rounding_mode), shape, dtype, other, shapes=shapes)


__all__ = ["add", "sub", "mul", "div"]
