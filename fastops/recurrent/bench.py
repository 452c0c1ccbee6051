"""Interleaved timing of the recurrent layers against torch (``python -m fastops.recurrent.bench``).

Issue case: batch 32, sequence 50, input 256, hidden 512, one layer, float32, 2 threads; forward and
forward+backward (all gradients), fastops vs ``torch.nn.LSTM``/``GRU``: each library alone in
``--processes`` fresh processes (alternated; the headline), then both in the same process, rounds
interleaved; ratios > 1 mean fastops is faster.
"""
import argparse
import time

import numpy as np

from .. import _threads
from ..bench import median_calls as _median_calls
from .sequence import gru, lstm


def run(kind="lstm", T=None, B=None, I=None, H=None, rounds=7, threads=2):
    import torch

    from ..testing.recurrent import SIZES

    T, B, I, H = (v if v is not None else SIZES["bench"][k] for k, v in zip("TBIH", (T, B, I, H)))
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

    def fo_fb():  # the forward once, its tape kept for the backward (as autograd does)
        (y, _), pullback = f.vjp(x, None, params)
        return pullback((np.ones_like(y), None))

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


def _setup(kind, T, B, I, H, threads, lib):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    f = lstm if kind == "lstm" else gru
    if lib == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, H)
        tx = torch.from_numpy(x).requires_grad_(True)

        def fwd():
            with torch.no_grad():
                return m(tx)

        def fb():
            y, _ = m(tx)
            y.backward(torch.ones_like(y))

        return fwd, fb
    G = 4 if kind == "lstm" else 3
    s = 1.0 / np.sqrt(H)
    params = [rng.uniform(-s, s, shape).astype(np.float32) for shape in ((G * H, I), (G * H, H), (G * H,), (G * H,))]

    def fwd():
        return f(x, None, params)

    def fb():  # the forward once, its tape kept for the backward (as autograd does)
        (y, _), pullback = f.vjp(x, None, params)
        return pullback((np.ones_like(y), None))

    return fwd, fb


def _worker(lib, kind, rounds, threads):
    from ..testing.recurrent import SIZES

    fwd, fb = _setup(kind, *(SIZES["bench"][k] for k in "TBIH"), threads, lib)
    out = []
    with _threads.threads(threads):
        for f in (fwd, fb):
            f()
            out.append(_median_calls(f, rounds))
    return out


def solo(kind="lstm", rounds=7, threads=2, processes=3):
    """Median (over processes) fwd and fwd+bwd seconds, each library alone in fresh processes."""
    from .. import bench

    cmds = {lib: ["fastops.recurrent.bench", "--worker", lib, "--kind", kind, "--rounds", str(rounds),
                  "--threads", str(threads)] for lib in ("fastops", "torch")}
    runs = bench.alternate(cmds, processes, progress=False)
    return {lib: [float(np.median([r[k] for r in rs])) for k in range(2)] for lib, rs in runs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--processes", type=int, default=3, help="fresh processes per library (0: one-process only)")
    ap.add_argument("--worker", choices=["fastops", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="lstm", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        import json

        print(json.dumps(_worker(a.worker, a.kind, a.rounds, a.threads)))
        return
    for kind in ("lstm", "gru"):
        if a.processes > 0:
            s = solo(kind, a.rounds, a.threads, a.processes)
            fo, to = s["fastops"], s["torch"]
            print(f"{kind} (T=50, B=32, 256->512), each alone in {a.processes} fresh processes: fwd fastops {fo[0] * 1e3:.1f} ms, "
                  f"torch {to[0] * 1e3:.1f} ms -> {to[0] / fo[0]:.2f}x; fwd+bwd fastops {fo[1] * 1e3:.1f} ms, torch "
                  f"{to[1] * 1e3:.1f} ms -> {to[1] / fo[1]:.2f}x", flush=True)
        r = run(kind, rounds=a.rounds, threads=a.threads)
        m = r["median_s"]
        print(f"{kind} (T=50, B=32, 256->512), one process, interleaved: fwd: fastops {m['fastops_fwd'] * 1e3:.1f} ms, torch {m['torch_fwd'] * 1e3:.1f} ms "
              f"-> {r['fwd_ratio']:.2f}x; fwd+bwd: fastops {m['fastops_fwdbwd'] * 1e3:.1f} ms, torch "
              f"{m['torch_fwdbwd'] * 1e3:.1f} ms -> {r['fwdbwd_ratio']:.2f}x")


if __name__ == "__main__":
    main()
