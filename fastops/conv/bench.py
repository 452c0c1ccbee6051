"""The convolution's gradient kernels against im2col + GEMM: ``python -m fastops.conv.bench``.

For ResNet-18's convolutions (4 images, float32), in one process, interleaved: the forward, and the
data and weight gradients (``conv2d.backward(..., needs=...)``) through the path dispatch picks and
with ``conv_path="im2col_gemm"`` forced; medians in ms and GFLOP/s. The figures quoted in
``fastops._dispatch`` (CONV_BLOCKED_MIN_OUT_CHANNELS) come from this command. ``--depthwise``:
MobileNetV2's depthwise 3x3 convolutions (4 images) instead, the depthwise plane kernels against
the direct kernel (``conv_path="direct"`` forced; the figures in ``fastops.conv._kernels``).
``--pointwise``: MobileNetV2's 1x1 convolutions (4 images) against im2col + GEMM forced.
``--small``: 3x3 convolutions on small maps (7x7, 4x4) against im2col + GEMM forced (the figures
of ``fastops._dispatch``, CONV_BLOCKED_MIN_OUT_CHANNELS).
"""
import argparse
import time

import numpy as np

CASES = [  # (N, C, H, O, kernel, stride, padding)
    (4, 64, 56, 64, 3, 1, 1), (4, 128, 28, 128, 3, 1, 1), (4, 256, 14, 256, 3, 1, 1), (4, 512, 7, 512, 3, 1, 1),
    (4, 64, 56, 128, 3, 2, 1), (4, 3, 224, 64, 7, 2, 3), (4, 64, 56, 128, 1, 2, 0),
]
# 3x3 convolutions on small maps
SMALL_CASES = [(4, 128, 7, 128, 3, 1, 1), (4, 64, 4, 64, 3, 1, 1), (4, 512, 4, 512, 3, 1, 1)]
# MobileNetV2's depthwise convolutions at 224 (groups = C = O)
DEPTHWISE_CASES = [(4, C, H, C, 3, s, 1) for C, H, s in (
    (32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (192, 28, 2), (384, 14, 1),
    (576, 14, 1), (576, 14, 2), (960, 7, 1))]
# MobileNetV2's 1x1 convolutions at 224
POINTWISE_CASES = [(4, C, H, O, 1, 1, 0) for C, O, H in (
    (16, 96, 112), (24, 144, 56), (144, 24, 56), (32, 192, 28), (192, 32, 28), (64, 384, 14), (384, 64, 14),
    (96, 576, 14), (576, 96, 14), (160, 960, 7), (960, 160, 7), (320, 1280, 7))]


def _median_ms(fn, rounds):
    fn()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def _forced(path, fn):
    from fastops import _dispatch

    def call():
        with _dispatch.force(conv_path=path):
            fn()

    return call


def run(rounds=7, threads=2, depthwise=False, pointwise=False, small=False):
    import fastops
    from fastops import _dispatch

    rng = np.random.default_rng(0)
    rows = []
    base = "direct" if depthwise else "im2col_gemm"
    for N, C, H, O, k, s, p in (DEPTHWISE_CASES if depthwise else POINTWISE_CASES if pointwise
                                else SMALL_CASES if small else CASES):
        groups = C if depthwise else 1
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        w = (rng.standard_normal((O, C // groups, k, k)) * 0.1).astype(np.float32)
        kw = dict(stride=s, padding=p, groups=groups)
        y = fastops.conv2d(x, w, None, **kw)
        g = np.ones_like(y)
        gflop = 2 * N * O * (C // groups) * k * k * y.shape[2] * y.shape[3] / 1e9
        with fastops.threads(threads):
            d = fastops.conv2d.explain(x.shape, "float32", weight_shape=w.shape, **kw)
            row = {"case": (N, C, H, O, k, s), "fwd": _median_ms(lambda: fastops.conv2d(x, w, None, **kw), rounds),
                   "data_path": str(d.get("backward_data_path")), "weight_path": str(d.get("backward_weight_path"))}
            row["fwd_base"] = _median_ms(_forced(base, lambda: fastops.conv2d(x, w, None, **kw)), rounds)
            for tag, force in (("", {}), ("_base", {"conv_path": base})):
                with _dispatch.force(**force):
                    row["data" + tag] = _median_ms(
                        lambda: fastops.conv2d.backward(g, x, w, None, needs=(True, False, False), **kw), rounds)
                    row["weight" + tag] = _median_ms(
                        lambda: fastops.conv2d.backward(g, x, w, None, needs=(False, True, False), **kw), rounds)
        row["gflop"] = gflop
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--depthwise", action="store_true", help="MobileNetV2's depthwise convs against the direct kernel")
    ap.add_argument("--pointwise", action="store_true", help="MobileNetV2's 1x1 convs against im2col + GEMM")
    ap.add_argument("--small", action="store_true", help="3x3 convs on 7x7 and 4x4 maps against im2col + GEMM")
    a = ap.parse_args(argv)
    base = "direct" if a.depthwise else "im2col"
    print(f"{a.threads} threads, float32, one process, median of {a.rounds} (ms; GFLOP/s in brackets); "
          f"'{base}': that path forced")
    for r in run(a.rounds, a.threads, a.depthwise, a.pointwise, a.small):
        gf = r["gflop"] * 1e3
        print(f"{str(r['case']):28s} fwd {r['fwd']:6.2f} ({gf / r['fwd']:4.0f}), {base} {r['fwd_base']:6.2f} | "
              f"data {r['data_path']:14s} {r['data']:6.2f} ({gf / r['data']:4.0f}), {base} {r['data_base']:6.2f} | "
              f"weight {r['weight_path']:14s} {r['weight']:6.2f} ({gf / r['weight']:4.0f}), {base} {r['weight_base']:6.2f}")


if __name__ == "__main__":
    main()
