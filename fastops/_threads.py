"""Thread count used by every parallel kernel of fastops, and the threading-layer policy.

``fastops.set_num_threads(n)`` sets it for the whole process (Numba's own setting is per calling
thread); ``with fastops.threads(n):`` sets it for a block *in the calling Python thread* (blocks
nest; other threads keep their own setting, so two threads that enter and leave blocks in an
interleaved order never leave a stale count behind). Every op asks its dispatch function for
a kernel with :func:`get_num_threads`; with 1 thread every dispatch function picks the serial kernel
(compiled without ``parallel=True``: it never enters Numba's threading layer). Before a parallel
kernel the op calls :func:`sync`, which hands the count to Numba.

Threading-layer policy (Numba picks the layer at the first parallel kernel, in its default order
``tbb``, ``omp``, ``workqueue``; fastops does not override ``NUMBA_THREADING_LAYER``):

* ``tbb``: safe for concurrent calls from Python threads and in forked processes: nothing to do.
* ``omp`` (GNU OpenMP, the layer on this project's machines): concurrent calls from Python threads
  are safe, but a process forked after it ran a parallel region is terminated by libgomp the
  moment the child enters one ("fork() called from a process already using GNU OpenMP").
  fastops registers an ``os.register_at_fork`` hook: in such a child, :func:`get_num_threads`
  is 1, so every op runs its serial kernels (correct results, one core per worker process,
  which is what a multiprocessing worker pool wants anyway). ``spawn`` and ``forkserver``
  workers are fresh processes and keep all threads.
* ``workqueue``: aborts the process when two Python threads run parallel regions at once
  (numba#8563). fastops then runs parallel kernels from the main thread only: in any other
  thread :func:`get_num_threads` is 1 (serial kernels).
"""
import contextlib
import os
import threading

import numba

_lock = threading.Lock()
_num_threads = None  # None: Numba's default (NUMBA_NUM_THREADS, normally the number of cores)
_local = threading.local()  # .n: the innermost ``threads(n)`` block of this Python thread
_layer = None  # the threading layer once known ("tbb", "omp", "workqueue")
_parallel_used = False  # this process has launched Numba's thread pool
_serial_only = False  # forked from a process that used GNU OpenMP: serial kernels only


def max_threads():
    return 1 if _serial_only else numba.config.NUMBA_NUM_THREADS


def threading_layer():
    """The Numba threading layer fastops' parallel kernels run on (starts the pool if needed)."""
    _ensure_layer()
    return _layer


def _ensure_layer():
    global _layer, _parallel_used
    if _layer is not None or _serial_only:
        return
    with _lock:
        if _layer is None:
            from numba.np.ufunc import parallel as _p

            _p._launch_threads()  # picks and starts the layer (what the first parallel kernel does)
            _parallel_used = True
            _layer = numba.threading_layer()


def get_num_threads():
    """The number of threads fastops' parallel kernels use (1 where parallel kernels are unsafe)."""
    if _serial_only:
        return 1
    n = getattr(_local, "n", None)
    if n is None:
        n = _num_threads if _num_threads is not None else numba.config.NUMBA_NUM_THREADS
    if n > 1:
        if _layer is None:  # hot path (every op call): no call once the layer is known
            _ensure_layer()
        if _layer == "workqueue" and threading.current_thread() is not threading.main_thread():
            return 1
    return n


def _after_fork_in_child():
    global _serial_only, _lock
    _lock = threading.Lock()  # a lock held by another thread at fork time stays locked in the child
    layer = _layer
    if layer is None:  # the pool may have been started outside fastops (another Numba user)
        try:
            from numba.np.ufunc import parallel as _p

            layer = _p._threading_layer if _p._is_initialized else None
        except Exception:  # pragma: no cover  (private Numba API moved: stay on the safe side)
            layer = "omp"
    if layer == "omp":
        _serial_only = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def set_num_threads(n):
    """Use ``n`` threads (1 <= n <= NUMBA_NUM_THREADS) in every parallel fastops kernel."""
    global _num_threads
    _check(n, "set_num_threads")
    with _lock:
        _num_threads = n


def _check(n, where):
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{where}: n must be an int, got {type(n).__name__}")
    if not 1 <= n <= max_threads():
        raise ValueError(f"{where}: n must be in [1, {max_threads()}] (NUMBA_NUM_THREADS), got {n}")


@contextlib.contextmanager
def threads(n):
    """Context manager: ``with fastops.threads(1): ...`` runs the block's ops with ``n`` threads.

    The setting belongs to the calling Python thread (other threads are not affected) and is
    restored on exit, also when blocks of several threads interleave."""
    _check(n, "threads")
    old = getattr(_local, "n", None)
    _local.n = n
    try:
        yield
    finally:
        _local.n = old


def sync():
    """Make Numba's thread count for the calling thread equal fastops' (call before a parallel kernel)."""
    n = get_num_threads()
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
