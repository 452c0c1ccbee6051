"""The convolution's gradient kernels against im2col + GEMM: ``python -m fastops.conv.bench``.

For ResNet-18's convolutions (4 images, float32), in one process, interleaved: the forward, and the
data and weight gradients (``conv2d.backward(..., needs=...)``) through the path dispatch picks and
with ``conv_path="im2col_gemm"`` forced; medians in ms and GFLOP/s. The figures quoted in
``fastops._dispatch`` (CONV_BLOCKED_DATA_MIN_WIDTH) come from this command.
"""
import argparse
import time

import numpy as np

CASES = [  # (N, C, H, O, kernel, stride, padding)
    (4, 64, 56, 64, 3, 1, 1), (4, 128, 28, 128, 3, 1, 1), (4, 256, 14, 256, 3, 1, 1), (4, 512, 7, 512, 3, 1, 1),
    (4, 64, 56, 128, 3, 2, 1), (4, 3, 224, 64, 7, 2, 3), (4, 64, 56, 128, 1, 2, 0),
]


def _median_ms(fn, rounds):
    fn()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def run(rounds=7, threads=2):
    import fastops
    from fastops import _dispatch

    rng = np.random.default_rng(0)
    rows = []
    for N, C, H, O, k, s, p in CASES:
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        w = (rng.standard_normal((O, C, k, k)) * 0.1).astype(np.float32)
        kw = dict(stride=s, padding=p)
        y = fastops.conv2d(x, w, None, **kw)
        g = np.ones_like(y)
        gflop = 2 * N * O * C * k * k * y.shape[2] * y.shape[3] / 1e9
        with fastops.threads(threads):
            d = fastops.conv2d.explain(x.shape, "float32", weight_shape=w.shape, **kw)
            row = {"case": (N, C, H, O, k, s), "fwd": _median_ms(lambda: fastops.conv2d(x, w, None, **kw), rounds),
                   "data_path": str(d.get("backward_data_path")), "weight_path": str(d.get("backward_weight_path"))}
            for tag, force in (("", {}), ("_im2col", {"conv_path": "im2col_gemm"})):
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
    a = ap.parse_args(argv)
    print(f"{a.threads} threads, float32, one process, median of {a.rounds} (ms; GFLOP/s in brackets)")
    for r in run(a.rounds, a.threads):
        gf = r["gflop"] * 1e3
        print(f"{str(r['case']):28s} fwd {r['fwd']:6.2f} ({gf / r['fwd']:4.0f}) | data {r['data_path']:14s} "
              f"{r['data']:6.2f} ({gf / r['data']:4.0f}), im2col {r['data_im2col']:6.2f} | weight {r['weight_path']:14s} "
              f"{r['weight']:6.2f} ({gf / r['weight']:4.0f}), im2col {r['weight_im2col']:6.2f}")


if __name__ == "__main__":
    main()
