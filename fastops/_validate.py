"""Input validation shared by every op. Runs in Python, before any kernel.

Errors name the op, the argument and the shapes/dtypes involved. Accepted arrays are returned
C-contiguous, native byte order, never the caller's array when a kernel would write to it.
"""
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(x):
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return f"{type(x).__name__}"


def float_array(op, name, x, dtype=None):
    """Validate a float32/float64 ndarray argument; return it contiguous and in native byte order.

    ``dtype``: the dtype the other array arguments already fixed (mixed dtypes raise).
    The result may be ``x`` itself: kernels only read it.
    """
    if isinstance(x, (np.float32, np.float64)):
        x = np.asarray(x)  # a NumPy float scalar is taken as a 0-d array
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: argument '{name}' must be a numpy.ndarray, got {_describe(x)}")
    dt = x.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(
            f"{op}: argument '{name}' must have dtype float32 or float64, got {dt} (shape {x.shape})"
        )
    if not dt.isnative:
        dt = dt.newbyteorder("=")
        x = x.astype(dt)
    if dtype is not None and dt != dtype:
        raise TypeError(
            f"{op}: argument '{name}' has dtype {dt} but the other arguments are {np.dtype(dtype)}; "
            f"mixed float dtypes are not supported (cast one explicitly)"
        )
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x


def inplace_target(op, name, x):
    """An argument an ``inplace=True`` op writes to: a writeable, C-contiguous, native float array."""
    if not isinstance(x, np.ndarray):
        float_array(op, name, x)  # raises the TypeError
    if not (x.flags.c_contiguous and x.flags.writeable and x.dtype.isnative):
        raise ValueError(
            f"{op}: inplace=True needs a writeable, C-contiguous, native-byte-order array "
            f"(got shape {x.shape}, strides {x.strides}, writeable={x.flags.writeable})"
        )
    return float_array(op, name, x)


def float_arrays(op, names, arrays):
    """Validate several array arguments that must share one float dtype. ``None`` passes through."""
    out, dtype = [], None
    for name, a in zip(names, arrays):
        if a is None:
            out.append(None)
            continue
        a = float_array(op, name, a, dtype)
        dtype = a.dtype
        out.append(a)
    return out


def operand(op, name, x):
    """An arithmetic operand: a float ndarray, or a Python/NumPy real scalar (dtype decided later)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(
            f"{op}: argument '{name}' must be a float32/float64 numpy.ndarray or a real scalar, "
            f"got {_describe(x)}"
        )
    return x


def real_scalar(op, name, v, *, minimum=None, maximum=None, min_open=False, max_open=False):
    """A float hyper-parameter (slope, alpha, p, ...): a real number inside an optional range."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: argument '{name}' must be a real number, got {type(v).__name__}")
    v = float(v)
    if v != v:
        raise ValueError(f"{op}: argument '{name}' must not be NaN")
    if minimum is not None and (v < minimum or (min_open and v == minimum)):
        rel = ">" if min_open else ">="
        raise ValueError(f"{op}: argument '{name}' must be {rel} {minimum}, got {v}")
    if maximum is not None and (v > maximum or (max_open and v == maximum)):
        rel = "<" if max_open else "<="
        raise ValueError(f"{op}: argument '{name}' must be {rel} {maximum}, got {v}")
    return v


def int_scalar(op, name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: argument '{name}' must be an int, got {type(v).__name__}")
    return int(v)


def choice(op, name, v, options):
    if v not in options:
        raise ValueError(f"{op}: argument '{name}' must be one of {list(options)}, got {v!r}")
    return v


def dim(op, name, d, ndim):
    """Normalise a PyTorch-style dimension index (negative counts from the end)."""
    d = int_scalar(op, name, d)
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if d < lo or d > hi:
        raise ValueError(f"{op}: argument '{name}'={d} out of range [{lo}, {hi}] for an array of rank {ndim}")
    return d % max(ndim, 1)


def same_shape(op, names, arrays):
    shapes = [a.shape for a in arrays]
    if any(s != shapes[0] for s in shapes):
        desc = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(f"{op}: shapes must match, got {desc}")


def grad_like(op, grad_output, shape, dtype, name="grad_output"):
    """Validate an output gradient: same dtype as the forward's inputs and the output's shape."""
    g = float_array(op, name, grad_output, dtype)
    if g.shape != tuple(shape):
        raise ValueError(f"{op}.backward: '{name}' has shape {g.shape}, expected the output shape {tuple(shape)}")
    return g


def nonbatch_nonempty(op, name, x, first=1):
    """PyTorch's check of many kernels (pooling, padding, resampling): every dim of ``x`` (an array
    or a shape) from ``first`` on, i.e. all but the batch dim, must be non-zero; raises ValueError
    naming the op and the argument (torch raises "Expected input to have non-zero size for non-batch
    dimensions")."""
    shape = tuple(getattr(x, "shape", x))
    if any(s == 0 for s in shape[first:]):
        raise ValueError(f"{op}: argument '{name}' must have non-zero size in every non-batch dim, got shape {shape}")
