"""Kernel construction: every fastops kernel is made here, with the settings of ``_config``.

Two things Numba cannot do out of the box, and how this module does them:

* **Generic loops with cached kernels.** A loop template (say "apply F to every element") is
  written once and instantiated per op and dtype by :func:`instantiate`, which clones the Python
  function with its own ``__qualname__`` and the op's scalar function bound as a global. Numba's
  cache refuses closures and first-class function arguments (both recompile in every process,
  measured), but caches such clones: each has its own qualname, hence its own index file.
* **A cache that never serves stale code.** Numba keys its cache on the source file of the
  function only; a change in a callee in another file, or in a bound global, is not seen
  (numba#1833). fastops' cache stamp is a hash of all fastops sources that kernels can reach (every module
  but the tooling: test table, CLI, benchmarks, tools, examples, Dask wrappers), and the cache
  directory names the fastops and numba versions and the bounds-check mode (see ``_config``).
"""
import hashlib
import os
import types

import numba
import numpy as np
from numba.core import caching

from . import _config

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
# Parts of the package that define no cached kernel and that no kernel module imports (the test
# table, the CLI, benchmarks, tools, examples, the Dask wrappers): outside the stamp (_config).
TOOLING, is_tooling = _config.TOOLING, _config.is_tooling
_source_stamp = None


def kernel_sources(pkg_dir=_PKG_DIR):
    """The ``.py`` files the cache stamp covers (relative paths, sorted): every module of the
    package except the tooling (``is_tooling``)."""
    out = []
    for root, dirs, files in os.walk(pkg_dir):
        rel_root = os.path.relpath(root, pkg_dir)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in files:
            rel = os.path.normpath(os.path.join(rel_root, f))
            if f.endswith(".py") and not is_tooling(rel):
                out.append(rel)
    return sorted(out)


def source_stamp(pkg_dir=_PKG_DIR):
    """Hash of the kernel sources' paths and contents and of the fastmath flags."""
    h = hashlib.sha256()
    for rel in kernel_sources(pkg_dir):
        h.update(rel.replace(os.sep, "/").encode())
        with open(os.path.join(pkg_dir, rel), "rb") as fh:
            h.update(fh.read())
    h.update(repr(sorted(_config.FASTMATH)).encode())
    return h.hexdigest()


def _package_stamp():
    global _source_stamp
    if _source_stamp is None:
        _source_stamp = source_stamp()
    return _source_stamp


class _Locator(caching._CacheLocator):
    def __init__(self, py_func, path):
        self._path = path

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return _package_stamp()

    def get_disambiguator(self):
        return "k"

    @classmethod
    def from_function(cls, py_func, py_file):
        path = _config.cache_dir()
        if path is None:
            return None
        return cls(py_func, path)


class _Impl(caching.CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _FunctionCache(caching.FunctionCache):
    _impl_class = _Impl


def _attach_cache(disp):
    if _config.cache_dir() is None:
        return disp
    try:
        disp._cache = _FunctionCache(disp.py_func)
    except Exception:  # pragma: no cover - any cache trouble means: run uncached
        pass
    return disp


def jit(fn=None, *, parallel=False):
    """``numba.njit`` with fastops' options and on-disk cache. Compiles lazily at first call."""

    def deco(f):
        disp = numba.njit(parallel=parallel, **_config.JIT_OPTIONS)(f)
        return _attach_cache(disp)

    return deco(fn) if fn is not None else deco


def inline(fn):
    """A scalar helper that is always inlined into the kernels calling it (never cached itself)."""
    return numba.njit(inline="always", **_config.JIT_OPTIONS)(fn)


def clone(template, name, bindings):
    """A copy of the Python function ``template`` named ``name``, with extra globals ``bindings``."""
    g = dict(template.__globals__)
    g.update(bindings)
    fn = types.FunctionType(template.__code__, g, name, template.__defaults__, template.__closure__)
    fn.__qualname__ = name
    fn.__module__ = template.__module__
    fn.__doc__ = template.__doc__
    return fn


def instantiate(template, name, *, parallel=False, **bindings):
    """Compile-on-first-call kernel from a loop template with ``bindings`` as its globals."""
    return jit(clone(template, name, bindings), parallel=parallel)


DTYPES = (np.float32, np.float64)
SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def broadcast_c(x, shape):
    """``x`` broadcast to ``shape`` as a C-contiguous array: ``x`` itself where it already is one,
    else a new (writable) copy. ``np.ascontiguousarray(np.broadcast_to(x, shape))`` hands back a
    read-only view where nothing is broadcast, and a read-only array is another Numba type: every
    kernel taking it would be compiled a second time (one cold compile per kernel and signature)."""
    shape = tuple(shape)
    if x.shape == shape and x.flags.c_contiguous:
        return x
    out = np.empty(shape, x.dtype)
    out[...] = x
    return out


def scalar_type(dtype):
    """The NumPy scalar type a kernel binds as ``T`` (typed constants: ``T(0.5)``)."""
    return np.dtype(dtype).type
