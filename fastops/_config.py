"""Compilation settings shared by every fastops kernel (one place, never per kernel).

Environment variables
---------------------
FASTOPS_CACHE_DIR
    Root directory of fastops' on-disk kernel cache. Default: ``$XDG_CACHE_HOME/fastops``
    (``~/.cache/fastops``); if that is not writable, ``<tempdir>/fastops-cache-<uid>``; if no
    location is writable the kernels still work, uncached, and one ``RuntimeWarning`` is issued.
    Kernels live in ``<root>/<fastops version>-numba<version>[-boundscheck]/``, so a cache written
    by another fastops or numba version, or without bounds checking, is never loaded.
FASTOPS_DISABLE_CACHE
    ``1`` compiles every kernel in memory only.
NUMBA_BOUNDSCHECK
    Numba's own switch; ``1`` compiles bounds-checked kernels (an out-of-bounds index raises
    ``IndexError``). It gets its own cache directory.
"""
import os
import tempfile

import numba

from ._version import __version__

# fastmath without "nnan"/"ninf": NaN and Inf must propagate exactly as in PyTorch.
# No "reassoc" either: it rewrote the Cody-Waite range reduction in _math.exp64 (x - n*C1 - n*C2
# into x - n*(C1+C2)) and cost 100 ulp (measured). Reductions vectorize instead through explicit
# partial sums in lanes (see _reduce.py), which also fixes their summation order: results do not
# depend on the thread count. No "contract" (FMA contraction): LLVM contracted differently in the
# serial and the parallel build of the same loop (vector body vs scalar remainder), and gelu's
# gradient differed by 1 ulp between 1 and 2 threads (measured, tests/test_infra.py). Without it
# every kernel rounds each operation the same way whatever the code path. "arcp" turns division by
# a loop constant into multiplication; no "afn": fastops brings its own vectorizable exp/tanh/erfc/log.
FASTMATH = frozenset({"nsz", "arcp"})

# error_model="numpy": division by zero gives inf/nan instead of a branch that raises, which would
# block SIMD (numba#5562).
JIT_OPTIONS = dict(fastmath=set(FASTMATH), error_model="numpy", nogil=True)


def boundscheck_enabled():
    return bool(numba.config.BOUNDSCHECK)


def cache_disabled():
    return os.environ.get("FASTOPS_DISABLE_CACHE", "") not in ("", "0")


def _candidate_roots():
    env = os.environ.get("FASTOPS_CACHE_DIR")
    if env:
        yield env
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(xdg, "fastops")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    yield os.path.join(tempfile.gettempdir(), f"fastops-cache-{uid}")


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


_cache_dir = None  # resolved lazily, on the first compilation


def cache_dir():
    """The directory kernels are cached in, or None when caching is off or impossible."""
    global _cache_dir
    if cache_disabled():
        return None
    if _cache_dir is None:
        sub = f"{__version__}-numba{numba.__version__}" + ("-boundscheck" if boundscheck_enabled() else "")
        for root in _candidate_roots():
            path = os.path.join(root, sub)
            if _writable(path):
                _cache_dir = path
                break
        else:
            import warnings

            warnings.warn(
                "fastops: no writable kernel cache directory (tried FASTOPS_CACHE_DIR, "
                "~/.cache/fastops and the temp directory); kernels are compiled in memory only.",
                RuntimeWarning,
                stacklevel=3,
            )
            _cache_dir = ""
    return _cache_dir or None


# Parts of the package that define no cached kernel and that no kernel module imports (the test
# table, the CLI, benchmarks, tools, examples, the Dask wrappers): editing them must not invalidate
# the kernel cache, so the cache stamp (``_jit``) leaves them out (tests/test_infra.py checks both
# conditions). Top-level names; a family's own ``bench.py`` (its timing script) is tooling as well.
TOOLING = frozenset({"testing", "tools", "examples", "networks", "dask", "__main__.py", "bench.py"})


def is_tooling(rel):
    """Whether the package-relative path ``rel`` is tooling (outside the cache stamp)."""
    parts = rel.replace(os.sep, "/").split("/")
    return parts[0] in TOOLING or parts[-1] == "bench.py"
