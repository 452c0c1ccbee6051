"""No op runs a matrix product in NumPy's BLAS: every product is on fastops' GEMM engine, so an
op's work runs on one thread pool (fastops') and ``fastops.threads(n)`` bounds all of it."""
import ast
import os

import numpy as np
import pytest

import fastops
from fastops import _jit
from fastops.testing import table

_BLAS_FUNCS = ("matmul", "dot", "einsum", "tensordot", "inner", "vdot", "outer")


def _library_modules():
    pkg = os.path.dirname(fastops.__file__)
    for rel in _jit.kernel_sources(pkg):
        yield rel, os.path.join(pkg, rel)


def test_no_blas_call_in_library_source():
    """No ``@`` operator, no ``np.matmul``/``np.dot``/... and no ``.dot(`` method call in any
    library module (tooling and the test table may use them as references)."""
    bad = []
    for rel, path in _library_modules():
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
                bad.append(f"{rel}:{node.lineno} @")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                if f.attr in _BLAS_FUNCS and isinstance(f.value, ast.Name) and f.value.id in ("np", "numpy"):
                    bad.append(f"{rel}:{node.lineno} np.{f.attr}")
                elif f.attr == "dot":
                    bad.append(f"{rel}:{node.lineno} .dot")
                elif isinstance(f.value, ast.Attribute) and f.value.attr == "linalg":
                    bad.append(f"{rel}:{node.lineno} linalg.{f.attr}")
    assert not bad, bad


@pytest.fixture
def blas_raises(monkeypatch):
    def make(name):
        def boom(*a, **k):
            raise AssertionError(f"np.{name} called on an op's path")
        return boom

    for name in _BLAS_FUNCS:
        monkeypatch.setattr(np, name, make(name))


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("info", [i for i in table() if i.name in {
    "matmul", "linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "separable_conv2d",
    "deform_conv2d", "correlation", "scaled_dot_product_attention", "bilinear", "mse_loss", "softmax",
}], ids=lambda i: i.name)
def test_table_ops_run_with_numpy_blas_patched_to_raise(info, blas_raises):
    rng = np.random.default_rng(0)
    for s in info.samples(rng, np.float32):
        out = _as_list(info.op(*s.args, **s.kwargs))
        if info.grad_args and sum(o.size for o in out):
            cots = [np.ones_like(o) for o in out]
            info.op.backward(cots if len(cots) > 1 else cots[0], *s.args, **s.kwargs)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_ops_run_with_numpy_blas_patched_to_raise(kind, blas_raises):
    rng = np.random.default_rng(1)
    T, B, I, H = 3, 2, 5, 4
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    params = [rng.standard_normal(s).astype(np.float32) for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    f = getattr(fastops, kind)
    y, _ = f(x, None, params)
    f.backward((np.ones_like(y), None), x, None, params)
