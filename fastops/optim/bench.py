"""Interleaved timing of an optimizer step: fastops vs torch.optim vs plain NumPy, one process.

``python -m fastops.optim.bench [--size 10000000] [--rounds 9]`` prints the median step times and
the ratios (> 1: fastops faster). torch runs with ``foreach=False`` (its CPU default) and with
``fused=True``; the NumPy baseline is the same update written with whole-array NumPy expressions.
"""
import argparse
import time

import numpy as np

from .. import _threads
from . import Adam


def _numpy_adam(p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    m += (1 - b1) * (g - m)
    v *= b2
    v += (1 - b2) * g * g
    p -= (lr / (1 - b1**t)) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)


def run(size=10_000_000, rounds=9, threads=2, dtype=np.float32):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(size).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    fns = {}
    p = p0.copy()
    opt = Adam([p], lr=1e-3)
    fns["fastops"] = lambda: opt.step([g])
    pn, mn, vn = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    tn = [0]

    def numpy_step():
        tn[0] += 1
        _numpy_adam(pn, g, mn, vn, tn[0])

    fns["numpy"] = numpy_step
    try:
        import torch

        torch.set_num_threads(threads)
        for name, kw in (("torch", dict(foreach=False)), ("torch_fused", dict(fused=True))):
            tp = torch.tensor(p0.copy(), requires_grad=True)
            tp.grad = torch.from_numpy(g)
            topt = torch.optim.Adam([tp], lr=1e-3, **kw)
            fns[name] = topt.step
    except ImportError:
        pass
    times = {k: [] for k in fns}
    with _threads.threads(threads):
        for f in fns.values():
            f()  # compile / warm up
        for _ in range(rounds):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"size": size, "threads": threads, "median_s": med,
            "ratios": {k: med[k] / med["fastops"] for k in med if k != "fastops"}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    r = run(a.size, a.rounds, a.threads)
    for k, v in r["median_s"].items():
        ratio = "" if k == "fastops" else f"  (fastops {r['ratios'][k]:.2f}x faster)"
        print(f"Adam step, {a.size} float32 params, {a.threads} threads: {k:12s} {v * 1e3:8.2f} ms{ratio}")


if __name__ == "__main__":
    main()
