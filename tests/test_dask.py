"""fastops.dask on a real dask.distributed LocalCluster (2 worker processes) vs single-array fastops.

Comparisons are float64. Exact (bitwise) where a block runs the same per-sample computation as
the single array: forwards of conv2d, max_pool2d, layer_norm, eval batch_norm, roi_align,
cross_entropy(reduction="none"), dropout masks, and the per-block input gradients of these ops.
Within summation-order tolerance (rtol 1e-12) where a sum crosses blocks: weight/bias gradients
(pairwise tree of per-block partials vs one in-kernel sum), linear forward and input gradient
(its GEMM blocks the rows: the rounding of a row depends on the batch size), training batch_norm (global two-pass
statistics) and its gradients, reduced losses. The training loop compares parameters and running
statistics after 3 Adam steps within rtol 1e-7, atol 1e-9: the conv biases before batch norm have
a zero true gradient (BN removes the mean), so their gradients are pure rounding noise, which Adam
normalises (update ~ lr * noise / (sqrt(v) + eps)): observed differences ~1e-10 absolute.

One cluster starts: the checks that need it run in one test (``test_on_local_cluster``).
"""
import os

import numpy as np
import pytest

pytest.importorskip("dask.distributed", reason="fastops.dask needs the 'dask' extra: pip install 'fastops[dask]'")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

import fastops  # noqa: E402
import fastops.dask as fd  # noqa: E402

# One xdist group, so that one worker runs the module. (With pytest 9.2 + pytest-xdist 3.8 the
# group marks have no effect: xdist renames item._nodeid, pytest 9 reads item._id. So the cluster
# checks are one test below: one cluster per run whatever the scheduling.)
pytestmark = pytest.mark.xdist_group("fastops-dask")

RTOL = 1e-12
CHUNKS = (2, 3, 1, 3)  # 4 uneven blocks of a batch of 9


def _set_threads(n):
    fastops.set_num_threads(n)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            c.run(_set_threads, 1)  # 2 single-threaded workers on a 2-core machine
            yield c


CLUSTER_CHECKS = []


def cluster_check(fn):
    CLUSTER_CHECKS.append(fn)
    return fn


def _close(a, b, rtol=RTOL):
    if a is None or b is None:
        assert a is None and b is None
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol)


def _equal(a, b):
    assert np.array_equal(np.asarray(a), np.asarray(b)), np.max(np.abs(np.asarray(a) - np.asarray(b)))


def _chunked(x, chunks=CHUNKS):
    return da.from_array(x, chunks=(chunks,) + x.shape[1:])


def _check(name, args, kw, batched, exact_grads, client, exact_forward=True):
    """Forward exact (or within RTOL); backward: the gradients of the parameters in ``exact_grads`` exact, the others
    within RTOL; the Dask arguments are the ``batched`` positions."""
    op, dop = getattr(fastops, name), getattr(fd, name)
    dargs = [_chunked(a) if i in batched else a for i, a in enumerate(args)]
    y = op(*args, **kw)
    yd = dop(*dargs, **kw)
    assert isinstance(yd, da.Array)
    (_equal if exact_forward else _close)(yd.compute(), y)
    g = np.random.default_rng(7).standard_normal(y.shape)
    ref = op.backward(g, *args, **kw)
    got = dask.compute(*dop.backward(_chunked(g), *dargs, **kw))
    assert len(got) == len(ref)
    for j, (r, d) in enumerate(zip(ref, got)):
        (_equal if j in exact_grads and r is not None else _close)(d, r)


@cluster_check
def check_workers_share_the_kernel_cache(client, rng):
    from fastops import _config

    dirs = client.run(lambda: str(__import__("fastops._config", fromlist=["x"]).cache_dir()))
    assert set(dirs.values()) == {str(_config.cache_dir())}
    assert all(v == os.environ.get("FASTOPS_CACHE_DIR") for v in client.run(lambda: os.environ.get("FASTOPS_CACHE_DIR")).values())


@cluster_check
def check_conv2d(client, rng):
    x = rng.standard_normal((9, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    _check("conv2d", (x, w, b), {"padding": 1, "stride": (1, 2)}, {0}, {0}, client)


@cluster_check
def check_linear(client, rng):
    _check("linear", (rng.standard_normal((9, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)),
           {}, {0}, set(), client, exact_forward=False)


@cluster_check
def check_max_pool2d(client, rng):
    _check("max_pool2d", (rng.standard_normal((9, 2, 6, 7)),), {"kernel_size": 3, "stride": 2, "padding": 1},
           {0}, {0}, client)


@cluster_check
def check_layer_norm(client, rng):
    x = rng.standard_normal((9, 3, 4))
    _check("layer_norm", (x, (3, 4), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))), {}, {0}, {0}, client)


@cluster_check
def check_batch_norm_eval(client, rng):
    x = rng.standard_normal((9, 3, 4, 5))
    args = (x, rng.standard_normal(3), rng.uniform(0.5, 2, 3), rng.standard_normal(3), rng.standard_normal(3))
    _check("batch_norm", args, {"training": False, "activation": "relu"}, {0}, {0}, client)


@cluster_check
def check_batch_norm_train_global_stats_and_running_update(client, rng):
    x = rng.standard_normal((9, 3, 4, 5)) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm_d, rv_d = rm.copy(), rv.copy()
    kw = {"training": True, "momentum": 0.3, "activation": "relu"}
    y = fastops.batch_norm(x, rm, rv, w, b, **kw)
    yd = fd.batch_norm(_chunked(x), rm_d, rv_d, w, b, **kw)
    _close(yd.compute(), y)
    _close(rm_d, rm)  # running statistics updated in place, as by the single-array call
    _close(rv_d, rv)
    g = rng.standard_normal(x.shape)
    ref = fastops.batch_norm.backward(g, x, rm, rv, w, b, **kw)
    got = dask.compute(*fd.batch_norm.backward(_chunked(g), _chunked(x), rm, rv, w, b, **kw))
    for r, d in zip(ref, got):
        _close(d, r)


@cluster_check
def check_cross_entropy(client, rng):
    for reduction in ("none", "mean", "sum"):
        _check_cross_entropy(rng, reduction)


def _check_cross_entropy(rng, reduction):
    x = rng.standard_normal((9, 5))
    t = rng.integers(0, 5, 9)
    t[4] = -100  # ignored
    kw = {"weight": rng.uniform(0.5, 2, 5), "reduction": reduction, "label_smoothing": 0.1}
    y = fastops.cross_entropy(x, t, **kw)
    yd = fd.cross_entropy(_chunked(x), t, **kw)
    (_equal if reduction == "none" else _close)(yd.compute(), y)
    g = np.full(y.shape, 0.7)
    ref = fastops.cross_entropy.backward(g, x, t, **kw)
    got = fd.cross_entropy.backward(_chunked(g) if reduction == "none" else g, _chunked(x), t, **kw)
    assert got[1:] == (None, None) and ref[1:] == (None, None)
    (_equal if reduction == "none" else _close)(got[0].compute(), ref[0])


@cluster_check
def check_roi_align_routes_boxes_to_their_block(client, rng):
    x = rng.standard_normal((9, 2, 8, 8))
    # unsorted batch indices, several boxes per image, one block (batch 5) without boxes
    boxes = np.array([[6, 0.5, 1, 6, 7], [0, 1, 1, 5, 3], [3, 0, 2, 3, 5], [0, 2, 2, 7, 7.5], [8, 1, 0, 4, 4],
                      [2, 0, 0, 7, 7], [3, 1.5, 1, 2, 6]])
    kw = {"output_size": (2, 3), "spatial_scale": 0.9, "sampling_ratio": 2, "aligned": True}
    y = fastops.roi_align(x, boxes, **kw)
    yd = fd.roi_align(_chunked(x), boxes, **kw)
    _equal(yd.compute(), y)
    g = rng.standard_normal(y.shape)
    gx, gb = fd.roi_align.backward(g, _chunked(x), boxes, **kw)
    assert gb is None
    _equal(gx.compute(), fastops.roi_align.backward(g, x, boxes, **kw)[0])


@cluster_check
def check_dropout_mask_equals_single_array(client, rng):
    x = rng.standard_normal((9, 3, 5))
    for name in ("dropout", "dropout2d"):
        op, dop = getattr(fastops, name), getattr(fd, name)
        _equal(dop(_chunked(x), 0.4, seed=123).compute(), op(x, 0.4, seed=123))
        g = rng.standard_normal(x.shape)
        _equal(dop.backward(_chunked(g), _chunked(x), 0.4, seed=123)[0].compute(),
               op.backward(g, x, 0.4, seed=123)[0])


def test_import_fastops_does_not_import_dask():
    import subprocess
    import sys

    code = "import sys, fastops; assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chunking_along_a_non_batch_axis_raises_with_the_rechunk_call(rng):
    x = da.from_array(rng.standard_normal((9, 4, 6, 6)), chunks=(3, 2, 6, 6))
    with pytest.raises(ValueError, match=r"fastops\.dask\.conv2d: argument 'input'.*axis 1") as e:
        fd.conv2d(x, rng.standard_normal((2, 4, 3, 3)))
    assert "input = input.rechunk({1: -1, 2: -1, 3: -1})" in str(e.value)
    y = fd.conv2d(x.rechunk({1: -1, 2: -1, 3: -1}), np.ones((2, 4, 3, 3)))  # the advised call works
    assert y.chunks[0] == (3, 3, 3)
    with pytest.raises(ValueError, match="batch axis"):
        fd.softmax(_chunked(rng.standard_normal((9, 3))), dim=0)


def test_weights_are_one_graph_key_shared_by_all_blocks(rng):
    x = _chunked(rng.standard_normal((9, 3, 5, 5)))
    w = rng.standard_normal((4, 3, 3, 3))
    y = fd.conv2d(x, w)
    layer = dict(y.dask.layers[y.name])
    assert len(layer) == len(CHUNKS)
    wkeys = set()
    for task in layer.values():
        assert not any(isinstance(a, np.ndarray) for a in task[1:])  # no embedded NumPy constant
        wkeys.add(task[2])
    assert len(wkeys) == 1 and wkeys.pop() in dict(y.dask)


@cluster_check
def check_tree_reduction_is_deterministic_across_schedulers(client, rng):
    x = rng.standard_normal((9, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((9, 4, 3, 3))
    grads = fd.conv2d.backward(_chunked(g), _chunked(x), w)
    on_cluster = dask.compute(*grads[1:2])
    local = dask.compute(*grads[1:2], scheduler="sync")
    _equal(on_cluster[0], local[0])


@cluster_check
def check_data_parallel_cnn_training_matches_single_machine(client, rng):
    from fastops import optim
    from fastops.dask import cnn as dcnn
    from fastops.examples import cnn_digits

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (3, 16, 1, 8, 8))  # 3 steps, batch 16
    y = rng.integers(0, 10, (3, 16))
    params = {}
    for mode in ("single", "dask"):
        p = cnn_digits.init_params(np.random.default_rng(0), np.float64)
        s = cnn_digits.init_state(np.float64)
        opt = optim.Adam(list(p.values()), lr=3e-3)
        for step in range(3):
            if mode == "single":
                cnn_digits.train_step(p, s, opt, x[step], y[step], seed=step)
            else:
                dcnn.train_step(p, s, opt, da.from_array(x[step], chunks=((5, 6, 5), 1, 8, 8)), y[step], seed=step)
        params[mode] = (p, s)
    for k in params["single"][0]:
        np.testing.assert_allclose(params["dask"][0][k], params["single"][0][k], rtol=1e-7, atol=1e-9, err_msg=k)
    for k in params["single"][1]:
        np.testing.assert_allclose(params["dask"][1][k], params["single"][1][k], rtol=1e-7, atol=1e-9, err_msg=k)


@pytest.mark.slow
def test_on_local_cluster(client):
    """All cluster checks in one test (one cluster; see the xdist note at the top), each with a
    fresh generator; a failure names the check."""
    # the single-array references on 1 thread too: they run the serial kernels the (1-thread)
    # workers run, so each kernel is compiled once and loaded from the shared cache by the others
    # (results do not depend on the thread count)
    for check in CLUSTER_CHECKS:
        try:
            with fastops.threads(1):
                check(client, np.random.default_rng(1234))
        except Exception as e:
            raise AssertionError(f"{check.__name__}: {type(e).__name__}: {e}") from e
