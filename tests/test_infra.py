"""The machinery every op stands on: dispatch, threads, kernels, cache, CLI."""
import json
import os
import re
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastops
from fastops import _config, _dispatch
from fastops import _activations, _elementwise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ dispatch


@pytest.mark.parametrize(
    "size,threads,cost,expect",
    [
        (100, 2, "cheap", "serial"),
        ((1 << 16) - 1, 2, "cheap", "serial"),
        (1 << 16, 2, "cheap", "parallel"),
        (1 << 24, 1, "cheap", "serial"),
        (1 << 15, 2, "transcendental", "parallel"),
        ((1 << 15) - 1, 2, "transcendental", "serial"),
        (1 << 24, 16, "transcendental", "parallel"),
    ],
)
def test_parallel_backend(size, threads, cost, expect):
    assert _dispatch.parallel_backend(np.float32, size, threads, cost) == expect


def test_pointwise_backend_rejects_unknown_cost():
    with pytest.raises(KeyError):
        _dispatch.parallel_backend(np.float32, 10, 2, "expensive")


def test_explain_reports_the_choice():
    with fastops.threads(2):
        big = fastops.relu.explain((1 << 20,), "float32")
        assert big["backend"] == "parallel" and big["kernel"] == "relu_fwd_f32_parallel"
        assert fastops.sigmoid.explain((10,), "float64")["kernel"] == "sigmoid_fwd_f64_serial"
        assert fastops.gelu.explain((10,), "float32", approximate="tanh")["kernel"].startswith("gelu_tanh_fwd")
    with fastops.threads(1):
        assert fastops.relu.explain((1 << 20,), "float32")["backend"] == "serial"


# ------------------------------------------------------------------ threads


def test_set_num_threads_validates_and_context_restores():
    before = fastops.get_num_threads()
    with pytest.raises(ValueError):
        fastops.set_num_threads(0)
    with pytest.raises(TypeError):
        fastops.set_num_threads(1.5)
    with fastops.threads(1):
        assert fastops.get_num_threads() == 1
    assert fastops.get_num_threads() == before


def test_threads_blocks_are_per_python_thread_and_interleave_safely():
    """Two Python threads enter and leave ``threads`` blocks in an interleaved order (A enters,
    B enters, A leaves, B leaves): each sees its own count inside, the process default after,
    and nothing stale is left behind (a process-wide save/restore would leave A's count)."""
    import threading

    default = fastops.get_num_threads()
    other = 1 if default > 1 else default
    steps = [threading.Event() for _ in range(4)]
    seen = {}

    def a():
        with fastops.threads(other):
            steps[0].set()
            steps[1].wait(10)
            seen["a_inside"] = fastops.get_num_threads()
        seen["a_after"] = fastops.get_num_threads()
        steps[2].set()

    def b():
        steps[0].wait(10)
        with fastops.threads(default):
            steps[1].set()
            steps[2].wait(10)
            seen["b_inside"] = fastops.get_num_threads()
            with fastops.threads(other):  # nesting
                seen["b_nested"] = fastops.get_num_threads()
            seen["b_unnested"] = fastops.get_num_threads()
        seen["b_after"] = fastops.get_num_threads()

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert seen == {"a_inside": other, "a_after": default, "b_inside": default, "b_nested": other,
                    "b_unnested": default, "b_after": default}
    assert fastops.get_num_threads() == default
    # a block in one thread does not change another thread's count
    with fastops.threads(other):
        box = []
        t = threading.Thread(target=lambda: box.append(fastops.get_num_threads()))
        t.start()
        t.join(10)
        assert box == [default] and fastops.get_num_threads() == other
    # threads() validates like set_num_threads and names itself
    with pytest.raises(ValueError, match="threads"):
        with fastops.threads(0):
            pass
    with pytest.raises(TypeError, match="threads"):
        with fastops.threads(2.0):
            pass
    assert fastops.get_num_threads() == default


def test_threads_block_takes_precedence_over_set_num_threads_in_its_thread():
    default = fastops.get_num_threads()
    try:
        with fastops.threads(1):
            fastops.set_num_threads(default)
            assert fastops.get_num_threads() == 1
        assert fastops.get_num_threads() == default
    finally:
        fastops.set_num_threads(default)


def test_results_do_not_depend_on_thread_count():
    x = np.random.default_rng(0).standard_normal(300_000).astype(np.float32)
    g = np.ones_like(x)
    for name in ["relu", "sigmoid", "gelu", "tanh", "softplus"]:
        op = getattr(fastops, name)
        with fastops.threads(1):
            a, ga = op(x), op.backward(g, x)[0]
        with fastops.threads(fastops._threads.max_threads()):
            b, gb = op(x), op.backward(g, x)[0]
        assert np.array_equal(a, b) and np.array_equal(ga, gb), name


# ------------------------------------------------------------------ kernels


@pytest.mark.parametrize("pw", [v for v in vars(_activations).values() if isinstance(v, _elementwise.Pointwise)], ids=lambda p: p.name)
def test_float32_kernels_stay_float32_and_vectorize(pw):
    """No float64 arithmetic in float32 kernels (a float64 literal would promote the whole
    expression, numba#888), and the loop is vectorized (LLVM vector types in the IR)."""
    x = np.linspace(-4, 4, 64, dtype=np.float32)
    pw.forward(x)
    pw.grad(np.ones_like(x), x)
    for which in ("fwd", "bwd"):
        # recompile the kernel's function uncached: Numba cannot inspect code loaded from its cache
        k = numba.njit(**_config.JIT_OPTIONS)(pw.kernel(which, np.float32, "serial").py_func)
        args = (x, np.empty_like(x), np.float32(0), np.float32(0))
        k(*args) if which == "fwd" else k(x, x, np.empty_like(x), np.float32(0), np.float32(0))
        ir = "\n".join(k.inspect_llvm().values())
        # the kernel's own functions, without the CPython wrapper (which unboxes Python floats)
        funcs = [f for f in ir.split("\ndefine ")[1:] if "@_ZN7fastops" in f.splitlines()[0]]
        body = "\n".join(funcs).splitlines()
        assert not [line for line in body if "double" in line or "fpext" in line], f"{pw.name} {which}: float64 in a float32 kernel"
        assert re.search(r"<\d+ x float>", ir), f"{pw.name} {which}: loop not vectorized"


# ------------------------------------------------------------------ cache


def test_cache_dir_names_version_and_mode():
    d = _config.cache_dir()
    if d is None:
        pytest.skip("cache disabled in this environment")
    assert fastops.__version__ in d and "numba" in d
    assert d.endswith("-boundscheck") == _config.boundscheck_enabled()


def test_cache_dir_env_and_reuse(tmp_path):
    code = "import numpy as np, fastops; print(fastops.relu(np.array([-1.0, 2.0], np.float32)).tolist())"
    env = {"FASTOPS_CACHE_DIR": str(tmp_path)}
    r1 = _run(code, env)
    assert r1.returncode == 0, r1.stderr
    assert r1.stdout.strip() == "[0.0, 2.0]"
    files = [f for _, _, fs in os.walk(tmp_path) for f in fs]
    assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
    r2 = _run(code + "\nfrom fastops._activations import RELU\nimport numpy as np\n"
              "k = RELU.kernel('fwd', np.float32, 'serial'); print(sum(k.stats.cache_hits.values()))", env)
    assert r2.returncode == 0, r2.stderr
    assert "[0.0, 2.0]" in r2.stdout and r2.stdout.strip().endswith("1")  # loaded from the cache


def test_unwritable_cache_warns_once_and_works(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("running as a user that can write anywhere (root)")
    code = (
        "import warnings, numpy as np, fastops\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = fastops.relu(np.array([-1.0], np.float32)); b = fastops.sigmoid(np.array([0.0]))\n"
        "print(a.tolist(), b.tolist(), sum('no writable kernel cache' in str(x.message) for x in w))"
    )
    env = {"FASTOPS_CACHE_DIR": str(ro / "c"), "XDG_CACHE_HOME": str(ro / "x"), "HOME": str(ro), "TMPDIR": str(ro / "t")}
    r = _run(code, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[0.0] [0.5] 1"


def test_unwritable_cache_fallback_when_root(tmp_path, monkeypatch):
    """Same property checked in-process by making every candidate fail (works as root too)."""
    monkeypatch.setattr(_config, "_writable", lambda p: False)
    monkeypatch.setattr(_config, "_cache_dir", None)
    with pytest.warns(RuntimeWarning, match="no writable kernel cache"):
        assert _config.cache_dir() is None
    assert _config.cache_dir() is None  # resolved once: no second warning


def test_disable_cache_env():
    r = _run("from fastops import _config; print(_config.cache_dir())", {"FASTOPS_DISABLE_CACHE": "1"})
    assert r.stdout.strip() == "None"


# ------------------------------------------------------------------ CLI


def _cli(*args, timeout=600):
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "fastops", *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_cli_info():
    r = _cli("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["fastops"] == fastops.__version__ and info["threads"] >= 1 and info["ops"] >= 12


def test_cli_explain():
    r = _cli("explain", "relu", "--shape", "100", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kernel"] == "relu_fwd_f32_serial"
    r = _cli("explain", "nosuchop")
    assert r.returncode == 2 and "unknown op" in r.stderr


def test_cli_warmup_and_bench():
    r = _cli("warmup", "--ops", "relu")
    assert r.returncode == 0 and "1 ops" in r.stdout, r.stderr
    r = _cli("bench", "--quick", "--size", "small", "--ops", "relu", "sigmoid", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["op"] for row in rows] == ["relu", "sigmoid"]
    assert all(row["fastops_s"] > 0 and row["numpy_s"] > 0 for row in rows)


def test_no_scipy_blas_in_kernels():
    """Numba compiles ``np.dot``, ``@``, ``np.linalg`` and ``np.vdot`` only through SciPy's BLAS, and SciPy
    is not a run-time dependency (it may be installed as a test extra, so a kernel using them would pass
    here and fail for users). fastops sources therefore spell matrix products ``np.matmul`` (NumPy's
    own BLAS, outside Numba) and never use these names at all."""
    import ast
    import pathlib

    import fastops

    bad = []
    for path in pathlib.Path(fastops.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                bad.append(f"{path}:{node.lineno}: '@'")
            elif isinstance(node, ast.Attribute) and node.attr in ("dot", "vdot", "linalg", "inner", "outer") and (
                isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")
            ):
                bad.append(f"{path}:{node.lineno}: np.{node.attr}")
    assert not bad, "use np.matmul outside Numba kernels instead of:\n" + "\n".join(bad)


def test_two_processes_compiling_cold_into_one_cache(tmp_path):
    """Two processes that compile the same kernels at the same time into one empty cache both get
    correct results, and the cache they leave behind loads in a third process."""
    code = (
        "import numpy as np, fastops\n"
        "x = np.linspace(-3, 3, 1001, dtype=np.float32)\n"
        "a = fastops.gelu(x); b = fastops.softmax(x.reshape(7, 143), dim=1); c = fastops.tanh(x.astype(np.float64))\n"
        "print(float(a.sum()), float(b.sum()), float(c.sum()))\n"
        "from fastops._activations import GELU\n"
        "print(sum(GELU.kernel('fwd', np.float32, 'serial').stats.cache_hits.values()))\n"
    )
    env = dict(os.environ, FASTOPS_CACHE_DIR=str(tmp_path))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    first = [o[0].splitlines() for o in outs]
    assert first[0][0] == first[1][0]  # identical results
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == first[0][0] and lines[1] == "1"  # the third process loads the kernel from the cache


def test_read_only_package_directory_uses_the_per_user_cache(tmp_path):
    """fastops installed read-only (system site-packages): kernels are cached under
    $XDG_CACHE_HOME/fastops (the per-user cache), nothing is written into the package."""
    import shutil
    import stat

    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "fastops"), site / "fastops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for d, _, fs in os.walk(site):
        for f in fs:
            os.chmod(os.path.join(d, f), stat.S_IRUSR | stat.S_IRGRP)
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR)
    try:
        # (as root the directory stays writable; fastops must still not write into it)
        xdg = tmp_path / "xdg"
        env = dict(os.environ, PYTHONPATH=str(site), XDG_CACHE_HOME=str(xdg), PYTHONDONTWRITEBYTECODE="1")
        env.pop("FASTOPS_CACHE_DIR", None)
        code = ("import numpy as np, fastops; from fastops import _config\n"
                "print(fastops.__file__); print(_config.cache_dir())\n"
                "print(fastops.relu(np.array([-1.0, 2.0], np.float32)).tolist())")
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)  # (not the checkout: "-c" puts the working directory on sys.path)
        assert r.returncode == 0, r.stderr
        where, cache, out = r.stdout.splitlines()
        assert where.startswith(str(site)) and cache.startswith(str(xdg / "fastops")) and out == "[0.0, 2.0]"
        files = [f for _, _, fs in os.walk(xdg) for f in fs]
        assert any(f.endswith(".nbi") for f in files) and any(f.endswith(".nbc") for f in files)
        inside = [f for _, _, fs in os.walk(site) for f in fs if f.endswith((".nbi", ".nbc", ".pyc"))]
        assert not inside, inside
    finally:
        for d, _, _ in os.walk(site):
            os.chmod(d, stat.S_IRWXU)


def test_cache_of_another_version_is_not_loaded(tmp_path):
    """Kernels cached by another fastops version live in another directory (the version is part of
    the cache path): a process of a different version compiles afresh instead of loading them."""
    code = (
        "import sys, numpy as np, fastops\n"
        "from fastops import _config\n"
        "if len(sys.argv) > 1: _config.__version__ = sys.argv[1]  # pretend to be another release\n"
        "from fastops._activations import RELU\n"
        "print(fastops.relu(np.array([-1.0, 2.0], np.float32)).tolist(), _config.cache_dir())\n"
        "print(sum(RELU.kernel('fwd', np.float32, 'serial').stats.cache_hits.values()))\n"
    )
    env = dict(os.environ, FASTOPS_CACHE_DIR=str(tmp_path))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")

    def run(*version):
        r = subprocess.run([sys.executable, "-c", code, *version], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        first, hits = r.stdout.splitlines()
        return first, int(hits)

    run()  # fills the cache (test_cache_dir_env_and_reuse: the same version then loads it)
    out3, hits3 = run("0.0.0+other")
    assert hits3 == 0, "a kernel cached by another fastops version was loaded"
    assert out3.startswith("[0.0, 2.0]") and "0.0.0+other" in out3 and fastops.__version__ not in out3.split()[-1]


def _imports(path):
    """Absolute module names a source file imports (relative imports resolved within fastops)."""
    import ast

    rel = os.path.relpath(path, os.path.dirname(fastops.__file__))
    pkg = ["fastops"] + rel.replace(os.sep, "/").split("/")[:-1]
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def test_cache_stamp_covers_kernel_modules_only(tmp_path):
    """Editing the tooling (test table, CLI, benchmarks, tools, examples, Dask wrappers) keeps
    the kernel cache valid; editing any other module invalidates it."""
    import shutil

    from fastops import _jit

    pkg = os.path.dirname(fastops.__file__)
    copy = tmp_path / "fastops"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    covered = _jit.kernel_sources(str(copy))
    assert "_jit.py" in covered and os.path.join("activation", "pointwise.py") in covered
    assert not any(_jit.is_tooling(p) for p in covered)
    base = _jit.source_stamp(str(copy))
    assert base == _jit.source_stamp(pkg) == _jit._package_stamp()
    for tool in ("testing/activation.py", "tools/crossover.py", "examples/data.py", "dask/_ops.py",
                 "__main__.py", "bench.py", "optim/bench.py", "recurrent/bench.py"):
        with open(copy / tool, "a") as fh:
            fh.write("\n# edited\n")
        assert _jit.source_stamp(str(copy)) == base, tool
    for kernel_module in ("_activations.py", "_math.py", "conv/_kernels.py"):
        p = copy / kernel_module
        old = p.read_bytes()
        p.write_bytes(old + b"\n# edited\n")
        assert _jit.source_stamp(str(copy)) != base, kernel_module
        p.write_bytes(old)
    (copy / "norm" / "new_module.py").write_text("X = 1\n")
    assert _jit.source_stamp(str(copy)) != base


def test_tooling_defines_no_cached_kernel_and_no_kernel_module_imports_it():
    """What the cache stamp leaves out can never reach a compiled kernel."""
    from fastops import _jit

    pkg = os.path.dirname(fastops.__file__)
    tooling = {"fastops." + os.path.splitext(os.path.relpath(os.path.join(r, f), pkg))[0].replace(os.sep, ".")
               for r, _, fs in os.walk(pkg) for f in fs
               if f.endswith(".py") and _jit.is_tooling(os.path.relpath(os.path.join(r, f), pkg))}
    tooling = {m[: -len(".__init__")] if m.endswith(".__init__") else m for m in tooling}
    for root, _, files in os.walk(pkg):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, pkg)
            imports = _imports(path)
            if _jit.is_tooling(rel):
                assert not any(m == "fastops._jit" or m.startswith("fastops._jit.") for m in imports), rel
            else:
                bad = {m for m in imports for t in tooling if m == t or m.startswith(t + ".")}
                assert not bad, f"{rel} imports tooling {bad}"


def test_public_namespace():
    """``fastops.__all__``: every registered op, the thread controls, ``optim``, ``ops``,
    ``fold_batch_norm`` and the version, each importable by ``from fastops import *``, and nothing private."""
    import fastops

    ns = {}
    exec("from fastops import *", ns)  # noqa: S102 - the star import is what is tested
    names = set(fastops.__all__)
    assert len(names) == len(fastops.__all__)
    assert set(fastops.ops()) <= names
    assert names - set(fastops.ops()) == {"get_num_threads", "set_num_threads", "threads", "optim", "ops",
                                        "fold_batch_norm", "__version__"}
    assert names <= set(ns)
    assert not any(n.startswith("_") and n != "__version__" for n in names)
    for n in fastops.ops():
        assert getattr(fastops, n).name == n
