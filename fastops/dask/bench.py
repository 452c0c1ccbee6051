"""Benchmark of ``fastops.dask``: ``python -m fastops.dask.bench [--batch 256] [--reps 3]``.

1. conv2d forward (3x3, 64 -> 64 channels, padding 1) over a (batch, 64, 56, 56) float32 batch:
   one process (all of fastops' threads) vs a ``LocalCluster`` (``--workers`` processes, 1 thread
   each, one block per ``--block`` samples). Cluster times: the input already on the workers
   (generated there and persisted), output left on the workers (``persist`` + ``wait``), and
   the same with the result gathered to the client (``compute``).
2. Per-block overhead of the Dask path for small blocks: ``--small-blocks`` blocks of one
   (1, 16, 8, 8) sample through ``fastops.dask.conv2d`` vs calling ``fastops.conv2d`` on each block
   in a loop in one process: (cluster time - loop time) / blocks.

Times are medians of ``--reps`` runs after one warm-up run (kernels compiled / loaded, weights on
the workers).
"""
import argparse
import time

import numpy as np


def _median_time(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def run(batch=256, block=32, workers=2, reps=3, small_blocks=64, verbose=True):
    import dask.array as da
    from dask.distributed import Client, LocalCluster, wait

    import fastops
    import fastops.dask as fd

    out = {}

    def say(msg):
        if verbose:
            print(msg, flush=True)

    rng = np.random.default_rng(0)
    shape = (batch, 64, 56, 56)
    w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    t_single = _median_time(lambda: fastops.conv2d(x, w, b, padding=1), reps)
    out["conv2d_single_s"] = t_single
    say(f"conv2d {shape} float32, 1 process, {fastops.get_num_threads()} threads: {t_single * 1e3:.0f} ms")
    del x

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(fastops.set_num_threads, 1)
        xd = da.random.default_rng(0).standard_normal(shape, chunks=(block, 64, 56, 56), dtype=np.float32).persist()
        wait(xd)

        def on_cluster():
            y = fd.conv2d(xd, w, b, padding=1).persist()
            wait(y)
            del y

        t_persist = _median_time(on_cluster, reps)
        t_gather = _median_time(lambda: fd.conv2d(xd, w, b, padding=1).compute(), reps)
        out.update(conv2d_cluster_s=t_persist, conv2d_cluster_gather_s=t_gather)
        say(f"conv2d on LocalCluster ({workers} workers x 1 thread, blocks of {block}): {t_persist * 1e3:.0f} ms "
            f"(output left on the workers; {t_persist / t_single:.2f}x the one-process time), "
            f"{t_gather * 1e3:.0f} ms with the output gathered to the client ({t_gather / t_single:.2f}x)")
        del xd

        xs = rng.standard_normal((small_blocks, 16, 8, 8)).astype(np.float32)
        ws = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
        xsd = da.from_array(xs, chunks=(1, 16, 8, 8)).persist()
        wait(xsd)

        def small_cluster():
            y = fd.conv2d(xsd, ws, padding=1).persist()
            wait(y)
            del y

        def small_loop():
            for i in range(small_blocks):
                fastops.conv2d(xs[i:i + 1], ws, padding=1)

        t_small = _median_time(small_cluster, reps)
        t_loop = _median_time(small_loop, reps)
        per_block = (t_small - t_loop) / small_blocks
        out.update(small_cluster_s=t_small, small_loop_s=t_loop, overhead_per_block_s=per_block)
        say(f"{small_blocks} blocks of (1, 16, 8, 8) conv2d: cluster {t_small * 1e3:.1f} ms, one-process loop "
            f"{t_loop * 1e3:.2f} ms: overhead {per_block * 1e3:.2f} ms per block")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastops.dask.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--block", type=int, default=32, help="samples per Dask block")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small-blocks", type=int, default=64)
    a = ap.parse_args(argv)
    run(a.batch, a.block, a.workers, a.reps, a.small_blocks)


if __name__ == "__main__":
    main()
