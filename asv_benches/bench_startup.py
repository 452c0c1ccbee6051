"""Import time, first-call time (compile cold; load from a warm cache) and small-call overhead."""
import os
import subprocess
import sys
import tempfile

import numpy as np

_FIRST_CALL = (
    "import time; t0 = time.perf_counter(); import fastops, numpy as np; t1 = time.perf_counter()\n"
    "x = np.ones(100, np.float32); t2 = time.perf_counter(); fastops.{op}(x); t3 = time.perf_counter()\n"
    "fastops.relu6(x); t4 = time.perf_counter()\n"
    "print(t1 - t0, t3 - t2, t4 - t3)"
)


def _measure(op, env):
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(op=op)], env=env, capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


class Startup:
    timeout = 600
    unit = "seconds"
    params = (["relu", "gelu"],)
    param_names = ["op"]

    def setup(self, op):
        self.env = dict(os.environ)
        self.tmp = tempfile.mkdtemp()
        self.env["FASTOPS_CACHE_DIR"] = self.tmp
        self.cold = _measure(op, self.env)  # compiles, fills the fresh cache
        self.warm = _measure(op, self.env)  # loads from it

    def track_import(self, op):
        return self.warm[0]

    def track_first_call_compile(self, op):
        """First call in a process with an empty cache: Numba compiles the serial kernel."""
        return self.cold[1]

    def track_first_call_warm_cache(self, op):
        """First fastops call of a process with a warm cache (includes Numba's one-time target setup)."""
        return self.warm[1]

    def track_next_op_first_call_warm_cache(self, op):
        """First call of a second op in the same process, warm cache."""
        return self.warm[2]


class SmallCall:
    """Per-call overhead (validation + dispatch + kernel) on 100 elements."""

    def setup(self):
        import fastops

        self.x = np.ones(100, np.float32)
        self.relu = fastops.relu
        self.relu(self.x)

    def time_relu_100(self):
        self.relu(self.x)

    def time_numpy_maximum_100(self):
        np.maximum(self.x, 0)


class Config:
    """The settings every benchmark of this run used, recorded with the results."""

    unit = "threads"

    def track_threads(self):
        """Thread count pinned for fastops and torch (``FASTOPS_BENCH_THREADS``, default 2)."""
        import fastops

        from ._common import pin_threads

        pin_threads()
        return fastops.get_num_threads()
