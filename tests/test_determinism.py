"""Bitwise determinism across thread counts and from run to run, over the op table.

The thread counts come from ``FASTOPS_TEST_THREADS`` (default ``1,2``; counts above
NUMBA_NUM_THREADS are dropped), so the same test runs with e.g. 16 threads on a larger machine::

    NUMBA_NUM_THREADS=16 FASTOPS_TEST_THREADS=1,2,3,8,16 FASTOPS_DETERMINISM_OPS=all \\
        python -m pytest -n 0 tests/test_determinism.py

By default (CI) it covers the ops whose backward or forward reduces (batch/layer/group norm statistics,
softmax, a loss, the weight and bias gradients of conv/linear, broadcasting add) at their "small"
benchmark shapes, large enough for the parallel kernels; ``FASTOPS_DETERMINISM_OPS=all`` (or a
comma-separated list of names) covers every op of the table. Each dispatch path of an op (the
table's ``paths``) is held to the same property, at the same thread counts, by tests/test_paths.py.
"""
import os

import numpy as np
import pytest

import fastops
from fastops import _threads
from fastops.testing import table

THREADS = sorted({n for n in (int(v) for v in os.environ.get("FASTOPS_TEST_THREADS", "1,2").split(",") if v.strip())
                  if 1 <= n <= _threads.max_threads()})
DEFAULT_OPS = ("batch_norm", "group_norm", "softmax", "mse_loss",
               "conv2d", "linear", "add")
_sel = os.environ.get("FASTOPS_DETERMINISM_OPS", "")
OPS = [i for i in table() if i.bench is not None and i.deterministic
       and (_sel == "all" or i.name in (_sel.split(",") if _sel else DEFAULT_OPS))]
_seen = set()
OPS = [i for i in OPS if not (i.name in _seen or _seen.add(i.name))]


def _arrays(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, np.ndarray)]


def _run(info, s):
    out = _arrays(info.op(*s.args, **s.kwargs))
    cot = [np.ones_like(o) for o in out]
    grads = info.op.backward(cot if len(cot) > 1 else cot[0], *s.args, **s.kwargs)
    return out + _arrays(grads)


@pytest.mark.skipif(len(THREADS) < 2, reason=f"needs two thread counts (FASTOPS_TEST_THREADS, NUMBA_NUM_THREADS={_threads.max_threads()})")
@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_bitwise_identical_across_thread_counts_and_runs(info):
    s = info.bench(np.random.default_rng(0), np.float32, "small")
    results = {}
    for n in THREADS:
        with fastops.threads(n):
            results[n] = _run(info, s)
    with fastops.threads(THREADS[-1]):
        again = _run(info, s)  # run to run
    base = results[THREADS[0]]
    for n, got in list(results.items()) + [("rerun", again)]:
        assert len(got) == len(base)
        for k, (a, b) in enumerate(zip(got, base)):
            assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), \
                f"{info.name}: output {k} with {n} threads differs from {THREADS[0]} thread(s)"
