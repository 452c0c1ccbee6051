"""JIT compile time per op family: a fresh process with an empty kernel cache runs forward and
backward of every op of the family once (its first test sample, float32), so every kernel those
calls need compiles; the wall time of those calls is the ``track_`` value (seconds; it includes
Numba's one-time target initialisation, ~0.15 s, once per family). ``FASTOPS_BENCH_OPS`` narrows
the families to the selected ops."""
import os
import subprocess
import sys
import tempfile

from ._common import nonempty, selected, skip_placeholder

_SCRIPT = r'''
import sys, time
import numpy as np
import fastops
from fastops.testing import table

def ones_like_out(out):
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    g = [np.ones_like(o) for o in outs]
    return g if len(g) > 1 else g[0]

def recurrent(name):
    r = np.random.default_rng(0)
    kind = name.split("_")[0]
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind] * 8
    w = [r.standard_normal(s).astype(np.float32) for s in ((G, 4), (G, 8), (G,), (G,))]
    if name.endswith("_cell"):
        x, h = r.standard_normal((2, 4)).astype(np.float32), np.zeros((2, 8), np.float32)
        args = (x, (h, h) if kind == "lstm" else h, *w)
        g = (np.ones_like(h), np.ones_like(h)) if kind == "lstm" else np.ones_like(h)
    else:
        x, h = r.standard_normal((3, 2, 4)).astype(np.float32), np.zeros((1, 2, 8), np.float32)
        args = (x, (h, h) if kind == "lstm" else h, w)
        g = (np.ones((3, 2, 8), np.float32), None)
    return args, {}, g

names = sys.argv[1:]
infos = {}
for i in table():
    infos.setdefault(i.name, i)
t0 = time.perf_counter()
for name in names:
    f = getattr(fastops, name)
    if name in infos:
        s = infos[name].samples(np.random.default_rng(0), np.float32)[0]
        args, kw = s.args, s.kwargs
        g = ones_like_out(f(*args, **kw))
    else:
        args, kw, g = recurrent(name)
        f(*args, **kw)
    f.backward(g, *args, **kw)
print(time.perf_counter() - t0)
'''


def families():
    """{family: [ops]} from the registered ops' modules (fastops.<family>.<module>)."""
    import fastops

    fam = {}
    for name in fastops.ops():
        if selected(name):
            fam.setdefault(getattr(fastops, name).__module__.split(".")[1], []).append(name)
    return fam


class CompileTime:
    params = (nonempty(sorted(families())),)
    param_names = ["family"]
    timeout = 900
    unit = "seconds"
    number = 1
    repeat = 1

    def setup(self, family):
        skip_placeholder(family)
        self.ops = families()[family]

    def track_compile_family(self, family):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, FASTOPS_CACHE_DIR=d)
            env.pop("FASTOPS_DISABLE_CACHE", None)
            r = subprocess.run([sys.executable, "-c", _SCRIPT, *self.ops], env=env, capture_output=True,
                               text=True, timeout=self.timeout)
            if r.returncode:
                raise RuntimeError(r.stderr[-2000:])
            return float(r.stdout.split()[-1])

    track_compile_family.unit = "seconds"
