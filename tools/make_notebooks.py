"""Generate notebooks/01_quickstart.ipynb, 02_speed.ipynb and 03_training.ipynb (outputs stripped; CI
executes them: tests/test_notebooks.py). Run from the repository root: ``python tools/make_notebooks.py``."""
import nbformat as nbf

QUICK = '''import os
# CI sets FASTOPS_NB_QUICK=1 (small shapes, few rounds); unset it for the real figures
QUICK = os.environ.get("FASTOPS_NB_QUICK", "") not in ("", "0")'''


def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    n.cells = [nbf.v4.new_markdown_cell(c[1]) if c[0] == "md" else nbf.v4.new_code_cell(c[1]) for c in cells]
    for k, c in enumerate(n.cells):
        c.id = f"cell-{k:02d}"  # stable ids: regenerating leaves unchanged notebooks unchanged in git
    return n


quickstart = nb([
    ("md", "# fastops quickstart\n\n"
           "fastops ops take and return NumPy arrays, with the names, arguments and semantics of "
           "`torch.nn.functional`. Each op carries its backward pass. This notebook: replacing torch / NumPy code, "
           "forward and backward, dtype dispatch, `explain`."),
    ("md", "## Replacing `torch.nn.functional` code\n\n"
           "Code written against `torch.nn.functional` keeps its calls: change the import and pass NumPy arrays. "
           "When torch is installed the cell checks that both give the same result."),
    ("code", '''import numpy as np
import fastops as F          # was: import torch.nn.functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
w = (rng.standard_normal((8, 3, 3, 3)) * 0.1).astype(np.float32)
b = np.zeros(8, np.float32)

h = F.conv2d(x, w, b, padding=1)
h = F.relu(F.batch_norm(h, None, None, training=True))
h = F.max_pool2d(h, 2)
logits = F.linear(h.reshape(2, -1), (rng.standard_normal((10, 8 * 8 * 8)) * 0.01).astype(np.float32))
print(h.shape, logits.shape, logits.dtype)

try:
    import torch
    import torch.nn.functional as TF
    t = TF.max_pool2d(TF.relu(TF.batch_norm(TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                                      padding=1), None, None, training=True)), 2)
    print("max |fastops - torch| =", float(np.abs(h - t.numpy()).max()))
except ImportError:
    print("torch not installed: comparison skipped")'''),
    ("md", "## Replacing hand-written NumPy code\n\n"
           "A NumPy softmax allocates a temporary per step; the fastops op is one compiled loop (multi-threaded "
           "above a size threshold) with the same result."),
    ("code", '''import time

def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)

z = rng.standard_normal((512, 1000)).astype(np.float32)
np.testing.assert_allclose(F.softmax(z, dim=-1), np_softmax(z), rtol=1e-5, atol=1e-7)

def best(f, n=5):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)

t_np, t_fo = best(lambda: np_softmax(z)), best(lambda: F.softmax(z, dim=-1))
print(f"NumPy {t_np * 1e3:.2f} ms, fastops {t_fo * 1e3:.2f} ms ({t_np / t_fo:.1f}x)")'''),
    ("md", "## Forward and backward\n"
           "`op.backward(grad_output, *forward_args, **forward_kwargs)` returns one gradient per array argument of "
           "the forward (None where not differentiable)."),
    ("code", '''x = rng.standard_normal((4, 8)).astype(np.float32)
y = F.gelu(x)
(gx,) = F.gelu.backward(np.ones_like(y), x)
# check against a central finite difference in float64 along a random direction
x64 = x.astype(np.float64); t = rng.standard_normal(x.shape); eps = 1e-6
fd = np.sum((F.gelu(x64 + eps * t) - F.gelu(x64 - eps * t)) / (2 * eps))
an = np.sum(F.gelu.backward(np.ones_like(x64), x64)[0] * t)
print(fd, an)
assert abs(fd - an) < 1e-6 * abs(an)

# several array arguments, one gradient each (conv2d: input, weight, bias)
xi = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
gx, gw, gb = F.conv2d.backward(np.ones((2, 8, 16, 16), np.float32), xi, w, b, padding=1)
print(gx.shape, gw.shape, gb.shape)'''),
    ("md", "## dtype dispatch\n\n"
           "float32 and float64 have their own compiled kernels: float32 stays float32 end to end (no float64 "
           "temporaries), float64 computes in float64. Other dtypes are refused before any kernel runs, with "
           "the op, the argument and the dtype in the message."),
    ("code", '''for dt in ("float32", "float64"):
    y = F.relu(np.ones((3, 5), dt))
    print(dt, "->", y.dtype, F.relu.explain((3, 5), dt)["kernel"])
try:
    F.relu(np.arange(3))
except TypeError as e:
    print("TypeError:", e)'''),
    ("md", "## explain: which kernel runs\n"
           "Each call picks a kernel from dtype, size and thread count: a serial kernel for small inputs, a "
           "parallel one above a measured threshold. `explain` shows the choice without running anything "
           "(also on the command line: `python -m fastops explain relu --shape 1000000`)."),
    ("code", '''print(F.relu.explain((100,), "float32"))
print(F.relu.explain((1 << 22,), "float32"))
with F.threads(1):
    print(F.relu.explain((1 << 22,), "float64"))'''),
])


speed = nb([
    ("md", "# fastops speed: against plain NumPy and PyTorch\n\n"
           "Every figure here is measured in this process, **interleaved**: fastops, the plain-NumPy implementation "
           "of the op table (`fastops.testing`) and torch (when installed) run in turn, round after round, with the "
           "same thread count, and the median of each is kept. On a shared machine absolute times drift; the ratios "
           "much less. Ratios > 1 mean fastops is faster. Compile time is measured separately at the end."),
    ("code", QUICK + '''
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import fastops
from fastops import bench

THREADS = min(2, fastops._threads.max_threads())
FLAGSHIP = [op for op in ["relu", "gelu", "softmax", "add", "cross_entropy", "conv2d", "linear", "batch_norm",
                          "layer_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "interpolate",
                          "grid_sample", "roi_align", "dropout", "scaled_dot_product_attention"]
            if op in fastops.ops()]
size = "small" if QUICK else "large"
rows = bench.run(ops=FLAGSHIP, size=size, rounds=3 if QUICK else 9, threads=THREADS, progress=False)
print(f"{len(rows)} benchmarks, size={size!r}, threads={THREADS}")'''),
    ("code", '''def fmt(v):
    return "-" if v is None else f"{v:.2f}x"

print(f"{'op':32s} {'fastops ms':>11s} {'vs NumPy':>9s} {'vs torch':>9s} {'fwd+bwd vs torch':>17s}")
for r in rows:
    print(f"{r['op']:32s} {r['fastops_s'] * 1e3:11.3f} {fmt(r.get('numpy_ratio')):>9s} {fmt(r.get('torch_ratio')):>9s} "
          f"{fmt(r.get('fwdbwd_torch_ratio')):>17s}")'''),
    ("md", "## Speed-ups as a bar chart (log scale; the dashed line is parity)"),
    ("code", '''names = [r["op"] for r in rows]
y = np.arange(len(rows))
fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5))
for k, (key, label) in enumerate([("numpy_ratio", "vs NumPy"), ("torch_ratio", "vs torch fwd"),
                                    ("fwdbwd_torch_ratio", "vs torch fwd+bwd")]):
    vals = [r.get(key) or np.nan for r in rows]
    ax.barh(y + (k - 1) * 0.27, vals, height=0.27, label=label)
ax.axvline(1.0, ls="--", c="k", lw=1)
ax.set_xscale("log"); ax.set_yticks(y); ax.set_yticklabels(names); ax.invert_yaxis()
ax.set_xlabel("speed-up (x, > 1: fastops faster)"); ax.legend(loc="lower right")
fig.tight_layout()'''),
    ("md", "## Convolution: GFLOP/s against the machine's peak\n\n"
           "The practical fp32 peak of the project machine (2 cores, Zen 5, AVX-512) is 325-415 GFLOP/s "
           "(best oneDNN 3x3 convolution); OpenBLAS sgemm reaches ~220."),
    ("code", '''import time

def best_time(f, rounds):
    f()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)

cases = [((8, 64, 56, 56), (64, 64, 3, 3), 1), ((8, 128, 28, 28), (128, 128, 3, 3), 1),
         ((8, 256, 14, 14), (256, 256, 3, 3), 1), ((8, 256, 56, 56), (64, 256, 1, 1), 0)]
if QUICK:
    cases = [((1, 8, 12, 12), (8, 8, 3, 3), 1), ((1, 16, 8, 8), (8, 16, 1, 1), 0)]
labels, gflops = [], []
if "conv2d" in fastops.ops():
    rng = np.random.default_rng(0)
    with fastops.threads(THREADS):
        for xs, ws, pad in cases:
            x = rng.standard_normal(xs).astype(np.float32); w = rng.standard_normal(ws).astype(np.float32)
            t = best_time(lambda: fastops.conv2d(x, w, padding=pad), 2 if QUICK else 5)
            flop = 2 * xs[0] * ws[0] * ws[1] * ws[2] * ws[3] * xs[2] * xs[3]
            labels.append(f"{ws[2]}x{ws[3]} {ws[1]}->{ws[0]} {xs[2]}x{xs[3]}"); gflops.append(flop / t / 1e9)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(labels, gflops); ax.axhspan(325, 415, color="tab:red", alpha=0.15, label="machine peak (325-415)")
    ax.axhline(220, ls=":", c="k", label="OpenBLAS sgemm (~220)")
    ax.set_ylabel("GFLOP/s"); ax.legend(); plt.setp(ax.get_xticklabels(), rotation=20); fig.tight_layout()
    for l, g in zip(labels, gflops):
        print(f"conv2d {l}: {g:.0f} GFLOP/s")'''),
    ("md", "## Compile time vs warm calls\n\n"
           "A kernel compiles on its first call in a process with an empty cache, loads from the on-disk cache in "
           "later processes, and a warm call costs microseconds. Measured in fresh subprocesses."),
    ("code", '''import subprocess, sys, tempfile, os
code = ("import time, numpy as np; t0 = time.perf_counter(); import fastops; t1 = time.perf_counter();"
        "x = np.ones((64, 64), np.float32); fastops.gelu(x); t2 = time.perf_counter();"
        "fastops.gelu(x); t3 = time.perf_counter(); print(t1 - t0, t2 - t1, t3 - t2)")
with tempfile.TemporaryDirectory() as d:
    env = dict(os.environ, FASTOPS_CACHE_DIR=d)
    cold = [float(v) for v in subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()]
    cached = [float(v) for v in subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()]
print(f"import fastops: {cold[0] * 1e3:.0f} ms")
print(f"first gelu call, empty cache (compile): {cold[1] * 1e3:.0f} ms")
print(f"first gelu call, cached kernel:        {cached[1] * 1e3:.0f} ms")
print(f"warm call:                              {cached[2] * 1e6:.0f} us")
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.barh(["compile (empty cache)", "load (cached kernel)", "warm call"], [cold[1], cached[1], cached[2]])
ax.set_xscale("log"); ax.set_xlabel("seconds (log)"); ax.invert_yaxis(); fig.tight_layout()'''),
])

training = nb([
    ("md", "# Training a CNN with fastops only\n\n"
           "`fastops.examples.cnn_digits`: conv2d -> batch_norm + relu (fused) -> max_pool2d, twice, then dropout, linear "
           "and cross-entropy, trained with `fastops.optim.Adam` on scikit-learn's 8x8 digits (shipped with "
           "scikit-learn, nothing downloads). The backward pass is written out by hand in `train_step`."),
    ("code", QUICK + '''
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from fastops.examples import cnn_digits, lstm_digits

r = cnn_digits.train(epochs=1 if QUICK else 15, max_steps=20 if QUICK else None)
print(f"CNN: test accuracy {r['test_accuracy']:.4f}, {r['seconds_per_epoch']:.2f} s per epoch")'''),
    ("code", '''fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
loss = np.array(r["losses"]); k = 10
a.plot(loss, alpha=0.3, label="per step")
if len(loss) > k:
    a.plot(np.arange(k - 1, len(loss)), np.convolve(loss, np.ones(k) / k, "valid"), label=f"mean of {k}")
a.set_xlabel("step"); a.set_ylabel("cross-entropy"); a.legend()
b.plot(np.arange(1, len(r["test_accuracy_per_epoch"]) + 1), r["test_accuracy_per_epoch"], "o-")
b.set_xlabel("epoch"); b.set_ylabel("test accuracy"); fig.tight_layout()'''),
    ("md", "## The same idea with an LSTM\n\nEach image read row by row: 8 steps of 8 features."),
    ("code", '''s = lstm_digits.train(epochs=1 if QUICK else 25, max_steps=20 if QUICK else None, lr=1e-2)
print(f"LSTM: test accuracy {s['test_accuracy']:.4f}, {s['seconds_per_epoch']:.2f} s per epoch")'''),
])

nbf.write(quickstart, "notebooks/01_quickstart.ipynb")
nbf.write(speed, "notebooks/02_speed.ipynb")
nbf.write(training, "notebooks/03_training.ipynb")
print("written")
