"""Reliability under Python threads and worker processes (fork, spawn, forkserver); timeouts fail."""
import concurrent.futures as cf
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastops
from fastops import _threads

# ops with their backward, on inputs large enough to take the parallel kernels
_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((64, 2048)).astype(np.float32)
T = _RNG.integers(0, 2048, 64)
W = (_RNG.standard_normal((8, 16, 3, 3)) * 0.2).astype(np.float32)
BN_W = _RNG.standard_normal(16).astype(np.float32)
BN_B = _RNG.standard_normal(16).astype(np.float32)


def workload(x=X):
    s = fastops.softmax(x, dim=1)
    gs = fastops.softmax.backward(np.ones_like(s), x, dim=1)[0]
    r = fastops.gelu(x)
    ce = fastops.cross_entropy(x, T)
    gce = fastops.cross_entropy.backward(np.float32(1), x, T)[0]
    img = x.reshape(8, 16, 32, 32)
    p = fastops.adaptive_avg_pool2d(img, (7, 5))
    c = fastops.conv2d(img, W, padding=1)
    gc = fastops.conv2d.backward(np.ones_like(c), img, W, padding=1)
    bn = fastops.batch_norm(img, None, None, BN_W, BN_B, training=True)
    gbn = fastops.batch_norm.backward(np.ones_like(bn), img, None, None, BN_W, BN_B, training=True)
    mp = fastops.max_pool2d(img, 3, 2, 1)
    gmp = fastops.max_pool2d.backward(np.ones_like(mp), img, 3, 2, 1)[0]
    return [s, gs, r, np.asarray(ce), gce, p, c, gc[0], gc[1], bn, gbn[0], gbn[3], mp, gmp]


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def test_eight_python_threads_concurrently():
    expect = workload()
    errors = []

    def worker(k):
        try:
            own = X * np.float32(1 + k % 2)  # separate inputs for half of the threads
            ref = workload(own) if k % 2 else expect
            for _ in range(25):
                got = workload(own if k % 2 else X)
                if not _same(got, ref):
                    errors.append(f"thread {k}: result differs")
                    return
        except Exception as e:  # pragma: no cover
            errors.append(f"thread {k}: {e!r}")

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ths), "threads hung"
    assert not errors, errors


def _job(seed):
    # a lighter workload than the threads test (each spawned worker loads its kernels from the
    # disk cache the parent filled): softmax, conv2d and max_pool2d, forward and backward
    x = np.random.default_rng(seed).standard_normal((64, 2048)).astype(np.float32)
    img = x.reshape(8, 16, 32, 32)
    s = fastops.softmax(x, dim=1)
    c = fastops.conv2d(img, W, padding=1)
    m = fastops.max_pool2d(img, 3, 2, 1)
    out = [s, fastops.softmax.backward(np.ones_like(s), x, dim=1)[0], c,
           fastops.conv2d.backward(np.ones_like(c), img, W, padding=1)[1], m,
           fastops.max_pool2d.backward(np.ones_like(m), img, 3, 2, 1)[0]]
    return out, fastops.get_num_threads()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_worker_processes(method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} not available")
    fastops.relu(X)  # the parent has used the parallel kernels (OpenMP started) before forking
    expect = [_job(s)[0] for s in range(2)]
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        res = pool.map_async(_job, range(2)).get(timeout=300)
    for (got, n), exp in zip(res, expect):
        assert _same(got, exp)  # bitwise: serial and parallel kernels agree
        if method == "fork" and _threads.threading_layer() == "omp":
            assert n == 1  # forked from an OpenMP parent: serial kernels (see fastops._threads)


def test_process_pool_executor():
    expect = [_job(s)[0] for s in range(2)]
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
        res = list(ex.map(_job, range(2), timeout=300))
    assert all(_same(g, e) for (g, _), e in zip(res, expect))


def test_threading_layer_is_reported():
    assert fastops.get_num_threads() >= 1
    assert _threads.threading_layer() in ("tbb", "omp", "workqueue")


def test_workqueue_layer_runs_parallel_kernels_from_the_main_thread_only():
    code = textwrap.dedent(
        """
        import threading, numpy as np, fastops
        from fastops import _threads
        assert _threads.threading_layer() == "workqueue", _threads.threading_layer()
        x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
        expect = fastops.relu(x)
        seen, errs = [], []
        def w():
            seen.append(fastops.get_num_threads())
            for _ in range(20):
                if not np.array_equal(fastops.gelu(x), fastops.gelu(x)) or not np.array_equal(fastops.relu(x), expect):
                    errs.append(1)
        ts = [threading.Thread(target=w) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        assert not errs and set(seen) == {1}, (errs, seen)
        assert fastops.get_num_threads() > 1 or _threads.max_threads() == 1
        print("ok")
        """
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


# the figure: 8 Python threads x 200 calls of conv2d, batch_norm, max_pool2d and softmax with
# their backward, half on one shared input, half on their own. Every 40th call uses a (4, 16, 32, 32)
# float32 input (65536 elements: the parallel kernels with 2 threads, parallel_min_elements), the
# others a (2, 16, 8, 8) one (serial kernels): 200 parallel-size calls per thread cost about 25x more
# CI time (measured 440 s on the loaded 2-core dev machine); FASTOPS_THREAD_BIG_EVERY=1 runs them all
# at the parallel size.
BIG = _RNG.standard_normal((4, 16, 32, 32)).astype(np.float32)
SMALL = _RNG.standard_normal((2, 16, 8, 8)).astype(np.float32)
W16 = (_RNG.standard_normal((8, 16, 3, 3)) * 0.1).astype(np.float32)
THREADS, CALLS = 8, 200
BIG_EVERY = int(os.environ.get("FASTOPS_THREAD_BIG_EVERY", "40"))


def four_ops(img):
    c = fastops.conv2d(img, W16, padding=1)
    gc = fastops.conv2d.backward(c, img, W16, padding=1)
    bn = fastops.batch_norm(img, None, None, BN_W, BN_B, training=True)
    gbn = fastops.batch_norm.backward(bn, img, None, None, BN_W, BN_B, training=True)
    m = fastops.max_pool2d(img, 3, 2, 1)
    gm = fastops.max_pool2d.backward(m, img, 3, 2, 1)[0]
    s = fastops.softmax(img, dim=1)
    gs = fastops.softmax.backward(s, img, dim=1)[0]
    return [c, gc[0], gc[1], bn, gbn[0], gbn[3], gbn[4], m, gm, s, gs]


def test_eight_threads_200_calls_each_shared_and_separate_inputs():
    if fastops.get_num_threads() > 1:
        for name, kw in [("max_pool2d", dict(kernel_size=3, stride=2, padding=1)), ("batch_norm", dict(training=True)),
                         ("softmax", dict(dim=1))]:
            assert getattr(fastops, name).explain(BIG.shape, "float32", **kw)["backend"] == "parallel", name
    # thread k: inputs shared by the even threads, its own for the odd ones
    inputs = [(BIG, SMALL) if k % 2 == 0 else (BIG * np.float32(1 + k), SMALL * np.float32(1 + k)) for k in range(THREADS)]
    with fastops.threads(1):  # reference: serial kernels, one Python thread
        expect = [(four_ops(b), four_ops(s)) for b, s in inputs]
    errors, done = [], [0] * THREADS

    def worker(k):
        try:
            for i in range(CALLS):
                big = i % BIG_EVERY == 0
                if not _same(four_ops(inputs[k][0 if big else 1]), expect[k][0 if big else 1]):
                    errors.append(f"thread {k} call {i}: result differs from the single-threaded one")
                    return
                done[k] += 1
        except Exception as e:  # pragma: no cover
            errors.append(f"thread {k}: {e!r}")

    ths = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ths), f"threads hung (calls done per thread: {done})"
    assert not errors, errors
    assert done == [CALLS] * THREADS
