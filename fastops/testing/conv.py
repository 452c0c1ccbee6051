"""Op table: linear and convolution (docs/ops.md, "Linear and convolution").

References are independent NumPy code (a sum over kernel offsets of strided input slices, one
einsum per group; the transposed conv scatters the same way), evaluated in float64 by the tests.
Samples are tiny (CI compile time) but cover every parameter: odd sizes, batch 1, unbatched input,
stride, kernel larger than stride, padding int/tuple/"same"/"valid" (even kernels: asymmetric),
padding with dilation, groups / depthwise with multiplier, the four padding modes, output_padding,
groups in the transposed conv, fused activations, both kernel paths (direct and im2col/1x1 GEMM).
"""
import itertools

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, activation_ref, activation_torch, randn

_NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _tup(v, k):
    return (v,) * k if isinstance(v, int) else tuple(v)


# --- NumPy references ---------------------------------------------------------------------------


def _conv_ref(k):
    def ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", activation=None,
            activation_param=None):
        unb = x.ndim == k + 1
        if unb:
            x = x[None]
        s, d = _tup(stride, k), _tup(dilation, k)
        ks = w.shape[2:]
        if padding == "valid":
            pads = [(0, 0)] * k
        elif padding == "same":
            pads = [(di * (kk - 1) // 2, di * (kk - 1) - di * (kk - 1) // 2) for kk, di in zip(ks, d)]
        else:
            pads = [(p, p) for p in _tup(padding, k)]
        xp = np.pad(x, [(0, 0), (0, 0)] + pads, mode=_NP_MODE[padding_mode])
        N, C = x.shape[:2]
        O = w.shape[0]
        Cg, Og = C // groups, O // groups
        osp = [(xp.shape[2 + i] - d[i] * (ks[i] - 1) - 1) // s[i] + 1 for i in range(k)]
        out = np.zeros((N, O) + tuple(osp), x.dtype)
        for idx in itertools.product(*(range(kk) for kk in ks)):
            sl = tuple(slice(i * di, i * di + (o - 1) * si + 1, si) for i, di, o, si in zip(idx, d, osp, s))
            patch = xp[(slice(None), slice(None)) + sl]
            for g in range(groups):
                wg = w[(slice(g * Og, (g + 1) * Og), slice(None)) + idx]
                out[:, g * Og:(g + 1) * Og] += np.einsum("nc...,oc->no...", patch[:, g * Cg:(g + 1) * Cg], wg)
        if b is not None:
            out += b.reshape((1, O) + (1,) * k)
        out = activation_ref(out, activation, activation_param)
        return out[0] if unb else out

    return ref


def _conv_transpose_ref(k):
    def ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, activation=None,
            activation_param=None):
        unb = x.ndim == k + 1
        if unb:
            x = x[None]
        s, p, op_, d = _tup(stride, k), _tup(padding, k), _tup(output_padding, k), _tup(dilation, k)
        N, Cin = x.shape[:2]
        ks = w.shape[2:]
        Og = w.shape[1]
        O = Og * groups
        Cg = Cin // groups
        L = x.shape[2:]
        full = [(L[i] - 1) * s[i] + d[i] * (ks[i] - 1) + 1 + op_[i] for i in range(k)]
        buf = np.zeros((N, O) + tuple(full), x.dtype)
        for idx in itertools.product(*(range(kk) for kk in ks)):
            sl = tuple(slice(i * di, i * di + (li - 1) * si + 1, si) for i, di, li, si in zip(idx, d, L, s))
            for g in range(groups):
                wg = w[(slice(g * Cg, (g + 1) * Cg), slice(None)) + idx]
                buf[(slice(None), slice(g * Og, (g + 1) * Og)) + sl] += np.einsum(
                    "nc...,co->no...", x[:, g * Cg:(g + 1) * Cg], wg)
        out = buf[(slice(None), slice(None)) + tuple(slice(pi, f - pi) for pi, f in zip(p, full))]
        if b is not None:
            out = out + b.reshape((1, O) + (1,) * k)
        out = activation_ref(out, activation, activation_param)
        return out[0] if unb else out

    return ref


def _linear_ref(x, w, b=None, activation=None, activation_param=None):
    out = np.tensordot(x, w, axes=([-1], [1]))
    if b is not None:
        out = out + b
    return activation_ref(out, activation, activation_param)


def _separable_ref(x, dw, pw, b=None, stride=1, padding=0, dilation=1, activation=None, activation_param=None):
    y = _conv_ref(2)(x, dw, None, stride, padding, dilation, groups=x.shape[-3])
    return _conv_ref(2)(y, pw, b, activation=activation, activation_param=activation_param)


# --- torch references ---------------------------------------------------------------------------


def _conv_torch(k):
    def fn(t, x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", activation=None,
           activation_param=None):
        F = t.nn.functional
        conv = getattr(F, f"conv{k}d")
        if padding_mode != "zeros":
            ks = w.shape[2:]
            d = _tup(dilation, k)
            if padding == "same":
                pads = [(di * (kk - 1) // 2, di * (kk - 1) - di * (kk - 1) // 2) for kk, di in zip(ks, d)]
            elif padding == "valid":
                pads = [(0, 0)] * k
            else:
                pads = [(p, p) for p in _tup(padding, k)]
            flat = [e for lo_hi in reversed(pads) for e in lo_hi]
            unb = x.dim() == k + 1
            xx = F.pad(x[None] if unb else x, flat, mode=padding_mode)
            y = conv(xx, w, b, stride, 0, dilation, groups)
            y = y[0] if unb else y
        else:
            y = conv(x, w, b, stride, padding, dilation, groups)
        return activation_torch(t, y, activation, activation_param)

    return fn


def _conv_transpose_torch(k):
    def fn(t, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, activation=None,
           activation_param=None):
        y = getattr(t.nn.functional, f"conv_transpose{k}d")(x, w, b, stride, padding, output_padding, groups,
                                                            dilation)
        return activation_torch(t, y, activation, activation_param)

    return fn


def _linear_torch(t, x, w, b=None, activation=None, activation_param=None):
    return activation_torch(t, t.nn.functional.linear(x, w, b), activation, activation_param)


def _separable_torch(t, x, dw, pw, b=None, stride=1, padding=0, dilation=1, activation=None, activation_param=None):
    F = t.nn.functional
    y = F.conv2d(x, dw, None, stride, padding, dilation, groups=x.shape[-3])
    return activation_torch(t, F.conv2d(y, pw, b), activation, activation_param)


# --- samples ------------------------------------------------------------------------------------

# (input shape, weight shape, has bias, kwargs); spatial dims given for k = 2 and adapted per k
_CONV_CASES = {
    1: [
        ((2, 4, 9), (6, 4, 3), True, {}),
        ((1, 3, 10), (5, 3, 4), False, {"padding": "same", "dilation": 2}),
        ((3, 7), (4, 3, 2), True, {"stride": 2, "padding": 1, "padding_mode": "reflect"}),
        ((2, 4, 8), (8, 1, 3), True, {"groups": 4, "padding": "same", "padding_mode": "circular", "activation": "tanh"}),
        ((2, 6, 5), (4, 3, 1), False, {"groups": 2, "padding": "valid"}),
    ],
    2: [
        ((2, 4, 7, 6), (6, 4, 3, 3), True, {}),
        ((1, 3, 9, 8), (5, 3, 3, 2), False, {"stride": (2, 1), "padding": (2, 1), "dilation": (2, 3)}),
        ((2, 4, 6, 7), (8, 1, 3, 3), True, {"groups": 4, "stride": 2, "padding": 1, "activation": "silu"}),
        ((3, 5, 6), (6, 3, 2, 4), True, {"padding": "same", "padding_mode": "replicate"}),
        ((2, 4, 5, 5), (6, 2, 3, 3), False, {"groups": 2, "padding": 2, "dilation": 2, "padding_mode": "reflect"}),
        ((1, 4, 5, 6), (7, 4, 1, 1), True, {"activation": "leaky_relu", "activation_param": 0.2}),
        ((2, 3, 4, 5), (20, 3, 2, 2), True, {"padding": 1, "padding_mode": "circular", "activation": "gelu"}),
        ((1, 6, 5, 5), (6, 3, 3, 3), True, {"groups": 2, "stride": 3, "padding": "valid", "activation": "elu"}),
    ],
    3: [
        ((1, 2, 4, 5, 6), (9, 2, 2, 3, 2), False, {"stride": (1, 2, 1), "padding": 1}),
        ((2, 4, 3, 4, 5), (4, 1, 3, 3, 3), True, {"groups": 4, "padding": "same", "padding_mode": "replicate",
                                                  "activation": "relu6"}),
        ((3, 4, 4, 3), (10, 3, 2, 2, 2), True, {"dilation": (1, 2, 1), "padding": (1, 0, 1),
                                                "padding_mode": "circular", "activation": "sigmoid"}),
    ],
}

_CT_CASES = {
    1: [
        ((2, 4, 5), (4, 3, 3), True, {"stride": 2, "padding": 1, "output_padding": 1}),
        ((3, 6), (3, 5, 2), False, {"dilation": 2, "output_padding": 1}),
        # kernel 1 (the 1x1 GEMM path) with output_padding >= stride (allowed as it is < dilation)
        ((2, 3, 4), (3, 2, 1), True, {"dilation": 2, "output_padding": 1}),
        ((1, 4, 4), (4, 2, 3), True, {"groups": 2, "stride": 3, "activation": "tanh"}),
    ],
    2: [
        ((2, 4, 4, 5), (4, 6, 3, 3), True, {}),
        ((1, 4, 3, 4), (4, 3, 4, 4), True, {"groups": 2, "stride": 2, "padding": 1, "activation": "relu"}),
        ((2, 3, 3, 3), (3, 5, 3, 2), False, {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2),
                                            "dilation": (2, 1)}),
        ((4, 4, 3), (4, 1, 2, 2), True, {"groups": 4, "stride": 2, "activation": "silu"}),
    ],
    3: [
        ((1, 3, 3, 4, 3), (3, 5, 2, 2, 3), False, {"stride": 2, "padding": (0, 1, 1)}),
        ((2, 4, 2, 3, 3), (4, 2, 3, 3, 2), True, {"groups": 2, "stride": (1, 2, 2), "output_padding": (0, 1, 0),
                                                  "activation": "gelu"}),
    ],
}


def _case_samples(cases, transposed):
    def samples(rng, dtype):
        out = []
        for xs, ws, has_b, kw in cases:
            x = randn(rng, xs, dtype)
            w = randn(rng, ws, dtype, scale=0.5)
            nb = ws[1] * kw.get("groups", 1) if transposed else ws[0]
            b = randn(rng, (nb,), dtype) if has_b else None
            out.append(Sample((x, w, b), dict(kw), f"{xs} w{ws}"))
        return out

    return samples


def _conv_errors(k):
    def errors():
        sp = (5,) * k
        x = np.ones((2, 4) + sp, np.float32)
        w = np.ones((6, 4) + (3,) * k, np.float32)
        return [
            ErrorCase((x, np.ones((6, 3) + (3,) * k, np.float32), None), {}, ValueError, "channel mismatch"),
            ErrorCase((x, np.ones((6, 2) + (3,) * k, np.float32), None), {"groups": 3}, ValueError, "groups"),
            ErrorCase((x, np.ones((5, 2) + (3,) * k, np.float32), None), {"groups": 2}, ValueError, "groups"),
            ErrorCase((x, w, None), {"stride": 0}, ValueError, "stride"),
            ErrorCase((x, w, None), {"dilation": 0}, ValueError, "dilation"),
            ErrorCase((x, w, None), {"padding": -1}, ValueError, "padding"),
            ErrorCase((x, w, None), {"padding": "full"}, ValueError, "padding"),
            ErrorCase((x, w, None), {"padding": "same", "stride": 2}, ValueError, "same"),
            ErrorCase((x, np.ones((6, 4) + (7,) * k, np.float32), None), {}, ValueError, "larger than the padded"),
            ErrorCase((x, np.ones((6, 4, 3), np.float32) if k != 1 else np.ones((6, 4), np.float32), None), {},
                      ValueError, "weight"),
            ErrorCase((np.ones((4,) + sp[:-1], np.float32) if k > 1 else np.ones((5,), np.float32), w, None), {},
                      ValueError, "input"),
            ErrorCase((x, w, np.ones(5, np.float32)), {}, ValueError, "bias"),
            ErrorCase((x, w.astype(np.float64), None), {}, TypeError, "mixed"),
            ErrorCase((x.astype(np.int32), w, None), {}, TypeError, "float32 or float64"),
            ErrorCase((x, w, None), {"padding_mode": "mirror"}, ValueError, "padding_mode"),
            ErrorCase((x, w, None), {"padding": 5, "padding_mode": "reflect"}, ValueError, "reflect"),
            ErrorCase((x, w, None), {"activation": "softmax"}, ValueError, "activation"),
            ErrorCase((x, w, None), {"stride": (1,) * (k + 1)}, TypeError, "stride"),
        ]

    return errors


def _ct_errors(k):
    def errors():
        sp = (4,) * k
        x = np.ones((2, 4) + sp, np.float32)
        w = np.ones((4, 3) + (3,) * k, np.float32)
        return [
            ErrorCase((x, np.ones((3, 3) + (3,) * k, np.float32), None), {}, ValueError, "channel mismatch"),
            ErrorCase((x, w, None), {"groups": 3}, ValueError, "groups"),
            ErrorCase((x, w, None), {"stride": 0}, ValueError, "stride"),
            ErrorCase((x, w, None), {"stride": 2, "output_padding": 2}, ValueError, "output_padding"),
            ErrorCase((x, w, None), {"output_padding": 1}, ValueError, "output_padding"),
            ErrorCase((x, w, None), {"padding": 6}, ValueError, "output size"),
            ErrorCase((x, w, None), {"padding": "same"}, ValueError, "padding"),
            ErrorCase((x, np.ones((4, 3), np.float32), None), {}, ValueError, "weight"),
            ErrorCase((x, w, np.ones(4, np.float32)), {}, ValueError, "bias"),
            ErrorCase((x.astype(np.int64), w, None), {}, TypeError, "float32 or float64"),
        ]

    return errors


def _linear_samples(rng, dtype):
    return [
        Sample((randn(rng, (3, 5), dtype), randn(rng, (4, 5), dtype), randn(rng, (4,), dtype)), {}, "2d"),
        Sample((randn(rng, (2, 3, 5), dtype), randn(rng, (6, 5), dtype), None), {"activation": "tanh"}, "3d"),
        Sample((randn(rng, (5,), dtype), randn(rng, (3, 5), dtype), randn(rng, (3,), dtype)),
               {"activation": "elu", "activation_param": 0.5}, "1d"),
        Sample((randn(rng, (7, 9), dtype), randn(rng, (8, 9), dtype), randn(rng, (8,), dtype)),
               {"activation": "gelu"}, "gelu"),
    ]


def _linear_paths(rng, dtype):
    """The GEMM engine's parallel build with the bias in its epilogue and a fused activation, and a
    3-D input (leading dims flattened into the rows)."""
    x, w, b = randn(rng, (70, 300), dtype), randn(rng, (130, 300), dtype, 0.05), randn(rng, (130,), dtype)
    x3 = randn(rng, (2, 33, 300), dtype)
    return [PathCase("gemm", Sample((x, w, b), {"activation": "gelu"}, "(70, 300) x (130, 300)^T gelu"),
                     expect={"path": "gemm", "backend": "parallel"}, explain={"weight_shape": w.shape}),
            PathCase("gemm", Sample((x3, w, None), {}, "(2, 33, 300) x (130, 300)^T, no bias"),
                     expect={"path": "gemm", "backend": "parallel"}, explain={"weight_shape": w.shape})]


def _linear_errors():
    x = np.ones((3, 5), np.float32)
    w = np.ones((4, 5), np.float32)
    return [
        ErrorCase((x, np.ones((4, 6), np.float32), None), {}, ValueError, "features"),
        ErrorCase((x, np.ones((4, 5, 1), np.float32), None), {}, ValueError, "weight"),
        ErrorCase((x, w, np.ones(3, np.float32)), {}, ValueError, "bias"),
        ErrorCase((x, w.astype(np.float64), None), {}, TypeError, "mixed"),
        ErrorCase((x, w, None), {"activation": "relu", "activation_param": 0.1}, ValueError, "activation_param"),
        ErrorCase((np.float32(1.0), w, None), {}, ValueError, "input"),
    ]


def _sep_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 3, 6, 7), dtype), randn(rng, (6, 1, 3, 3), dtype, 0.5), randn(rng, (5, 6, 1, 1), dtype, 0.5),
                randn(rng, (5,), dtype)), {"padding": "same", "activation": "tanh"}, "m2 same"),
        Sample((randn(rng, (4, 7, 5), dtype), randn(rng, (4, 1, 2, 3), dtype, 0.5), randn(rng, (3, 4, 1, 1), dtype, 0.5),
                None), {"stride": 2, "padding": 1, "dilation": (1, 2)}, "unbatched"),
    ]


def _sep_errors():
    x = np.ones((2, 3, 6, 6), np.float32)
    dw = np.ones((6, 1, 3, 3), np.float32)
    pw = np.ones((4, 6, 1, 1), np.float32)
    return [
        ErrorCase((x, np.ones((5, 1, 3, 3), np.float32), pw, None), {}, ValueError, "depthwise_weight"),
        ErrorCase((x, dw, np.ones((4, 5, 1, 1), np.float32), None), {}, ValueError, "pointwise_weight"),
        ErrorCase((x, dw, pw, None), {"stride": 0}, ValueError, "stride"),
        ErrorCase((x, dw, pw, np.ones(3, np.float32)), {}, ValueError, "bias"),
        ErrorCase((x[0, 0], dw, pw, None), {}, ValueError, "x"),
    ]


# --- benchmarks (the list; flagship case per op in `bench`, the full list in
# asv_benches/bench_conv.py) ----------------------------------------------------------------------


def _bench(small, large):
    def bench(rng, dtype, size):
        xs, ws, bs, kw = small if size == "small" else large
        return Sample((randn(rng, xs, dtype), randn(rng, ws, dtype, 0.1), randn(rng, bs, dtype) if bs else None), kw)

    return bench


_BENCH = {
    "conv1d": ((2, 8, 32), (8, 8, 5), (8,), {"padding": 2}, (16, 128, 1024), (128, 128, 5), (128,), {"padding": 2}),
    "conv2d": ((1, 8, 16, 16), (8, 8, 3, 3), (8,), {"padding": 1},
               (8, 64, 56, 56), (64, 64, 3, 3), (64,), {"padding": 1}),
    "conv3d": ((1, 4, 6, 8, 8), (4, 4, 3, 3, 3), (4,), {"padding": 1},
               (2, 32, 16, 32, 32), (32, 32, 3, 3, 3), (32,), {"padding": 1}),
    "conv_transpose1d": ((2, 8, 16), (8, 4, 4), (4,), {"stride": 2, "padding": 1},
                         (16, 128, 512), (128, 64, 4), (64,), {"stride": 2, "padding": 1}),
    "conv_transpose2d": ((1, 8, 8, 8), (8, 4, 4, 4), (4,), {"stride": 2, "padding": 1},
                         (8, 64, 28, 28), (64, 32, 4, 4), (32,), {"stride": 2, "padding": 1}),
    "conv_transpose3d": ((1, 4, 4, 4, 4), (4, 4, 2, 2, 2), (4,), {"stride": 2},
                         (2, 32, 8, 16, 16), (32, 16, 2, 2, 2), (16,), {"stride": 2}),
}


def _b(name):
    s = _BENCH[name]
    return _bench(s[:4], s[4:])


def _linear_bench(rng, dtype, size):
    m, k, n = (8, 32, 32) if size == "small" else (256, 1024, 1024)
    return Sample((randn(rng, (m, k), dtype), randn(rng, (n, k), dtype, 0.03), randn(rng, (n,), dtype)), {})


def _sep_bench(rng, dtype, size):
    N, C, H, O = (1, 8, 16, 8) if size == "small" else (8, 128, 56, 128)
    return Sample((randn(rng, (N, C, H, H), dtype), randn(rng, (C, 1, 3, 3), dtype, 0.3),
                   randn(rng, (O, C, 1, 1), dtype, 0.1), randn(rng, (O,), dtype)), {"padding": 1})


_TOL = {np.float32: (2e-4, 2e-5), np.float64: (1e-10, 1e-12)}

# Dispatch paths (tests/test_paths.py): (path, input shape, weight shape, has bias, kwargs), each
# large enough for the parallel kernels at 2 threads, optionally with more ``explain`` keys to
# check. ``direct_blocked`` is float32 only (float64 shapes of that kind run im2col_gemm, listed on
# its own); with >= 32 input channels it also runs the data gradient (and the conv_transpose
# forward), one forward convolution per stride phase.
_DATA_BLOCKED = {"backward_data_path": "direct_blocked"}
_PATHS = {
    "conv1d": [
        ("direct", (2, 16, 200), (8, 4, 5), True, {"groups": 4, "padding": "same", "padding_mode": "reflect"}),
        ("depthwise", (2, 32, 400), (32, 1, 5), True, {"groups": 32, "padding": 2, "stride": 2}),
        ("direct_blocked", (2, 16, 200), (32, 16, 5), True, {"padding": 2, "activation": "gelu"}),
        ("direct_blocked", (2, 32, 150), (32, 32, 5), False, {"padding": 1, "dilation": 2}, _DATA_BLOCKED),
    ],
    "conv2d": [
        ("im2col_gemm", (2, 8, 12, 11), (16, 8, 3, 3), True, {"padding": 1, "activation": "relu"}),
        ("direct", (2, 16, 21, 19), (32, 1, 3, 3), True, {"groups": 16, "stride": 2, "padding": 1}),
        ("depthwise", (2, 32, 21, 19), (32, 1, 3, 3), True, {"groups": 32, "stride": 2, "padding": 1,
                                                             "activation": "relu6"}),
        ("depthwise", (2, 16, 14, 15), (16, 1, 3, 3), False, {"groups": 16, "padding": 2, "dilation": 2}),
        ("gemm_1x1", (2, 16, 9, 10), (16, 16, 1, 1), False, {}),
        ("gemm_1x1", (2, 16, 12, 12), (24, 16, 1, 1), True, {"activation": "relu"}),  # one GEMM per image
        ("direct_blocked", (2, 8, 12, 11), (32, 8, 3, 3), True, {"padding": 1, "dilation": (1, 2)}),
        ("direct_blocked", (2, 40, 6, 18), (33, 40, 3, 3), True, {"padding": 1, "activation": "relu"}, _DATA_BLOCKED),
        ("direct_blocked", (2, 32, 6, 19), (32, 32, 3, 2), False, {"padding": (2, 0), "padding_mode": "reflect"},
         _DATA_BLOCKED),
        # 648 taps (two tap chunks), 323 pixels (a partial unit, single pixels, two weight-gradient blocks)
        ("direct_blocked", (1, 72, 19, 17), (40, 72, 3, 3), True, {"padding": 1}, _DATA_BLOCKED),
        ("direct_blocked", (4, 48, 7, 7), (64, 48, 3, 3), False, {"padding": 1}, _DATA_BLOCKED),  # a 7x7 map
        # strided: the data gradient one forward convolution per stride phase
        ("direct_blocked", (2, 32, 13, 11), (40, 32, 3, 3), True, {"stride": 2, "padding": 1}, _DATA_BLOCKED),
        ("direct_blocked", (2, 36, 15, 14), (70, 36, 1, 1), False, {"stride": 2},  # 1x1 stride 2
         {"backward_data_path": "im2col_gemm", "backward_weight_path": "direct_blocked"}),
    ],
    "conv3d": [
        ("im2col_gemm", (1, 8, 6, 8, 8), (8, 8, 3, 3, 3), True, {"padding": 1, "stride": (1, 2, 1)}),
        ("direct", (1, 8, 6, 8, 8), (8, 1, 3, 3, 3), False, {"padding": 1, "groups": 8}),
        ("direct_blocked", (1, 4, 6, 8, 8), (32, 4, 3, 3, 3), True, {"padding": 1}),
        ("direct_blocked", (1, 32, 3, 4, 17), (32, 32, 3, 3, 3), False, {"padding": 1}, _DATA_BLOCKED),
    ],
    "conv_transpose1d": [
        ("im2col_gemm", (2, 16, 100), (16, 8, 4), True, {"stride": 2, "padding": 1}),
    ],
    "conv_transpose2d": [
        ("im2col_gemm", (2, 16, 7, 8), (16, 4, 4, 4), True, {"stride": 2, "padding": 1, "groups": 2}),
        ("direct_blocked", (2, 32, 5, 17), (32, 36, 3, 3), True, {"padding": 1}),
        ("direct_blocked", (2, 32, 7, 8), (32, 36, 4, 4), True, {"stride": 2, "padding": 1}),
        ("depthwise", (2, 32, 14, 15), (32, 1, 3, 3), True, {"groups": 32, "stride": 2, "padding": 1}),
    ],
    "conv_transpose3d": [
        ("direct", (1, 8, 5, 6, 7), (8, 1, 3, 3, 3), False, {"groups": 8, "stride": 2}),
    ],
}


def _paths(name, transposed):
    def paths(rng, dtype):
        out = []
        for path, xs, ws, has_b, kw, *more in _PATHS[name]:
            if path == "direct_blocked" and dtype != np.float32:
                continue
            s = _case_samples([(xs, ws, has_b, kw)], transposed)(rng, dtype)[0]
            expect = {"path": path, "backend": "parallel", **(more[0] if more else {})}
            label = path + (" + " + ", ".join(sorted(more[0])) if more else "")
            out.append(PathCase(label, s, expect=expect, explain=dict(weight_shape=ws, **kw)))
        return out

    return paths


def _conv_info(k):
    return OpInfo(
        name=f"conv{k}d",
        samples=_case_samples(_CONV_CASES[k], False),
        ref=_conv_ref(k),
        torch_ref=_conv_torch(k),
        grad_args=(0, 1, 2),
        errors=_conv_errors(k),
        tol=_TOL,
        bench=_b(f"conv{k}d"),
        paths=_paths(f"conv{k}d", False),
    )


def _ct_info(k):
    return OpInfo(
        name=f"conv_transpose{k}d",
        samples=_case_samples(_CT_CASES[k], True),
        ref=_conv_transpose_ref(k),
        torch_ref=_conv_transpose_torch(k),
        grad_args=(0, 1, 2),
        errors=_ct_errors(k),
        tol=_TOL,
        bench=_b(f"conv_transpose{k}d"),
        paths=_paths(f"conv_transpose{k}d", True),
    )


TABLE = [
    OpInfo(name="linear", samples=_linear_samples, ref=_linear_ref, torch_ref=_linear_torch, grad_args=(0, 1, 2),
           errors=_linear_errors, tol=_TOL, bench=_linear_bench, paths=_linear_paths),
    _conv_info(1),
    _conv_info(2),
    _conv_info(3),
    _ct_info(1),
    _ct_info(2),
    _ct_info(3),
    OpInfo(name="separable_conv2d", samples=_sep_samples, ref=_separable_ref, torch_ref=_separable_torch,
           grad_args=(0, 1, 2, 3), errors=_sep_errors, tol=_TOL, bench=_sep_bench),
]


# === deform_conv2d and correlation (conv/deform.py, conv/correlation.py) ===
# References are independent NumPy implementations written from torchvision's
# ``deform_conv2d_kernel.cpp`` (bilinear_interpolate rule) and the FlowNet Caffe correlation layer.
# torchvision itself does not load against the local torch, so the torch cross-check of
# deform_conv2d is a composition of ``F.grid_sample(align_corners=True, padding_mode="zeros")``
# (the same zero-outside bilinear rule) and a matmul; correlation's is the formula in torch ops.

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# --- deform_conv2d ------------------------------------------------------------------------------


def deform_conv2d_ref(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    x = input
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    G, K = C // Cg, kh * kw
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    OG = offset.shape[1] // (2 * K)
    Ho, Wo = offset.shape[2:]
    Cog = C // OG
    off = offset.reshape(N, OG, K, 2, Ho, Wo)
    cols = np.zeros((N, C, K, Ho, Wo), x.dtype)
    by = (np.arange(Ho) * sh - ph)[:, None]
    bx = (np.arange(Wo) * sw - pw)[None, :]
    n_idx = np.arange(N)[:, None, None]
    for g in range(OG):
        xs = x[:, g * Cog:(g + 1) * Cog]  # (N, Cog, H, W)
        for k in range(K):
            i, j = divmod(k, kw)
            y = by + i * dh + off[:, g, k, 0]  # (N, Ho, Wo)
            xx = bx + j * dw + off[:, g, k, 1]
            inside = ~((y <= -1) | (y >= H) | (xx <= -1) | (xx >= W))
            y0, x0 = np.floor(y), np.floor(xx)
            ly, lx = y - y0, xx - x0
            val = np.zeros((N, Cog, Ho, Wo), x.dtype)
            for cy, cx, wt in ((0, 0, (1 - ly) * (1 - lx)), (0, 1, (1 - ly) * lx), (1, 0, ly * (1 - lx)), (1, 1, ly * lx)):
                yy, xc = y0 + cy, x0 + cx
                ok = inside & (yy >= 0) & (yy <= H - 1) & (xc >= 0) & (xc <= W - 1)
                yi = np.clip(yy, 0, H - 1).astype(np.int64)
                xi = np.clip(xc, 0, W - 1).astype(np.int64)
                v = xs[n_idx, :, yi, xi]  # (N, Ho, Wo, Cog)
                v = np.moveaxis(v, -1, 1)
                val += np.where(ok, wt, 0)[:, None] * v
            if mask is not None:
                val = val * mask[:, g * K + k][:, None]
            cols[:, g * Cog:(g + 1) * Cog, k] = val
    out = np.matmul(weight.reshape(G, O // G, Cg * K), cols.reshape(N, G, Cg * K, Ho * Wo))
    out = out.reshape(N, O, Ho, Wo)
    if bias is not None:
        out = out + bias.reshape(1, O, 1, 1)
    return out


def deform_conv2d_torch(t, input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    F = t.nn.functional
    if mask is not None and not isinstance(mask, t.Tensor):
        mask = t.from_numpy(mask)  # a keyword argument reaches here as an ndarray
    N, C, H, W = input.shape
    O, Cg, kh, kw = weight.shape
    G, K = C // Cg, kh * kw
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    OG = offset.shape[1] // (2 * K)
    Ho, Wo = offset.shape[2:]
    Cog = C // OG
    off = offset.reshape(N, OG, K, 2, Ho, Wo)
    by = (t.arange(Ho, dtype=input.dtype) * sh - ph).view(1, Ho, 1)
    bx = (t.arange(Wo, dtype=input.dtype) * sw - pw).view(1, 1, Wo)
    groups = []
    for g in range(OG):
        xs = input[:, g * Cog:(g + 1) * Cog]
        ks = []
        for k in range(K):
            i, j = divmod(k, kw)
            y = by + i * dh + off[:, g, k, 0]
            xx = bx + j * dw + off[:, g, k, 1]
            grid = t.stack((2 * xx / (W - 1) - 1, 2 * y / (H - 1) - 1), dim=-1)
            s = F.grid_sample(xs, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            if mask is not None:
                s = s * mask[:, g * K + k].unsqueeze(1)
            ks.append(s)
        groups.append(t.stack(ks, dim=2))  # (N, Cog, K, Ho, Wo)
    cols = t.cat(groups, dim=1).reshape(N, G, Cg * K, Ho * Wo)
    out = t.matmul(weight.reshape(G, O // G, Cg * K), cols).reshape(N, O, Ho, Wo)
    if bias is not None:
        out = out + bias.view(1, O, 1, 1)
    return out


def _offsets(rng, shape, dtype, scale=1.5):
    """Offsets whose fractional part stays in [0.15, 0.85]: sample positions never come near an
    integer (the bilinear kinks, the -1 / H borders), so finite differences are smooth."""
    whole = np.round(rng.standard_normal(shape) * scale)
    frac = rng.uniform(0.15, 0.85, shape)
    return (whole + frac).astype(dtype)


def _deform_case(rng, dtype, N, C, H, W, O, kh, kw, G=1, OG=1, stride=1, padding=0, dilation=1, use_mask=False,
                 use_bias=True, desc=""):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x = randn(rng, (N, C, H, W), dtype)
    off = _offsets(rng, (N, 2 * OG * kh * kw, Ho, Wo), dtype)
    w = randn(rng, (O, C // G, kh, kw), dtype, 0.3)
    b = randn(rng, (O,), dtype) if use_bias else None
    m = rng.uniform(0.2, 1.0, (N, OG * kh * kw, Ho, Wo)).astype(dtype) if use_mask else None
    return Sample((x, off, w, b), {"stride": stride, "padding": padding, "dilation": dilation, "mask": m}, desc)


def _deform_samples(rng, dtype):
    # mask is a keyword here (it follows the hyper-parameters in the signature); its gradient is
    # checked in tests/conv/test_deform_correlation.py
    return [
        _deform_case(rng, dtype, 2, 3, 5, 6, 4, 3, 3, padding=1, desc="3x3 pad1"),
        _deform_case(rng, dtype, 1, 4, 7, 5, 6, 2, 3, G=2, OG=2, stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                     use_mask=True, desc="groups, offset groups, mask, odd"),
        _deform_case(rng, dtype, 2, 4, 6, 6, 2, 3, 3, OG=4, stride=2, padding=2, dilation=2, use_bias=False,
                     use_mask=True, desc="dilation, stride, no bias"),
        _deform_case(rng, dtype, 1, 2, 3, 4, 3, 1, 1, desc="1x1"),
        _deform_case(rng, dtype, 2, 8, 9, 11, 8, 3, 3, G=2, OG=2, padding=1, use_mask=True, desc="parallel"),
    ]


def _deform_errors():
    f = np.float32
    x = np.ones((1, 4, 5, 5), f)
    w = np.ones((2, 4, 3, 3), f)
    off = np.zeros((1, 18, 3, 3), f)
    return [
        ErrorCase((x, np.zeros((1, 17, 3, 3), f), w, None), {}, ValueError, "offset channels"),
        ErrorCase((x, np.zeros((1, 18, 4, 3), f), w, None), {}, ValueError, "offset shape"),
        ErrorCase((x, off, w, None), {"mask": np.ones((1, 8, 3, 3), f)}, ValueError, "mask shape"),
        ErrorCase((x, off, np.ones((2, 3, 3, 3), f), None), {}, ValueError, "multiple of weight"),
        ErrorCase((x, off, np.ones((3, 2, 3, 3), f), None), {}, ValueError, "groups"),
        ErrorCase((x, np.zeros((1, 54, 3, 3), f), w, None), {}, ValueError, "offset_groups=3"),
        ErrorCase((x, off, w, None), {"stride": 0}, ValueError, "stride"),
        ErrorCase((x, off, w, None), {"dilation": (1, 0)}, ValueError, "dilation"),
        ErrorCase((x, off, w, None), {"padding": -1}, ValueError, "padding"),
        ErrorCase((x, off, np.ones((2, 4, 7, 7), f), None), {}, ValueError, "larger than the padded"),
        ErrorCase((x, off, np.ones((2, 4, 3), f), None), {}, ValueError, "weight"),
        ErrorCase((x, off, w, np.ones(3, f)), {}, ValueError, "bias"),
        ErrorCase((x, off.astype(np.float64), w, None), {}, TypeError, "mixed"),
        ErrorCase((x.astype(np.int32), off, w, None), {}, TypeError, "float32 or float64"),
        ErrorCase((x, off, w, None), {"stride": 1.5}, TypeError, "stride"),
    ]


def _deform_bench(rng, dtype, size):
    if size == "small":
        return _deform_case(rng, dtype, 1, 4, 8, 8, 4, 3, 3, padding=1, use_mask=True)
    return _deform_case(rng, dtype, 8, 64, 56, 56, 64, 3, 3, padding=1, use_mask=True)


# --- correlation --------------------------------------------------------------------------------


def _corr_geometry(shape, kernel_size, max_displacement, stride1, stride2, pad_size):
    N, C, H, W = shape
    kr = (kernel_size - 1) // 2
    border = max_displacement + kr
    Hp, Wp = H + 2 * pad_size, W + 2 * pad_size
    Ho = -(-(Hp - 2 * border) // stride1)
    Wo = -(-(Wp - 2 * border) // stride1)
    r = max_displacement // stride2
    return Ho, Wo, r


def correlation_ref(x1, x2, kernel_size=1, max_displacement=4, stride1=1, stride2=1, pad_size=4):
    N, C, H, W = x1.shape
    p = pad_size
    x1p = np.pad(x1, ((0, 0), (0, 0), (p, p), (p, p)))
    x2p = np.pad(x2, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo, r = _corr_geometry(x1.shape, kernel_size, max_displacement, stride1, stride2, pad_size)
    D = 2 * r + 1
    ys = np.arange(Ho) * stride1 + max_displacement
    xs = np.arange(Wo) * stride1 + max_displacement
    out = np.empty((N, D * D, Ho, Wo), x1.dtype)
    for tj in range(-r, r + 1):
        for ti in range(-r, r + 1):
            dy, dx = tj * stride2, ti * stride2
            acc = np.zeros((N, Ho, Wo), x1.dtype)
            for j in range(kernel_size):
                for i in range(kernel_size):
                    a = x1p[:, :, ys + j][:, :, :, xs + i]
                    b = x2p[:, :, ys + j + dy][:, :, :, xs + i + dx]
                    acc += (a * b).sum(axis=1)
            out[:, (tj + r) * D + (ti + r)] = acc / (kernel_size * kernel_size * C)
    return out


def correlation_torch(t, x1, x2, kernel_size=1, max_displacement=4, stride1=1, stride2=1, pad_size=4):
    F = t.nn.functional
    N, C, H, W = x1.shape
    p = pad_size
    x1p = F.pad(x1, (p, p, p, p))
    x2p = F.pad(x2, (p, p, p, p))
    Ho, Wo, r = _corr_geometry(tuple(x1.shape), kernel_size, max_displacement, stride1, stride2, pad_size)
    outs = []
    for tj in range(-r, r + 1):
        for ti in range(-r, r + 1):
            dy, dx = tj * stride2, ti * stride2
            acc = 0
            for j in range(kernel_size):
                for i in range(kernel_size):
                    y0, x0 = max_displacement + j, max_displacement + i
                    a = x1p[:, :, y0:y0 + (Ho - 1) * stride1 + 1:stride1, x0:x0 + (Wo - 1) * stride1 + 1:stride1]
                    b = x2p[:, :, y0 + dy:y0 + dy + (Ho - 1) * stride1 + 1:stride1,
                            x0 + dx:x0 + dx + (Wo - 1) * stride1 + 1:stride1]
                    acc = acc + (a * b).sum(dim=1)
            outs.append(acc / (kernel_size * kernel_size * C))
    return t.stack(outs, dim=1)


def _corr_samples(rng, dtype):
    def s(shape, desc, **kw):
        return Sample((randn(rng, shape, dtype), randn(rng, shape, dtype)), kw, desc)

    return [
        s((2, 3, 6, 7), "defaults"),
        s((1, 4, 9, 8), "kernel 3, stride2 2", kernel_size=3, max_displacement=4, stride2=2, pad_size=3),
        s((2, 2, 11, 9), "stride1 2, odd", kernel_size=1, max_displacement=3, stride1=2, stride2=1, pad_size=2),
        s((1, 3, 8, 10), "stride1 3, stride2 3, md not multiple", kernel_size=3, max_displacement=4, stride1=3,
          stride2=3, pad_size=5),
        s((1, 2, 5, 5), "md 0, no pad", kernel_size=1, max_displacement=0, pad_size=0),
        s((2, 16, 12, 13), "parallel", kernel_size=1, max_displacement=2, pad_size=2),
    ]


def _corr_errors():
    f = np.float32
    x = np.ones((1, 2, 5, 5), f)
    return [
        ErrorCase((x, np.ones((1, 2, 5, 6), f)), {}, ValueError, "same shape"),
        ErrorCase((x[0], x[0]), {}, ValueError, "4-D"),
        ErrorCase((x, x), {"stride1": 0}, ValueError, "stride1"),
        ErrorCase((x, x), {"stride2": 0}, ValueError, "stride2"),
        ErrorCase((x, x), {"kernel_size": 2}, ValueError, "odd"),
        ErrorCase((x, x), {"pad_size": -1}, ValueError, "pad_size"),
        ErrorCase((x, x), {"max_displacement": 4, "pad_size": 1}, ValueError, "padded input"),
        ErrorCase((x, x.astype(np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x, x), {"kernel_size": 1.0}, TypeError, "kernel_size"),
    ]


def _corr_bench(rng, dtype, size):
    shape = (1, 4, 8, 8) if size == "small" else (4, 256, 48, 64)
    return Sample((randn(rng, shape, dtype), randn(rng, shape, dtype)),
                  {"kernel_size": 1, "max_displacement": 4, "stride1": 1, "stride2": 1, "pad_size": 4})


def _deform_paths(rng, dtype):
    s = _deform_case(rng, dtype, N=2, C=16, H=20, W=21, O=8, kh=3, kw=3, G=2, OG=2, padding=1, use_mask=True,
                     desc="groups 2, offset groups 2, mask")
    return [PathCase("im2col", s, expect={"backend": "parallel"},
                     explain=dict(weight_shape=s.args[2].shape, offset_groups=2, padding=1))]


def _corr_paths(rng, dtype):
    out = []
    for shape, kw in (((2, 16, 20, 24), dict(kernel_size=1, max_displacement=3, pad_size=3)),
                      ((2, 9, 17, 19), dict(kernel_size=3, max_displacement=2, stride1=2, stride2=1, pad_size=3))):
        s = Sample((randn(rng, shape, dtype), randn(rng, shape, dtype)), kw, f"{shape} {kw}")
        out.append(PathCase("direct", s, expect={"backend": "parallel"}, explain=kw))
    return out


_CONV_EXTRA_TABLE = [
    OpInfo(
        name="deform_conv2d",
        samples=_deform_samples,
        ref=deform_conv2d_ref,
        torch_ref=deform_conv2d_torch,
        grad_args=(0, 1, 2, 3),
        grad_kwargs=("mask",),
        errors=_deform_errors,
        tol={np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)},
        bench=_deform_bench,
        paths=_deform_paths,
        nondiff_kinks=True,
    ),
    OpInfo(
        name="correlation",
        samples=_corr_samples,
        ref=correlation_ref,
        torch_ref=correlation_torch,
        grad_args=(0, 1),
        errors=_corr_errors,
        tol={np.float32: (1e-4, 1e-6), np.float64: (1e-10, 1e-12)},
        bench=_corr_bench,
        paths=_corr_paths,
    ),
]

TABLE = _CONV_EXTRA_TABLE + TABLE
