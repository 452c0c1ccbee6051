"""Interleaved timing of fastops against plain NumPy and PyTorch (``python -m fastops bench``).

For each op of the table (``fastops.testing``) that has a benchmark sample, fastops and one other
implementation (NumPy, then torch) run in turn, round after round, in one process, with the same
thread count, and the medians are reported with the ratios ``numpy / fastops`` and ``torch /
fastops`` (> 1: fastops is faster), each from its own interleaved pair; the fastops time shown is
the one from the torch pair (the NumPy pair without torch). Interleaving matters on shared, noisy
machines: the absolute times drift, the ratios much less. Compile time is kept out: every implementation runs once before timing.
"""
import time

import numpy as np

# Nothing here changes process-wide state (no environment variables, no other library's thread
# count left changed): what is timed is what a user's process gets. In one process torch's and
# Numba's OpenMP runtimes both keep idle threads spinning for a while after a parallel region,
# so the interleaved one-process figure is a second, labelled column; the headline is each
# library alone in its own fresh process (``solo``).

from . import _threads
from .testing import table


def _torch():
    try:
        import torch

        return torch
    except ImportError:
        return None


def _median_interleaved(fns, rounds, min_time=0.0):
    times = [[] for _ in fns]
    t_end = time.perf_counter() + min_time
    r = 0
    while r < rounds or time.perf_counter() < t_end:
        for i, f in enumerate(fns):
            if f is None:
                continue
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
        r += 1
        if r >= 50 * rounds:
            break
    return [float(np.median(t)) if t else None for t in times]


def median_calls(f, rounds):
    """Median seconds of ``rounds`` calls of ``f`` (the caller warms it up first)."""
    return _median_interleaved([f], rounds)[0]


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def cases(ops=None, size="large", dtype=np.float32, seed=0):
    """(OpInfo, Sample) pairs to benchmark."""
    rng = np.random.default_rng(seed)
    for info in table():
        if info.bench is None or (ops and info.name not in ops):
            continue
        yield info, info.bench(rng, dtype, size)


def run(ops=None, size="large", rounds=7, threads=None, backward=True, progress=True):
    """Benchmark; returns a list of dict rows (times in seconds)."""
    torch = _torch()
    n = threads or _threads.get_num_threads()
    rows = []
    todo = list(cases(ops, size))
    it = todo
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(todo, desc="bench", unit="op")
        except ImportError:
            pass
    with _threads.threads(n):
        if torch is not None:
            old_torch_threads = torch.get_num_threads()
            torch.set_num_threads(n)
        try:
            for k, (info, s) in enumerate(it):
                if it is todo and progress:
                    print(f"[{k + 1}/{len(todo)}] {info.name}", flush=True)
                rows.append(_bench_one(info, s, rounds, torch, backward, n))
        finally:
            if torch is not None:
                torch.set_num_threads(old_torch_threads)
    return rows


def _callables(info, s, torch, backward):
    """``{"fastops": (fwd, fwdbwd), "numpy": (fwd, None), "torch": (fwd, fwdbwd)}`` for one sample
    (None where a side has no implementation; ``torch`` None: torch not used)."""
    op = info.op
    f_fast = lambda: op(*s.args, **s.kwargs)  # noqa: E731
    f_np = lambda: info.ref(*s.args, **s.kwargs)  # noqa: E731
    f_torch = None
    targs = None
    if torch is not None and info.torch_ref is not None:
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in s.args]
        f_torch = lambda: info.torch_ref(torch, *targs, **s.kwargs)  # noqa: E731
    b_fast = b_torch = None
    if backward and info.grad_args:
        # the cotangents: ones shaped like the outputs (from torch's when torch is timed, so a
        # torch-only process never runs fastops)
        outs = [o.detach().numpy() for o in _as_list(f_torch())] if f_torch is not None else _as_list(f_fast())
        cots = [np.ones_like(o) for o in outs]
        g = cots if len(cots) > 1 else cots[0]
        # the forward once with what its backward needs kept (op.vjp: the recurrent tapes,
        # batch_norm's statistics, softmax's output, ...), as autograd keeps it too

        def b_fast():
            _, pullback = op.vjp(*s.args, **s.kwargs)
            pullback(g)

        if f_torch is not None:
            tg = [torch.from_numpy(c) for c in cots]

            def b_torch():
                ta = [
                    t.detach().requires_grad_(i in info.grad_args and t.is_floating_point())
                    if isinstance(t, torch.Tensor) else t
                    for i, t in enumerate(targs)
                ]
                o = _as_list(info.torch_ref(torch, *ta, **s.kwargs))
                diff = [ta[i] for i in info.grad_args if i < len(ta) and isinstance(ta[i], torch.Tensor)
                        and ta[i].requires_grad]
                torch.autograd.grad(o, diff, tg)

    return {"fastops": (f_fast, b_fast), "numpy": (f_np, None), "torch": (f_torch, b_torch)}


def _bench_one(info, s, rounds, torch, backward, n):
    fns = _callables(info, s, torch, backward)
    f_fast, b_fast = fns["fastops"]
    f_np = fns["numpy"][0]
    f_torch, b_torch = fns["torch"]
    out = _as_list(f_fast())
    for f in (f_np, f_torch):
        if f is not None:
            f()
    # fastops is timed interleaved with each other implementation in turn (pairs, not one
    # three-way round): the NumPy references' OpenBLAS threads busy-wait after every call, slowing
    # whatever runs next. Each ratio comes from its own pair.
    t_fast_np, t_np = _median_interleaved([f_fast, f_np], rounds)
    t_fast, t_torch = t_fast_np, None
    if f_torch is not None:
        t_fast, t_torch = _median_interleaved([f_fast, f_torch], rounds)
    elems = sum(a.size for a in s.args if isinstance(a, np.ndarray))
    row = dict(
        op=info.name,
        shapes=[list(a.shape) for a in s.args if isinstance(a, np.ndarray)],
        dtype=str(out[0].dtype),
        threads=n,
        fastops_s=t_fast,
        numpy_s=t_np,
        torch_s=t_torch,
        numpy_ratio=(t_np / t_fast_np) if t_np else None,
        torch_ratio=(t_torch / t_fast) if t_torch else None,
        elements=int(elems),
    )
    if b_fast is not None:
        b_fast()
        if b_torch:
            b_torch()
        tb_fast, tb_torch = _median_interleaved([b_fast, b_torch], rounds)
        row.update(fwdbwd_fastops_s=tb_fast, fwdbwd_torch_s=tb_torch, fwdbwd_torch_ratio=(tb_torch / tb_fast) if tb_torch else None)
    return row


# ---------------------------------------------------------------- each library alone


def _worker(lib, ops, size, rounds, threads, backward):
    """Run in a fresh process: time ``lib`` ("fastops" or "torch") alone on the samples of ``ops``;
    returns ``{op: [fwd_s, fwdbwd_s]}`` (medians of ``rounds`` calls after one warm-up call)."""
    torch = _torch() if lib == "torch" else None
    if lib == "torch":
        if torch is None:
            return {}
        torch.set_num_threads(threads)
    res = {}
    with _threads.threads(threads):
        for info, s in cases(ops, size):
            fwd, fb = _callables(info, s, torch, backward)[lib]
            if fwd is None:
                continue
            times = []
            for f in (fwd, fb):
                if f is None:
                    times.append(None)
                    continue
                f()
                times.append(median_calls(f, rounds))
            res[info.name] = times
    return res


def alternate(modules, processes, progress=True):
    """Run ``python -m <argv>`` for each library of ``modules`` ({lib: argv}) in fresh processes,
    alternated lib by lib, ``processes`` times; each prints one JSON line last. Returns {lib:
    [parsed JSON per process]}. The child gets this process' environment unchanged."""
    import json
    import subprocess
    import sys

    runs = {lib: [] for lib in modules}
    for p in range(processes):
        for lib, argv in modules.items():
            if progress:
                print(f"solo: {lib} process {p + 1}/{processes}", file=sys.stderr, flush=True)
            r = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(f"bench worker {argv} failed:\n{r.stderr[-4000:]}")
            runs[lib].append(json.loads(r.stdout.strip().splitlines()[-1]))
    return runs


def solo(ops=None, size="large", rounds=7, threads=None, processes=3, backward=True, progress=True):
    """Each library alone in its own fresh process, in the caller's environment (nothing is set),
    ``processes`` processes per library alternated fastops, torch, fastops, ...; returns ``{op:
    {"fastops": [fwd, fwdbwd], "torch": [fwd, fwdbwd]}}``, each the median over the processes of
    the per-process medians. Without torch installed only fastops runs."""
    n = threads or _threads.get_num_threads()
    libs = ["fastops"] + (["torch"] if _torch() is not None else [])
    cmds = {lib: ["fastops.bench", "--worker", lib, "--size", size, "--rounds", str(rounds), "--threads", str(n)]
            + (["--no-backward"] if not backward else []) + (["--ops", *ops] if ops else []) for lib in libs}
    runs = alternate(cmds, processes, progress)
    out = {}
    for lib, rs in runs.items():
        for name in rs[0]:
            med = []
            for k in range(2):
                v = [r[name][k] for r in rs if r.get(name) and r[name][k] is not None]
                med.append(float(np.median(v)) if v else None)
            out.setdefault(name, {})[lib] = med
    return out


def add_solo(rows, solo_res):
    """Merge ``solo`` results into ``run``'s rows (keys ``solo_*``)."""
    for r in rows:
        s = solo_res.get(r["op"], {})
        fo, to = s.get("fastops", [None, None]), s.get("torch", [None, None])
        r.update(solo_fastops_s=fo[0], solo_torch_s=to[0], solo_fwdbwd_fastops_s=fo[1], solo_fwdbwd_torch_s=to[1],
                 solo_torch_ratio=(to[0] / fo[0]) if fo[0] and to[0] else None,
                 solo_fwdbwd_torch_ratio=(to[1] / fo[1]) if fo[1] and to[1] else None)
    return rows


def _main(argv=None):
    import argparse
    import json

    ap = argparse.ArgumentParser(description="worker of fastops.bench.solo (one library, one fresh process)")
    ap.add_argument("--worker", choices=["fastops", "torch"], required=True)
    ap.add_argument("--ops", nargs="*")
    ap.add_argument("--size", default="large")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--no-backward", action="store_true")
    a = ap.parse_args(argv)
    print(json.dumps(_worker(a.worker, a.ops, a.size, a.rounds, a.threads, not a.no_backward)))


def format_table(rows):
    def ms(v):
        return "-" if v is None else f"{v * 1e3:9.3f}"

    def ratio(v):
        return "-" if v is None else f"{v:6.2f}x"

    solo_cols = any("solo_torch_ratio" in r for r in rows)
    head = f"{'op':<34} {'fastops ms':>10} {'torch ms':>10}"
    if solo_cols:
        head += f" {'SOLO vs torch':>13} {'f+b vs torch':>12}"
    head += f" {'numpy ms':>10} {'vs numpy':>9} {'1-proc vs torch':>15} {'f+b ms':>10} {'torch f+b':>10} {'1-proc f+b':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        shape = "x".join(str(d) for d in r["shapes"][0]) if r["shapes"] and r["shapes"][0] else "scalar"
        name = f"{r['op']} [{shape}]"
        fo = r.get("solo_fastops_s") or r["fastops_s"]
        to = r.get("solo_torch_s") or r["torch_s"]
        line = f"{name[:34]:<34} {ms(fo):>10} {ms(to):>10}"
        if solo_cols:
            line += f" {ratio(r.get('solo_torch_ratio')):>13} {ratio(r.get('solo_fwdbwd_torch_ratio')):>12}"
        line += (f" {ms(r['numpy_s']):>10} {ratio(r['numpy_ratio']):>9} {ratio(r['torch_ratio']):>15} "
                 f"{ms(r.get('solo_fwdbwd_fastops_s') or r.get('fwdbwd_fastops_s')):>10} "
                 f"{ms(r.get('solo_fwdbwd_torch_s') or r.get('fwdbwd_torch_s')):>10} {ratio(r.get('fwdbwd_torch_ratio')):>10}")
        lines.append(line)
    lines.append("ratios > 1: fastops is faster (median times, same thread count). "
                 + ("SOLO: fastops and torch each alone in its own fresh process, the environment as given, "
                    "processes alternated (the headline; the ms columns are these). " if solo_cols else "")
                 + "1-proc: both interleaved round by round in one process (kernel quality; both "
                 "libraries' thread pools share the cores).")
    return "\n".join(lines)


if __name__ == "__main__":
    _main()
