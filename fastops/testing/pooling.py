"""Op table: pooling (docs/ops.md, "Pooling")."""
import itertools

import numpy as np

from . import ErrorCase, OpInfo, Sample, randn


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
    )


TABLE = [
    OpInfo(
        name="global_avg_pool2d",
        samples=_global_samples,
        ref=lambda x: x.mean(axis=(2, 3)),
        torch_ref=lambda t, x: x.mean(dim=(2, 3)),
        errors=_global_errors,
        bench=lambda rng, dtype, size: Sample((randn(rng, {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}[size], dtype),)),
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
    )


TABLE += [_max_pool(k) for k in (1, 2, 3)]
TABLE += [_avg_pool(k) for k in (1, 2, 3)]
TABLE += [_max_unpool(k) for k in (1, 2, 3)]
TABLE += [_adaptive_max(k) for k in (1, 2)]
