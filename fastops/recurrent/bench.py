"""Interleaved timing of the recurrent layers against torch (``python -m fastops.recurrent.bench``).

Issue case: batch 32, sequence 50, input 256, hidden 512, one layer, float32, 2 threads; forward and
forward+backward (all gradients), fastops vs ``torch.nn.LSTM``/``GRU`` in the same process, rounds
interleaved; ratios > 1 mean fastops is faster.
"""
import argparse
import time

import numpy as np

from .. import bench as _bench  # noqa: F401  (OMP_WAIT_POLICY=PASSIVE before thread pools start)
from .. import _threads
from . import gru, lstm


def run(kind="lstm", T=50, B=32, I=256, H=512, rounds=7, threads=2):
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    Mod = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    m = Mod(I, H)
    params = [getattr(m, n).detach().numpy().copy() for n in m._flat_weights_names]
    f = lstm if kind == "lstm" else gru
    tx = torch.from_numpy(x).requires_grad_(True)

    def fo_fwd():
        return f(x, None, params)

    def fo_fb():
        y, _ = f(x, None, params)
        return f.backward((np.ones_like(y), None), x, None, params)

    def t_fwd():
        with torch.no_grad():
            return m(tx)

    def t_fb():
        y, _ = m(tx)
        y.backward(torch.ones_like(y))

    fns = {"fastops_fwd": fo_fwd, "torch_fwd": t_fwd, "fastops_fwdbwd": fo_fb, "torch_fwdbwd": t_fb}
    times = {k: [] for k in fns}
    with _threads.threads(threads):
        for fn in fns.values():
            fn()
        for _ in range(rounds):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"median_s": med, "fwd_ratio": med["torch_fwd"] / med["fastops_fwd"],
            "fwdbwd_ratio": med["torch_fwdbwd"] / med["fastops_fwdbwd"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    for kind in ("lstm", "gru"):
        r = run(kind, rounds=a.rounds, threads=a.threads)
        m = r["median_s"]
        print(f"{kind} (T=50, B=32, 256->512) fwd: fastops {m['fastops_fwd'] * 1e3:.1f} ms, torch {m['torch_fwd'] * 1e3:.1f} ms "
              f"-> {r['fwd_ratio']:.2f}x; fwd+bwd: fastops {m['fastops_fwdbwd'] * 1e3:.1f} ms, torch "
              f"{m['torch_fwdbwd'] * 1e3:.1f} ms -> {r['fwdbwd_ratio']:.2f}x")


if __name__ == "__main__":
    main()
