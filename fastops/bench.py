"""Interleaved timing of fastops against plain NumPy and PyTorch (``python -m fastops bench``).

For each op of the table (``fastops.testing``) that has a benchmark sample, fastops and one other
implementation (NumPy, then torch) run in turn, round after round, in one process, with the same
thread count, and the medians are reported with the ratios ``numpy / fastops`` and ``torch /
fastops`` (> 1: fastops is faster), each from its own interleaved pair; the fastops time shown is
the one from the torch pair (the NumPy pair without torch). Interleaving matters on shared, noisy
machines: the absolute times drift, the ratios much less. Compile time is kept out: every implementation runs once before timing.
"""
import inspect
import os
import time

import numpy as np

# torch and Numba each bring an OpenMP runtime; with the default (active) wait policy the idle
# threads of one spin while the other computes, and in one process both sides measured ~8 ms for
# a 2 ms softmax. Passive waiting keeps the interleaved comparison fair. Must be set before either
# runtime starts its threads, i.e. before the first parallel region: this module is imported first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


def _bench_one(info, s, rounds, torch, backward, n):
    op = info.op
    f_fast = lambda: op(*s.args, **s.kwargs)  # noqa: E731
    f_np = lambda: info.ref(*s.args, **s.kwargs)  # noqa: E731
    f_torch = None
    targs = None
    if torch is not None and info.torch_ref is not None:
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in s.args]
        f_torch = lambda: info.torch_ref(torch, *targs, **s.kwargs)  # noqa: E731
    out = _as_list(f_fast())
    for f in (f_np, f_torch):
        if f is not None:
            f()
    # fastops is timed interleaved with each other implementation in turn (pairs, not one
    # three-way round): the NumPy references' OpenBLAS threads busy-wait after every call, slowing
    # whatever runs next (measured, scaled_dot_product_attention (1, 8, 1024, 1024, 64) f32, 2
    # threads: fastops 17.0 ms interleaved with torch alone, 35.5 ms with NumPy alone; torch 18.2
    # ms with fastops, 38.8 ms in a three-way round). Each ratio comes from its own pair.
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
    if backward and info.grad_args:
        cots = [np.ones_like(o) for o in out]
        g = cots if len(cots) > 1 else cots[0]
        # ops whose backward takes the saved forward result (softmax: output=) get it, as autograd
        # keeps it too
        saves_output = "output" in inspect.signature(op._backward).parameters and len(out) == 1

        def b_fast():
            y = op(*s.args, **s.kwargs)
            extra = {"output": y} if saves_output else {}
            op.backward(g, *s.args, **s.kwargs, **extra)

        b_torch = None
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

        b_fast()
        if b_torch:
            b_torch()
        tb_fast, tb_torch = _median_interleaved([b_fast, b_torch], rounds)
        row.update(fwdbwd_fastops_s=tb_fast, fwdbwd_torch_s=tb_torch, fwdbwd_torch_ratio=(tb_torch / tb_fast) if tb_torch else None)
    return row


def format_table(rows):
    def ms(v):
        return "-" if v is None else f"{v * 1e3:9.3f}"

    def ratio(v):
        return "-" if v is None else f"{v:6.2f}x"

    head = f"{'op':<34} {'fastops ms':>10} {'numpy ms':>10} {'torch ms':>10} {'vs numpy':>9} {'vs torch':>9} {'f+b ms':>10} {'torch f+b':>10} {'vs torch':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        shape = "x".join(str(d) for d in r["shapes"][0]) if r["shapes"] and r["shapes"][0] else "scalar"
        name = f"{r['op']} [{shape}]"
        lines.append(
            f"{name[:34]:<34} {ms(r['fastops_s']):>10} {ms(r['numpy_s']):>10} {ms(r['torch_s']):>10} "
            f"{ratio(r['numpy_ratio']):>9} {ratio(r['torch_ratio']):>9} {ms(r.get('fwdbwd_fastops_s')):>10} "
            f"{ms(r.get('fwdbwd_torch_s')):>10} {ratio(r.get('fwdbwd_torch_ratio')):>9}"
        )
    lines.append("ratios > 1: fastops is faster (median times, interleaved rounds, same thread count)")
    return "\n".join(lines)
