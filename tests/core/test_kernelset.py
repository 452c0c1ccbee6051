"""fastops._kernelset: how every module builds and runs its kernels."""
import numba
import numpy as np
import pytest
from numba import prange

import fastops
from fastops import _config, _jit, _kernelset
from fastops._kernelset import UNBOUND, KernelSet, PlaneSet

T = SCALE = UNBOUND  # template globals of the toy sets below


def _scale_template(x, out):
    for i in prange(x.size):
        out[i] = x[i] * SCALE + T(1)


def _threads_template(out):
    for i in prange(out.size):
        out[i] = numba.get_num_threads()


@pytest.fixture
def uncached(monkeypatch):
    """Toy kernels are never written to the kernel cache (their source is not under its stamp)."""
    monkeypatch.setattr(_config, "cache_dir", lambda: None)
    made = []

    def make(name, *args, **kwargs):
        ks = KernelSet(name, *args, **kwargs)
        made.append(name)
        return ks

    yield make
    for name in made:
        _kernelset.SETS.pop(name, None)


def test_builds_each_kernel_once_with_its_bindings(uncached):
    ks = uncached("toy_scale", {"scale": _scale_template}, consts={"SCALE": 3.0})
    x = np.arange(5, dtype=np.float32)
    out = np.empty_like(x)
    k = ks.kernel("scale", np.float32)
    assert ks.kernel("scale", np.dtype(np.float32)) is k  # the dtype in any form: one kernel
    assert ks.kernel("scale", np.float32, "serial") is k
    k(x, out)
    np.testing.assert_array_equal(out, x * 3 + 1)
    assert out.dtype == np.float32
    assert k.py_func.__name__ == "toy_scale_scale_f32_serial" == ks.kernel_name("scale", np.float32)
    assert ks.compiled() == ["toy_scale_scale_f32_serial"]
    assert _kernelset.compiled()["toy_scale"] == ["toy_scale_scale_f32_serial"]
    # float64: its own kernel, T bound to float64
    out64 = np.empty(5)
    ks.run("scale", np.float64, "serial", x.astype(np.float64), out64)
    assert ks.kernel("scale", np.float64) is not k
    assert len(ks.compiled()) == 2


def test_parallel_backend_is_the_parallel_build_and_syncs_threads(uncached):
    ks = uncached("toy_threads", {"t": _threads_template}, kernel_name=lambda w, dt, be, v: f"toy_threads_{be}")
    ser, par = ks.kernel("t", None, "serial"), ks.kernel("t", None, "parallel")
    assert ser is not par
    assert par.targetoptions.get("parallel") and not ser.targetoptions.get("parallel")
    out = np.zeros(1, np.int64)
    n = fastops.get_num_threads()
    if n < 2:
        pytest.skip("one thread only")
    numba.set_num_threads(1)  # stale: run must hand fastops' count to Numba first
    try:
        ks.run("t", None, "parallel", out)
        assert out[0] == n
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_bind_and_variants(uncached):
    seen = []

    def bind(dt, which, variant):
        seen.append((dt, which, variant))
        return {"SCALE": float(variant)}

    ks = uncached("toy_variant", {"scale": _scale_template}, bind=bind,
                  kernel_name=lambda w, dt, be, v: f"toy_variant_x{v}_{_jit.SUFFIX[dt]}_{be}")
    x = np.ones(4)
    out2, out5 = np.empty(4), np.empty(4)
    ks.run("scale", x.dtype, "serial", x, out2, variant=2)
    ks.run("scale", x.dtype, "serial", x, out5, variant=5)
    ks.run("scale", x.dtype, "serial", x, out5, variant=5)
    np.testing.assert_array_equal(out2, 3.0)
    np.testing.assert_array_equal(out5, 6.0)
    assert seen == [(np.dtype(np.float64), "scale", 2), (np.dtype(np.float64), "scale", 5)]  # bound once each
    assert ks.compiled() == ["toy_variant_x2_f64_serial", "toy_variant_x5_f64_serial"]


def test_an_unbound_global_fails_to_compile_naming_it(uncached):
    ks = uncached("toy_unbound", {"scale": _scale_template})  # SCALE left UNBOUND
    with pytest.raises(numba.core.errors.TypingError, match="SCALE"):
        ks.kernel("scale", np.float32)(np.ones(2, np.float32), np.empty(2, np.float32))
    assert repr(UNBOUND) == "UNBOUND"


def test_a_set_name_is_declared_once(uncached):
    uncached("toy_once", {"scale": _scale_template})
    with pytest.raises(ValueError, match="toy_once"):
        KernelSet("toy_once", {"scale": _scale_template})


def test_plane_set_dispatch_and_explain(uncached):
    ps = PlaneSet("toy_planes", {"scale": _scale_template}, consts={"SCALE": 1.0})
    try:
        d = ps.explain("scale", np.float32, 1, 10)
        assert d["backend"] == "serial" and d["kernel"] == "toy_planes_scale_f32_serial"
        with fastops.threads(1):
            assert ps.backend(np.float32, 1 << 10, 1 << 30) == "serial"
        x = np.ones(3, np.float32)
        out = np.empty_like(x)
        ps.call("scale", np.float32, 1, 3, x, out)
        np.testing.assert_array_equal(out, 2.0)
    finally:
        _kernelset.SETS.pop("toy_planes", None)


def test_every_kernel_name_of_the_package_is_unique():
    """A kernel's name is its on-disk cache entry: two sets (or two templates of one set) that
    named a kernel alike would load each other's code."""
    import fastops.testing  # noqa: F401  (imports every family: every set is declared)

    names = {}
    for set_name, ks in _kernelset.SETS.items():
        if set_name.startswith("toy_") or not isinstance(ks._templates, dict):
            continue
        for which in ks._templates:
            for dt in (np.float32, np.float64):
                try:
                    both = {be: ks.kernel_name(which, dt, be) for be in ("serial", "parallel")}
                except Exception:  # a set whose names need a variant: covered by its own tests
                    continue
                # a serial-only set (e.g. the loss sums) names its one build without the backend
                for be, n in sorted(both.items()) if both["serial"] != both["parallel"] else [("serial", both["serial"])]:
                    key = (set_name, which, np.dtype(dt), be)
                    assert names.setdefault(n, key) == key, f"{n} named by {names[n]} and {key}"
    assert len(names) > 200


def test_no_module_keeps_its_own_kernel_cache():
    """Every kernel is built by a kernel set: no module instantiates templates itself or syncs
    the thread count before its kernels."""
    import os
    import re

    pkg = os.path.dirname(fastops.__file__)
    for root, _, files in os.walk(pkg):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), pkg)
            if not f.endswith(".py") or rel in ("_kernelset.py", "_jit.py") or _jit.is_tooling(rel):
                continue
            src = open(os.path.join(root, f), encoding="utf-8").read()
            assert not re.search(r"\b_?jit\.instantiate\(|\binstantiate\(", src), rel
            assert "_threads.sync()" not in src, rel
            assert "noqa: F821" not in src, rel
