"""Thread count used by every parallel kernel of fastops.

``fastops.set_num_threads(n)`` sets it for the whole process (Numba's own setting is per calling
thread); ``with fastops.threads(n):`` sets it for a block. Kernels are called through
:func:`apply`, which hands the count to Numba only when it differs from Numba's current one.
"""
import contextlib
import threading

import numba

_lock = threading.Lock()
_num_threads = None  # None: Numba's default (NUMBA_NUM_THREADS, normally the number of cores)


def max_threads():
    return numba.config.NUMBA_NUM_THREADS


def get_num_threads():
    """The number of threads fastops' parallel kernels use."""
    return _num_threads if _num_threads is not None else max_threads()


def set_num_threads(n):
    """Use ``n`` threads (1 <= n <= NUMBA_NUM_THREADS) in every parallel fastops kernel."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if not 1 <= n <= max_threads():
        raise ValueError(f"set_num_threads: n must be in [1, {max_threads()}] (NUMBA_NUM_THREADS), got {n}")
    with _lock:
        _num_threads = n


@contextlib.contextmanager
def threads(n):
    """Context manager: ``with fastops.threads(1): ...`` runs the block's ops with ``n`` threads."""
    global _num_threads
    old = _num_threads
    set_num_threads(n)
    try:
        yield
    finally:
        with _lock:
            _num_threads = old


def sync():
    """Make Numba's thread count for the calling thread equal fastops' (call before a parallel kernel)."""
    n = get_num_threads()
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
