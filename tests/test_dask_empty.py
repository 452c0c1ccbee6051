"""fastops.dask ops on arrays with an empty (size-0) chunk along the batch axis give the eager op's
result (forward and the weight gradient's tree sum), on the synchronous scheduler."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastops  # noqa: E402
import fastops.dask as fd  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 3, 5, 5)).astype(np.float32)
W = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)


def _chunked(a, first=0):
    """``a`` with an empty first chunk (``first=0``), then the rest in one chunk."""
    return da.from_array(a, chunks=((first, a.shape[0] - first),) + tuple((n,) for n in a.shape[1:]))


CASES = {
    "relu": (lambda m, x: m.relu(x)),
    "conv2d": (lambda m, x: m.conv2d(x, W, padding=1)),
    "layer_norm": (lambda m, x: m.layer_norm(x, (5, 5))),
    "batch_norm": (lambda m, x: m.batch_norm(x, None, None, training=True)),
    "mse_loss": (lambda m, x: m.mse_loss(x, x * 0.5)),
    "max_pool2d": (lambda m, x: m.max_pool2d(x, 2)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_empty_chunk_matches_eager(name):
    f = CASES[name]
    x = _chunked(X)
    assert 0 in x.chunks[0]
    with dask.config.set(scheduler="synchronous"):
        got = f(fd, x).compute()
    np.testing.assert_allclose(got, f(fastops, X), rtol=2e-6, atol=1e-6)


def test_empty_chunk_weight_gradient_matches_eager():
    x = _chunked(X)
    g = np.ones((3, 2, 5, 5), np.float32)
    with dask.config.set(scheduler="synchronous"):
        gw = fd.conv2d.backward(_chunked(g), x, W, padding=1)[1].compute()
    np.testing.assert_allclose(gw, fastops.conv2d.backward(g, X, W, padding=1)[1], rtol=2e-6, atol=1e-5)


def test_all_empty_batch_gives_empty_results():
    x = _chunked(X[:0])
    with dask.config.set(scheduler="synchronous"):
        assert fd.relu(x).compute().shape == (0, 3, 5, 5)
        assert fd.conv2d(x, W, padding=1).compute().shape == (0, 2, 5, 5)
