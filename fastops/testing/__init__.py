"""The op table: one entry per op, driving the test suite, the benchmarks and ``fastops bench``.

Each :class:`OpInfo` says how to make sample inputs (small, seeded, away from kinks), what the op
should compute (an independent NumPy reference, evaluated in float64 by the tests; also the plain
NumPy baseline of the benchmarks), the PyTorch equivalent (tests only, where torch is installed),
which arguments are differentiable, which inputs must raise, tolerances and benchmark shapes.

Conventions for samples: array parameters of the op are passed positionally, in signature order
(``None`` for an absent optional array), everything else by keyword (except a hyper-parameter
that stands before an array parameter in the signature, like ``layer_norm``'s ``normalized_shape``). ``op.backward(grad_output,
*args, **kwargs)`` then returns one entry per array parameter (:func:`grad_entries` maps positions to
entries; ``hyper_args`` names the positional hyper-parameters, which have none).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    desc: str = ""

    def __repr__(self):
        shapes = [getattr(a, "shape", a) for a in self.args]
        return f"Sample({self.desc or ''} {shapes} {self.kwargs})"


@dataclass
class ErrorCase:
    args: tuple
    kwargs: dict
    exc: type
    match: str = ""


@dataclass
class PathCase:
    """One dispatch path of an op and a sample that reaches it (large enough for the parallel
    kernels where the path has them). ``force``: the ``fastops._dispatch.force`` choices the call
    runs under (empty: the shape alone selects the path). ``expect``: what
    ``op.explain(sample's first shape, dtype, **explain)`` must report at 2 threads (checked, so a
    case that no longer reaches its path fails). ``tol``: ``{dtype: (rtol, atol)}`` where this case
    needs its own (e.g. a long reduction), else the entry's."""

    path: str
    sample: Sample
    force: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    explain: dict = field(default_factory=dict)
    tol: dict = field(default_factory=dict)


@dataclass
class OpInfo:
    name: str
    samples: Callable  # (rng, dtype) -> list[Sample]
    ref: Callable  # NumPy reference: ref(*args, **kwargs), dtype-preserving, also the NumPy baseline
    torch_ref: Optional[Callable] = None  # (torch, *tensors, **kwargs) -> tensor | tuple
    grad_args: tuple = (0,)  # positions of differentiable arguments
    grad_kwargs: tuple = ()  # names of differentiable array parameters passed by keyword
    hyper_args: tuple = ()  # positions of hyper-parameters passed positionally (no backward entry)
    errors: Callable = lambda: []  # () -> list[ErrorCase]
    tol: dict = field(default_factory=lambda: {np.float32: (2e-5, 2e-6), np.float64: (1e-10, 1e-12)})
    # against torch only, where torch itself is less precise than ``tol`` (a reason per entry)
    torch_tol: dict = field(default_factory=dict)
    bench: Optional[Callable] = None  # (rng, dtype, "small"|"large") -> Sample
    bench_sizes: tuple = ("small", "large")
    deterministic: bool = True
    # (rng, dtype) -> list[PathCase]: each dispatch path of the op, checked by tests/test_paths.py
    # against the reference, the finite-difference VJP and bitwise across thread counts
    paths: Optional[Callable] = None
    nondiff_kinks: bool = False  # documentation only: sampler keeps inputs away from kinks
    extra: dict = field(default_factory=dict)

    @property
    def op(self):
        import fastops

        obj = fastops
        for part in self.name.split("."):
            obj = getattr(obj, part)
        return obj


def away_from(x, points, margin=1e-2):
    """Move elements of ``x`` closer than ``margin`` to any of ``points`` to distance ``margin``."""
    x = np.array(x, copy=True)
    for p in points:
        d = x - p
        close = np.abs(d) < margin
        x[close] = p + np.where(d[close] >= 0, margin, -margin)
    return x


def randn(rng, shape, dtype, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


# one module per op family of the package (fastops/<family>/), in catalogue order (each defines
# TABLE)
FAMILIES = (
    "activation",
    "arithmetic",
    "loss",
    "shape",
    "pooling",
    "conv",
    "regularization",
    "norm",
    "attention",
    "recurrent",
)


def _all():
    import importlib

    table = []
    for fam in FAMILIES:
        table.extend(importlib.import_module(f"{__name__}.{fam}").TABLE)
    return table


def table():
    """Every OpInfo, in catalogue order."""
    return _all()


def get(name):
    for info in _all():
        if info.name == name:
            return info
    raise KeyError(name)


__all__ = ["Sample", "ErrorCase", "PathCase", "OpInfo", "away_from", "randn", "table", "get", "tree_leaves", "tree_map",
           "tree_add", "is_arrays", "check_vjp"]


def grad_entries(name, args):
    """``{position: index}``: where each positional argument of a call of op ``name`` finds its
    gradient in ``op.backward``'s result. The backward returns one entry per *array* parameter in
    signature order (``None`` for an absent one, a scalar operand or a non-differentiable one); a
    hyper-parameter that is passed positionally because it stands before array parameters
    (``layer_norm``'s ``normalized_shape``, ``group_norm``'s ``num_groups``: the entry's
    ``hyper_args``) has none."""
    try:
        hyper = get(name).hyper_args
    except KeyError:  # not in the table: no positional hyper-parameters
        hyper = ()
    out = {}
    for i in range(len(args)):
        if i not in hyper:
            out[i] = len(out)
    return out


def tree_leaves(value):
    """The arrays and Nones of ``value`` in order, looking inside tuples and lists (a recurrent
    op's ``hx = (h0, c0)`` and ``params`` list, its ``(output, (h_n, c_n))`` result, their
    gradients): the flat view the generic tests compare and perturb."""
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in tree_leaves(v)]
    return [value]


def tree_map(fn, value):
    """``fn`` applied to every array of ``value``, tuples and lists rebuilt with their own type
    (anything else, None included, is kept)."""
    if isinstance(value, np.ndarray):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(tree_map(fn, v) for v in value)
    return value


def tree_add(a, t, step):
    """``a + step * t`` over the arrays of ``a`` (an array or nested tuples/lists; ``t`` alike)."""
    if isinstance(a, np.ndarray):
        return a + step * t
    return type(a)(tree_add(x, y, step) for x, y in zip(a, t))


def is_arrays(a):
    """An array argument, or a non-empty tuple/list of arrays (``hx = (h0, c0)``, ``params``)."""
    if isinstance(a, np.ndarray):
        return True
    leaves = tree_leaves(a) if isinstance(a, (tuple, list)) else []
    return bool(leaves) and all(isinstance(v, np.ndarray) for v in leaves)


def check_vjp(info, sample, cot, grads, rng, eps=1e-6):
    """JAX-style check_vjp of a float64 call: ``<(f(x + e t) - f(x - e t)) / 2e, cot> == <t,
    backward(cot)>`` for a random direction ``t`` over every differentiable, non-empty float
    argument of ``info.grad_args`` (arrays or tuples/lists of arrays). Returns ``(fd, an, scale)``
    (None when nothing is differentiable); the caller asserts ``|fd - an| <= 1e-6 * scale + 1e-9``."""
    args = list(sample.args)
    entry = grad_entries(info.name, args)
    dirs = {}
    for i in info.grad_args:
        a = args[i]
        if is_arrays(a) and all(v.size and v.dtype.kind == "f" for v in tree_leaves(a)):  # not a bool mask
            dirs[i] = tree_map(lambda v: rng.standard_normal(v.shape), a)
            got = tree_leaves(grads[entry[i]])
            assert len(got) == len(tree_leaves(a)) and all(
                g is not None and g.shape == v.shape and g.dtype == v.dtype for g, v in zip(got, tree_leaves(a))), \
                f"{info.name} {sample}: gradient of argument {i}"
    if not dirs:
        return None

    def shifted(sign):
        a = list(args)
        for i, t in dirs.items():
            a[i] = tree_add(args[i], t, sign * eps)
        return tree_leaves(info.op(*a, **sample.kwargs))

    def dot(i, t, absolute=False):
        return sum(np.sum(np.abs(g * d) if absolute else g * d)
                   for g, d in zip(tree_leaves(grads[entry[i]]), tree_leaves(t)))

    plus, minus = shifted(1), shifted(-1)
    fd = sum(np.sum((p - m) / (2 * eps) * c) for p, m, c in zip(plus, minus, tree_leaves(cot)))
    an = sum(dot(i, t) for i, t in dirs.items())
    scale = sum(dot(i, t, True) for i, t in dirs.items()) + 1e-12
    return fd, an, scale


def to_float64(value: Any):
    """Cast arrays (also inside tuples/lists) to float64 for the reference computation."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    if isinstance(value, (tuple, list)):
        return type(value)(to_float64(v) for v in value)
    return value


def activation_ref(x, activation=None, activation_param=None):
    """NumPy reference of a fused ``activation=`` epilogue (float64 in, float64 out)."""
    import math

    if activation is None:
        return x
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    if activation == "leaky_relu":
        s = 0.01 if activation_param is None else activation_param
        return np.where(x > 0, x, s * x)
    if activation == "elu":
        a = 1.0 if activation_param is None else activation_param
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if activation == "tanh":
        return np.tanh(x)
    if activation == "gelu":
        erf = np.vectorize(math.erf, otypes=[np.float64])
        return 0.5 * x * (1 + erf(x / np.sqrt(2))) if x.size else x.copy()
    if activation == "silu":
        return x / (1 + np.exp(-x))
    raise ValueError(activation)


def activation_torch(torch, y, activation=None, activation_param=None):
    """The torch equivalent of a fused ``activation=`` epilogue applied to tensor ``y``."""
    F = torch.nn.functional
    if activation is None:
        return y
    if activation == "leaky_relu":
        return F.leaky_relu(y, 0.01 if activation_param is None else activation_param)
    if activation == "elu":
        return F.elu(y, 1.0 if activation_param is None else activation_param)
    return {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "gelu": F.gelu, "silu": F.silu}[activation](y)
