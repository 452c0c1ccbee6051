"""Op table: pooling (docs/ops.md, "Pooling")."""
import itertools
import math

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, randn

# Dispatch paths (tests/test_paths.py): per op, (path, input shape, kwargs), each large enough for
# the parallel kernels at 2 threads; the path is the forward kernel that explain names (less its
# dtype and backend suffix). The max-type ops get tie-free inputs (distinct values 4 / size apart),
# so that the finite-difference VJP never crosses a kink of a max; the RoI ops take 64 boxes on a
# 3-image batch (roi_align's 48 channels: two of its 32-channel blocks per box).
_PATHS = {
    "global_avg_pool2d": [("avg_pool_global_fwd", (4, 32, 23, 29), {})],
    "adaptive_avg_pool2d": [("avg_pool_adaptive_fwd", (8, 32, 23, 21), {"output_size": (5, 3)})],
    "adaptive_avg_pool3d": [("avg_pool_adaptive_fwd", (4, 16, 9, 11, 13), {"output_size": (3, 4, 5)})],
    "max_pool2d": [("pool_max_val", (4, 32, 24, 24), {"kernel_size": 3, "stride": 2, "padding": 1})],
    "max_pool3d": [("pool_max_val", (2, 16, 12, 16, 16), {"kernel_size": 2, "ceil_mode": True, "padding": 1})],
    "avg_pool2d": [("pool_avg_fwd", (4, 32, 24, 24),
                    {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False})],
    # 300 / 30: uniform bins, run by max_pool's window kernel
    "adaptive_max_pool1d": [("pool_max_val", (8, 32, 300), {"output_size": 30})],
    "adaptive_max_pool2d": [("adaptive_max_fwd", (4, 32, 24, 24), {"output_size": (5, 7)})],
    # the input of a max_pool2d(kernel_size=2) of (4, 32, 24, 24)
    "max_unpool2d": [("pool_unpool_fwd", (4, 32, 12, 12), {"kernel_size": 2})],
    "roi_pool": [("roi_pool_fwd", (3, 48, 17, 19), {"output_size": 4, "spatial_scale": 1.0})],
    "roi_align": [("roi_align_fwd", (3, 48, 17, 19), {"output_size": 4, "spatial_scale": 1.0})],
    "ps_roi_pool": [("roi_ps_pool_fwd", (3, 16 * 4 * 4, 17, 19), {"output_size": 4, "spatial_scale": 1.0})],
    "ps_roi_align": [("roi_ps_align_fwd", (3, 16 * 4 * 4, 17, 19), {"output_size": 4, "spatial_scale": 1.0})],
}

_TIE_FREE = ("max_pool", "adaptive_max_pool", "roi_pool")
_ROI_BOXES = 64


def _paths(name):
    def paths(rng, dtype):
        sfx = "f32" if np.dtype(dtype) == np.float32 else "f64"
        out = []
        for path, shape, kw in _PATHS[name]:
            explain = dict(kw)
            expect = {"kernel": f"{path}_{sfx}_parallel", "backend": "parallel"}
            x = (_tie_free if name.startswith(_TIE_FREE) else randn)(rng, shape, dtype)
            if name.startswith("max_unpool"):
                k = int(name[-2])
                ks, st, pd, osz = _unpool_out(k, shape[-k:], kw)
                args = (x, _unpool_indices(rng, shape[:-k], shape[-k:], ks, st, pd, osz))
            elif "roi" in name:
                args = (x, _rand_boxes(rng, _ROI_BOXES, shape[0], -2.0, 18.0, dtype))
                explain["num_boxes"] = _ROI_BOXES
                expect["backward_backend"] = "parallel"
            else:
                args = (x,)
            out.append(PathCase(path, Sample(args, dict(kw), str(shape)), expect=expect, explain=explain))
        return out

    return paths


def _global_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 3, 5, 7), dtype),), {}, "odd"),
        Sample((randn(rng, (1, 4, 1, 1), dtype),), {}, "1x1"),
        Sample((randn(rng, (1, 3, 37, 41), dtype),), {}, "long rows"),
        Sample((randn(rng, (4, 32, 23, 29), dtype),), {}, "parallel"),
    ]


def _global_errors():
    return [
        ErrorCase((np.ones((2, 3, 4), np.float32),), {}, ValueError, "4-D"),
        ErrorCase((np.ones((2, 3, 4, 4), np.int64),), {}, TypeError, "float32 or float64"),
        ErrorCase(([[1.0]],), {}, TypeError, "numpy.ndarray"),
    ]


def _norm_out(output_size, k, spatial):
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size,) * k
    return tuple(L if o is None else o for o, L in zip(output_size, spatial))


def _adaptive_ref(k):
    def ref(x, output_size):
        spatial = x.shape[-k:]
        osz = _norm_out(output_size, k, spatial)
        out = np.empty(x.shape[:-k] + osz, x.dtype)
        for idx in itertools.product(*(range(o) for o in osz)):
            sl = []
            for i, L, O in zip(idx, spatial, osz):
                sl.append(slice((i * L) // O, -(-((i + 1) * L) // O)))
            out[(Ellipsis,) + idx] = x[(Ellipsis,) + tuple(sl)].mean(axis=tuple(range(-k, 0)))
        return out

    return ref


def _adaptive_samples(k):
    cases = {
        1: [((2, 3, 7), 3), ((3, 10), 4), ((1, 2, 5), 5), ((1, 2, 5), 8), ((2, 3, 9), (2,)),
            ((8, 64, 300), 7)],
        2: [((2, 3, 7, 9), (3, 4)), ((3, 10, 5), 4), ((1, 2, 5, 6), 1), ((1, 2, 5, 7), (None, 3)),
            ((1, 2, 4, 4), (6, 5)), ((1, 2, 6, 6), 2), ((8, 32, 23, 21), (5, 3))],
        3: [((2, 3, 5, 6, 7), (2, 3, 4)), ((2, 4, 5, 6), 2), ((1, 2, 3, 4, 5), (None, 2, None)),
            ((1, 2, 3, 3, 3), 1), ((4, 16, 9, 11, 13), (3, 4, 5))],
    }[k]

    def samples(rng, dtype):
        return [Sample((randn(rng, shape, dtype),), {"output_size": o}, str(shape)) for shape, o in cases]

    return samples


def _adaptive_errors(k):
    def errors():
        x = np.ones((2, 3) + (4,) * k, np.float32)
        return [
            ErrorCase((np.ones((4,) * k, np.float32),), {"output_size": 2}, ValueError, "input"),
            ErrorCase((np.ones((1,) * (k + 3), np.float32),), {"output_size": 2}, ValueError, "input"),
            ErrorCase((x,), {"output_size": 0}, ValueError, "output_size"),
            ErrorCase((x,), {"output_size": (2,) * (k + 1)}, TypeError, "output_size"),
            ErrorCase((x,), {"output_size": 1.5}, TypeError, "output_size"),
            ErrorCase((x.astype(np.int32),), {"output_size": 2}, TypeError, "float32 or float64"),
        ]

    return errors


def _adaptive_bench(k):
    shapes = {"small": (1, 4) + (8,) * k, "large": {1: (8, 64, 3136), 2: (8, 64, 56, 56), 3: (8, 16, 16, 28, 28)}[k]}

    def bench(rng, dtype, size):
        return Sample((randn(rng, shapes[size], dtype),), {"output_size": 1})

    return bench


def _adaptive(k):
    name = f"adaptive_avg_pool{k}d"
    return OpInfo(
        name=name,
        samples=_adaptive_samples(k),
        ref=_adaptive_ref(k),
        torch_ref=lambda t, x, output_size: getattr(t.nn.functional, name)(x, output_size),
        errors=_adaptive_errors(k),
        bench=_adaptive_bench(k),
        paths=_paths(name) if name in _PATHS else None,
    )


TABLE = [
    OpInfo(
        name="global_avg_pool2d",
        samples=_global_samples,
        ref=lambda x: x.mean(axis=(2, 3)),
        torch_ref=lambda t, x: x.mean(dim=(2, 3)),
        errors=_global_errors,
        bench=lambda rng, dtype, size: Sample((randn(rng, {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}[size], dtype),)),
        paths=_paths("global_avg_pool2d"),
    ),
    _adaptive(1),
    _adaptive(2),
    _adaptive(3),
]


# --- max/avg pooling, unpooling, adaptive max pooling (independent NumPy references) -------------


def _tup(v, k):
    if isinstance(v, int):
        return (v,) * k
    v = tuple(v)
    return v * k if len(v) == 1 else v


def _pool_geometry(x, k, kernel_size, stride, padding, dilation, ceil_mode):
    ks = _tup(kernel_size, k)
    st = ks if stride is None else _tup(stride, k)
    pd, dl = _tup(padding, k), _tup(dilation, k)
    osz = []
    for L, kk, s, p, d in zip(x.shape[-k:], ks, st, pd, dl):
        o = -(-(L + 2 * p - d * (kk - 1) - 1) // s) + 1 if ceil_mode else (L + 2 * p - d * (kk - 1) - 1) // s + 1
        if ceil_mode and (o - 1) * s >= L + p:
            o -= 1
        osz.append(o)
    return ks, st, pd, dl, tuple(osz)


def _pool_windows(x, k, ks, st, pd, dl, osz, fill):
    """Array of shape lead + out + kernel: every window (dilated, strided) of the padded input."""
    from numpy.lib.stride_tricks import sliding_window_view

    pads = [(0, 0)] * (x.ndim - k)
    for L, kk, s, p, d, o in zip(x.shape[-k:], ks, st, pd, dl, osz):
        need = (o - 1) * s + (kk - 1) * d + 1
        pads.append((p, max(0, need - p - L)))
    xp = np.pad(x, pads, constant_values=fill)
    spans = [(kk - 1) * d + 1 for kk, d in zip(ks, dl)]
    v = sliding_window_view(xp, spans, axis=tuple(range(x.ndim - k, x.ndim)))
    lead = (slice(None),) * (x.ndim - k)
    out_sl = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(osz, st))
    win_sl = tuple(slice(None, None, d) for d in dl)
    return v[lead + out_sl + win_sl]


def _max_pool_ref(k):
    def ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        ks, st, pd, dl, osz = _pool_geometry(x, k, kernel_size, stride, padding, dilation, ceil_mode)
        v = _pool_windows(x, k, ks, st, pd, dl, osz, -np.inf)
        return v.max(axis=tuple(range(-k, 0)))

    return ref


def _avg_pool_ref(k):
    def ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
        ks, st, pd, dl, osz = _pool_geometry(x, k, kernel_size, stride, padding, 1, ceil_mode)
        s = _pool_windows(x, k, ks, st, pd, dl, osz, 0).sum(axis=tuple(range(-k, 0)))
        pool, cnt = np.ones(osz), np.ones(osz)
        for i, (L, kk, st_, p, o) in enumerate(zip(x.shape[-k:], ks, st, pd, osz)):
            start = np.arange(o) * st_ - p
            end = np.minimum(start + kk, L + p)
            n = np.minimum(end, L) - np.maximum(start, 0)
            shape = [1] * k
            shape[i] = o
            pool = pool * (end - start).reshape(shape)
            cnt = cnt * np.maximum(n, 0).reshape(shape)
        div = float(divisor_override) if divisor_override else (pool if count_include_pad else np.maximum(cnt, 1))
        return np.where(cnt > 0, s / div, 0).astype(x.dtype)

    return ref


def _pool_samples(cases):
    def samples(rng, dtype):
        return [Sample((randn(rng, shape, dtype),), dict(kw), str(shape)) for shape, kw in cases]

    return samples


_MAX_CASES = {
    1: [((2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
        ((3, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((1, 2, 11), dict(kernel_size=3, stride=1, padding=1, dilation=3)),
        ((2, 2, 7), dict(kernel_size=2))],
    2: [((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
        ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True)),
        ((3, 9, 8), dict(kernel_size=3, stride=2, dilation=2, ceil_mode=True)),
        ((1, 1, 5, 5), dict(kernel_size=2)),
        ((2, 2, 10, 11), dict(kernel_size=(3, 2), stride=(3, 2), padding=(1, 1), dilation=(1, 2), ceil_mode=True)),
        ((4, 32, 24, 24), dict(kernel_size=3, stride=2, padding=1))],
    3: [((2, 2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((2, 5, 4, 6), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), dilation=(1, 1, 2))),
        ((1, 1, 4, 4, 4), dict(kernel_size=2))],
}

_AVG_CASES = {
    1: [((2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
        ((3, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ((3, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((2, 2, 7), dict(kernel_size=2))],
    2: [((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),
        ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
        ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True)),
        ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False)),
        ((3, 6, 5), dict(kernel_size=2, divisor_override=3)),
        ((1, 1, 5, 5), dict(kernel_size=2)),
        ((4, 32, 24, 24), dict(kernel_size=2))],
    3: [((2, 2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((2, 5, 4, 6), dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), count_include_pad=False)),
        ((1, 1, 4, 4, 4), dict(kernel_size=2, divisor_override=5))],
}


def _pool_errors(name, k, avg):
    def errors():
        x = np.ones((1, 2) + (5,) * k, np.float32)
        cases = [
            ErrorCase((x,), {"kernel_size": 7}, ValueError, "too small"),
            ErrorCase((x,), {"kernel_size": 2, "padding": 2}, ValueError, "pad should be at most half"),
            ErrorCase((x,), {"kernel_size": 2, "stride": 0}, ValueError, "stride"),
            ErrorCase((x,), {"kernel_size": 0}, ValueError, "kernel_size"),
            ErrorCase((x,), {"kernel_size": (2,) * (k + 1)}, TypeError, "kernel_size"),
            ErrorCase((x,), {"kernel_size": 2, "padding": -1}, ValueError, "padding"),
            ErrorCase((np.ones((5,) * k, np.float32),), {"kernel_size": 2}, ValueError, "input"),
            ErrorCase((np.ones((1,) * (k + 3), np.float32),), {"kernel_size": 1}, ValueError, "input"),
            ErrorCase((x.astype(np.int32),), {"kernel_size": 2}, TypeError, "float32 or float64"),
        ]
        if avg and k > 1:
            cases.append(ErrorCase((x,), {"kernel_size": 2, "divisor_override": 0}, ValueError, "divisor_override"))
        if not avg:
            cases.append(ErrorCase((x,), {"kernel_size": 2, "dilation": 0}, ValueError, "dilation"))
        return cases

    return errors


_BENCH = {
    "max": {1: ((8, 64, 3136), dict(kernel_size=3, stride=2, padding=1)),
            2: ((8, 64, 112, 112), dict(kernel_size=3, stride=2, padding=1)),
            3: ((4, 32, 16, 56, 56), dict(kernel_size=3, stride=2, padding=1))},
    "avg": {1: ((8, 64, 3136), dict(kernel_size=2)),
            2: ((8, 64, 112, 112), dict(kernel_size=2)),
            3: ((4, 32, 16, 56, 56), dict(kernel_size=2))},
}


def _pool_bench(kind, k):
    shape, kw = _BENCH[kind][k]

    def bench(rng, dtype, size):
        s = shape if size == "large" else (1, 4) + (16,) * k
        return Sample((randn(rng, s, dtype),), dict(kw))

    return bench


def _max_pool(k):
    name = f"max_pool{k}d"
    return OpInfo(
        name=name,
        samples=_pool_samples(_MAX_CASES[k]),
        ref=_max_pool_ref(k),
        torch_ref=lambda t, x, **kw: getattr(t.nn.functional, name)(x, **kw),
        errors=_pool_errors(name, k, False),
        bench=_pool_bench("max", k),
        nondiff_kinks=True,
        paths=_paths(name) if name in _PATHS else None,
    )


def _avg_pool(k):
    name = f"avg_pool{k}d"
    return OpInfo(
        name=name,
        samples=_pool_samples(_AVG_CASES[k]),
        ref=_avg_pool_ref(k),
        torch_ref=lambda t, x, **kw: getattr(t.nn.functional, name)(x, **kw),
        errors=_pool_errors(name, k, True),
        bench=_pool_bench("avg", k),
        paths=_paths(name) if name in _PATHS else None,
    )


# max_unpool: (input, indices) where indices pick one distinct position inside each (kernel == stride,
# hence disjoint) window, like max_pool's; duplicates would make the forward non-differentiable.


def _unpool_default(in_sp, ks, st, pd):
    return tuple((L - 1) * s - 2 * p + kk for L, s, p, kk in zip(in_sp, st, pd, ks))


def _unpool_indices(rng, lead, in_sp, ks, st, pd, out_sp):
    shape = lead + in_sp
    k = len(in_sp)
    flat = np.zeros(shape, np.int64)
    for d in range(k):
        view = [1] * len(shape)
        view[len(lead) + d] = in_sp[d]
        start = (np.arange(in_sp[d]) * st[d] - pd[d]).reshape(view)
        c = np.clip(start + rng.integers(0, ks[d], size=shape), 0, out_sp[d] - 1)
        flat = flat * out_sp[d] + c
    return flat


_UNPOOL_CASES = {
    1: [((2, 3, 5), dict(kernel_size=2)),
        ((3, 4), dict(kernel_size=3, stride=3, padding=1, output_size=(9,))),
        ((1, 2, 6), dict(kernel_size=2, stride=2, output_size=(1, 2, 13)))],
    2: [((2, 3, 3, 4), dict(kernel_size=2)),
        ((3, 3, 4), dict(kernel_size=(2, 3), stride=(2, 3), padding=(1, 1))),
        ((1, 2, 4, 4), dict(kernel_size=2, output_size=(9, 8))),
        ((4, 32, 12, 12), dict(kernel_size=2))],
    3: [((2, 2, 2, 3, 2), dict(kernel_size=2)),
        ((2, 3, 2, 2), dict(kernel_size=2, stride=2, output_size=(5, 4, 4)))],
}


def _unpool_out(k, in_sp, kw):
    ks = _tup(kw["kernel_size"], k)
    st = ks if kw.get("stride") is None else _tup(kw["stride"], k)
    pd = _tup(kw.get("padding", 0), k)
    o = kw.get("output_size")
    if o is None:
        return ks, st, pd, _unpool_default(in_sp, ks, st, pd)
    return ks, st, pd, tuple(o)[-k:]


def _unpool_samples(k):
    def samples(rng, dtype):
        out = []
        for shape, kw in _UNPOOL_CASES[k]:
            ks, st, pd, osz = _unpool_out(k, shape[-k:], kw)
            idx = _unpool_indices(rng, shape[:-k], shape[-k:], ks, st, pd, osz)
            out.append(Sample((randn(rng, shape, dtype), idx), dict(kw), str(shape)))
        return out

    return samples


def _unpool_ref(k):
    def ref(x, indices, kernel_size, stride=None, padding=0, output_size=None):
        kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, output_size=output_size)
        _, _, _, osz = _unpool_out(k, x.shape[-k:], kw)
        P = int(np.prod(x.shape[:-k]))
        out = np.zeros((P, int(np.prod(osz))), x.dtype)
        np.put_along_axis(out, indices.reshape(P, -1), x.reshape(P, -1), axis=1)
        return out.reshape(x.shape[:-k] + osz)

    return ref


def _unpool_errors(k):
    def errors():
        x = np.ones((1, 2) + (2,) * k, np.float32)
        idx = np.zeros(x.shape, np.int64)
        return [
            ErrorCase((x, idx[..., :1]), {"kernel_size": 2}, ValueError, "indices"),
            ErrorCase((x, idx + 4 ** k), {"kernel_size": 2}, ValueError, "invalid max index"),
            ErrorCase((x, idx - 1), {"kernel_size": 2}, ValueError, "invalid max index"),
            ErrorCase((x, idx.astype(np.float32)), {"kernel_size": 2}, TypeError, "indices"),
            ErrorCase((x, idx), {"kernel_size": 2, "output_size": (6,) * k}, ValueError, "output_size"),
            ErrorCase((x, idx), {"kernel_size": 2, "output_size": (4,) * (k + 1)}, ValueError, "output_size"),
            ErrorCase((x, idx), {"kernel_size": 2, "stride": 0}, ValueError, "stride"),
            ErrorCase((np.ones((2,) * k, np.float32), idx[0, 0]), {"kernel_size": 2}, ValueError, "input"),
        ]

    return errors


def _unpool_bench(k):
    in_shape = {1: (8, 64, 1568), 2: (8, 64, 56, 56), 3: (4, 32, 8, 28, 28)}[k]

    def bench(rng, dtype, size):
        shape = in_shape if size == "large" else (1, 4) + (8,) * k
        kw = dict(kernel_size=2)
        ks, st, pd, osz = _unpool_out(k, shape[-k:], kw)
        return Sample((randn(rng, shape, dtype), _unpool_indices(rng, shape[:-k], shape[-k:], ks, st, pd, osz)), kw)

    return bench


def _max_unpool(k):
    name = f"max_unpool{k}d"
    return OpInfo(
        name=name,
        samples=_unpool_samples(k),
        ref=_unpool_ref(k),
        torch_ref=lambda t, x, idx, **kw: getattr(t.nn.functional, name)(x, idx, **kw),
        errors=_unpool_errors(k),
        bench=_unpool_bench(k),
        paths=_paths(name) if name in _PATHS else None,
    )


def _adaptive_max_ref(k):
    def ref(x, output_size, return_indices=False):
        spatial = x.shape[-k:]
        osz = _norm_out(output_size, k, spatial)
        out = np.empty(x.shape[:-k] + osz, x.dtype)
        for idx in itertools.product(*(range(o) for o in osz)):
            sl = tuple(slice((i * L) // O, -(-((i + 1) * L) // O)) for i, L, O in zip(idx, spatial, osz))
            out[(Ellipsis,) + idx] = x[(Ellipsis,) + sl].max(axis=tuple(range(-k, 0)))
        return out

    return ref


def _adaptive_max(k):
    name = f"adaptive_max_pool{k}d"
    return OpInfo(
        name=name,
        samples=_adaptive_samples(k),
        ref=_adaptive_max_ref(k),
        torch_ref=lambda t, x, output_size: getattr(t.nn.functional, name)(x, output_size),
        errors=_adaptive_errors(k),
        bench=lambda rng, dtype, size: Sample(
            (randn(rng, {"small": (1, 4) + (8,) * k, "large": (8, 64) + {1: (3136,), 2: (56, 56)}[k]}[size], dtype),),
            {"output_size": 7}),
        nondiff_kinks=True,
        paths=_paths(name) if name in _PATHS else None,
    )


TABLE += [_max_pool(k) for k in (1, 2, 3)]
TABLE += [_avg_pool(k) for k in (1, 2, 3)]
TABLE += [_max_unpool(k) for k in (1, 2, 3)]
TABLE += [_adaptive_max(k) for k in (1, 2)]


# === RoI pooling: roi_pool, roi_align, ps_roi_pool, ps_roi_align (pooling/roi.py) ===
# The NumPy references follow torchvision's CPU kernels literally, in float64: every bilinear sample
# of ``roi_align`` is a 4-corner interpolation (the op itself uses separable row/column weights),
# ``roi_pool`` takes the max of each bin slice. torchvision itself does not load against this
# project's torch build, so the torch cross-checks are compositions of torch ops: ``roi_align`` /
# ``ps_roi_align`` as ``Wy @ x[img] @ Wx^T`` per box (dense bilinear weight matrices built here in
# float64), ``roi_pool`` / ``ps_roi_pool`` as ``amax`` / ``mean`` over bin slices. autograd through
# them checks the backward.
#
# Samplers keep the f32 and f64 geometry identical (spatial scales and pooled sizes for
# ``roi_pool`` are powers of two or divide the RoI size, so ``floor``/``ceil`` of bin edges cannot
# round differently) and the pooled maxima tie-free (inputs are a permutation of spaced values).

# --- geometry (float64, from torchvision's kernels) ----------------------------------------------


def _as_rois(boxes, dtype=np.float64):
    if isinstance(boxes, (list, tuple)):
        parts = [np.concatenate([np.full((len(b), 1), i), np.asarray(b, np.float64)], 1) for i, b in enumerate(boxes)]
        return np.concatenate(parts) if parts else np.zeros((0, 5))
    return np.asarray(boxes, np.float64)


def _samples_1d(c1, c2, P, scale, ratio, aligned, force1):
    off = 0.5 if aligned else 0.0
    s = c1 * scale - off
    ext = (c2 * scale - off) - s
    if force1:
        ext = max(ext, 1.0)
    b = ext / P
    g = ratio if ratio > 0 else int(math.ceil(b))
    if g <= 0:
        return g, np.zeros((P, 0))
    p = np.arange(P)[:, None]
    i = np.arange(g)[None, :]
    return g, s + p * b + (i + 0.5) * b / g


def _bilinear_1d(pos, L):
    """Low/high index, their weights, validity (torchvision's bilinear_interpolate, per axis)."""
    valid = (pos >= -1.0) & (pos <= L)
    y = np.where(pos <= 0, 0.0, pos)
    lo = np.floor(y).astype(np.int64)
    top = lo >= L - 1
    lo = np.where(top, L - 1, lo)
    hi = np.where(top, L - 1, lo + 1)
    y = np.where(top, lo.astype(np.float64), y)
    ly = y - lo
    lo = np.where(valid, lo, 0)
    hi = np.where(valid, np.minimum(hi, L - 1), 0)
    return lo, hi, 1.0 - ly, ly, valid


def _align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, aligned, force1):
    """(K, C, PH, PW): every channel of every bin (ps_roi_align picks its channels from this)."""
    PH, PW = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW), x.dtype)
    for k, (bi, x1, y1, x2, y2) in enumerate(rois):
        gy, Y = _samples_1d(y1, y2, PH, spatial_scale, sampling_ratio, aligned, force1)
        gx, X = _samples_1d(x1, x2, PW, spatial_scale, sampling_ratio, aligned, force1)
        if gy <= 0 or gx <= 0:
            continue
        ylo, yhi, hy, ly, vy = _bilinear_1d(Y.ravel(), H)
        xlo, xhi, hx, lx, vx = _bilinear_1d(X.ravel(), W)
        plane = x[int(bi)]
        rows_lo, rows_hi = plane[:, ylo], plane[:, yhi]
        v = (
            (hy[:, None] * hx[None, :]) * rows_lo[:, :, xlo]
            + (hy[:, None] * lx[None, :]) * rows_lo[:, :, xhi]
            + (ly[:, None] * hx[None, :]) * rows_hi[:, :, xlo]
            + (ly[:, None] * lx[None, :]) * rows_hi[:, :, xhi]
        )
        v = v * (vy[:, None] & vx[None, :])
        out[k] = v.reshape(C, PH, gy, PW, gx).sum(axis=(2, 4)) / max(gy * gx, 1)
    return out


def roi_align_ref(x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, aligned, not aligned)


def _ps_pick(full, PH, PW):
    K, C = full.shape[:2]
    CO = C // (PH * PW)
    out = np.empty((K, CO, PH, PW), full.dtype)
    for co in range(CO):
        for ph in range(PH):
            for pw in range(PW):
                out[:, co, ph, pw] = full[:, (co * PH + ph) * PW + pw, ph, pw]
    return out


def _pair(o):
    return (o, o) if isinstance(o, int) else tuple(o)


def ps_roi_align_ref(x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    PH, PW = _pair(output_size)
    return _ps_pick(_align_ref_all(x, boxes, output_size, spatial_scale, sampling_ratio, True, False), PH, PW)


def _round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _pool_bins(rois_k, PH, PW, scale, H, W, ps):
    x1, y1, x2, y2 = (_round(v * scale) for v in rois_k[1:])
    extra = 0 if ps else 1
    hh, ww = (H - 1, W - 1) if ps else (H, W)
    rh, rw = max(y2 - y1 + extra, 1), max(x2 - x1 + extra, 1)
    bh, bw = rh / PH, rw / PW
    hb = [(min(max(math.floor(i * bh) + y1, 0), hh), min(max(math.ceil((i + 1) * bh) + y1, 0), hh)) for i in range(PH)]
    wb = [(min(max(math.floor(j * bw) + x1, 0), ww), min(max(math.ceil((j + 1) * bw) + x1, 0), ww)) for j in range(PW)]
    return hb, wb


def roi_pool_ref(x, boxes, output_size, spatial_scale=1.0):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW), x.dtype)
    for k, r in enumerate(rois):
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, False)
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = x[int(r[0]), :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


def ps_roi_pool_ref(x, boxes, output_size, spatial_scale=1.0):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C // (PH * PW), PH, PW), x.dtype)
    for k, r in enumerate(rois):
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, True)
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = x[int(r[0]), i * PW + j :: PH * PW, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


# --- torch compositions --------------------------------------------------------------------------


def _dense_weights(c1, c2, P, L, scale, ratio, aligned, force1):
    g, pos = _samples_1d(c1, c2, P, scale, ratio, aligned, force1)
    w = np.zeros((P, L))
    if g > 0:
        lo, hi, wl, wh, v = _bilinear_1d(pos, L)
        rows = np.arange(P)[:, None].repeat(g, 1)
        np.add.at(w, (rows, lo), wl * v)
        np.add.at(w, (rows, hi), wh * v)
    return g, w


def _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, aligned, force1):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes.detach().numpy() if isinstance(boxes, torch.Tensor) else boxes)
    N, C, H, W = x.shape
    outs = []
    for bi, x1, y1, x2, y2 in rois:
        gy, wy = _dense_weights(y1, y2, PH, H, spatial_scale, sampling_ratio, aligned, force1)
        gx, wx = _dense_weights(x1, x2, PW, W, spatial_scale, sampling_ratio, aligned, force1)
        cnt = max(gy * gx, 1) if (gy > 0 and gx > 0) else 1
        # restrict to the rows/columns with a weight (what a user would slice)
        rs, cs = np.flatnonzero(wy.any(0)), np.flatnonzero(wx.any(0))
        if len(rs) == 0 or len(cs) == 0:
            outs.append(x.new_zeros((C, PH, PW)))
            continue
        r0, r1, c0, c1 = rs[0], rs[-1] + 1, cs[0], cs[-1] + 1
        ty = torch.from_numpy(wy[:, r0:r1] / cnt).to(x.dtype)
        tx = torch.from_numpy(wx[:, c0:c1]).to(x.dtype)
        outs.append(torch.matmul(torch.matmul(ty, x[int(bi), :, r0:r1, c0:c1]), tx.T))
    return torch.stack(outs) if outs else x.new_zeros((0, C, PH, PW))


def roi_align_torch(torch, x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, aligned, not aligned)


def ps_roi_align_torch(torch, x, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    PH, PW = _pair(output_size)
    full = _torch_align_all(torch, x, boxes, output_size, spatial_scale, sampling_ratio, True, False)
    return _torch_ps_pick(torch, full, PH, PW)


def _torch_ps_pick(torch, full, PH, PW):
    K, C = full.shape[:2]
    CO = C // (PH * PW)
    idx = torch.arange(C).reshape(CO, PH, PW)
    ph = torch.arange(PH).reshape(1, PH, 1).expand(CO, PH, PW)
    pw = torch.arange(PW).reshape(1, 1, PW).expand(CO, PH, PW)
    return full[:, idx, ph, pw]


def _torch_pool(torch, x, boxes, output_size, spatial_scale, ps):
    PH, PW = _pair(output_size)
    rois = _as_rois(boxes.detach().numpy() if isinstance(boxes, torch.Tensor) else boxes)
    N, C, H, W = x.shape
    CO = C // (PH * PW) if ps else C
    outs = []
    for r in rois:
        hb, wb = _pool_bins(r, PH, PW, spatial_scale, H, W, ps)
        img = x[int(r[0])]
        bins = []
        for i, (h0, h1) in enumerate(hb):
            for j, (w0, w1) in enumerate(wb):
                if h1 <= h0 or w1 <= w0:
                    bins.append(x.new_zeros((CO,)))
                elif ps:
                    bins.append(img[i * PW + j :: PH * PW, h0:h1, w0:w1].mean(dim=(1, 2)))
                else:
                    bins.append(img[:, h0:h1, w0:w1].amax(dim=(1, 2)))
        outs.append(torch.stack(bins, 1).reshape(CO, PH, PW))
    return torch.stack(outs) if outs else x.new_zeros((0, CO, PH, PW))


# --- samples -------------------------------------------------------------------------------------


def _rand_boxes(rng, K, N, lo, hi, dtype, min_size=0.0):
    a = rng.uniform(lo, hi, (K, 2))
    b = a + min_size + rng.uniform(0, hi - lo, (K, 2)) * 0.6
    bi = rng.integers(0, N, K)
    return np.stack([bi, a[:, 0], a[:, 1], b[:, 0], b[:, 1]], 1).astype(dtype)


def _tie_free(rng, shape, dtype):
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (4.0 / max(n, 1)) - 2.0).astype(dtype)


def _special_boxes(dtype):
    # tiny (< 1 px), zero-size, inverted, partly outside, fully outside (left/above, right/below)
    return np.array(
        [[0, 2.2, 3.1, 2.6, 3.3], [1, 4.0, 4.0, 4.0, 4.0], [0, 6.5, 5.0, 3.5, 2.0], [1, -3.2, -2.7, 4.1, 3.3],
         [0, 7.3, 6.1, 15.2, 13.7], [1, -9.0, -8.0, -4.5, -3.5], [0, 15.0, 14.0, 19.5, 17.5],
         [0, -1.4, 2.0, 0.2, 5.0]],
        dtype,
    )


def _align_samples(ps):
    def samples(rng, dtype):
        C = 8 if ps else 3
        x = randn(rng, (2, C, 9, 11), dtype)
        b = _rand_boxes(rng, 5, 2, -2.0, 12.0, dtype)
        extra = {} if ps else {"aligned": True}
        out = [
            Sample((x, b), {"output_size": 2}, "default"),
            Sample((x, b), {"output_size": 2, "sampling_ratio": 2, "spatial_scale": 0.5, **extra}, "ratio 2"),
            Sample((x, b * np.array([1, 4, 4, 4, 4], dtype)), {"output_size": 2, "sampling_ratio": 0, "spatial_scale": 0.25}, "ratio 0"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2, "sampling_ratio": -1, **extra}, "special"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2, "sampling_ratio": 2}, "special ratio 2"),
            Sample((x, np.zeros((0, 5), dtype)), {"output_size": 2}, "no boxes"),
            Sample((x, [b[:3, 1:], b[3:, 1:]]), {"output_size": 2}, "list of boxes"),
        ]
        if ps:
            x6 = randn(rng, (2, 12, 9, 11), dtype)
            out.append(Sample((x6, b), {"output_size": (2, 3), "sampling_ratio": 1}, "tuple"))
        else:
            out.append(Sample((x, b), {"output_size": (3, 2), "aligned": True}, "tuple aligned"))
            out.append(Sample((x, _special_boxes(dtype)), {"output_size": (3, 4), "aligned": False, "spatial_scale": 0.5}, "special unaligned"))
        return out

    return samples


def _roi_pool_samples(ps):
    def samples(rng, dtype):
        C = 16 if ps else 3
        x = _tie_free(rng, (2, C, 9, 11), dtype)
        b = _rand_boxes(rng, 5, 2, -2.0, 12.0, dtype)
        # integer boxes whose extents (end - start + 1 for roi_pool) are multiples of 3: 3 bins divide them
        bi = np.array([[0, 1, 2, 3, 7], [1, 4, 0, 9, 5], [0, 0, 0, 8, 8]], dtype)
        if ps:
            bi = bi + np.array([0, 0, 0, 1, 1], dtype)  # ps extent is end - start
        x9 = _tie_free(rng, (2, 9 * (2 if ps else 1), 9, 11), dtype)
        return [
            Sample((x, b), {"output_size": 2}, "default"),
            Sample((x, b), {"output_size": (2, 4), "spatial_scale": 0.5}, "scale 0.5"),
            Sample((x, b * np.array([1, 4, 4, 4, 4], dtype)), {"output_size": 1, "spatial_scale": 0.25}, "scale 0.25"),
            Sample((x, _special_boxes(dtype)), {"output_size": 2}, "special"),
            Sample((x, _special_boxes(dtype)), {"output_size": 4, "spatial_scale": 0.5}, "special 4"),
            Sample((x9, bi), {"output_size": 3}, "three bins"),
            Sample((x, np.zeros((0, 5), dtype)), {"output_size": 2}, "no boxes"),
            Sample((x, [b[:2, 1:], b[2:, 1:]]), {"output_size": 2}, "list of boxes"),
        ]

    return samples


def _errors(name, ps=False, align=False):
    def errors():
        C = 8 if ps else 3
        x = np.ones((2, C, 6, 6), np.float32)
        b = np.array([[0, 1, 1, 4, 4]], np.float32)
        kw = {"output_size": 2}
        cases = [
            ErrorCase((x, b[:, 1:]), kw, ValueError, "boxes"),
            ErrorCase((x, b[0]), kw, ValueError, "boxes"),
            ErrorCase((x, np.array([[2, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[-1, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[0.5, 1, 1, 4, 4]], np.float32)), kw, ValueError, "batch"),
            ErrorCase((x, np.array([[0, np.nan, 1, 4, 4]], np.float32)), kw, ValueError, "finite"),
            ErrorCase((x, b.astype(np.int64)), kw, TypeError, "boxes"),
            ErrorCase((x, b.astype(np.float64)), kw, TypeError, "mixed"),
            ErrorCase((x, [b[:, 1:4]]), kw, ValueError, "boxes"),
            ErrorCase((x, [b[:, 1:], b[:, 1:], b[:, 1:]]), kw, ValueError, "batch size"),
            ErrorCase((x[0], b), kw, ValueError, "4-D"),
            ErrorCase((x.astype(np.int32), b), kw, TypeError, "float32 or float64"),
            ErrorCase((x, b), {"output_size": 0}, ValueError, "output_size"),
            ErrorCase((x, b), {"output_size": 1.5}, TypeError, "output_size"),
            ErrorCase((x, b), {"output_size": (2, 2, 2)}, TypeError, "output_size"),
            ErrorCase((x, b), {"output_size": 2, "spatial_scale": 0.0}, ValueError, "spatial_scale"),
            ErrorCase((x, b), {"output_size": 2, "spatial_scale": "1"}, TypeError, "spatial_scale"),
            ErrorCase((x, b * 1e10), kw, ValueError, "2\\*\\*30"),
        ]
        if ps:
            cases.append(ErrorCase((x, b), {"output_size": 3}, ValueError, "multiple"))
        if align:
            cases.append(ErrorCase((x, b), {"output_size": 2, "sampling_ratio": 1.5}, TypeError, "sampling_ratio"))
        return cases

    return errors


def _bench(ps, align):
    def bench(rng, dtype, size):
        if size == "small":
            N, C, H, K = 1, 8, 12, 8
        else:  # Faster R-CNN head: stride-16 features of an 800 x 800 image
            N, C, H, K = 8, 256, 50, 512 if align and not ps else 128
        PH = 7 if size == "large" else 2
        if ps:
            C = (C // (PH * PH) or 1) * PH * PH
        x = randn(rng, (N, C, H, H), dtype)
        img = 16.0 * H
        x1 = rng.uniform(0, img * 0.8, (K, 2))
        wh = rng.uniform(32, img * 0.5, (K, 2))
        b = np.concatenate([rng.integers(0, N, (K, 1)), x1, np.minimum(x1 + wh, img - 1)], 1).astype(dtype)
        kw = {"output_size": PH, "spatial_scale": 1.0 / 16}
        return Sample((x, b), kw, f"{K} boxes")

    return bench


_TOL_ALIGN = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}

_ROI_TABLE = [
    OpInfo(
        name="roi_pool",
        samples=_roi_pool_samples(False),
        ref=roi_pool_ref,
        torch_ref=lambda t, x, boxes, output_size, spatial_scale=1.0: _torch_pool(t, x, boxes, output_size, spatial_scale, False),
        errors=_errors("roi_pool"),
        bench=_bench(False, False),
        nondiff_kinks=True,
        paths=_paths("roi_pool"),
    ),
    OpInfo(
        name="roi_align",
        samples=_align_samples(False),
        ref=roi_align_ref,
        torch_ref=roi_align_torch,
        errors=_errors("roi_align", align=True),
        tol=_TOL_ALIGN,
        bench=_bench(False, True),
        paths=_paths("roi_align"),
    ),
    OpInfo(
        name="ps_roi_pool",
        samples=_roi_pool_samples(True),
        ref=ps_roi_pool_ref,
        torch_ref=lambda t, x, boxes, output_size, spatial_scale=1.0: _torch_pool(t, x, boxes, output_size, spatial_scale, True),
        errors=_errors("ps_roi_pool", ps=True),
        bench=_bench(True, False),
        paths=_paths("ps_roi_pool"),
    ),
    OpInfo(
        name="ps_roi_align",
        samples=_align_samples(True),
        ref=ps_roi_align_ref,
        torch_ref=ps_roi_align_torch,
        errors=_errors("ps_roi_align", ps=True, align=True),
        tol=_TOL_ALIGN,
        bench=_bench(True, True),
        paths=_paths("ps_roi_align"),
    ),
]

TABLE = TABLE + _ROI_TABLE
