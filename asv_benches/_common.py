"""asv benchmarks of fastops (see README "Benchmarks" and "Performance dashboard").

The grid is built from the op table (``fastops.testing``): every op with a benchmark sample gets a
forward and a forward+backward benchmark at its representative ("large") shape, float32 (the
recurrent ops have their own module ``bench_recurrent``, with the recurrent issue's shape and torch's
nn modules).
Environment variables:

- ``FASTOPS_BENCH_FULL=1``: the full grid, adding the "small" shape (about 100 elements: call
  overhead) and float64;
- ``FASTOPS_BENCH_OPS=relu,conv2d``: only these ops (every grid and ratio benchmark; the CI
  dashboard check and the regression script use it to stay cheap);
- ``FASTOPS_BENCH_THREADS`` (default 2): the thread count, pinned for fastops and torch alike in
  every benchmark's setup and recorded by ``bench_startup.Config.track_threads``.

JIT compilation happens in ``setup``, never in a timed body; compile and import time are their own
``track_`` benchmarks (``bench_compile``, ``bench_startup``).
"""
import os

import numpy as np


THREADS = int(os.environ.get("FASTOPS_BENCH_THREADS", "2"))
FULL = os.environ.get("FASTOPS_BENCH_FULL", "") not in ("", "0")
DTYPES = ["float32", "float64"] if FULL else ["float32"]
SIZES = ["small", "large"] if FULL else ["large"]
ONLY = [s.strip() for s in os.environ.get("FASTOPS_BENCH_OPS", "").split(",") if s.strip()]


def selected(name):
    """Whether ``FASTOPS_BENCH_OPS`` (unset: every op) selects op ``name``."""
    return not ONLY or name in ONLY


def torch_or_none():
    """torch when installed (the ratio benchmarks need it), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def pin_threads():
    import fastops

    fastops.set_num_threads(min(THREADS, fastops._threads.max_threads()))
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(fastops.get_num_threads())


def table_ops():
    from fastops.testing import table

    names = []
    for i in table():
        if i.bench is not None and selected(i.name) and i.name not in names:
            names.append(i.name)
    return names


def sample(name, size, dtype):
    from fastops.testing import table

    info = next(i for i in table() if i.name == name and i.bench is not None)
    return info, info.bench(np.random.default_rng(0), np.dtype(dtype), size)


def as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


NONE = "(none selected)"


def nonempty(names):
    """asv needs at least one parameter value: a placeholder, skipped in setup, when
    ``FASTOPS_BENCH_OPS`` selects nothing of a benchmark."""
    return list(names) or [NONE]


def skip_placeholder(name):
    if name == NONE:
        raise NotImplementedError("FASTOPS_BENCH_OPS selects no op of this benchmark")
