"""Op table: pooling (OPS.md "Pooling")."""
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
