"""Command line: ``python -m fastops {info, warmup, explain, bench}``."""
import argparse
import ast
import json
import os
import platform
import sys
import time


def _cpu_name():
    try:
        import llvmlite.binding as ll

        return ll.get_host_cpu_name()
    except Exception:  # pragma: no cover
        return platform.processor() or "unknown"


def cmd_info(args):
    import numba
    import numpy as np

    import fastops
    from fastops import _config

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = f"not started yet (configured: {numba.config.THREADING_LAYER})"
    info = {
        "fastops": fastops.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threading_layer": layer,
        "threads": fastops.get_num_threads(),
        "max_threads": numba.config.NUMBA_NUM_THREADS,
        "cache_dir": _config.cache_dir() or "(disabled)",
        "boundscheck": _config.boundscheck_enabled(),
        "cpu": _cpu_name(),
        "ops": len(fastops.ops()),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:16} {v}")
    return 0


def _progress(items, desc, total=None):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="op", total=total), True
    except ImportError:
        return items, False


def _unknown_ops(names):
    import fastops

    bad = [n for n in names or [] if n not in fastops.ops()]
    if bad:
        print(f"unknown op(s) {', '.join(bad)}; known: {', '.join(fastops.ops())}", file=sys.stderr)
    return bad


# Ops whose kernels take longest to compile cold, handed to the workers first, so that no long op
# starts last and leaves the other workers idle. Cold warmup, numba 0.68, 2 cores: the attention
# kernels ~80 s of ~490 s in all, then max pooling, the norms, conv (``FASTOPS_CACHE_DIR=$(mktemp
# -d) python -m fastops warmup --jobs 1`` prints the total and the five slowest ops; commit cfe5276).
_WARMUP_FIRST = ("scaled_dot_product_attention", "max_pool2d", "group_norm", "layer_norm", "batch_norm",
                 "deform_conv2d", "correlation", "grid_sample", "conv2d", "max_pool3d", "instance_norm",
                 "l2_normalize", "gru", "lstm", "roi_align")


def _warm(name):
    """Compile (or load) one op's kernels, float32 and float64, through the calls of its table
    samples and of its dispatch paths (``paths``: each under its ``force`` choices, at the sizes
    that select the parallel builds). Returns the seconds it took."""
    import numpy as np

    from fastops import _dispatch
    from fastops.testing import table, tree_map

    t0 = time.perf_counter()
    for info in (i for i in table() if i.name == name):
        for dtype in (np.float32, np.float64):
            calls = [(s, {}) for s in info.samples(np.random.default_rng(0), dtype)]
            if info.paths is not None:
                calls += [(c.sample, c.force) for c in info.paths(np.random.default_rng(0), dtype)]
            for s, force in calls:
                with _dispatch.force(**force):
                    out = info.op(*s.args, **s.kwargs)
                    if info.grad_args:
                        info.op.backward(tree_map(np.ones_like, out), *s.args, **s.kwargs)
    return time.perf_counter() - t0


def _cache_status():
    """The kernel cache directory and what it holds, for the first line of warmup and bench."""
    from fastops import _config

    cache = _config.cache_dir()
    if cache is None:
        return None, "cache disabled: every process compiles its kernels again"
    try:
        n = sum(1 for e in os.scandir(cache) if e.name.endswith(".nbi"))
    except OSError:
        n = 0
    held = "empty" if n == 0 else f"holds {n} kernels"
    return cache, f"cache {cache} ({held}; kernels are stored there once compiled and load in milliseconds afterwards)"


def _default_jobs():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cmd_warmup(args):
    import fastops

    if _unknown_ops(args.ops):
        return 2
    names = [n for n in fastops.ops() if not args.ops or n in args.ops]
    names.sort(key=lambda n: _WARMUP_FIRST.index(n) if n in _WARMUP_FIRST else len(_WARMUP_FIRST))
    jobs = max(1, min(args.jobs or _default_jobs(), len(names)))
    cache, status = _cache_status()
    if cache is None:  # nothing to share between processes: compile here
        jobs = 1
    print(f"warmup: compiling (or loading) the kernels of {len(names)} ops, float32 and float64, in "
          f"{jobs} process{'es' if jobs > 1 else ''}; {status}", flush=True)
    t0 = time.perf_counter()
    times = {}
    if jobs == 1:
        it, bar = _progress(names, "warmup")
        for k, name in enumerate(it):
            if not bar:
                print(f"[{k + 1}/{len(names)}] {name}", flush=True)
            times[name] = _warm(name)
    else:
        # Worker processes compile into the shared on-disk cache (one op per task, so the kernels of
        # an op are written by one process), then this process loads every op from it: the cache
        # holds everything, whatever the order the workers finished in. spawn: the omp threading
        # layer is not fork-safe.
        import concurrent.futures as cf
        import multiprocessing

        from fastops.__main__ import _warm as warm  # picklable by module name (this file runs as __main__)

        with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(warm, n): n for n in names}
            it, bar = _progress(cf.as_completed(futures), "warmup", total=len(names))
            for k, fut in enumerate(it):
                times[futures[fut]] = fut.result()
                if not bar:
                    print(f"[{k + 1}/{len(names)}] {futures[fut]}", flush=True)
        t1 = time.perf_counter()
        for name in names:
            _warm(name)
        print(f"loaded every kernel from the cache in this process in {time.perf_counter() - t1:.1f} s")
    slow = sorted(times, key=times.get, reverse=True)[:5]
    print(f"compiled/loaded the kernels of {len(names)} ops (float32, float64) in {time.perf_counter() - t0:.1f} s; "
          "slowest: " + ", ".join(f"{n} {times[n]:.1f} s" for n in slow))
    from fastops import _kernelset

    built = _kernelset.compiled()
    print(f"{sum(map(len, built.values()))} kernels of {len(built)} kernel sets are ready in this process "
          f"({len(_kernelset.SETS)} sets declared)")
    return 0


def _parse_params(items):
    params = {}
    for item in items or []:
        k, _, v = item.partition("=")
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    return params


def cmd_explain(args):
    import fastops

    if args.op not in fastops.ops():
        print(f"unknown op {args.op!r}; known: {', '.join(fastops.ops())}", file=sys.stderr)
        return 2
    op = getattr(fastops, args.op)
    shapes = [tuple(int(d) for d in s.split("x")) if s else () for s in args.shape]
    params = _parse_params(args.param)
    if len(shapes) > 1:
        params["shapes"] = shapes
    if args.threads:
        fastops.set_num_threads(args.threads)
    res = op.explain(shapes[0], args.dtype, **params)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        for k, v in res.items():
            print(f"{k:22} {v}")
    return 0


def cmd_bench(args):
    from fastops import bench

    from fastops.testing import table

    if args.networks is not None:  # whole networks (fastops.networks.bench)
        from fastops.networks import bench as nets

        argv = ["--rounds", str(3 if args.quick else args.rounds), "--threads", str(args.threads or 2),
                "--processes", str(args.processes)] + (["--networks", *args.networks] if args.networks else [])
        return nets.main(argv + (["--profile"] if args.profile else []) + (["--json"] if args.json else []))

    if _unknown_ops(args.ops):
        return 2
    benched = {i.name for i in table() if i.bench is not None}
    missing = [n for n in args.ops or [] if n not in benched]
    if missing:
        print(f"no benchmark sample in the op table for {', '.join(missing)} (recurrent layers: "
              "python -m fastops.recurrent.bench; asv: asv_benches/bench_recurrent.py)", file=sys.stderr)
    size = "small" if args.size == "small" else "large"
    rounds = 3 if args.quick else args.rounds
    n_ops = len({i.name for i in table() if i.bench is not None and (not args.ops or i.name in args.ops)})
    _, status = _cache_status()
    # the first line says where a cold first run spends its time (stderr: --json keeps stdout clean)
    print(f"bench: {n_ops} ops; each op's kernels compile on its first call (numba, 0.1-16 s per kernel, "
          f"about 5 minutes for the whole catalog in a fresh environment on 2 cores; `python -m fastops warmup` "
          f"compiles them in parallel processes first); {status}", file=sys.stderr, flush=True)
    rows = bench.run(ops=args.ops, size=size, rounds=rounds, threads=args.threads, backward=not args.no_backward)
    if args.processes > 0:
        solo = bench.solo(ops=args.ops, size=size, rounds=rounds, threads=args.threads, processes=args.processes,
                          backward=not args.no_backward)
        bench.add_solo(rows, solo)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(bench.format_table(rows))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fastops", description="fastops command line")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("info", help="versions, threading layer, threads, cache directory, CPU")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("warmup", help="compile (or load from the cache) every kernel, both dtypes")
    s.add_argument("--ops", nargs="*", help="only these ops")
    s.add_argument("--jobs", type=int, help="compiling processes (default: the usable cores)")
    s.set_defaults(func=cmd_warmup)

    s = sub.add_parser("explain", help="which kernel an op picks for a shape")
    s.add_argument("op")
    s.add_argument("--shape", nargs="+", default=["100"], help="input shape(s) as 8x3x32x32 (several for multi-input ops)")
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument("--param", nargs="*", help="op parameters as name=value")
    s.add_argument("--threads", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("bench", help="fastops vs torch (each alone in fresh processes) and NumPy")
    s.add_argument("--quick", action="store_true", help="3 rounds per op")
    s.add_argument("--processes", type=int, default=3,
                   help="fresh processes per library for the solo headline (alternated; 0: one-process figures only)")
    s.add_argument("--rounds", type=int, default=9)
    s.add_argument("--size", choices=["small", "large"], default="large")
    s.add_argument("--ops", nargs="*")
    s.add_argument("--threads", type=int)
    s.add_argument("--no-backward", action="store_true")
    s.add_argument("--json", action="store_true")
    s.add_argument("--networks", nargs="*", help="whole networks instead of ops (none named: all; "
                   "inference and a training step, fastops.networks)")
    s.add_argument("--profile", action="store_true", help="with --networks: the fastops training step op by op")
    s.set_defaults(func=cmd_bench)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
