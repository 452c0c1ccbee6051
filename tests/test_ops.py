"""Generic tests driven by the op table (fastops.testing): every entry gets all of them."""
import inspect

import numpy as np
import pytest

import fastops
from fastops.testing import check_vjp, grad_entries, is_arrays, table, to_float64, tree_leaves, tree_map

from .conftest import requires_torch, torch

TABLE = table()
IDS = [info.name for info in TABLE]
DTYPES = [np.float32, np.float64]


def _as_list(out):
    """The arrays (and Nones) of a result, flat: also inside a recurrent op's ``(y, (h_n, c_n))``
    or its ``params`` gradients."""
    return tree_leaves(out)


_is_arrays = is_arrays


def _arrays(sample):
    return [i for i, a in enumerate(sample.args) if _is_arrays(a)]


def _cotangent(out, make):
    """A cotangent with the structure of ``out`` (an array, or nested tuples of arrays)."""
    return tree_map(make, out)


def _samples(info, dtype, seed=0):
    return info.samples(np.random.default_rng(seed), dtype)


def _tol(info, dtype):
    return info.tol[dtype]


def _assert_close(actual, expected, rtol, atol, what):
    actual, expected = _as_list(actual), _as_list(expected)
    assert len(actual) == len(expected), what
    for a, e in zip(actual, expected):
        if e is None:
            assert a is None, what
            continue
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol, err_msg=what)


def _equal(a, b):
    return all(
        (x is None and y is None) or (x.shape == y.shape and np.array_equal(x, y, equal_nan=True))
        for x, y in zip(_as_list(a), _as_list(b))
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", TABLE, ids=IDS)
def test_forward_matches_numpy_reference(info, dtype):
    rtol, atol = _tol(info, dtype)
    for s in _samples(info, dtype):
        out = info.op(*s.args, **s.kwargs)
        ref = info.ref(*to_float64(s.args), **s.kwargs)
        for o, r in zip(_as_list(out), _as_list(ref)):
            assert o.dtype == dtype, f"{info.name} {s}: output dtype {o.dtype}"
            assert o.shape == r.shape, f"{info.name} {s}: shape {o.shape} != {r.shape}"
        _assert_close(out, ref, rtol, atol, f"{info.name} {s}")


@pytest.mark.parametrize("info", TABLE, ids=IDS)
def test_backward_matches_finite_differences(info):
    """JAX-style check_vjp in float64: <(f(x + e t) - f(x - e t)) / 2e, c> == <t, backward(c)>."""
    rng = np.random.default_rng(7)
    eps = 1e-6
    for s in _samples(info, np.float64):
        args = list(s.args)
        out = info.op(*args, **s.kwargs)
        if sum(o.size for o in _as_list(out)) == 0:
            continue
        cot = _cotangent(out, lambda o: rng.standard_normal(o.shape))
        grads = info.op.backward(cot, *args, **s.kwargs)
        assert isinstance(grads, tuple), f"{info.name}: backward returns a tuple"  # arity: test_backward_contract
        res = check_vjp(info, s, cot, grads, rng, eps)
        if res is None:
            continue
        fd, an, scale = res
        assert abs(fd - an) <= 1e-6 * scale + 1e-9, f"{info.name} {s}: finite difference {fd} vs backward {an}"


@requires_torch
@pytest.mark.torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", [i for i in TABLE if i.torch_ref], ids=[i.name for i in TABLE if i.torch_ref])
def test_forward_and_backward_match_torch(info, dtype):
    # float64 to the table's float64 tolerance: a float32 constant or intermediate in a float64
    # kernel (~1e-8 relative) fails here, forward and backward. Where torch's own float64 kernel is
    # less precise, the entry's ``torch_tol`` says so (and the NumPy reference holds fastops).
    rtol, atol = info.torch_tol.get(dtype, _tol(info, dtype))
    rng = np.random.default_rng(3)
    for s in _samples(info, dtype):
        def tensor(i):
            return lambda a: torch.from_numpy(a.copy()).requires_grad_(i in info.grad_args and a.dtype.kind == "f")

        targs = [tree_map(tensor(i), a) for i, a in enumerate(s.args)]
        tout = _as_list(info.torch_ref(torch, *targs, **s.kwargs))
        out_tree = info.op(*s.args, **s.kwargs)
        out = _as_list(out_tree)
        _assert_close(out, [t.detach().numpy() for t in tout], rtol, atol, f"{info.name} {s} vs torch")
        if sum(o.size for o in out) == 0:
            continue
        cot = _cotangent(out_tree, lambda o: rng.standard_normal(o.shape).astype(dtype))
        cots = _as_list(cot)
        diff = [t for i in info.grad_args for t in tree_leaves(targs[i])
                if isinstance(t, torch.Tensor) and t.requires_grad]
        tgrads = torch.autograd.grad(tout, diff, [torch.from_numpy(c) for c in cots], allow_unused=True)
        grads = info.op.backward(cot, *s.args, **s.kwargs)
        k, entry = 0, grad_entries(info.name, s.args)
        for i in info.grad_args:
            for j, (t, g) in enumerate(zip(tree_leaves(targs[i]), tree_leaves(grads[entry[i]]))):
                if isinstance(t, torch.Tensor) and t.requires_grad:
                    tg = tgrads[k]
                    k += 1
                    expect = np.zeros(tuple(t.shape)) if tg is None else tg.numpy()
                    assert g.dtype == dtype
                    _assert_close(g, expect, rtol * 10, atol * 10, f"{info.name} {s}: grad of arg {i} ({j}) vs torch")
        assert k == len(diff), f"{info.name} {s}: {k} gradients compared of {len(diff)}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("info", TABLE, ids=IDS)
def test_inputs_unmodified_and_layouts(info, dtype):
    """Inputs are never written; non-contiguous, negative-stride, read-only and byte-swapped inputs
    give bitwise the same result as contiguous ones."""
    rng = np.random.default_rng(5)
    for s in _samples(info, dtype):
        idx = _arrays(s)
        before = [a.copy() for a in tree_leaves(list(s.args)) if isinstance(a, np.ndarray)]
        out = info.op(*s.args, **s.kwargs)
        if info.grad_args:
            info.op.backward(_cotangent(out, lambda o: rng.standard_normal(o.shape).astype(dtype)), *s.args, **s.kwargs)
        after = [a for a in tree_leaves(list(s.args)) if isinstance(a, np.ndarray)]
        assert _equal(before, after), f"{info.name} {s}: an input was modified"

        def variant(make):
            args = list(s.args)
            for i in idx:
                args[i] = tree_map(make, args[i])
            return info.op(*args, **s.kwargs)

        def strided(a):
            buf = np.empty(a.shape + (2,), a.dtype)
            buf[..., 1] = a
            return buf[..., 1]

        def reversed_(a):
            if a.ndim == 0:
                return a
            f = np.ascontiguousarray(np.flip(a, 0))
            return np.flip(f, 0)

        def readonly(a):
            a = a.copy()
            a.flags.writeable = False
            return a

        def swapped(a):
            return a.astype(a.dtype.newbyteorder())

        for name, make in [("strided", strided), ("reversed", reversed_), ("readonly", readonly), ("byteswapped", swapped)]:
            got = variant(make)
            assert _equal(got, out), f"{info.name} {s}: {name} input gives a different result"
            for g in _as_list(got):
                assert g.dtype == np.dtype(dtype) and g.dtype.isnative


@pytest.mark.parametrize("info", TABLE, ids=IDS)
def test_bad_inputs_raise(info):
    short = info.name.split(".")[-1]
    for case in info.errors():
        with pytest.raises(case.exc, match=case.match) as e:
            info.op(*case.args, **case.kwargs)
        assert short in str(e.value), f"{info.name}: error message does not name the op: {e.value}"


@pytest.mark.parametrize("info", TABLE, ids=IDS)
def test_backward_contract(info):
    """``backward`` returns one entry per *array* parameter of the forward's signature, in signature
    order (hyper-parameters have none, even when passed positionally); an entry is ``None`` exactly
    when its argument is ``None`` (absent) or not differentiable, else an array of the argument's
    shape and dtype. The array parameters are those that receive an array, or a positional ``None``,
    in some sample of the op."""
    sig = inspect.signature(info.op)
    names = list(sig.parameters)
    varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())  # eltwise(*xs)
    samples = _samples(info, np.float64) + _samples(info, np.float32)
    arrays = set()
    for s in samples:
        if not varargs:
            arrays |= {names[i] for i, a in enumerate(s.args) if a is None or _is_arrays(a)}
        arrays |= {k for k, v in s.kwargs.items() if isinstance(v, np.ndarray)}
    if not varargs:  # the positional parameters that never get an array are the declared hyper_args
        npos = max(len(s.args) for s in samples)
        assert {i for i in range(npos) if names[i] not in arrays} == set(info.hyper_args), info.name
    for s in samples:
        out = info.op(*s.args, **s.kwargs)
        grads = info.op.backward(_cotangent(out, lambda o: np.ones(o.shape, o.dtype)), *s.args, **s.kwargs)
        assert isinstance(grads, tuple), f"{info.name}: backward returns {type(grads).__name__}, not a tuple"
        if varargs:
            entries = [(a, i in info.grad_args) for i, a in enumerate(s.args)]
        else:
            bound = sig.bind(*s.args, **s.kwargs)
            bound.apply_defaults()
            entries = [(bound.arguments[n], names.index(n) in info.grad_args if names.index(n) < len(s.args)
                        else n in info.grad_kwargs) for n in names if n in arrays]
        assert len(grads) == len(entries), \
            f"{info.name} {s}: backward gives {len(grads)} entries for {len(entries)} array parameters"
        for k, ((value, differentiable), g) in enumerate(zip(entries, grads)):
            differentiable = differentiable and _is_arrays(value) and all(v.dtype.kind == "f" for v in tree_leaves(value))
            if not differentiable:  # None, a Python scalar operand, a bool mask, integer indices
                assert g is None, f"{info.name} {s}: entry {k} must be None (argument absent, a scalar or not differentiable)"
            elif isinstance(value, np.ndarray):
                assert isinstance(g, np.ndarray) and g.shape == value.shape and g.dtype == value.dtype, \
                    f"{info.name} {s}: entry {k}: {type(g).__name__} {getattr(g, 'shape', '')} for {value.shape} {value.dtype}"
            else:  # a tuple/list of arrays (hx, params): a gradient of the same structure
                assert type(g) is type(value) and len(g) == len(value), \
                    f"{info.name} {s}: entry {k}: {type(g).__name__} for a {type(value).__name__} of {len(value)}"
                for v, gv in zip(tree_leaves(value), tree_leaves(g)):
                    assert isinstance(gv, np.ndarray) and gv.shape == v.shape and gv.dtype == v.dtype, \
                        f"{info.name} {s}: entry {k}: {getattr(gv, 'shape', gv)} for {v.shape} {v.dtype}"


@pytest.mark.parametrize("info", [i for i in TABLE if i.grad_args], ids=[i.name for i in TABLE if i.grad_args])
def test_backward_rejects_bad_grad_output(info):
    s = next(s for s in _samples(info, np.float32) if all(o.size for o in _as_list(info.op(*s.args, **s.kwargs))))
    out = info.op(*s.args, **s.kwargs)
    bad_shape = _cotangent(out, lambda o: np.ones(o.shape + (2,), np.float32))
    bad_dtype = _cotangent(out, lambda o: np.ones(o.shape, np.float64))
    for bad, exc in [(bad_shape, ValueError), (bad_dtype, TypeError)]:
        with pytest.raises(exc):
            info.op.backward(bad, *s.args, **s.kwargs)


@pytest.mark.parametrize("info", [i for i in TABLE if "inplace" in inspect.signature(i.op).parameters], ids=lambda i: i.name)
def test_inplace(info):
    for s in _samples(info, np.float32):
        x = s.args[0].copy()
        expect = info.op(*s.args, **s.kwargs)
        got = info.op(x, *s.args[1:], **{**s.kwargs, "inplace": True})
        assert got is x and _equal(got, expect)
    with pytest.raises(ValueError, match="inplace"):
        info.op(np.ones((4, 4), np.float32)[:, ::2], inplace=True)


def test_every_op_in_table_is_registered():
    assert set(IDS) <= set(fastops.ops()) | {i for i in IDS if "." in i}
