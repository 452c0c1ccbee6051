"""The GEMM engine's performance bars against torch, both ways (``python -m asv_benches.engine_bars``).

Cases: the GEMM alone at 1024^3 and at attention's (256 x 64) @ (64 x 1024), 1 and 2 threads, in
GFLOP/s; linear 256x1024 -> 1024 and batched matmul (64,128,64) @ (64,64,128) forward and
forward+backward; float64 matmul 1024^3 and linear; scaled_dot_product_attention (1,8,1024,1024,64)
float32 and float64; softmax (4096, 1000). The machine's reference rates from the same run: torch
sgemm 1024^3, the best oneDNN 3x3 convolution rate (conv2d 64->64 56x56 N=8) and a copy's bandwidth.

Headline: each library alone in its own fresh process (environment untouched), processes
alternated fastops, torch, ... (``--processes``, median over processes of per-process medians).
Second figure (``--interleaved``): both in one process, calls interleaved round by round.
Ratios are torch time / fastops time (> 1: fastops faster).
"""
import argparse
import json
import sys
import time

import numpy as np


def _median(f, rounds):
    from fastops.bench import median_calls

    f()
    return median_calls(f, rounds)


def _cases(lib, threads):
    """{name: (callable, flops or None)} for ``lib`` ("fastops" or "torch")."""
    rng = np.random.default_rng(0)
    c = {}

    def arr(*shape, dt=np.float32):
        return rng.standard_normal(shape).astype(dt)

    gemm_shapes = {"gemm 1024^3": (1024, 1024, 1024), "gemm (256x64)@(64x1024)": (256, 64, 1024)}
    if lib == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        T = torch.from_numpy

        def fb(fn, *xs):
            ts = [T(x).requires_grad_(True) for x in xs]

            def run():
                y = fn(*ts)
                y.backward(torch.ones_like(y))
            return run

        for nt in (1, threads):
            for name, (M, K, N) in gemm_shapes.items():
                a, b = T(arr(M, K)), T(arr(K, N))

                def g(a=a, b=b, nt=nt):
                    torch.set_num_threads(nt)
                    torch.matmul(a, b)
                    torch.set_num_threads(threads)
                c[f"{name}, {nt} thread(s)"] = (g, 2 * M * N * K)
        x, w, b = arr(256, 1024), arr(1024, 1024), arr(1024)
        c["linear 256x1024->1024 fwd"] = (lambda: F.linear(T(x), T(w), T(b)), None)
        c["linear 256x1024->1024 fwd+bwd"] = (fb(F.linear, x, w, b), None)
        a3, b3 = arr(64, 128, 64), arr(64, 64, 128)
        c["bmm (64,128,64)@(64,64,128) fwd+bwd"] = (fb(torch.matmul, a3, b3), None)
        a64, b64 = arr(1024, 1024, dt=np.float64), arr(1024, 1024, dt=np.float64)
        c["matmul 1024^3 float64"] = (lambda: torch.matmul(T(a64), T(b64)), 2 * 1024 ** 3)
        x64, w64 = arr(256, 1024, dt=np.float64), arr(1024, 1024, dt=np.float64)
        c["linear 256x1024->1024 float64 fwd+bwd"] = (fb(F.linear, x64, w64), None)
        for dt in (np.float32, np.float64):
            q, k, v = (arr(1, 8, 1024, 64, dt=dt) for _ in range(3))
            nm = np.dtype(dt).name
            c[f"sdpa (1,8,1024,1024,64) {nm} fwd"] = (lambda q=q, k=k, v=v: F.scaled_dot_product_attention(T(q), T(k), T(v)), None)
            c[f"sdpa (1,8,1024,1024,64) {nm} fwd+bwd"] = (fb(F.scaled_dot_product_attention, q, k, v), None)
        s = arr(4096, 1000)
        c["softmax (4096,1000) fwd+bwd"] = (fb(lambda t: torch.softmax(t, -1), s), None)
        xc, wc = T(arr(8, 64, 56, 56)), T(arr(64, 64, 3, 3))
        c["peak: oneDNN conv 3x3 C64 56x56 N=8"] = (lambda: F.conv2d(xc, wc, padding=1), 2 * 8 * 64 * 64 * 9 * 56 * 56)
        src = torch.empty(1 << 24)
        dst = torch.empty(1 << 24)
        c["copy 64 MiB (bandwidth)"] = (lambda: dst.copy_(src), -2 * 4 * (1 << 24))  # negative: bytes
        return c
    import fastops
    from fastops import _gemm

    for nt in (1, threads):
        for name, (M, K, N) in gemm_shapes.items():
            a, b = arr(M, K), arr(K, N)

            def g(a=a, b=b, nt=nt):
                with fastops.threads(nt):
                    _gemm.gemm(a, b)
            c[f"{name}, {nt} thread(s)"] = (g, 2 * M * N * K)

    def fb(op, *xs, **kw):
        def run():
            y = op(*xs, **kw)
            op.backward(np.ones_like(y), *xs, **kw)
        return run

    x, w, b = arr(256, 1024), arr(1024, 1024), arr(1024)
    c["linear 256x1024->1024 fwd"] = (lambda: fastops.linear(x, w, b), None)
    c["linear 256x1024->1024 fwd+bwd"] = (fb(fastops.linear, x, w, b), None)
    a3, b3 = arr(64, 128, 64), arr(64, 64, 128)
    c["bmm (64,128,64)@(64,64,128) fwd+bwd"] = (fb(fastops.matmul, a3, b3), None)
    a64, b64 = arr(1024, 1024, dt=np.float64), arr(1024, 1024, dt=np.float64)
    c["matmul 1024^3 float64"] = (lambda: fastops.matmul(a64, b64), 2 * 1024 ** 3)
    x64, w64 = arr(256, 1024, dt=np.float64), arr(1024, 1024, dt=np.float64)
    c["linear 256x1024->1024 float64 fwd+bwd"] = (fb(fastops.linear, x64, w64), None)
    f = fastops.scaled_dot_product_attention
    for dt in (np.float32, np.float64):
        q, k, v = (arr(1, 8, 1024, 64, dt=dt) for _ in range(3))
        nm = np.dtype(dt).name
        c[f"sdpa (1,8,1024,1024,64) {nm} fwd"] = (lambda q=q, k=k, v=v: f(q, k, v), None)
        c[f"sdpa (1,8,1024,1024,64) {nm} fwd+bwd"] = (fb(f, q, k, v), None)
    s = arr(4096, 1000)

    def sm():
        y = fastops.softmax(s, -1)
        fastops.softmax.backward(np.ones_like(y), s, -1, output=y)
    c["softmax (4096,1000) fwd+bwd"] = (sm, None)
    return c


def worker(lib, threads, rounds):
    cases = _cases(lib, threads)
    if lib == "fastops":
        import fastops

        with fastops.threads(threads):
            return {k: _median(f, rounds) for k, (f, _) in cases.items()}
    return {k: _median(f, rounds) for k, (f, _) in cases.items()}


def interleaved(threads, rounds):
    a, b = _cases("fastops", threads), _cases("torch", threads)
    import fastops

    out = {}
    with fastops.threads(threads):
        for k in a:
            fa, fb = a[k][0], b[k][0]
            fa(), fb()
            ta, tb = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                fa()
                ta.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                fb()
                tb.append(time.perf_counter() - t0)
            out[k] = (float(np.median(ta)), float(np.median(tb)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--interleaved", action="store_true", help="also the one-process interleaved figure")
    ap.add_argument("--worker", choices=["fastops", "torch"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.threads, a.rounds)))
        return
    from fastops import bench

    argv_of = {lib: ["asv_benches.engine_bars", "--worker", lib, "--threads", str(a.threads), "--rounds", str(a.rounds)]
               for lib in ("fastops", "torch")}
    runs = bench.alternate(argv_of, a.processes)
    med = {lib: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for lib, rs in runs.items()}
    il = interleaved(a.threads, a.rounds) if a.interleaved else {}
    print(f"{'case':<46} {'fastops ms':>10} {'torch ms':>10} {'solo ratio':>10} {'1-proc ratio':>12}  rate")
    fl = _FLOPS
    for k in med["torch"]:
        fo = med["fastops"].get(k)
        to = med["torch"][k]
        rate = ""
        if k in fl:
            f_ = fl[k]
            if f_ < 0:
                rate = f"torch {-f_ / to / 1e9:.1f} GB/s"
            else:
                rate = f"torch {f_ / to / 1e9:.0f}" + (f", fastops {f_ / fo / 1e9:.0f}" if fo else "") + " GFLOP/s"
        r1 = f"{il[k][1] / il[k][0]:.2f}x" if k in il else "-"
        print(f"{k:<46} {fo * 1e3 if fo else float('nan'):>10.2f} {to * 1e3:>10.2f} "
              f"{(to / fo) if fo else float('nan'):>9.2f}x {r1:>12}  {rate}")
    print(f"each library alone in {a.processes} fresh processes per library (alternated), {a.threads} threads, "
          f"median of {a.rounds} calls per process; 1-proc: interleaved in one process", file=sys.stderr)


_FLOPS = {
    "gemm 1024^3, 1 thread(s)": 2 * 1024 ** 3, "gemm 1024^3, 2 thread(s)": 2 * 1024 ** 3,
    "gemm (256x64)@(64x1024), 1 thread(s)": 2 * 256 * 64 * 1024, "gemm (256x64)@(64x1024), 2 thread(s)": 2 * 256 * 64 * 1024,
    "matmul 1024^3 float64": 2 * 1024 ** 3,
    "peak: oneDNN conv 3x3 C64 56x56 N=8": 2 * 8 * 64 * 64 * 9 * 56 * 56,
    "copy 64 MiB (bandwidth)": -2 * 4 * (1 << 24),
}


if __name__ == "__main__":
    main()
