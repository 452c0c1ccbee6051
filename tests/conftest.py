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
