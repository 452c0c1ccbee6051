"""Accuracy of the vectorizable transcendental functions in fastops._math against NumPy/libm."""
import math

import numpy as np
import pytest

from fastops import _jit, _math


def _kernel(fn, name):
    def template(x, out):
        for i in range(x.size):
            out[i] = FN(x[i])  # noqa: F821

    return _jit.instantiate(template, f"test_math_{name}", FN=fn)


def _ulps(got, ref, dtype):
    ref = ref.astype(np.float64)
    finfo = np.finfo(dtype)
    ok = np.isfinite(ref) & (np.abs(ref) >= finfo.tiny)
    return np.max(np.abs(got[ok] - ref[ok]) / np.abs(ref[ok])) / finfo.eps


CASES = [
    ("exp32", np.float32, lambda x: np.exp(x.astype(np.float64)), (-87.3, 88.7), 2.0),
    ("exp64", np.float64, np.exp, (-708.3, 709.7), 2.0),
    ("tanh32", np.float32, lambda x: np.tanh(x.astype(np.float64)), (-12, 12), 2.0),
    ("tanh64", np.float64, np.tanh, (-25, 25), 3.0),
    ("expm1_32", np.float32, lambda x: np.expm1(x.astype(np.float64)), (-20, 20), 3.0),
    ("log32", np.float32, lambda x: np.log(x.astype(np.float64)), (1e-30, 1e30), 2.0),
    ("log1p32", np.float32, lambda x: np.log1p(x.astype(np.float64)), (-0.999, 1e6), 2.0),
    # erfc32 flushes to 0 above 9 (erfc(9) = 4e-37, near the float32 normal range's end)
    ("erfc32", np.float32, lambda x: np.array([math.erfc(float(v)) for v in x]), (-4, 9), 4.0),
]


@pytest.mark.parametrize("name,dtype,ref,rng_,max_ulps", CASES, ids=[c[0] for c in CASES])
def test_accuracy(name, dtype, ref, rng_, max_ulps):
    lo, hi = rng_
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 20001), rng.uniform(lo, hi, 20000), rng.standard_normal(5000) * 1e-3])
    if name == "log32":
        x = np.exp(rng.uniform(np.log(lo), np.log(hi), 40000))
    x = x[(x >= lo) & (x <= hi) | (name != "log32")].astype(dtype)
    out = np.empty_like(x)
    _kernel(getattr(_math, name), name)(x, out)
    assert _ulps(out, ref(x), dtype) <= max_ulps


@pytest.mark.parametrize(
    "name,dtype",
    [("exp32", np.float32), ("exp64", np.float64), ("tanh32", np.float32), ("tanh64", np.float64), ("erfc32", np.float32), ("log1p32", np.float32)],
)
def test_special_values(name, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 1e4, -1e4], dtype)
    out = np.empty_like(x)
    _kernel(getattr(_math, name), name + "_sv")(x, out)
    with np.errstate(over="ignore"):
        if name.startswith("exp"):
            expect = np.exp(x.astype(np.float64)).astype(dtype)
        elif name.startswith("tanh"):
            expect = np.tanh(x)
        elif name == "log1p32":
            x = np.array([np.nan, np.inf, -1.0, 0.0, 1e4, -2.0, 1e-30, -0.5], dtype)
            out = np.empty_like(x)
            _kernel(getattr(_math, name), name + "_sv2")(x, out)
            with np.errstate(divide="ignore", invalid="ignore"):
                expect = np.log1p(x)
        else:
            expect = np.array([math.erfc(float(v)) if v == v else np.nan for v in x], dtype)
    np.testing.assert_array_equal(out, expect)
