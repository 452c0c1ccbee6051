import os

import numpy as np

from fastops import bench as _bench  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE before any thread pool starts)

THREADS = int(os.environ.get("FASTOPS_BENCH_THREADS", "2"))
FULL = os.environ.get("FASTOPS_BENCH_FULL", "") not in ("", "0")
DTYPES = ["float32", "float64"] if FULL else ["float32"]


def pin_threads():
    import fastops

    fastops.set_num_threads(min(THREADS, fastops._threads.max_threads()))
    try:
        import torch

        torch.set_num_threads(fastops.get_num_threads())
    except ImportError:
        pass


def table_ops():
    from fastops.testing import table

    return [i.name for i in table() if i.bench is not None]


def sample(name, size, dtype):
    from fastops.testing import get

    info = get(name)
    return info, info.bench(np.random.default_rng(0), np.dtype(dtype), size)


def as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]
