"""The shared fused-activation epilogue (``fastops._epilogue``)."""
import numpy as np
import pytest

from fastops import _epilogue
from fastops.testing import activation_ref


@pytest.mark.parametrize("name", (None,) + _epilogue.NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activated_and_grad_match_reference(name, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(257) * 3).astype(dtype)
    x[np.abs(x) < 1e-2] = 0.5
    param = 0.2 if name in ("leaky_relu", "elu") else None
    epi = _epilogue.parse("op", name, param)
    x0 = x.copy()
    y = _epilogue.activated(x, epi)
    assert y.dtype == dtype
    np.testing.assert_array_equal(x, x0)  # input unmodified
    ref = activation_ref(x.astype(np.float64), name, param)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    # gradient against central differences of the reference, in float64
    x64 = x.astype(np.float64)
    g = rng.standard_normal(x.shape)
    h = 1e-6
    fd = (activation_ref(x64 + h, name, param) - activation_ref(x64 - h, name, param)) / (2 * h) * g
    got = _epilogue.grad(g, x64, epi)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7)


def test_fused_scalars_compile_in_a_template():
    from numba import prange  # noqa: F401

    from fastops import _jit

    def tmpl(x, out, a, b):
        for i in range(x.size):
            out[i] = ACT(x[i], a, b)  # noqa: F821

    for name in (None, "relu", "gelu", "elu"):
        epi = _epilogue.parse("op", name)
        k = _jit.instantiate(tmpl, f"test_epi_{epi.key}_f32", ACT=_epilogue.act_scalar(epi, np.float32))
        x = np.linspace(-3, 3, 11, dtype=np.float32)
        out = np.empty_like(x)
        k(x, out, np.float32(epi.a), np.float32(epi.b))
        np.testing.assert_allclose(out, activation_ref(x.astype(np.float64), name), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "act, param, exc, match",
    [
        ("swish", None, ValueError, "activation"),
        (3, None, TypeError, "activation"),
        ("relu", 0.1, ValueError, "activation_param"),
        ("leaky_relu", "x", TypeError, "activation_param"),
        ("elu", float("nan"), ValueError, "activation_param"),
    ],
)
def test_parse_errors(act, param, exc, match):
    with pytest.raises(exc, match=match):
        _epilogue.parse("conv2d", act, param)
