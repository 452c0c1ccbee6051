"""Op table entries of the regularization family: dropout, dropout2d.

References: the mask is rebuilt in NumPy from the counter-based generator (``splitmix_uniform``, the
independent NumPy SplitMix64 of the activation table, also used for rrelu), so the forward is
compared exactly, and the torch reference multiplies by the same mask (torch's own generator draws
other masks). ``p == 0``, ``p == 1`` and ``training=False`` need no mask: there torch's own
``F.dropout``/``F.dropout2d`` is the reference.
"""
import warnings

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, randn
from .activation import splitmix_uniform


class BenchSeed(int):
    """A seed for benchmark samples only: with it the baselines run their *own* generators (torch's
    ``F.dropout``, NumPy's ``Generator.random``), i.e. what a torch or NumPy user would run; the
    values then differ from fastops' (timings are what the benchmark compares)."""


def _dt(x):
    return np.dtype(x.dtype).type


def _factors(shape, p, training, seed, dtype, planes):
    """Per-element (or per-plane) factors ``mask / (1 - p)`` in ``dtype``; None for the identity."""
    if not training:
        return None
    n = int(np.prod(shape[:2])) if planes else int(np.prod(shape))
    dt = np.dtype(dtype).type
    if p == 1.0:
        f = np.zeros(n, dt)
    elif p == 0.0:
        f = np.ones(n, dt)
    elif isinstance(seed, BenchSeed):
        f = np.where(np.random.default_rng(int(seed)).random(n, dt) >= p, dt(1.0 / (1.0 - p)), dt(0)).astype(dt)
    else:
        f = np.where(splitmix_uniform(seed, n, dt) >= p, dt(1.0 / (1.0 - p)), dt(0)).astype(dt)
    if planes:
        return f.reshape(tuple(shape[:2]) + (1,) * (len(shape) - 2))
    return f.reshape(shape)


def _ref(planes):
    def ref(x, p=0.5, training=True, inplace=False, seed=None):
        f = _factors(x.shape, p, training, seed, x.dtype, planes)
        return x.copy() if f is None else (x * f).astype(x.dtype)

    return ref


def _torch_ref(planes):
    def ref(t, x, p=0.5, training=True, inplace=False, seed=None):
        F = t.nn.functional
        own = F.dropout2d if planes else F.dropout
        if not training or p in (0.0, 1.0) or isinstance(seed, BenchSeed):
            with warnings.catch_warnings():  # dropout2d on 2-D, 3-D, 5-D input: torch warns, behaves as documented
                warnings.simplefilter("ignore", UserWarning)
                return own(x, p, training)
        np_dtype = np.float32 if x.dtype == t.float32 else np.float64
        return x * t.from_numpy(_factors(tuple(x.shape), p, training, seed, np_dtype, planes))

    return ref


_DROPOUT_KW = (
    {"seed": 3},
    {"p": 0.2, "seed": 11},
    {"p": 0.9, "seed": 2**40 + 1},
    {"p": 0.5, "seed": -5},
    {"p": 0.0, "seed": 1},
    {"p": 1.0},
    {"p": 0.3, "training": False},
)


def _dropout_samples(rng, dtype):
    out = []
    for shape in [(3, 4, 5), (37,), (2, 3)]:
        for kw in _DROPOUT_KW:
            out.append(Sample((randn(rng, shape, dtype),), dict(kw)))
    out.append(Sample((np.asarray(randn(rng, (), dtype)),), {"p": 0.4, "seed": 2}, "0-d"))
    out.append(Sample((randn(rng, (0, 4), dtype),), {"seed": 2}, "empty"))
    return out


def _dropout2d_samples(rng, dtype):
    out = []
    for shape in [(3, 4, 5, 6), (2, 5, 7), (4, 6), (2, 3, 2, 3, 2)]:
        for kw in _DROPOUT_KW:
            out.append(Sample((randn(rng, shape, dtype),), dict(kw)))
    out.append(Sample((randn(rng, (2, 3, 0, 4), dtype),), {"seed": 2}, "empty"))
    return out


def _errors(name, planes):
    def errors():
        x = np.ones((2, 3, 4, 4), np.float32)
        cases = [
            ErrorCase((np.ones((2, 3, 4), np.int64),), {"seed": 1}, TypeError, "float32 or float64"),
            ErrorCase((np.ones((2, 3, 4), np.float16),), {"seed": 1}, TypeError, "float32 or float64"),
            ErrorCase(([1.0, 2.0],), {"seed": 1}, TypeError, "numpy.ndarray"),
            ErrorCase((x,), {"p": -0.1, "seed": 1}, ValueError, "'p'"),
            ErrorCase((x,), {"p": 1.5, "seed": 1}, ValueError, "'p'"),
            ErrorCase((x,), {"p": 1.5, "training": False}, ValueError, "'p'"),
            ErrorCase((x,), {"p": float("nan"), "seed": 1}, ValueError, "'p'"),
            ErrorCase((x,), {"p": "a", "seed": 1}, TypeError, "'p'"),
            ErrorCase((x,), {"training": "yes", "seed": 1}, TypeError, "training"),
            ErrorCase((x,), {"inplace": 1, "seed": 1}, TypeError, "inplace"),
            ErrorCase((x,), {"seed": 1.5}, TypeError, "seed"),
            ErrorCase((x,), {"seed": "1"}, TypeError, "seed"),
            ErrorCase((x,), {"seed": 2**64}, ValueError, "seed"),
        ]
        if planes:
            cases.append(ErrorCase((np.ones(5, np.float32),), {"seed": 1}, ValueError, "at least 2 dims"))
        return cases

    return errors


def _dropout_bench(rng, dtype, size):
    n = {"small": 100, "large": 1 << 24}[size]
    return Sample((randn(rng, (n,), dtype),), {"p": 0.5, "seed": BenchSeed(1)})


def _dropout2d_bench(rng, dtype, size):
    shape = {"small": (2, 4, 3, 3), "large": (32, 64, 56, 56)}[size]
    return Sample((randn(rng, shape, dtype),), {"p": 0.5, "seed": BenchSeed(1)})


def _paths(kind):
    """Dispatch paths (tests/test_paths.py): the training mask (``kind`` "mask", one draw per
    element, or "planes", one per (N, C) plane) above the parallel threshold at 2 threads; the
    seed is in the kwargs, the reference rebuilds the mask from it (p = 0.5: float32's and
    float64's uniforms fall on the same side of it)."""
    def paths(rng, dtype):
        sfx = "f32" if np.dtype(dtype) == np.float32 else "f64"
        s = Sample((randn(rng, (4, 8, 64, 65), dtype),), {"p": 0.5, "seed": 5}, "(4, 8, 64, 65)")
        return [PathCase(f"training_{kind}", s, expect={"kernel": f"dropout_{kind}_{sfx}_parallel", "backend": "parallel"})]

    return paths


_TOL = {np.float32: (1e-6, 1e-7), np.float64: (1e-12, 1e-14)}

TABLE = [
    OpInfo(
        name="dropout",
        samples=_dropout_samples,
        ref=_ref(False),
        torch_ref=_torch_ref(False),
        grad_args=(0,),
        errors=_errors("dropout", False),
        tol=_TOL,
        bench=_dropout_bench,
        paths=_paths("mask"),
    ),
    OpInfo(
        name="dropout2d",
        samples=_dropout2d_samples,
        ref=_ref(True),
        torch_ref=_torch_ref(True),
        grad_args=(0,),
        errors=_errors("dropout2d", True),
        tol=_TOL,
        bench=_dropout2d_bench,
        paths=_paths("planes"),
    ),
]
