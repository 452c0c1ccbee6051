"""``op.vjp`` (forward once, pullback from saved intermediates) and ``needs=`` (a subset of the
gradients), for every op of the table.

- ``out, pullback = op.vjp(*args)``: ``out`` is bitwise the forward's result and ``pullback(cot)``
  bitwise ``op.backward(cot, *args)``, on every sample of the table in both dtypes, and on every
  dispatch path (``paths``) of the ops that define their own vjp (the recurrent layers, batch_norm,
  the conv family, linear);
- ``needs``: one bool per entry; each entry asked for alone is bitwise the full backward's entry,
  the others None, through ``backward`` and through the pullback; bad ``needs`` raise naming the op;
- the ops with their own vjp do not run their forward again in the pullback.
"""
import numpy as np
import pytest

import fastops
from fastops import _dispatch
from fastops.testing import table, tree_leaves, tree_map

DTYPES = [np.float32, np.float64]
OPS = [i for i in table() if i.deterministic]
NATIVE = [i for i in OPS if i.op._vjp is not None]


def _copy(args):
    return tree_map(lambda a: a.copy(), list(args))


def _same(a, b, what):
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb), what
    for k, (u, v) in enumerate(zip(la, lb)):
        if u is None or v is None:
            assert u is None and v is None, f"{what}: entry {k} is {type(u).__name__} vs {type(v).__name__}"
        else:
            assert u.dtype == v.dtype and u.shape == v.shape, f"{what}: entry {k}"
            assert np.array_equal(u, v, equal_nan=True), f"{what}: entry {k} differs"


def _check(info, s, rng, masks=True):
    what = f"{info.name} {s}"
    op = info.op
    ref_out = op(*_copy(s.args), **s.kwargs)
    out, pullback = op.vjp(*_copy(s.args), **s.kwargs)
    _same(out, ref_out, f"{what}: vjp's output vs the forward")
    cot = tree_map(lambda o: rng.standard_normal(o.shape).astype(o.dtype), ref_out)
    full = op.backward(cot, *_copy(s.args), **s.kwargs)
    _same(pullback(cot), full, f"{what}: pullback vs backward")
    if not masks:
        return
    n = len(full)
    for i in range(n):
        if full[i] is None:
            continue
        needs = tuple(j == i for j in range(n))
        for how, got in (("backward", op.backward(cot, *_copy(s.args), needs=needs, **s.kwargs)),
                         ("pullback", pullback(cot, needs=needs))):
            assert len(got) == n, f"{what}: {how} with needs={needs}"
            for j in range(n):
                if j == i:
                    _same(got[j], full[j], f"{what}: {how} entry {j} with needs={needs}")
                else:
                    assert got[j] is None, f"{what}: {how} entry {j} with needs={needs} is not None"
    assert pullback(cot, needs=[False] * n) == (None,) * n, what


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_vjp_is_forward_and_backward(info, dtype):
    rng = np.random.default_rng(0)
    for s in info.samples(rng, dtype):
        _check(info, s, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", [i for i in NATIVE if i.paths is not None], ids=lambda i: i.name)
def test_own_vjp_on_every_path(info, dtype):
    rng = np.random.default_rng(1)
    for case in info.paths(rng, dtype):
        with _dispatch.force(**case.force):
            _check(info, case.sample, rng, masks=False)


def test_ops_with_their_own_vjp():
    names = {i.name for i in NATIVE}
    assert {"lstm", "gru", "rnn", "batch_norm", "conv1d", "conv2d", "conv3d", "linear"} <= names


@pytest.mark.parametrize("bad, exc, match", [
    ("xy", TypeError, "needs"),
    ((1, 0), TypeError, "bools"),
    ((True,), ValueError, "needs' has 1 entries, the backward returns 3"),
])
def test_bad_needs_raise(bad, exc, match):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(exc, match=match):
        fastops.conv2d.backward(g, x, w, None, needs=bad)
    _, pullback = fastops.conv2d.vjp(x, w, None)
    with pytest.raises(exc, match=match):
        pullback(g, needs=bad)
    with pytest.raises(exc, match="relu: argument 'needs'"):  # relu has one entry
        fastops.relu.backward(np.ones(3, np.float32), np.ones(3, np.float32), needs=bad if bad != (True,) else (True,) * 3)


def _count(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_pullback_runs_no_forward(monkeypatch, kind):
    from fastops.recurrent import _layers
    from fastops.testing import recurrent as R

    rng = np.random.default_rng(0)
    s = next(s for s in R.TABLE if s.name == kind).samples(rng, np.float32)[0]
    out, pullback = getattr(fastops, kind).vjp(*s.args, **s.kwargs)
    calls = _count(monkeypatch, _layers, "forward")
    cot = tree_map(lambda o: np.ones_like(o), out)
    pullback(cot)
    assert calls == [], f"{kind}: the pullback ran the forward {len(calls)} times"
    getattr(fastops, kind).backward(cot, *s.args, **s.kwargs)
    assert calls, "the counter sees the backward's own forward"


def test_batch_norm_pullback_keeps_the_statistics(monkeypatch):
    from fastops.norm import _stats

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 7, 7)).astype(np.float32)
    rm, rv = np.zeros(6, np.float32), np.ones(6, np.float32)
    w, b = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    out, pullback = fastops.batch_norm.vjp(x, rm, rv, w, b, training=True, activation="relu")
    before = rm.copy(), rv.copy()
    calls = _count(monkeypatch, _stats, "batch_stats")
    g = rng.standard_normal(x.shape).astype(np.float32)
    got = pullback(g)
    assert calls == []
    assert np.array_equal(rm, before[0]) and np.array_equal(rv, before[1]), "the pullback moved the running stats"
    _same(got, fastops.batch_norm.backward(g, x, rm, rv, w, b, training=True, activation="relu"), "batch_norm")


@pytest.mark.parametrize("activation", [None, "relu", "relu6", "leaky_relu"])
def test_conv_and_linear_pullback_run_no_forward(monkeypatch, activation):
    from fastops.conv import _core

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    out, pullback = fastops.conv2d.vjp(x, w, b, padding=1, activation=activation)
    calls = _count(monkeypatch, _core, "forward")
    pullback(np.ones_like(out))
    assert calls == []
    if activation is not None:
        fastops.conv2d.backward(np.ones_like(out), x, w, b, padding=1, activation=activation)
        assert calls, "the plain backward recomputes the pre-activation"

    from fastops.conv import linear as L

    xl = rng.standard_normal((6, 8)).astype(np.float32)
    wl = rng.standard_normal((4, 8)).astype(np.float32)
    out, pullback = fastops.linear.vjp(xl, wl, None, activation=activation or "gelu")
    calls = _count(monkeypatch, L, "_pre_and_out")
    pullback(np.ones_like(out))
    assert calls == []


def test_first_layer_needs_no_grad_input(monkeypatch):
    """``needs=(False, True, True)`` on a conv: the data-gradient kernel does not run."""
    from fastops.conv import _core

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 3, 7, 7)).astype(np.float32)
    out, pullback = fastops.conv2d.vjp(x, w, None, stride=2, padding=3)
    seen = []
    real = _core.backward

    def spy(*a, need_data=True, need_weight=True, **k):
        seen.append((need_data, need_weight))
        return real(*a, need_data=need_data, need_weight=need_weight, **k)

    monkeypatch.setattr(_core, "backward", spy)
    gx, gw, gb = pullback(np.ones_like(out), needs=(False, True, False))
    assert gx is None and gb is None and gw.shape == w.shape
    assert seen == [(False, True)]
