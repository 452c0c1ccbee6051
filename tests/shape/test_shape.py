"""Shape and pooling ops: dispatch decisions, view semantics, adaptive pooling's batchless input and
``None`` sizes. The parallel kernels run from the op tables' ``paths`` (tests/test_paths.py:
against the reference and bitwise across thread counts)."""
import numpy as np

import fastops
from fastops import _threads


def test_explain_picks_serial_for_small_and_parallel_for_large():
    with fastops.threads(min(2, _threads.max_threads())):
        assert fastops.adaptive_avg_pool2d.explain((1, 2, 4, 4), "float32", output_size=1)["backend"] == "serial"
        assert fastops.pad.explain((1, 2, 4, 4), "float64", pad=(1, 1), mode="constant")["backend"] == "numpy"
        d = fastops.channel_shuffle.explain((8, 64, 56, 56), "float32", groups=4)
        assert d["kernel"].startswith("shuffle_gather_planes_f32")
        if _threads.max_threads() >= 2:
            assert d["backend"] == "parallel"


def test_flatten_and_reshape_return_read_only_views():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    y = fastops.flatten(x, 1)
    assert y.shape == (2, 12) and np.shares_memory(x, y) and not y.flags.writeable
    z = fastops.reshape(x, (4, -1))
    assert z.shape == (4, 6) and not z.flags.writeable
    (g,) = fastops.reshape.backward(np.ones((4, 6), np.float32), x, (4, -1))
    assert g.flags.writeable and not np.shares_memory(g, x)


def test_adaptive_pool_batchless_and_none_entries():
    x = np.random.default_rng(2).standard_normal((3, 5, 7))
    assert fastops.adaptive_avg_pool2d(x, (None, 2)).shape == (3, 5, 2)
    np.testing.assert_allclose(fastops.adaptive_avg_pool2d(x, 1)[:, 0, 0], x.mean(axis=(1, 2)))
