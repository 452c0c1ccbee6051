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


def _progress(items, desc):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="op"), True
    except ImportError:
        return items, False


def cmd_warmup(args):
    import numpy as np

    from fastops.testing import table

    infos = [i for i in table() if not args.ops or i.name in args.ops]
    t0 = time.perf_counter()
    it, bar = _progress(infos, "warmup")
    for k, info in enumerate(it):
        if not bar:
            print(f"[{k + 1}/{len(infos)}] {info.name}", flush=True)
        for dtype in (np.float32, np.float64):
            for s in info.samples(np.random.default_rng(0), dtype):
                out = info.op(*s.args, **s.kwargs)
                if info.grad_args:
                    outs = list(out) if isinstance(out, (tuple, list)) else [out]
                    g = [np.ones_like(o) for o in outs]
                    info.op.backward(g if len(g) > 1 else g[0], *s.args, **s.kwargs)
    print(f"compiled/loaded the kernels of {len(infos)} ops (float32, float64) in {time.perf_counter() - t0:.1f} s")
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

    size = "small" if args.size == "small" else "large"
    rounds = 3 if args.quick else args.rounds
    rows = bench.run(ops=args.ops, size=size, rounds=rounds, threads=args.threads, backward=not args.no_backward)
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
    s.set_defaults(func=cmd_warmup)

    s = sub.add_parser("explain", help="which kernel an op picks for a shape")
    s.add_argument("op")
    s.add_argument("--shape", nargs="+", default=["100"], help="input shape(s) as 8x3x32x32 (several for multi-input ops)")
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument("--param", nargs="*", help="op parameters as name=value")
    s.add_argument("--threads", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("bench", help="fastops vs NumPy (and torch when installed), interleaved")
    s.add_argument("--quick", action="store_true", help="3 rounds per op")
    s.add_argument("--rounds", type=int, default=9)
    s.add_argument("--size", choices=["small", "large"], default="large")
    s.add_argument("--ops", nargs="*")
    s.add_argument("--threads", type=int)
    s.add_argument("--no-backward", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
