"""Shape and pooling ops: thread-count independence, dispatch decisions, view semantics."""
import numpy as np
import pytest

import fastops
from fastops import _threads

CASES = [
    ("channel_shuffle", (4, 64, 17, 17), {"groups": 8}),
    ("pixel_shuffle", (2, 64, 33, 33), {"upscale_factor": 2}),
    ("pad", (4, 32, 33, 31), {"pad": (2, 2, 3, 1), "mode": "reflect"}),
    ("pad", (4, 32, 33, 31), {"pad": (3, 3, 3, 3), "mode": "circular"}),
    ("upsample_nearest2d", (4, 32, 33, 17), {"size": (2, 3)}),
    ("global_avg_pool2d", (4, 32, 23, 29), {}),
    ("adaptive_avg_pool2d", (8, 32, 23, 21), {"output_size": (5, 3)}),
    ("adaptive_avg_pool3d", (4, 16, 9, 11, 13), {"output_size": (3, 4, 5)}),
]


@pytest.mark.parametrize("name,shape,kw", CASES, ids=[f"{c[0]}-{c[2].get('mode', '')}" for c in CASES])
def test_bitwise_same_for_one_and_two_threads(name, shape, kw):
    if _threads.max_threads() < 2:
        pytest.skip("needs 2 threads")
    f = getattr(fastops, name)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert f.explain(shape, "float32", **kw)["backend"] in ("serial", "parallel")
    res = []
    for n in (1, 2):
        with fastops.threads(n):
            out = f(x, **kw)
            g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
            res.append((out, f.backward(g, x, **kw)[0]))
    assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][1], res[1][1])


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
