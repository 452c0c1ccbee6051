"""Normalization ops: running-statistic updates vs torch, stability, dispatch, fused activations.

The parallel kernels run from the op table's ``paths`` (tests/test_paths.py: against the
reference, the finite-difference VJP and bitwise across thread counts)."""
import numpy as np
import pytest

import fastops
from fastops import _threads

from ..conftest import requires_torch, torch


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5), (2, 3, 2, 3, 4)], ids=lambda s: f"r{len(s)}")
def test_batch_norm_running_stats_match_torch_over_steps(shape, dtype):
    rng = np.random.default_rng(0)
    C = shape[1]
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    trm, trv = torch.zeros(C, dtype=torch.from_numpy(rm).dtype), torch.ones(C, dtype=torch.from_numpy(rm).dtype)
    w, b = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    for step, momentum in enumerate([0.1, 0.1, 0.5, 1.0, 0.0]):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(dtype)
        y = fastops.batch_norm(x, rm, rv, w, b, training=True, momentum=momentum)
        ty = torch.nn.functional.batch_norm(torch.from_numpy(x), trm, trv, torch.from_numpy(w), torch.from_numpy(b),
                                            True, momentum, 1e-5)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, ty.numpy(), rtol=tol * 10, atol=tol)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=tol, atol=tol)
    # eval with the accumulated statistics
    x = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(
        fastops.batch_norm(x, rm, rv, w, b),
        torch.nn.functional.batch_norm(torch.from_numpy(x), trm, trv, torch.from_numpy(w), torch.from_numpy(b)).numpy(),
        rtol=1e-5, atol=1e-5)


@requires_torch
@pytest.mark.torch
def test_instance_norm_running_stats_match_torch_over_steps():
    rng = np.random.default_rng(1)
    C = 3
    rm, rv = np.zeros(C), np.ones(C)
    trm, trv = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    for step in range(3):
        x = rng.standard_normal((4, C, 5, 2)) * (step + 1) + step
        y = fastops.instance_norm(x, rm, rv, momentum=0.2)
        ty = torch.nn.functional.instance_norm(torch.from_numpy(x), trm, trv, momentum=0.2)
        np.testing.assert_allclose(y, ty.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12, atol=1e-14)
    x = rng.standard_normal((2, C, 7))
    np.testing.assert_allclose(
        fastops.instance_norm(x, rm, rv, use_input_stats=False),
        torch.nn.functional.instance_norm(torch.from_numpy(x), trm, trv, use_input_stats=False).numpy(), rtol=1e-12)


def test_backward_does_not_touch_running_stats_and_none_allowed_in_training():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    rm, rv = np.full(3, 0.5, np.float32), np.full(3, 2.0, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    before = rm.copy(), rv.copy()
    gx, grm, grv, gw, gb = fastops.batch_norm.backward(g, x, rm, rv, None, None, training=True)
    assert grm is None and grv is None and gw is None and gb is None
    assert np.array_equal(rm, before[0]) and np.array_equal(rv, before[1])
    y_none = fastops.batch_norm(x, None, None, training=True)
    y_rs = fastops.batch_norm(x, rm, rv, training=True)
    assert np.array_equal(y_none, y_rs) and not np.array_equal(rm, before[0])
    ro = before[0].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fastops.batch_norm(x, ro, rv, training=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_large_mean_is_stable(dtype):
    """mean 1e4, std 1: shifted sums keep float32 statistics accurate (E[x^2] - E[x]^2 would lose all digits)."""
    rng = np.random.default_rng(3)
    x64 = rng.standard_normal((8, 4, 16, 16)) + 1e4
    x = x64.astype(dtype)
    xr = x.astype(np.float64)

    def ref(axes):
        m = xr.mean(axis=axes, keepdims=True)
        return (xr - m) / np.sqrt(((xr - m) ** 2).mean(axis=axes, keepdims=True) + 1e-5)

    tol = 2e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(fastops.batch_norm(x, None, None, training=True), ref((0, 2, 3)), atol=tol)
    np.testing.assert_allclose(fastops.instance_norm(x), ref((2, 3)), atol=tol)
    np.testing.assert_allclose(fastops.group_norm(x, 2), _gn(xr, 2), atol=tol)
    np.testing.assert_allclose(fastops.layer_norm(x, (16, 16)), ref((2, 3)), atol=tol)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    fastops.batch_norm(x, rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rm, xr.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(rv, xr.var(axis=(0, 2, 3), ddof=1), rtol=5e-3 if dtype == np.float32 else 1e-9)


def _gn(x, G):
    N, C = x.shape[:2]
    xg = x.reshape(N, G, -1)
    m = xg.mean(axis=2, keepdims=True)
    return ((xg - m) / np.sqrt(((xg - m) ** 2).mean(axis=2, keepdims=True) + 1e-5)).reshape(x.shape)


def test_explain_reports_the_dispatch():
    with fastops.threads(1):
        d = fastops.batch_norm.explain((32, 64, 56, 56), "float32", training=True, activation="relu")
        assert d["backend"] == "serial" and d["kernel"] == "norm_affine_relu_f32_serial"
    if _threads.max_threads() >= 2:
        with fastops.threads(2):
            assert fastops.batch_norm.explain((32, 64, 56, 56), "float32")["backend"] == "parallel"
            assert fastops.layer_norm.explain((64, 512, 768), "float32", normalized_shape=768)["backend"] == "parallel"
            assert fastops.group_norm.explain((16, 256, 28, 28), "float32", num_groups=32)["kernel"].startswith("norm_grp_fwd")
            assert fastops.instance_norm.explain((1, 2, 4, 4), "float64")["backend"] == "serial"


def test_fused_activation_equals_unfused():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    for act, param in [("relu", None), ("relu6", None), ("leaky_relu", 0.3), ("elu", 0.5), ("sigmoid", None),
                       ("tanh", None), ("gelu", None), ("silu", None)]:
        y = fastops.batch_norm(x, None, None, w, b, training=True, activation=act, activation_param=param)
        pre = fastops.batch_norm(x, None, None, w, b, training=True)
        f = getattr(fastops, act)
        ref = f(pre, param) if param is not None else f(pre)
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
        g = rng.standard_normal(x.shape).astype(np.float32)
        gpre = (f.backward(g, pre, param) if param is not None else f.backward(g, pre))[0]
        fused = fastops.batch_norm.backward(g, x, None, None, w, b, training=True, activation=act, activation_param=param)
        plain = fastops.batch_norm.backward(gpre, x, None, None, w, b, training=True)
        for a, e in zip(fused, plain):
            if e is not None:
                np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)
