"""Memory: no growth over many calls, and int64 index math on arrays of more than 2**31 elements.

(The bound on convolution's temporary workspace, measured with tracemalloc, is tested with the conv
family.)
"""
import os

import numpy as np
import pytest

import fastops

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CALLS = 10_000
# allowed resident growth over CALLS forward+backward calls after warmup: 2 MiB, i.e. about 210 bytes
# per call (a leaked output or gradient of this shape, >= 432 bytes, would exceed it);
# measured growth on the dev machine: see the README's "Reliability" section
RSS_LIMIT = 2 << 20


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")
def test_conv2d_forward_backward_leaves_rss_flat():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = np.ones((1, 3, 6, 6), np.float32)

    def step():
        y = fastops.conv2d(x, w, b, padding=1)
        gx, gw, gb = fastops.conv2d.backward(g, x, w, b, padding=1)
        return float(y[0, 0, 0, 0] + gx[0, 0, 0, 0] + gw[0, 0, 0, 0] + gb[0])

    for _ in range(500):  # warmup: kernels compiled/loaded, allocator pools and caches filled
        step()
    before = _rss()
    for _ in range(CALLS):
        step()
    growth = _rss() - before
    print(f"RSS growth over {CALLS} conv2d forward+backward calls: {growth / 1024:.0f} KiB")
    assert growth < RSS_LIMIT, f"resident memory grew by {growth / 2**20:.1f} MiB over {CALLS} calls"


# (R, K) float32 output: R * K = 2**31 + 98304 elements (8.6 GB), made from broadcast (R, 1) + (1, K)
R, K = (1 << 16) + 3, 1 << 15
BIG_BYTES = R * K * 4


@pytest.mark.slow
@pytest.mark.xdist_group("bigmem")
@pytest.mark.skipif(_mem_available() < BIG_BYTES * 1.3 + (1 << 30),
                    reason=f"needs about {BIG_BYTES * 1.3 / 2**30 + 1:.0f} GiB of MemAvailable for a float32 array of "
                           f"{R * K} > 2**31 elements (relu and add index math)")
def test_more_than_2_31_elements_relu_and_add():
    assert R * K > 2**31
    a = (np.arange(R, dtype=np.float32) - np.float32(100)).reshape(R, 1)  # exact in float32
    b = (np.arange(K, dtype=np.float32) * np.float32(-0.25)).reshape(1, K)  # exact: multiples of 1/4
    z = fastops.add(a, b)  # (R, K): every element written from int64 flat indices
    assert z.shape == (R, K) and z.dtype == np.float32
    flat = z.reshape(-1)
    probes = np.array([0, 1, K - 1, K, 2**31 - 1, 2**31, 2**31 + 1, 2**31 + K + 7, R * K - 2, R * K - 1], np.int64)
    probes = np.concatenate([probes, np.random.default_rng(0).integers(0, R * K, 64)])
    i, j = probes // K, probes % K
    expect = a[i, 0] + b[0, j]  # NumPy float32: the same correctly rounded sum
    np.testing.assert_array_equal(flat[probes], expect)
    assert np.array_equal(z[-1], a[-1, 0] + b[0])  # the whole last row (past 2**31)
    out = fastops.relu(z, inplace=True)  # in place: a second 8.6 GB array is not needed
    assert out is z
    np.testing.assert_array_equal(flat[probes], np.maximum(expect, 0))
    assert np.array_equal(z[-1], np.maximum(a[-1, 0] + b[0], 0))
    assert np.array_equal(z[R // 2 + 1], np.maximum(a[R // 2 + 1, 0] + b[0], 0))
