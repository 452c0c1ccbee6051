"""Op table: activations (OPS.md "Activations and elementwise")."""
import math

import numpy as np

from . import ErrorCase, OpInfo, Sample, away_from, randn

# Shapes every pointwise op is sampled at: scalar (0-d), empty, odd 1-D, 2-D, 4-D, and one above the
# parallel threshold of the transcendental class (2**13) so both kernels of each op are exercised;
# the cheap class's parallel kernel is reached by the 70000-element sample.
POINTWISE_SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4, 5), (9000,), (70001,)]


def _pointwise_samples(kinks=(), scale=3.0, kwargs_list=({},), shapes=POINTWISE_SHAPES):
    def samples(rng, dtype):
        out = []
        for kw in kwargs_list:
            for shape in shapes:
                x = away_from(randn(rng, shape, np.float64, scale), kinks, 1e-2).astype(dtype)
                out.append(Sample((x,), dict(kw), desc=str(shape)))
        return out

    return samples


def _pointwise_errors(op_name, extra=()):
    def errors():
        x = np.ones((2, 3), np.float32)
        cases = [
            ErrorCase((np.ones(3, np.int64),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.ones(3, np.complex64),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.ones(3, np.float16),), {}, TypeError, "float32 or float64"),
            ErrorCase((np.array(["a"], dtype=object),), {}, TypeError, "float32 or float64"),
            ErrorCase(([1.0, 2.0],), {}, TypeError, "numpy.ndarray"),
        ]
        cases.extend(ErrorCase((x,), kw, exc, m) for kw, exc, m in extra)
        return cases

    return errors


def _bench(rng, dtype, size):
    n = {"small": 100, "large": 1 << 24}[size]
    return Sample((randn(rng, (n,), dtype),))


def _erf(x):
    # float64 reference erf (math.erf is correctly rounded enough; vectorized over the array)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype) if x.size else x.copy()


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus_ref(x, beta=1.0, threshold=20.0):
    z = x * beta
    with np.errstate(over="ignore"):
        return np.where(z > threshold, x, np.log1p(np.exp(np.minimum(z, threshold))) / beta).astype(x.dtype)


def _entry(name, ref, torch_ref, kinks=(), scale=3.0, kwargs_list=({},), extra_errors=(), tol=None):
    info = OpInfo(
        name=name,
        samples=_pointwise_samples(kinks, scale, kwargs_list),
        ref=ref,
        torch_ref=torch_ref,
        grad_args=(0,),
        errors=_pointwise_errors(name, extra_errors),
        bench=_bench,
    )
    if tol:
        info.tol = tol
    return info


def _dt(x, v):
    return np.asarray(v, dtype=x.dtype)


TABLE = [
    _entry("relu", lambda x, inplace=False: np.maximum(x, _dt(x, 0)), lambda t, x, **k: t.nn.functional.relu(x), (0.0,)),
    _entry(
        "leaky_relu",
        lambda x, negative_slope=0.01, inplace=False: np.where(x > 0, x, x * _dt(x, negative_slope)),
        lambda t, x, **k: t.nn.functional.leaky_relu(x, **k),
        (0.0,),
        kwargs_list=({}, {"negative_slope": 0.2}, {"negative_slope": -1.5}),
        extra_errors=[({"negative_slope": "a"}, TypeError, "negative_slope")],
    ),
    _entry(
        "relu6",
        lambda x, inplace=False: np.clip(x, _dt(x, 0), _dt(x, 6)),
        lambda t, x, **k: t.nn.functional.relu6(x),
        (0.0, 6.0),
        scale=5.0,
    ),
    _entry(
        "elu",
        lambda x, alpha=1.0, inplace=False: np.where(x > 0, x, _dt(x, alpha) * np.expm1(np.minimum(x, 0))),
        lambda t, x, **k: t.nn.functional.elu(x, **k),
        (0.0,),
        kwargs_list=({}, {"alpha": 0.5}),
        extra_errors=[({"alpha": None}, TypeError, "alpha")],
    ),
    _entry("sigmoid", _sig, lambda t, x, **k: t.sigmoid(x), scale=5.0),
    _entry("tanh", np.tanh, lambda t, x, **k: t.tanh(x)),
    _entry(
        "gelu",
        lambda x, approximate="none": (
            0.5 * x * (1 + _erf(x / np.sqrt(2)))
            if approximate == "none"
            else 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
        ).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.gelu(x, **k),
        kwargs_list=({}, {"approximate": "tanh"}),
        extra_errors=[({"approximate": "erf"}, ValueError, "approximate")],
    ),
    _entry("silu", lambda x, inplace=False: x * _sig(x), lambda t, x, **k: t.nn.functional.silu(x)),
    _entry(
        "softplus",
        _softplus_ref,
        lambda t, x, **k: t.nn.functional.softplus(x, **k),
        kwargs_list=({}, {"beta": 2.0, "threshold": 3.0}, {"beta": 0.5}),
        extra_errors=[({"beta": 0.0}, ValueError, "beta")],
    ),
    _entry(
        "hardsigmoid",
        lambda x, inplace=False: np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.hardsigmoid(x),
        (-3.0, 3.0),
        scale=4.0,
    ),
    _entry(
        "hardswish",
        lambda x, inplace=False: (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.hardswish(x),
        (-3.0, 3.0),
        scale=4.0,
    ),
    _entry(
        "mish",
        lambda x, inplace=False: (x * np.tanh(np.logaddexp(0, x))).astype(x.dtype),
        lambda t, x, **k: t.nn.functional.mish(x),
        scale=4.0,
    ),
]
