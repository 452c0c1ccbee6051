"""The package's layering, read from the import statements of every module (AST, nothing run):

* the **core** (``fastops/_*.py``: SIMD layer, math, kernel sets, GEMM engine, dispatch, ...)
  imports no family (``fastops/__init__.py``, the public namespace, imports every op);
* a **family** (``fastops/<family>/``) imports core, itself and other families' public modules
  only, never another family's private module (``fastops.<other>._*``);
* nothing in the library imports the **tooling** (the test table ``fastops.testing``, the tools,
  the examples, the benchmarks, the CLI); the CLI and the tooling may import anything.
"""
import ast
import os

import pytest

import fastops
from fastops import _jit

PKG = os.path.dirname(fastops.__file__)
FAMILIES = sorted(d for d in os.listdir(PKG) if os.path.isfile(os.path.join(PKG, d, "__init__.py")))


def _modules():
    for root, dirs, files in os.walk(PKG):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.relpath(os.path.join(root, f), PKG).replace(os.sep, "/")


def _imports(rel):
    """Absolute names a module imports (relative imports resolved; ``from m import a`` gives ``m``
    and ``m.a``), with the line of each."""
    pkg = ["fastops"] + rel.split("/")[:-1]
    out = []
    with open(os.path.join(PKG, rel), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.append((mod, node.lineno))
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return out


def _family(rel):
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else None


def _target_family(name):
    parts = name.split(".")
    if parts[0] != "fastops" or len(parts) < 2:
        return None, None
    fam = parts[1] if parts[1] in FAMILIES else None
    return fam, (parts[2] if fam and len(parts) > 2 else None)


def _is_tooling_module(name):
    parts = name.split(".")
    if parts[0] != "fastops" or len(parts) < 2:
        return False
    return _jit.is_tooling("/".join(parts[1:]) + ".py") or _jit.is_tooling(parts[1])


LIBRARY = [m for m in _modules() if not _jit.is_tooling(m)]


def test_the_rules_see_the_whole_package():
    assert {"activation", "conv", "norm", "pooling", "shape", "attention", "recurrent"} <= set(FAMILIES)
    assert "_kernelset.py" in LIBRARY and "conv/_kernels.py" in LIBRARY
    assert "testing/__init__.py" not in LIBRARY and "__main__.py" not in LIBRARY


@pytest.mark.parametrize("rel", [m for m in LIBRARY if _family(m) is None and m != "__init__.py"])
def test_core_imports_no_family(rel):
    bad = [(n, line) for n, line in _imports(rel) if _target_family(n)[0] is not None]
    assert not bad, f"core module {rel} imports a family: {bad}"


@pytest.mark.parametrize("rel", [m for m in LIBRARY if _family(m) is not None])
def test_family_imports_no_private_module_of_another_family(rel):
    own = _family(rel)
    bad = []
    for n, line in _imports(rel):
        fam, mod = _target_family(n)
        if fam is not None and fam != own and mod is not None and mod.startswith("_"):
            bad.append((n, line))
    assert not bad, f"{rel} reaches into another family's private modules: {bad}"


@pytest.mark.parametrize("rel", LIBRARY)
def test_library_imports_no_tooling(rel):
    bad = [(n, line) for n, line in _imports(rel) if _is_tooling_module(n)]
    assert not bad, f"{rel} imports tooling: {bad}"


def test_the_checks_catch_a_violation():
    """The rules are not vacuous: a core module importing a family, and a family importing
    another's private module, are both found."""
    core = _imports("_epilogue.py") + [("fastops.activation.pointwise", 1)]
    assert any(_target_family(n)[0] for n, _ in core)
    fam, mod = _target_family("fastops.shape._grid_helpers")
    assert fam == "shape" and mod.startswith("_")
    assert _is_tooling_module("fastops.testing.conv") and _is_tooling_module("fastops.tools.crossover")
    assert not _is_tooling_module("fastops.conv._kernels")
