"""Generate notebooks/02_speed.ipynb and notebooks/03_training.ipynb (outputs stripped; CI executes them)."""
import nbformat as nbf

QUICK = '''import os
# CI sets FASTOPS_NB_QUICK=1 (small shapes, few rounds); unset it for the real figures
QUICK = os.environ.get("FASTOPS_NB_QUICK", "") not in ("", "0")'''


def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    n.cells = [nbf.v4.new_markdown_cell(c[1]) if c[0] == "md" else nbf.v4.new_code_cell(c[1]) for c in cells]
    return n


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
print(f"warm call:                              {cached[2] * 1e6:.0f} us")'''),
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

nbf.write(speed, "notebooks/02_speed.ipynb")
nbf.write(training, "notebooks/03_training.ipynb")
print("written")
