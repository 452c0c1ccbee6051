"""scaled_dot_product_attention: float-mask gradients, dropout, dispatch, the forced paths against each
other (each path against the reference and across thread counts: the table's ``paths``,
tests/test_paths.py)."""
import numpy as np
import pytest

import fastops
from fastops import _threads
from fastops.testing.attention import sdpa_ref

f = fastops.scaled_dot_product_attention


def _qkv(rng, qs, ks, vs, dtype):
    return [rng.standard_normal(s).astype(dtype) for s in (qs, ks, vs)]


def test_explain_serial_small_parallel_large():
    with fastops.threads(min(2, _threads.max_threads())):
        d = f.explain((1, 1, 8, 4))
        assert d["path"] == "blocked" and d["backend"] == "serial"
        if _threads.max_threads() >= 2:
            assert f.explain((2, 2, 128, 16))["backend"] == "parallel"
        d = f.explain((1, 8, 1024, 64), "float32")
        assert d["path"] == "tiled" and d["kernel"].startswith("sdpa_tiled_fwd_f32")
        assert d["block_rows"] * 1024 * 4 <= 1 << 20  # one score block: at most 1 MiB
        d = f.explain((1, 8, 1024, 48), "float32")  # E no multiple of 64
        assert d["path"] == "rows" and d["kernel"].startswith("sdpa_rows_probs_f32")
        assert f.explain((1, 8, 1024, 64), "float64")["path"] == "rows"
        assert f.explain((1, 8, 128, 64), "float32", key_shape=(1, 8, 20000, 64))["path"] == "blocked"


@pytest.mark.parametrize("mshape", [(1, 6), (3, 1, 6), (2, 1, 4, 6), (2, 3, 4, 6)])
def test_float_mask_gradient_matches_torch(mshape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    q, k, v = _qkv(rng, (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 3), np.float64)
    m = rng.standard_normal(mshape)
    m[..., 1] = -np.inf  # masked positions get a zero gradient
    g = rng.standard_normal((2, 3, 4, 3))
    tq, tk, tv, tm = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v, m)]
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm)
    out.backward(torch.from_numpy(g))
    np.testing.assert_allclose(f(q, k, v, m), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = f.backward(g, q, k, v, m)
    for got, t in zip(grads, (tq, tk, tv, tm)):
        assert got.shape == t.shape
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-9, atol=1e-11)
    # boolean masks give no mask gradient
    assert f.backward(g, q, k, v, m > 0)[3] is None


def test_float_mask_gradient_finite_differences():
    rng = np.random.default_rng(2)
    q, k, v = _qkv(rng, (2, 5, 3), (2, 7, 3), (2, 7, 2), np.float64)
    m = rng.standard_normal((1, 5, 7))
    c = rng.standard_normal((2, 5, 2))
    t = rng.standard_normal(m.shape)
    eps = 1e-6
    fd = np.sum((f(q, k, v, m + eps * t) - f(q, k, v, m - eps * t)) / (2 * eps) * c)
    an = np.sum(f.backward(c, q, k, v, m)[3] * t)
    assert abs(fd - an) <= 1e-7 * (1 + abs(an))


def test_fully_masked_row_float_mask_gives_zero():
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng, (1, 4, 3), (1, 5, 3), (1, 5, 2), np.float32)
    m = np.zeros((4, 5), np.float32)
    m[2] = -np.inf
    out = f(q, k, v, m)
    assert np.all(out[0, 2] == 0) and np.all(np.isfinite(out))
    gq, gk, gv, gm = f.backward(np.ones_like(out), q, k, v, m)
    assert np.all(gq[0, 2] == 0) and np.all(gm[2] == 0) and all(np.all(np.isfinite(a)) for a in (gk, gv))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_matches_reference_and_gradients(dtype):
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng, (2, 2, 9, 4), (2, 2, 11, 4), (2, 2, 11, 3), dtype)
    kw = dict(dropout_p=0.4, seed=123)
    out = f(q, k, v, None, **kw)
    ref = sdpa_ref(*(a.astype(np.float64) for a in (q, k, v)), None, **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    assert not np.allclose(out, f(q, k, v, None, dropout_p=0.4, seed=124))
    assert np.all(f(q, k, v, None, dropout_p=1.0, seed=1) == 0)
    if dtype == np.float64:  # finite differences: the mask is a function of the seed only
        c = rng.standard_normal(out.shape)
        grads = f.backward(c, q, k, v, None, **kw)
        assert grads[3] is None
        dirs = [rng.standard_normal(a.shape) for a in (q, k, v)]
        eps = 1e-6
        plus = f(*(a + eps * t for a, t in zip((q, k, v), dirs)), None, **kw)
        minus = f(*(a - eps * t for a, t in zip((q, k, v), dirs)), None, **kw)
        fd = np.sum((plus - minus) / (2 * eps) * c)
        an = sum(np.sum(g * t) for g, t in zip(grads[:3], dirs))
        assert abs(fd - an) <= 1e-7 * (1 + abs(an))


def test_gqa_and_batch_broadcast_gradients_sum_over_shared_heads():
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, (2, 4, 5, 3), (2, 2, 6, 3), (2, 2, 6, 3), np.float64)
    g = rng.standard_normal((2, 4, 5, 3))
    got = f.backward(g, q, k, v, None, enable_gqa=True)
    kr, vr = np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1)
    full = f.backward(g, q, kr, vr, None)
    np.testing.assert_allclose(got[0], full[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got[1], full[1].reshape(2, 2, 2, 6, 3).sum(2), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got[2], full[2].reshape(2, 2, 2, 6, 3).sum(2), rtol=1e-12, atol=1e-13)


def test_empty_value_dim_and_empty_keys():
    rng = np.random.default_rng(6)
    q, k, v = _qkv(rng, (2, 4, 3), (2, 5, 3), (2, 5, 0), np.float64)
    assert f(q, k, v).shape == (2, 4, 0)
    gq, gk, gv, _ = f.backward(np.ones((2, 4, 0)), q, k, v)
    assert np.all(gq == 0) and np.all(gk == 0) and gv.shape == (2, 5, 0)


# ---------------------------------------------------------------------------------------------
# BLAS path (attention._rows): forced for tiny shapes, with score blocks of 16 rows (several blocks
# and both backward chunks per batch entry)


@pytest.fixture
def rows_path():
    from fastops import _dispatch

    with _dispatch.force(attention_path="rows", attention_block_rows=16):
        yield


_BLAS_CASES = {
    "plain": ((2, 3, 40, 8), (2, 3, 50, 8), (2, 3, 50, 5), {}),
    "causal-L>S": ((2, 2, 60, 8), (2, 2, 45, 8), (2, 2, 45, 8), {"is_causal": True, "scale": 0.3}),
    "causal-L<S": ((1, 2, 33, 4), (1, 2, 64, 4), (1, 2, 64, 6), {"is_causal": True}),
    "float-mask": ((2, 3, 40, 8), (2, 3, 50, 8), (2, 3, 50, 5), {"mask": (3, 40, 50)}),
    "bool-mask": ((2, 3, 40, 8), (2, 3, 50, 8), (2, 3, 50, 5), {"bool_mask": (40, 50)}),
    "gqa": ((2, 4, 40, 8), (2, 2, 50, 8), (2, 2, 50, 5), {"enable_gqa": True}),
    "broadcast-kv": ((2, 4, 40, 8), (1, 4, 50, 8), (1, 4, 50, 5), {}),
}


@pytest.mark.parametrize("case", list(_BLAS_CASES))
def test_rows_path_matches_torch(rows_path, case):
    torch = pytest.importorskip("torch")
    qs, ks, vs, kw = _BLAS_CASES[case]
    kw = dict(kw)
    rng = np.random.default_rng(7)
    q, k, v = _qkv(rng, qs, ks, vs, np.float64)
    m = None
    if "mask" in kw:
        m = rng.standard_normal(kw.pop("mask"))
        m[:, 3] = -np.inf  # a fully masked row
    if "bool_mask" in kw:
        m = rng.random(kw.pop("bool_mask")) > 0.4
    assert f.explain(qs, "float64", key_shape=ks, value_shape=vs)["path"] == "rows"
    out = f(q, k, v, m, **kw)
    g = rng.standard_normal(out.shape)
    grads = f.backward(g, q, k, v, m, **kw)
    t = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v)]
    tm = None
    if m is not None:
        tm = torch.from_numpy(m.copy())
        if m.dtype != bool:
            tm.requires_grad_()
    ref = torch.nn.functional.scaled_dot_product_attention(*t, attn_mask=tm, **kw)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, tt in zip(grads, t):
        np.testing.assert_allclose(got, tt.grad.numpy(), rtol=1e-9, atol=1e-11)
    if tm is not None and m.dtype != bool:
        np.testing.assert_allclose(grads[3], tm.grad.numpy(), rtol=1e-9, atol=1e-11)
    else:
        assert grads[3] is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_path_dropout_matches_blocked_kernels(dtype):
    from fastops import _dispatch

    rng = np.random.default_rng(8)
    q, k, v = _qkv(rng, (2, 2, 40, 8), (2, 2, 50, 8), (2, 2, 50, 5), dtype)
    m = rng.standard_normal((40, 50)).astype(dtype)
    g = rng.standard_normal((2, 2, 40, 5)).astype(dtype)
    kw = dict(dropout_p=0.3, seed=11)
    with _dispatch.force(attention_path="blocked"):
        blocked = (f(q, k, v, m, **kw),) + f.backward(g, q, k, v, m, **kw)
    with _dispatch.force(attention_path="rows", attention_block_rows=16):
        assert f.explain(q.shape, np.dtype(dtype).name, key_shape=k.shape, value_shape=v.shape)["path"] == "rows"
        rows = (f(q, k, v, m, **kw),) + f.backward(g, q, k, v, m, **kw)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(rows, blocked):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    # the dropout mask is the same function of the seed in both paths
    assert np.array_equal(rows[0] == 0, blocked[0] == 0)


# ---------------------------------------------------------------------------------------------
# Tiled path (attention._tiled, float32 with E and Ev multiples of 64): forced for small shapes
# with score blocks of 16 rows; checked against the float64 BLAS path of the same inputs (an
# independent product code: np.matmul or the blocked kernels), against the float32 BLAS path with the same dropout mask,
# against torch, and for 1 vs 2 threads.


@pytest.fixture
def tiled_path():
    from fastops import _dispatch

    with _dispatch.force(attention_path="tiled", attention_block_rows=16):
        yield


_TILED_CASES = {
    "plain-S-not-multiple-of-64": ((2, 2, 40, 64), (2, 2, 100, 64), (2, 2, 100, 64), {}),
    "E128-Ev64-scale": ((1, 2, 37, 128), (1, 2, 70, 128), (1, 2, 70, 64), {"scale": 0.05}),
    "causal-L>S": ((2, 1, 60, 64), (2, 1, 45, 64), (2, 1, 45, 128), {"is_causal": True}),
    "causal-L<S": ((1, 2, 33, 64), (1, 2, 90, 64), (1, 2, 90, 64), {"is_causal": True}),
    "float-mask": ((2, 2, 40, 64), (2, 2, 50, 64), (2, 2, 50, 64), {"mask": (2, 40, 50)}),
    "bool-mask": ((2, 2, 40, 64), (2, 2, 50, 64), (2, 2, 50, 64), {"bool_mask": (40, 50)}),
    "gqa": ((2, 4, 40, 64), (2, 2, 50, 64), (2, 2, 50, 64), {"enable_gqa": True}),
    "broadcast-kv": ((2, 2, 40, 64), (1, 2, 50, 64), (1, 2, 50, 64), {}),
}


def _case_inputs(rng, case, dtype=np.float32):
    qs, ks, vs, kw = _TILED_CASES[case]
    kw = dict(kw)
    q, k, v = _qkv(rng, qs, ks, vs, dtype)
    m = None
    if "mask" in kw:
        m = rng.standard_normal(kw.pop("mask")).astype(dtype)
        m[..., 3, :] = -np.inf  # a fully masked row
    if "bool_mask" in kw:
        m = rng.random(kw.pop("bool_mask")) > 0.4
    return q, k, v, m, kw


@pytest.mark.parametrize("case", list(_TILED_CASES))
def test_tiled_path_matches_float64(tiled_path, case):
    rng = np.random.default_rng(11)
    q, k, v, m, kw = _case_inputs(rng, case)
    from fastops import _dispatch

    assert f.explain(q.shape, "float32", key_shape=k.shape, value_shape=v.shape)["path"] == "tiled"
    with pytest.raises(ValueError, match="tiled"):  # float32 only
        f.explain(q.shape, "float64", key_shape=k.shape, value_shape=v.shape)
    out = f(q, k, v, m, **kw)
    assert out.dtype == np.float32
    g = rng.standard_normal(out.shape).astype(np.float32)
    grads = f.backward(g, q, k, v, m, **kw)
    up = [a.astype(np.float64) for a in (q, k, v)]
    m64 = m if m is None or m.dtype == bool else m.astype(np.float64)
    with _dispatch.force(attention_path="rows"):  # the float64 reference: the rows path's blocks
        ref = f(*up, m64, **kw)
        refg = f.backward(g.astype(np.float64), *up, m64, **kw)
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(out, sdpa_ref(*up, m64, **kw), rtol=2e-4, atol=2e-5)
    for got, want in zip(grads, refg):
        if want is None:
            assert got is None
        else:
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("case", ["plain-S-not-multiple-of-64", "causal-L>S", "float-mask"])
def test_tiled_path_matches_torch(tiled_path, case):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    q, k, v, m, kw = _case_inputs(rng, case)
    out = f(q, k, v, m, **kw)
    g = rng.standard_normal(out.shape).astype(np.float32)
    grads = f.backward(g, q, k, v, m, **kw)
    t = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v)]
    tm = None if m is None else torch.from_numpy(m.copy()).requires_grad_()
    ref = torch.nn.functional.scaled_dot_product_attention(*t, attn_mask=tm, **kw)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=2e-4, atol=2e-5)
    for got, tt in zip(grads, t + ([tm] if tm is not None else [])):
        w = tt.grad.numpy()
        np.testing.assert_allclose(got, w, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(w).max()))


def test_tiled_path_dropout_matches_rows_path(tiled_path):
    from fastops import _dispatch

    rng = np.random.default_rng(13)
    q, k, v = _qkv(rng, (2, 2, 40, 64), (2, 2, 70, 64), (2, 2, 70, 64), np.float32)
    m = rng.standard_normal((40, 70)).astype(np.float32)
    g = rng.standard_normal((2, 2, 40, 64)).astype(np.float32)
    kw = dict(dropout_p=0.3, seed=11)
    assert f.explain(q.shape, "float32", key_shape=k.shape, value_shape=v.shape)["path"] == "tiled"
    tiled = (f(q, k, v, m, **kw),) + f.backward(g, q, k, v, m, **kw)
    with _dispatch.force(attention_path="rows"):
        assert f.explain(q.shape, "float32", key_shape=k.shape, value_shape=v.shape)["path"] == "rows"
        rows = (f(q, k, v, m, **kw),) + f.backward(g, q, k, v, m, **kw)
    for a, b in zip(tiled, rows):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(b).max()))
    assert np.array_equal(tiled[0] == 0, rows[0] == 0)  # the same dropout mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_rows_path_starts_no_python_threads(dtype):
    """The rows path (float64, or E not a multiple of 64) runs its stages on fastops' (Numba's)
    thread pool: no Python thread is started, forward or backward, at any thread count."""
    import threading

    rng = np.random.default_rng(21)
    q, k, v = _qkv(rng, (1, 4, 300, 48), (1, 4, 400, 48), (1, 4, 400, 40), dtype)
    g = rng.standard_normal((1, 4, 300, 40)).astype(dtype)
    assert f.explain(q.shape, np.dtype(dtype).name, key_shape=k.shape, value_shape=v.shape)["path"] == "rows"
    before = {t.ident for t in threading.enumerate()}
    for n in (1, min(2, _threads.max_threads())):
        with fastops.threads(n):
            f(q, k, v)
            f.backward(g, q, k, v)
    assert {t.ident for t in threading.enumerate()} == before


def test_tiled_path_leaves_inputs_unmodified(tiled_path):
    rng = np.random.default_rng(15)
    q, k, v, m, kw = _case_inputs(rng, "float-mask")
    g = rng.standard_normal((2, 2, 40, 64)).astype(np.float32)
    before = [a.copy() for a in (q, k, v, m, g)]
    f(q, k, v, m, **kw)
    f.backward(g, q, k, v, m, **kw)
    for a, b in zip((q, k, v, m, g), before):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# The micro-kernel itself (fastops._tile.gemm): every mode, row-major and packed B, a transposed A,
# M not a multiple of 4, offsets into larger flat buffers; against float64 NumPy and, summed in
# increasing k with one rounding per FMA, exactly reproducible.


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("M,K,ncol,packed,transposed", [(4, 64, 64, False, False), (7, 33, 128, True, False),
                                                        (13, 5, 192, False, True), (1, 1, 64, True, True)])
def test_tile_gemm_against_numpy(mode, M, K, ncol, packed, transposed):
    from fastops import _tile

    rng = np.random.default_rng(M * 1000 + K)
    Am = rng.standard_normal((M, K)).astype(np.float32)
    A = np.ascontiguousarray(Am.T).T if transposed else Am
    Bm = rng.standard_normal((K, ncol)).astype(np.float32)
    NR = _tile.NR
    boff, coff, ldc = 5, 3, ncol + 16
    if packed:  # (ncol / NR) panels of (K, NR)
        flat = np.concatenate([Bm[:, j:j + NR].ravel() for j in range(0, ncol, NR)])
        ldb, pstride = NR, K * NR
    else:
        flat, ldb, pstride = Bm.ravel(), ncol, NR
    B = np.concatenate([np.full(boff, np.nan, np.float32), flat, np.full(7, np.nan, np.float32)])
    C0 = rng.standard_normal(coff + M * ldc + 9).astype(np.float32)
    rs = rng.random(M).astype(np.float32) + 0.5
    C = C0.copy()
    _tile.gemm(np.float32)(A, B, boff, ldb, pstride, ncol, C, coff, ldc, mode, rs)
    prod = Am.astype(np.float64) @ Bm.astype(np.float64)
    view = lambda c: c[coff:coff + M * ldc].reshape(M, ldc)[:, :ncol]  # noqa: E731
    want = {0: prod, 1: view(C0).astype(np.float64) + prod, 2: prod * rs[:, None]}[mode]
    np.testing.assert_allclose(view(C), want, rtol=1e-5, atol=1e-5 * np.sqrt(K))
    untouched = np.ones(C.size, bool)
    view(untouched)[:] = False
    np.testing.assert_array_equal(C[untouched], C0[untouched])  # nothing written outside the tiles
    C2 = C0.copy()
    _tile.gemm(np.float32)(A, B, boff, ldb, pstride, ncol, C2, coff, ldc, mode, rs)
    np.testing.assert_array_equal(C2, C)


def test_tile_gemm_is_float32_only():
    from fastops import _tile

    with pytest.raises(TypeError, match="float32 only"):
        _tile.gemm(np.float64)
