"""Whole networks, fastops against torch: inference and one training step (forward, cross-entropy,
backward, SGD momentum), ``python -m fastops bench --networks`` (and ``python -m
fastops.networks.bench``).

Two figures per network, float32, at the issue's input sizes (``BATCH``):

* the headline: each library alone in its own fresh process, in the caller's environment (nothing
  set), processes alternated fastops, torch, fastops, ...; the median over the processes of each
  process' median;
* one process, the two libraries' calls interleaved (kernel quality with the same machine state;
  labelled "1-proc").

``--profile``: where the fastops training step spends its time, op by op (forward and backward of
each op, summed over its calls in the step, median over the rounds), measured in a process of its
own by timing each ``fastops`` op call of the step.

A third mode, "folded inf", for the networks with batch norms (ResNet-18, MobileNetV2): inference
with every eval batch norm folded into the conv before it, in both libraries (fastops
``net.fold_batch_norm()``; torch ``torch.fx.experimental.optimization.fuse``, which folds
``Conv2d`` + ``BatchNorm2d`` pairs the same way); "inference" is each library's plain eval forward.
"""
import argparse
import contextlib
import json
import sys
import time

import numpy as np

from .. import _threads
from ..bench import _median_interleaved, alternate
from . import NETWORKS

# the inputs: ResNet-18 / MobileNetV2 4x3x224x224, transformer 8x256 tokens, LSTM LM
# T 64 B 32, LeNet-5 64x1x28x28
BATCH = {"resnet18": 4, "mobilenet_v2": 4, "transformer": 8, "lstm_lm": 32, "lenet5": 64}
LR, MOMENTUM = 0.01, 0.9


def _torch():
    try:
        import torch

        return torch
    except ImportError:
        return None


MODES = ("inference", "train step", "folded inf")


def callables(name, lib, threads, dtype=np.float32, sizes=None, batch=None):
    """``(inference, train_step, folded_inference)``: zero-argument callables for ``lib`` ("fastops"
    or "torch") on network ``name`` (the same weights and batch for both libraries);
    ``folded_inference`` is None for a network without batch norms."""
    from .. import optim

    net = NETWORKS[name](dtype=dtype, seed=0, **(sizes or {}))
    x, target = net.example_batch(batch or BATCH.get(name, 2), np.random.default_rng(1))
    if lib == "fastops":
        opt = optim.SGD(list(net.params.values()), lr=LR, momentum=MOMENTUM)

        def infer():
            with _threads.threads(threads):
                net.forward(x, training=False)

        def train():
            with _threads.threads(threads):
                net.train_step(x, target, opt)

        folded = net.fold_batch_norm() if net.conv_bn_units() else None

        def infer_folded():
            with _threads.threads(threads):
                folded.forward(x, training=False)

        return infer, train, (infer_folded if folded is not None else None)
    torch = _torch()  # its thread count: set by the caller (_worker, interleaved)
    module = net.torch_module()
    tx, tt = torch.from_numpy(x), torch.from_numpy(np.asarray(target)).long()
    topt = torch.optim.SGD(module.parameters(), lr=LR, momentum=MOMENTUM)
    F = torch.nn.functional

    def tinfer():
        module.eval()
        with torch.no_grad():
            module(tx)

    def ttrain():
        module.train()
        topt.zero_grad()
        out = module(tx)
        F.cross_entropy(out.reshape(-1, out.shape[-1]), tt.reshape(-1)).backward()
        topt.step()

    fused = None
    if net.conv_bn_units():
        from torch.fx.experimental.optimization import fuse

        fused = fuse(module.eval())  # a copy: module itself keeps its batch norms

    def tinfer_folded():
        with torch.no_grad():
            fused(tx)

    return tinfer, ttrain, (tinfer_folded if fused is not None else None)


def _worker(lib, names, rounds, threads):
    """In a fresh process: ``{name: [inference_s, train_step_s, folded_inference_s or None]}`` for
    ``lib`` alone."""
    if lib == "torch":
        if _torch() is None:
            return {}
        _torch().set_num_threads(threads)  # a fresh process of its own: nothing to restore
    out = {}
    for name in names:
        fns = callables(name, lib, threads)
        times = []
        for f in fns:
            if f is None:
                times.append(None)
                continue
            f()  # compile / warm up
            times.append(_median_interleaved([f], rounds)[0])
        out[name] = times
    return out


def solo(names, rounds=5, threads=2, processes=3, progress=True):
    """Each library alone in fresh processes, alternated: ``{name: {lib: [inference, train,
    folded]}}``."""
    libs = ["fastops"] + (["torch"] if _torch() is not None else [])
    cmds = {lib: ["fastops.networks.bench", "--worker", lib, "--rounds", str(rounds), "--threads", str(threads),
                  "--networks", *names] for lib in libs}
    runs = alternate(cmds, processes, progress)
    res = {}
    for lib, rs in runs.items():
        for name in names:
            if all(name in r for r in rs):
                res.setdefault(name, {})[lib] = [
                    None if rs[0][name][k] is None else float(np.median([r[name][k] for r in rs]))
                    for k in range(len(MODES))]
    return res


def interleaved(names, rounds=5, threads=2):
    """Both libraries in this process, calls interleaved: ``{name: {lib: [inference, train,
    folded]}}``."""
    res = {}
    torch = _torch()
    old = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(threads)  # restored below: this may be the user's process
        for name in names:
            fo = callables(name, "fastops", threads)
            to = callables(name, "torch", threads) if torch is not None else (None,) * len(MODES)
            for f in fo + to:
                if f is not None:
                    f()
            pairs = [_median_interleaved([f, g], rounds) for f, g in zip(fo, to)]  # None for a None callable
            res[name] = {"fastops": [p[0] for p in pairs], "torch": [p[1] for p in pairs]}
    finally:
        if torch is not None:
            torch.set_num_threads(old)
    return res


@contextlib.contextmanager
def _timed_ops(acc):
    """Inside the block, every fastops op call, ``vjp`` and backward (or pullback) call adds its
    seconds to ``acc[(op name, "forward" | "backward")]`` (this process only; restored on exit)."""
    from .._op import Op

    call, backward, vjp = Op.__call__, Op.backward, Op.vjp
    depth = [0]  # an op called inside another op's call counts in the outer one only

    def timed(kind, name, fn, *a, **k):
        if depth[0]:
            return fn(*a, **k)
        depth[0] += 1
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            depth[0] -= 1
            key = (name, kind)
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0

    def timed_vjp(self, *a, **k):
        out, pullback = timed("forward", self.name, vjp, self, *a, **k)
        return out, lambda *ga, **gk: timed("backward", self.name, pullback, *ga, **gk)

    Op.__call__ = lambda self, *a, **k: timed("forward", self.name, call, self, *a, **k)
    Op.backward = lambda self, *a, **k: timed("backward", self.name, backward, self, *a, **k)
    Op.vjp = timed_vjp
    try:
        yield acc
    finally:
        Op.__call__, Op.backward, Op.vjp = call, backward, vjp


def profile(name, rounds=5, threads=2):
    """``[(op, kind, seconds)]``: the fastops training step of ``name`` op by op (median over rounds
    of each op's summed time per step), largest first, and the step's own median time."""
    train = callables(name, "fastops", threads)[1]
    train()
    per_round, steps = [], []
    for _ in range(rounds):
        acc = {}
        t0 = time.perf_counter()
        with _timed_ops(acc):
            train()
        steps.append(time.perf_counter() - t0)
        per_round.append(acc)
    keys = set().union(*per_round)
    rows = [(op, kind, float(np.median([r.get((op, kind), 0.0) for r in per_round]))) for op, kind in keys]
    return sorted(rows, key=lambda r: -r[2]), float(np.median(steps))


def format_table(solo_res, inter_res):
    """Milliseconds and torch/fastops per network and mode: each library alone (when measured),
    then one process interleaved."""
    def ms(v):
        return f"{v * 1e3:.1f}" if v else "-"

    def ratio(fo, to):
        return f"{to / fo:.2f}x" if fo and to else "-"

    lines = [f"{'network':<13} {'mode':<10} | {'alone: fastops':>14} {'torch':>8} {'ratio':>7} | "
             f"{'1-proc: fastops':>15} {'torch':>8} {'ratio':>7}", "-" * 95]
    for name in inter_res:
        none = [None] * len(MODES)
        for k, mode in enumerate(MODES):
            s = (solo_res or {}).get(name, {})
            i = inter_res.get(name, {})
            fo, to = s.get("fastops", none)[k], s.get("torch", none)[k]
            ifo, ito = i.get("fastops", none)[k], i.get("torch", none)[k]
            if fo is None and ifo is None:
                continue
            lines.append(f"{name:<13} {mode:<10} | {ms(fo):>14} {ms(to):>8} {ratio(fo, to):>7} | "
                         f"{ms(ifo):>15} {ms(ito):>8} {ratio(ifo, ito):>7}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastops.networks.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", nargs="*", help=f"default: all ({', '.join(NETWORKS.names())})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--processes", type=int, default=3, help="fresh processes per library (0: one-process only)")
    ap.add_argument("--profile", action="store_true", help="the fastops training step op by op")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=["fastops", "torch"], help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    names = a.networks or NETWORKS.names()
    unknown = [n for n in names if n not in NETWORKS.names()]
    if unknown:
        print(f"unknown network(s) {', '.join(unknown)}; known: {', '.join(NETWORKS.names())}", file=sys.stderr)
        return 2
    if a.worker:
        print(json.dumps(_worker(a.worker, names, a.rounds, a.threads)))
        return 0
    if a.profile:
        out = {}
        for name in names:
            rows, step = profile(name, a.rounds, a.threads)
            out[name] = {"step_s": step, "ops": [{"op": o, "pass": k, "s": s} for o, k, s in rows]}
            if not a.json:
                print(f"{name}: fastops training step {step * 1e3:.1f} ms (with timing of every op call), by op:")
                for o, k, s in rows:
                    print(f"  {o:<32} {k:<9} {s * 1e3:9.2f} ms  {100 * s / step:5.1f}%")
        if a.json:
            print(json.dumps(out, indent=2))
        return 0
    solo_res = solo(names, a.rounds, a.threads, a.processes) if a.processes > 0 else None
    inter_res = interleaved(names, a.rounds, a.threads)
    if a.json:
        print(json.dumps({"solo": solo_res, "interleaved": inter_res}, indent=2))
    else:
        alone = (f"each library alone in {a.processes} fresh processes, alternated (the headline)" if a.processes > 0
                 else "not measured (--processes 0)")
        print(f"{a.threads} threads, float32, median of {a.rounds} rounds; ratio = torch/fastops (> 1: fastops "
              f"faster). Alone: {alone}; 1-proc: both in one process, interleaved.")
        print(format_table(solo_res, inter_res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
