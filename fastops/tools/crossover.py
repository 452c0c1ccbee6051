"""Measure where a parallel pointwise kernel starts to beat the serial one.

``python -m fastops.tools.crossover`` times the serial and the parallel kernel of a cheap op
(relu) and a transcendental one (gelu) on sizes 2**10 .. 2**20, interleaved, and prints the
smallest size from which the parallel kernel is faster. The thresholds in
``fastops._dispatch.PARALLEL_MIN_WORK`` come from this measurement.
"""
import sys
import time

import numpy as np

from fastops import _threads
from fastops._activations import GELU, RELU


def _median(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def crossover(pw, sizes, reps=200):
    rows = []
    ser = pw.kernel("fwd", np.float32, "serial")
    par = pw.kernel("fwd", np.float32, "parallel")
    z = np.float32(0)
    _threads.sync()
    for n in sizes:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        ser(x, out, z, z)
        par(x, out, z, z)
        r = max(5, reps * 4096 // max(n, 4096))
        ts = tp = 0.0
        for _ in range(3):  # interleave
            ts += _median(lambda: ser(x, out, z, z), r)
            tp += _median(lambda: par(x, out, z, z), r)
        rows.append((n, ts / 3, tp / 3))
    first = next((n for n, ts, tp in rows if tp < ts), None)
    return rows, first


def main():
    sizes = [1 << k for k in range(10, 21)]
    for pw in (RELU, GELU):
        rows, first = crossover(pw, sizes)
        print(f"{pw.name} ({pw.cost}), {_threads.get_num_threads()} threads")
        for n, ts, tp in rows:
            print(f"  n={n:>8}  serial {ts * 1e6:9.2f} us   parallel {tp * 1e6:9.2f} us   {'parallel' if tp < ts else 'serial'}")
        print(f"  parallel faster from n = {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
