"""fastops._gemm, the matrix-product engine: every size class of its tiles, any strides, batches,
the epilogue, and results that do not depend on the thread count or the serial/parallel build."""
import numpy as np
import pytest

import fastops
from fastops import _epilogue, _gemm

DTYPES = [np.float32, np.float64]
# sizes around the tile (MR = 8 rows, NR = 32 / 16 columns) and the K chunk (KC = 256)
SIZES = [(1, 1, 1), (7, 3, 5), (8, 256, 32), (9, 257, 33), (17, 513, 47), (64, 1, 100), (3, 700, 2), (100, 300, 70)]


def _ref(a, b):
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


def _check(c, ref, dt):
    tol = 1e-5 if dt == np.float32 else 1e-13
    scale = np.abs(ref).max() if ref.size else 1.0
    assert c.dtype == dt
    np.testing.assert_allclose(c, ref, rtol=0, atol=tol * max(scale, 1.0))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("M,K,N", SIZES)
def test_sizes_serial_parallel_bitwise(dt, M, K, N):
    rng = np.random.default_rng(M * 1000 + K + N)
    a = rng.standard_normal((M, K)).astype(dt)
    b = rng.standard_normal((K, N)).astype(dt)
    a0, b0 = a.copy(), b.copy()
    cs = _gemm.gemm(a, b, backend_="serial")
    cp = _gemm.gemm(a, b, backend_="parallel")
    _check(cs, _ref(a, b), dt)
    assert cs.tobytes() == cp.tobytes()
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dt", DTYPES)
def test_one_and_two_threads_bitwise(dt):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 520)).astype(dt)
    b = rng.standard_normal((520, 200)).astype(dt)
    with fastops.threads(1):
        c1 = _gemm.gemm(a, b)
    with fastops.threads(fastops._threads.max_threads()):
        c2 = _gemm.gemm(a, b)
    assert c1.tobytes() == c2.tobytes()


@pytest.mark.parametrize("dt", DTYPES)
def test_strided_transposed_and_offset_operands(dt):
    rng = np.random.default_rng(2)
    big_a = rng.standard_normal((50, 90)).astype(dt)
    big_b = rng.standard_normal((80, 70)).astype(dt)
    cases = [
        (big_a[3:40, 5:66], big_b[2:63, 1:34]),  # offset row-major views
        (big_a[::2, 1::3], big_b[1:31:1, ::2]),  # strided
        (big_a[:33, :45].T, big_b[:33, :61].T),  # transposed: (45, 33) @ (61? no) fixed below
    ]
    cases[2] = (big_a[:33, :45].T, big_b[:33, :29])  # (45, 33) @ (33, 29)
    cases.append((big_a[:20, :30], big_b[:40, :30].T))  # (20, 30) @ (30, 40), B transposed
    cases.append((big_a[::-1, :25], big_b[:25, ::-1]))  # negative strides
    for a, b in cases:
        _check(_gemm.gemm(a, b), _ref(a, b), dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_batched_and_broadcast(dt):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 1, 9, 20)).astype(dt)
    b = rng.standard_normal((1, 4, 20, 35)).astype(dt)
    c = _gemm.gemm(a, b)
    assert c.shape == (3, 4, 9, 35)
    _check(c, _ref(a, b), dt)
    b2 = rng.standard_normal((20, 35)).astype(dt)
    _check(_gemm.gemm(a, b2), _ref(a, b2), dt)
    # a broadcast (stride-0) operand
    a3 = np.broadcast_to(rng.standard_normal((9, 20)).astype(dt), (5, 9, 20))
    b3 = rng.standard_normal((5, 20, 11)).astype(dt)
    _check(_gemm.gemm(a3, b3), _ref(a3, b3), dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_epilogue_accumulate_bias_activation(dt):
    rng = np.random.default_rng(4)
    M, K, N = 19, 300, 45
    a = rng.standard_normal((M, K)).astype(dt)
    b = rng.standard_normal((K, N)).astype(dt)
    bias = rng.standard_normal(N).astype(dt)
    rbias = rng.standard_normal(M).astype(dt)
    c0 = rng.standard_normal((M, N)).astype(dt)
    out = c0.copy()
    _gemm.gemm(a, b, out, accumulate=True, bias=bias, row_bias=rbias)
    _check(out, c0 + _ref(a, b) + bias + rbias[:, None], dt)
    relu = _epilogue.parse("t", "relu")
    _check(_gemm.gemm(a, b, bias=bias, epi=relu), np.maximum(_ref(a, b) + bias, 0), dt)
    # full tiles and edge tiles apply the same arithmetic: a sub-block equals the block's rows
    big = _gemm.gemm(a, b, bias=bias)
    part = _gemm.gemm(a[:8], b[:, :32] if dt == np.float32 else b[:, :16], bias=bias[: 32 if dt == np.float32 else 16])
    assert part.tobytes() == np.ascontiguousarray(big[:8, : part.shape[1]]).tobytes()


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", _epilogue.NAMES)
def test_every_activation_epilogue(dt, name):
    """Every activation, with and without ``out=``/accumulation: the activation op's own kernel on
    the plain product (bitwise), edge tiles included."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((11, 70)).astype(dt)
    b = rng.standard_normal((70, 37)).astype(dt)
    bias = rng.standard_normal(37).astype(dt)
    epi = _epilogue.parse("t", name, 0.2 if name in ("leaky_relu", "elu") else None)
    got = _gemm.gemm(a, b, bias=bias, epi=epi)
    want = _epilogue.activated(_gemm.gemm(a, b, bias=bias), epi)
    assert got.dtype == dt
    np.testing.assert_array_equal(got, want)
    c0 = rng.standard_normal((11, 37)).astype(dt)
    out = c0.copy()
    assert _gemm.gemm(a, b, out, accumulate=True, bias=bias, epi=epi) is out
    np.testing.assert_array_equal(out, _epilogue.activated(_gemm.gemm(a, b, c0.copy(), accumulate=True, bias=bias), epi))


@pytest.mark.parametrize("dt", DTYPES)
def test_prepacked_b_and_nothing_written_outside(dt):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((13, 40)).astype(dt)
    b = rng.standard_normal((40, 37)).astype(dt)
    pb = _gemm.pack_b(b)
    buf = np.full(13 * 37 + 64, 7.0, dt)
    out = buf[32:32 + 13 * 37].reshape(13, 37)
    _gemm.gemm(a, pb, out)
    assert (buf[:32] == 7).all() and (buf[32 + 13 * 37:] == 7).all()
    assert out.tobytes() == _gemm.gemm(a, b).tobytes()


@pytest.mark.parametrize("dt", DTYPES)
def test_empty_dims(dt):
    a = np.ones((4, 0), dt)
    b = np.ones((0, 3), dt)
    np.testing.assert_array_equal(_gemm.gemm(a, b), np.zeros((4, 3)))
    bias = np.arange(3, dtype=dt)
    np.testing.assert_array_equal(_gemm.gemm(a, b, bias=bias), np.broadcast_to(bias, (4, 3)))
    assert _gemm.gemm(np.ones((0, 5), dt), np.ones((5, 3), dt)).shape == (0, 3)
    assert _gemm.gemm(np.ones((2, 5), dt), np.ones((5, 0), dt)).shape == (2, 0)


def test_inner_dims_must_match():
    with pytest.raises(ValueError, match="gemm"):
        _gemm.gemm(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
