"""Each optional extra of pyproject.toml installs what the code it promises imports.

``pip install -e ".[notebooks]"`` must run the notebooks, ``[examples]`` the examples, ``[dask]``
fastops.dask, ``[bench]`` the benchmarks. The imports are read from the code (AST, function bodies
included): a third-party module is *required* unless its import sits in a ``try`` whose
``ImportError`` handler carries on without it (tqdm's progress bar), or it is torch, the optional
reference that is installed on its own (README). The notebooks' ``fastops`` submodule imports are
followed into the package (03_training imports ``fastops.examples``, which needs scikit-learn);
inside the package, a submodule's function-level imports are that submodule's own business.
"""
import ast
import glob
import importlib.metadata
import json
import os
import re
import sys

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# module -> distribution where the module is not installed here (the mapping below comes from
# the installed distributions otherwise)
KNOWN_DIST = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "dask": "dask", "distributed": "distributed",
              "tqdm": "tqdm", "asv": "asv", "torch": "torch"}

OPTIONAL = {"torch"}
BASE = {"numpy", "numba", "llvmlite"}  # fastops' own dependencies (llvmlite: numba's)
PROMISES = {
    "notebooks": ["notebooks/*.ipynb"],
    "examples": ["fastops/examples/*.py"],
    "dask": ["fastops/dask/*.py"],
    "bench": ["asv_benches/*.py", "fastops/bench.py"],
}


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    raw = proj["optional-dependencies"]
    base = {_norm(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in proj["dependencies"]}

    def closure(extra, seen=()):
        out = set(base)
        for req in raw[extra]:
            m = re.match(r"fastops\[([^\]]+)\]", req)
            if m:
                for e in m.group(1).split(","):
                    if e.strip() not in seen:
                        out |= closure(e.strip(), seen + (extra,))
            else:
                out.add(_norm(re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0]))
        return out

    return {e: closure(e) for e in raw}


def _optional_imports(tree):
    """Import nodes inside a ``try`` whose ImportError handler does not re-raise."""
    opt = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        for h in node.handlers:
            names = {getattr(n, "id", None) for n in ([h.type] if not isinstance(h.type, ast.Tuple) else h.type.elts)}
            if h.type is None or names & {"ImportError", "ModuleNotFoundError", "Exception"}:
                if not any(isinstance(n, ast.Raise) for n in ast.walk(h)):
                    opt |= {id(n) for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return opt


def _sources(pattern):
    for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
        if path.endswith(".ipynb"):
            with open(path) as f:
                cells = json.load(f)["cells"]
            code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            yield path, "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        else:
            with open(path) as f:
                yield path, f.read()


def _imports(path, src, seen, follow):
    """``{top-level third-party module: first file needing it}``, following fastops submodules."""
    tree = ast.parse(src)
    optional = _optional_imports(tree)
    need = {}
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative import inside fastops
            base = os.path.dirname(path)
            for _ in range(node.level - 1):
                base = os.path.dirname(base)
            rel = os.path.relpath(base, ROOT).replace(os.sep, ".")
            mods = [f"{rel}.{node.module}" if node.module else rel]
            mods += [f"{m}.{a.name}" for m in mods[:1] for a in node.names]
        else:
            continue
        for m in mods:
            top = m.split(".")[0]
            if top == "fastops":
                f = os.path.join(ROOT, *m.split(".")) + ".py"
                if follow and os.path.isfile(f) and f not in seen:
                    seen.add(f)
                    with open(f) as fh:
                        for k, v in _imports(f, fh.read(), seen, follow).items():
                            need.setdefault(k, v)
            elif top not in sys.stdlib_module_names and top not in BASE | OPTIONAL | {"asv_benches"}:
                need.setdefault(top, os.path.relpath(path, ROOT))
    return need


@pytest.mark.parametrize("extra", sorted(PROMISES))
def test_extra_installs_what_its_code_imports(extra):
    dists = {k: [_norm(d) for d in v] for k, v in importlib.metadata.packages_distributions().items()}
    provided = _extras()[extra]
    missing = []
    for pattern in PROMISES[extra]:
        for path, src in _sources(pattern):
            for mod, where in _imports(path, src, set(), path.endswith(".ipynb")).items():
                names = dists.get(mod) or [_norm(KNOWN_DIST.get(mod, mod))]
                if not set(names) & provided:
                    missing.append(f"{mod} ({'/'.join(names)}, imported by {where})")
    assert not missing, f"pip install 'fastops[{extra}]' lacks: " + ", ".join(sorted(set(missing)))


def test_the_scan_sees_a_lazy_import_through_fastops_submodules():
    """The training notebook's need for scikit-learn comes through fastops.examples.data."""
    need = {}
    for path, src in _sources("notebooks/03_training.ipynb"):
        need.update(_imports(path, src, set(), True))
    assert need.get("sklearn") == "fastops/examples/data.py" and "matplotlib" in need
