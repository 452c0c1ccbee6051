"""Convolution family: the issue's performance list, fastops vs torch (oneDNN) and vs a plain NumPy
im2col + matmul, interleaved in one process (robust to machine noise), float32, 2 threads.

asv: ``ConvRatios.track_*`` (ratios > 1 mean fastops is faster), ``ConvGflops.track_gflops``.
Command line (the comparison table of the closing note)::

    python -m asv_benches.bench_conv [--rounds 5] [--cases conv2d_3x3_c64 ...]
"""
import math
import sys

import numpy as np

from ._common import nonempty, pin_threads, selected, skip_placeholder, torch_or_none

# name: (op, input shape, weight shape, kwargs)
CASES = {
    "conv2d_3x3_c64_56": ("conv2d", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
    "conv2d_3x3_c128_28": ("conv2d", (8, 128, 28, 28), (128, 128, 3, 3), {"padding": 1}),
    "conv2d_3x3_c256_14": ("conv2d", (8, 256, 14, 14), (256, 256, 3, 3), {"padding": 1}),
    "conv2d_1x1_256to64_56": ("conv2d", (8, 256, 56, 56), (64, 256, 1, 1), {}),
    "conv2d_7x7s2_3to64_224": ("conv2d", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}),
    "conv2d_dw3x3_c128_56": ("conv2d", (8, 128, 56, 56), (128, 1, 3, 3), {"padding": 1, "groups": 128}),
    "conv2d_3x3_dil2_c64_56": ("conv2d", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 2, "dilation": 2}),
    "conv_transpose2d_4x4s2_64to32_28": ("conv_transpose2d", (8, 64, 28, 28), (64, 32, 4, 4),
                                         {"stride": 2, "padding": 1}),
    "conv1d_k5_c128_1024": ("conv1d", (16, 128, 1024), (128, 128, 5), {"padding": 2}),
    "conv3d_3x3x3_c32_16x32x32": ("conv3d", (2, 32, 16, 32, 32), (32, 32, 3, 3, 3), {"padding": 1}),
    "linear_256x1024to1024": ("linear", (256, 1024), (1024, 1024), {}),
}


def _flops(op, xs, ws, kw, out_shape):
    if op == "linear":
        return 2.0 * xs[0] * ws[0] * ws[1]
    if op.startswith("conv_transpose"):
        # each input element times each weight element of its group
        return 2.0 * math.prod(xs) * math.prod(ws[1:])
    return 2.0 * math.prod(out_shape) * math.prod(ws[1:])


def _numpy_im2col(x, w, b, stride=1, padding=0, dilation=1, groups=1):
    """The plain NumPy floor: pad, sliding_window_view im2col (copy), one matmul (groups=1 only)."""
    k = w.ndim - 2
    s = (stride,) * k if isinstance(stride, int) else stride
    d = (dilation,) * k if isinstance(dilation, int) else dilation
    p = (padding,) * k if isinstance(padding, int) else padding
    xp = np.pad(x, [(0, 0), (0, 0)] + [(e, e) for e in p])
    ks = w.shape[2:]
    span = tuple(di * (kk - 1) + 1 for di, kk in zip(d, ks))
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=tuple(range(2, 2 + k)))
    win = win[(Ellipsis,) + tuple(slice(None, None, di) for di in d)]
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, si) for si in s)]
    N, C = x.shape[:2]
    osp = win.shape[2:2 + k]
    cols = np.ascontiguousarray(np.moveaxis(win, 1, 1 + k)).reshape(N, math.prod(osp), -1)
    out = cols @ w.reshape(w.shape[0], -1).T
    out += b
    return np.moveaxis(out, 2, 1).reshape((N, w.shape[0]) + osp)


def measure(name, rounds=5):
    """One row: fastops / torch / NumPy times (s), ratios, GFLOP/s, fused vs unfused."""
    import torch

    import fastops
    from fastops.bench import _median_interleaved

    op, xs, ws, kw = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.05).astype(np.float32)
    O = ws[0] if op in ("linear",) or not op.startswith("conv_transpose") else ws[1] * kw.get("groups", 1)
    b = rng.standard_normal(O).astype(np.float32)
    f = getattr(fastops, op)
    tf = getattr(torch.nn.functional, op)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    out = f(x, w, b, **kw)
    g = np.ones_like(out)
    tg = torch.from_numpy(g)

    def fast():
        f(x, w, b, **kw)

    def tor():
        tf(tx, tw, tb, **kw)

    def fast_fb():  # the forward once, what its backward needs kept (op.vjp), as autograd does
        _, pullback = f.vjp(x, w, b, **kw)
        pullback(g)

    def tor_fb():
        a, c, e = (t.detach().requires_grad_(True) for t in (tx, tw, tb))
        torch.autograd.grad(tf(a, c, e, **kw), (a, c, e), tg)

    npf = None
    if op in ("conv1d", "conv2d", "conv3d") and kw.get("groups", 1) == 1:
        def npf():
            _numpy_im2col(x, w, b, **kw)

    def fused():
        f(x, w, b, **kw, activation="relu")

    def unfused():
        fastops.relu(f(x, w, b, **kw))

    for fn in (fast, tor, fast_fb, tor_fb, fused, unfused) + ((npf,) if npf else ()):
        fn()
    t_fast, t_torch, t_np = _median_interleaved([fast, tor, npf], rounds)
    t_ffb, t_tfb = _median_interleaved([fast_fb, tor_fb], rounds)
    t_fused, t_unfused = _median_interleaved([fused, unfused], rounds)
    fl = _flops(op, xs, ws, kw, out.shape)
    path = f.explain(xs, "float32", weight_shape=ws, **kw).get("path", "?")
    return dict(case=name, path=path, fastops_ms=t_fast * 1e3, torch_ms=t_torch * 1e3,
                numpy_ms=t_np * 1e3 if t_np else None, torch_ratio=t_torch / t_fast,
                numpy_ratio=(t_np / t_fast) if t_np else None, gflops=fl / t_fast / 1e9,
                torch_gflops=fl / t_torch / 1e9, fwdbwd_torch_ratio=t_tfb / t_ffb,
                fwdbwd_fastops_ms=t_ffb * 1e3, fwdbwd_torch_ms=t_tfb * 1e3,
                fused_ms=t_fused * 1e3, unfused_ms=t_unfused * 1e3)


class ConvRatios:
    params = (nonempty(c for c in CASES if selected(CASES[c][0])),)
    param_names = ["case"]
    timeout = 900
    setup_cache_timeout = 3600
    unit = "ratio"

    def setup_cache(self):
        """Every case measured once per asv run (shared by the four track_ methods)."""
        if torch_or_none() is None:
            return None
        pin_threads()
        return {c: measure(c, rounds=5) for c in self.params[0] if c in CASES}

    def setup(self, rows, name):
        skip_placeholder(name)
        if rows is None:
            raise NotImplementedError("torch not installed")
        self.row = rows[name]

    def track_fwd_vs_torch(self, rows, name):
        return self.row["torch_ratio"]

    def track_fwdbwd_vs_torch(self, rows, name):
        return self.row["fwdbwd_torch_ratio"]

    def track_fused_vs_unfused(self, rows, name):
        return self.row["unfused_ms"] / self.row["fused_ms"]

    def track_gflops(self, rows, name):
        return self.row["gflops"]

    track_fwd_vs_torch.unit = track_fwdbwd_vs_torch.unit = track_fused_vs_unfused.unit = "ratio"
    track_gflops.unit = "GFLOP/s"


class ConvMemory:
    """Peak memory of a large-batch 3x3 conv forward + backward (asv ``peakmem``): the im2col /
    GEMM temporaries are processed in batch chunks of at most ``WORKSPACE_MAX_BYTES`` (64 MiB) per
    workspace slot (fastops/conv/_core.py batch_chunk), so this stays near inputs + outputs +
    3 x 64 MiB instead of growing with a whole-batch im2col (0.46 GB for this
    case before the chunking)."""

    timeout = 300

    def setup(self):
        pin_threads()
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((256, 64, 28, 28)).astype(np.float32)
        self.w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
        self.g = np.ones((256, 64, 28, 28), np.float32)

    def peakmem_conv2d_3x3_c64_28_n256_fwd_bwd(self):
        import fastops

        fastops.conv2d(self.x, self.w, padding=1)
        fastops.conv2d.backward(self.g, self.x, self.w, padding=1)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    a = ap.parse_args(argv)
    pin_threads()
    rows = []
    print(f"{'case':<34} {'path':<12} {'fo ms':>8} {'torch ms':>8} {'np ms':>8} {'vs torch':>8} {'vs np':>7} "
          f"{'GF/s':>6} {'f+b vs t':>8} {'fused':>7} {'unfused':>7}")
    for c in a.cases:
        r = measure(c, a.rounds)
        rows.append(r)
        npm = "-" if r["numpy_ms"] is None else f"{r['numpy_ms']:8.2f}"
        npr = "-" if r["numpy_ratio"] is None else f"{r['numpy_ratio']:6.2f}x"
        print(f"{c:<34} {r['path']:<12} {r['fastops_ms']:8.2f} {r['torch_ms']:8.2f} {npm:>8} "
              f"{r['torch_ratio']:7.2f}x {npr:>7} {r['gflops']:6.1f} {r['fwdbwd_torch_ratio']:7.2f}x "
              f"{r['fused_ms']:7.2f} {r['unfused_ms']:7.2f}", flush=True)
    gf = math.exp(sum(math.log(r["torch_ratio"]) for r in rows) / len(rows))
    gb = math.exp(sum(math.log(r["fwdbwd_torch_ratio"]) for r in rows) / len(rows))
    print(f"geomean torch/fastops: forward {gf:.2f}x, forward+backward {gb:.2f}x")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
