import os

import numpy as np
import pytest

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch is an optional test extra
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed (optional: pip install torch)")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_report_header(config):
    import numba

    import fastops
    from fastops import _config

    return [
        f"fastops {fastops.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
        f"torch {'not installed' if torch is None else torch.__version__}",
        f"NUMBA_BOUNDSCHECK={os.environ.get('NUMBA_BOUNDSCHECK', '')!r} cache={_config.cache_dir()} "
        f"threads={fastops.get_num_threads()}",
    ]


def _family_of(item):
    """The op family (kernel module) an item exercises, or its test file."""
    callspec = getattr(item, "callspec", None)
    info = callspec.params.get("info") if callspec is not None else None
    if info is not None and hasattr(info, "op"):
        try:
            return info.op.__module__.rsplit(".", 1)[0]
        except Exception:  # pragma: no cover  (an unregistered op: its own test reports it)
            return info.name
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    # pytest-xdist --dist loadgroup: one family's tests run in one worker, so its kernels are
    # compiled (or loaded from the cache) once, not once per worker.
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_family_of(item)))
    _apply_xdist_groups(config, items)


def _apply_xdist_groups(config, items):
    """Make ``--dist loadgroup`` see the groups under pytest >= 9.

    xdist 3.8 (on each worker) appends ``@group`` to ``item._nodeid``, but pytest 9 builds
    ``item.nodeid`` from ``item._id``, so the controller never saw a group and spread every family
    over all workers (checked: 6 tests of one group ran on gw0 and gw1 alike). Setting ``_id`` the
    same way restores the grouping; a no-op where xdist's own suffix already shows up.
    """
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest < 9: xdist's own suffix works
        return
    for item in items:
        if "@" in item.nodeid:
            continue
        names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        if names:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(names))}")
