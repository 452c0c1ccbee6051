"""``_simd.vload_n`` / ``vstore_n``: masked loads and stores of the first ``n`` lanes at any offset
(the depthwise kernels' short-row copies): exactly ``n`` elements read and written, the rest of the
vector the fill value, nothing else of either array touched; under NUMBA_BOUNDSCHECK=1 a span past
the end raises IndexError."""
import numba
import numpy as np
import pytest

from fastops import _jit, _simd


def _kernels():
    def copy(src, s0, dst, d0, n):
        _simd.vstore_n(dst, d0, _simd.vload_n(src, s0, n, 0), n)

    def load(src, s0, n, fill, out):
        _simd.vstore(out, 0, _simd.vload_n(src, s0, n, fill))

    return _jit.jit(copy), _jit.jit(load)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_span_copy_touches_exactly_n_elements(dtype):
    copy, load = _kernels()
    vl = 64 // np.dtype(dtype).itemsize
    src = np.arange(100, dtype=dtype) + 1
    for s0, d0, n in [(0, 0, 0), (3, 5, 1), (7, 11, vl - 1), (2, 40, vl), (90, 1, min(10, vl))]:  # 0 <= n <= lanes
        dst = np.full(60, -1.0, dtype)
        copy(src, s0, dst, d0, n)
        ref = np.full(60, -1.0, dtype)
        ref[d0:d0 + n] = src[s0:s0 + n]
        assert np.array_equal(dst, ref), (s0, d0, n)
        out = np.empty(vl, dtype)
        load(src, s0, n, 7.5, out)
        assert np.array_equal(out[:n], src[s0:s0 + n]) and np.all(out[n:] == 7.5)


@pytest.mark.skipif(not numba.config.BOUNDSCHECK, reason="the span checks exist under NUMBA_BOUNDSCHECK=1")
def test_span_out_of_bounds_raises():
    copy, _ = _kernels()
    src = np.zeros(20, np.float32)
    dst = np.zeros(20, np.float32)
    with pytest.raises(IndexError, match="vload_n"):
        copy(src, 15, dst, 0, 6)
    with pytest.raises(IndexError, match="vstore_n"):
        copy(src, 0, dst, 16, 5)
