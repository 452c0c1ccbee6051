"""Convolution family: the im2col / GEMM paths keep their temporaries bounded whatever the batch.

The bound (fastops/conv/_core.py, batch_chunk): the batch is processed in chunks whose im2col
matrix, GEMM result and packed output gradient each fit in ``WORKSPACE_MAX_BYTES`` (at least one
sample per chunk). The test lowers the bound to 1/6 of the whole-batch im2col so that a small batch needs 6+ chunks,
and checks with tracemalloc (NumPy reports its allocations to it) that the peak of new memory
during a call is at most three workspace slots + the arrays the call returns + the weight-sized
partial sums, far below the whole-batch im2col (which it was before), and that the chunked
results equal the one-chunk results."""
import tracemalloc

import numpy as np
import pytest

import fastops
from fastops import _gemm
from fastops.conv import _core


def _peak(fn):
    _core.release_workspace()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        res = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return res, peak


@pytest.mark.parametrize("k", [1, 3])
def test_im2col_workspace_bounded_by_chunks(monkeypatch, k):
    rng = np.random.default_rng(0)
    # 3x3: one sample's im2col is 16*9 x 12*12 float32 = 83 KB, the whole batch (32) 2.65 MB.
    # 1x1 stride 2 (needs im2col): 16 x 6*6, whole batch small but still chunked.
    x = rng.standard_normal((32, 16, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((8, 16, k, k)) * 0.1).astype(np.float32)
    kw = {"stride": 1 if k == 3 else 2}
    d = fastops.conv2d.explain(x.shape, "float32", weight_shape=w.shape, **kw)
    assert d["path"] == "im2col_gemm"
    ref = fastops.conv2d(x, w, **kw)
    g = rng.standard_normal(ref.shape).astype(np.float32)
    ref_b = fastops.conv2d.backward(g, x, w, **kw)

    L = ref.shape[2] * ref.shape[3]
    per_sample = 4 * L * max(16 * k * k, 8)
    whole_batch_cols = 4 * 32 * L * 16 * k * k
    BOUND = whole_batch_cols // 6  # noqa: N806  (3x3: 442 KB, 1x1 s2: 12.5 KB)
    monkeypatch.setattr(_core, "WORKSPACE_MAX_BYTES", BOUND)
    nb = _core.batch_chunk(32, per_sample)
    assert 1 <= nb < 32 and nb * per_sample <= BOUND

    # plus the GEMM engine's per-thread packing buffers (a constant, independent of N)
    engine = fastops.get_num_threads() * _gemm.task_workspace_bytes(np.float32)
    out, peak = _peak(lambda: fastops.conv2d(x, w, **kw))
    assert peak <= 3 * BOUND + out.nbytes + engine, (peak, out.nbytes)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)

    (gx, gw, _), peak_b = _peak(lambda: fastops.conv2d.backward(g, x, w, **kw))
    # gx, gw returned; per chunk one weight-sized matmul result next to the accumulator
    assert peak_b <= 3 * BOUND + gx.nbytes + 3 * gw.nbytes + engine, (peak_b, gx.nbytes)
    if k == 3:
        assert peak_b < whole_batch_cols
    np.testing.assert_allclose(gx, ref_b[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, ref_b[1], rtol=1e-4, atol=1e-4)
