"""Every dispatch path of every op, from the op table's ``paths`` field (fastops.testing.PathCase).

For each case, under its ``force`` choices:
- ``op.explain`` reports the path the case names (at 2 threads), so a case that stops reaching its
  path (a threshold moved) fails instead of silently testing another one;
- the forward matches the NumPy reference, evaluated in float64, to the entry's tolerance;
- float64: the backward matches the finite-difference VJP of the forward in a random direction;
- forward and backward are bitwise the same at every thread count of ``FASTOPS_TEST_THREADS``
  (default ``1,2``) and from run to run (entries marked ``deterministic``).

The family tests (tests/<family>/) keep what is specific to a family (RNG streams, layouts, saved
outputs, special values); the thread-count property of each path lives here only.
"""
import os

import numpy as np
import pytest

import fastops
from fastops import _dispatch, _threads
from fastops.testing import check_vjp, table, to_float64, tree_leaves, tree_map

THREADS = sorted({n for n in (int(v) for v in os.environ.get("FASTOPS_TEST_THREADS", "1,2").split(",") if v.strip())
                  if 1 <= n <= _threads.max_threads()})
OPS = [i for i in table() if i.paths is not None]
DTYPES = [np.float32, np.float64]


def _arrays(values):
    return [v for v in tree_leaves(list(values)) if isinstance(v, np.ndarray)]


def _run(info, s, cot):
    """The forward's arrays, flat, and the backward's entries."""
    out = info.op(*s.args, **s.kwargs)
    return tree_leaves(out), info.op.backward(cot, *s.args, **s.kwargs)


def _ids():
    return [i.name for i in OPS]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", OPS, ids=_ids())
def test_each_dispatch_path(info, dtype):
    rng = np.random.default_rng(0)
    cases = info.paths(rng, dtype)
    assert cases, f"{info.name}: a paths field lists at least one path"
    for case in cases:
        s = case.sample
        what = f"{info.name} [{case.path}] {s}"
        with _dispatch.force(**case.force):
            if case.expect and _threads.max_threads() >= 2:
                with fastops.threads(2):
                    d = info.op.explain(s.args[0].shape, np.dtype(dtype).name, **case.explain)
                for k, v in case.expect.items():
                    assert d.get(k) == v, f"{what}: explain gives {k}={d.get(k)!r}, the case is for {v!r} ({d})"
            before = [a.copy() for a in _arrays(s.args)]
            out_tree = info.op(*s.args, **s.kwargs)
            out = tree_leaves(out_tree)
            cot = tree_map(lambda o: rng.standard_normal(o.shape).astype(o.dtype), out_tree)
            runs = {}
            for n in THREADS:
                with fastops.threads(n):
                    runs[n] = _run(info, s, cot)
            with fastops.threads(THREADS[-1]):
                again = _run(info, s, cot)
            assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(_arrays(s.args), before)), \
                f"{what}: an input was modified"

            rtol, atol = case.tol.get(dtype, info.tol[dtype])
            ref = tree_leaves(info.ref(*to_float64(s.args), **s.kwargs))
            assert len(ref) == len(out), what
            for k, (a, e) in enumerate(zip(out, ref)):
                assert a.dtype == dtype, f"{what}: output {k} is {a.dtype}"
                np.testing.assert_allclose(a.astype(np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol,
                                           err_msg=f"{what}: output {k} vs the NumPy reference")

            base_out, base_grads = runs[THREADS[0]]
            if dtype == np.float64 and sum(o.size for o in out):
                res = check_vjp(info, s, cot, base_grads, rng)
                if res is not None:
                    fd, an, scale = res
                    assert abs(fd - an) <= 1e-6 * scale + 1e-9, f"{what}: finite difference {fd} vs backward {an}"
            if info.deterministic:
                for n, (o, g) in list(runs.items()) + [("a rerun", again)]:
                    for k, (a, b) in enumerate(zip(o + _arrays(g), base_out + _arrays(base_grads))):
                        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), \
                            f"{what}: result {k} at {n} threads differs from {THREADS[0]} thread(s)"
