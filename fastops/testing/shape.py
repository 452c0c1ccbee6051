"""Op table: shape and resampling (docs/ops.md, "Shape and resampling")."""
import math

import numpy as np

from . import ErrorCase, OpInfo, Sample, randn


def _dtype_errors(args_fn):
    def cases():
        return [
            ErrorCase(args_fn(np.ones((2, 4, 3, 3), np.int64)), {}, TypeError, "float32 or float64"),
            ErrorCase(args_fn(np.ones((2, 4, 3, 3), np.complex64)), {}, TypeError, "float32 or float64"),
            ErrorCase(args_fn([[1.0]]), {}, TypeError, "numpy.ndarray"),
        ]

    return cases


def _with(base, extra):
    def cases():
        return base() + extra()

    return cases


# --- flatten / reshape --------------------------------------------------------------------------


def _flatten_samples(rng, dtype):
    out = [Sample((np.asarray(randn(rng, (), dtype)),), {}, "0-d")]
    for shape, kw in [
        ((7,), {}),
        ((2, 3, 5), {}),
        ((1, 3, 4, 5), {"start_dim": 1}),
        ((2, 3, 4, 5), {"start_dim": 1, "end_dim": 2}),
        ((2, 3, 4, 5), {"start_dim": -2}),
        ((3, 0, 2), {"start_dim": 1}),
    ]:
        out.append(Sample((randn(rng, shape, dtype),), kw, str(shape)))
    return out


def _flatten_ref(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1 :]) if x.size else x.reshape(
        x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :]
    )


def _flatten_errors():
    x = np.ones((2, 3, 4), np.float32)
    return [
        ErrorCase((x,), {"start_dim": 2, "end_dim": 1}, ValueError, "start_dim"),
        ErrorCase((x,), {"start_dim": 3}, ValueError, "start_dim"),
        ErrorCase((x,), {"end_dim": 1.5}, TypeError, "end_dim"),
    ]


def _reshape_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 3, 5), dtype),), {"shape": (6, 5)}, "2d"),
        Sample((randn(rng, (2, 3, 5), dtype),), {"shape": (-1,)}, "-1"),
        Sample((randn(rng, (1, 12), dtype),), {"shape": (3, -1, 2)}, "infer"),
        Sample((randn(rng, (7,), dtype),), {"shape": (7, 1)}, "col"),
        Sample((randn(rng, (1,), dtype),), {"shape": ()}, "0-d"),
    ]


def _reshape_errors():
    x = np.ones((2, 3, 4), np.float32)
    return [
        ErrorCase((x,), {"shape": (5, 5)}, ValueError, "shape"),
        ErrorCase((x,), {"shape": (-1, -1)}, ValueError, "shape"),
        ErrorCase((x,), {"shape": (5, -1)}, ValueError, "shape"),
        ErrorCase((x,), {"shape": "ab"}, TypeError, "shape"),
    ]


# --- channel_shuffle / pixel_shuffle ------------------------------------------------------------


def _cs_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 6, 3, 5), dtype),), {"groups": 2}, "g2"),
        Sample((randn(rng, (1, 6, 7), dtype),), {"groups": 3}, "3d g3"),
        Sample((randn(rng, (2, 4, 2, 3, 3), dtype),), {"groups": 4}, "5d g4"),
        Sample((randn(rng, (1, 5, 3, 3), dtype),), {"groups": 1}, "g1"),
        Sample((randn(rng, (4, 64, 17, 17), dtype),), {"groups": 8}, "parallel"),
    ]


def _cs_ref(x, groups):
    N, C = x.shape[:2]
    return x.reshape((N, groups, C // groups) + x.shape[2:]).swapaxes(1, 2).reshape(x.shape)


def _cs_errors():
    x = np.ones((2, 6, 3, 3), np.float32)
    return [
        ErrorCase((x,), {"groups": 4}, ValueError, "groups"),
        ErrorCase((x,), {"groups": 0}, ValueError, "groups"),
        ErrorCase((np.ones((2, 6), np.float32),), {"groups": 2}, ValueError, "rank"),
        ErrorCase((x,), {"groups": 2.0}, TypeError, "groups"),
        ErrorCase((np.ones((2, 6, 3), np.int32),), {"groups": 2}, TypeError, "float32 or float64"),
    ]


def _ps_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 8, 3, 5), dtype),), {"upscale_factor": 2}, "r2"),
        Sample((randn(rng, (9, 2, 3), dtype),), {"upscale_factor": 3}, "3d r3"),
        Sample((randn(rng, (1, 3, 2, 2, 2), dtype),), {"upscale_factor": 1}, "5d r1"),
        Sample((randn(rng, (2, 2, 8, 3, 3), dtype),), {"upscale_factor": 2}, "5d r2"),
        Sample((randn(rng, (2, 64, 33, 33), dtype),), {"upscale_factor": 2}, "parallel"),
    ]


def _ps_ref(x, upscale_factor):
    r = upscale_factor
    lead, (C, H, W) = x.shape[:-3], x.shape[-3:]
    y = x.reshape(lead + (C // (r * r), r, r, H, W))
    k = len(lead)
    y = y.transpose(tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return y.reshape(lead + (C // (r * r), H * r, W * r))


def _ps_errors():
    x = np.ones((2, 8, 3, 3), np.float32)
    return [
        ErrorCase((x,), {"upscale_factor": 3}, ValueError, "upscale_factor"),
        ErrorCase((x,), {"upscale_factor": 0}, ValueError, "upscale_factor"),
        ErrorCase((np.ones((8, 3), np.float32),), {"upscale_factor": 2}, ValueError, "rank"),
        ErrorCase((np.ones((2, 8, 3, 3), np.int64),), {"upscale_factor": 2}, TypeError, "float32 or float64"),
    ]


# --- pad ----------------------------------------------------------------------------------------

_NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_ref(x, pad, mode="constant", value=None):
    k = len(pad) // 2
    width = [(0, 0)] * x.ndim
    crop = [slice(None)] * x.ndim
    for i in range(k):
        ax = x.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        width[ax] = (max(lo, 0), max(hi, 0))
        n = x.shape[ax] + max(lo, 0) + max(hi, 0)
        crop[ax] = slice(max(-lo, 0), n - max(-hi, 0))
    kw = {"constant_values": 0.0 if value is None else value} if mode == "constant" else {}
    if mode == "circular":  # PyTorch crops first, then wraps around the cropped range
        pre = [slice(None)] * x.ndim
        for i in range(k):
            ax = x.ndim - 1 - i
            lo, hi = pad[2 * i], pad[2 * i + 1]
            pre[ax] = slice(max(-lo, 0), x.shape[ax] - max(-hi, 0))
        return np.pad(x[tuple(pre)], width, mode="wrap").astype(x.dtype)
    return np.pad(x, width, mode=_NP_MODE[mode], **kw)[tuple(crop)].astype(x.dtype)


def _pad_samples(rng, dtype):
    out = [
        Sample((randn(rng, (2, 3, 4, 5), dtype),), {"pad": (1, 2)}, "const last"),
        Sample((randn(rng, (2, 3, 4, 5), dtype),), {"pad": (1, 0, 2, 1, 0, 1, 1, 1), "value": 1.5}, "const all"),
        Sample((randn(rng, (2, 3, 5, 6), dtype),), {"pad": (-1, 2, 1, -2)}, "const crop"),
        Sample((randn(rng, (7,), dtype),), {"pad": (3, 0), "mode": "constant", "value": -2.0}, "1d"),
    ]
    out += [
        Sample((randn(rng, (2, 3, 6, 7), dtype),), {"pad": (-1, 2, 2, -2), "mode": m}, f"{m} crop")
        for m in ("reflect", "replicate", "circular")
    ]
    for mode in ("reflect", "replicate", "circular"):
        out += [
            Sample((randn(rng, (2, 3, 7), dtype),), {"pad": (2, 3), "mode": mode}, f"{mode} 1d"),
            Sample((randn(rng, (3, 7), dtype),), {"pad": (1, 2), "mode": mode}, f"{mode} 1d batchless"),
            Sample((randn(rng, (1, 3, 5, 6), dtype),), {"pad": (2, 1, 3, 4), "mode": mode}, f"{mode} 2d"),
            Sample((randn(rng, (2, 4, 5, 6), dtype),), {"pad": (0, 1, 1, 0), "mode": mode}, f"{mode} 2d 3d-in"),
            Sample((randn(rng, (1, 2, 3, 4, 5), dtype),), {"pad": (1, 2, 2, 1, 1, 2), "mode": mode}, f"{mode} 3d"),
            Sample((randn(rng, (4, 32, 33, 31), dtype),), {"pad": (2, 2, 3, 1), "mode": mode}, f"{mode} parallel"),
        ]
    return out


def _pad_errors():
    x = np.ones((2, 3, 4, 5), np.float32)
    return [
        ErrorCase((x, (1, 2, 3)), {}, ValueError, "even"),
        ErrorCase((x, (1,) * 10), {}, ValueError, "pad"),
        ErrorCase((x, (5, 1)), {"mode": "reflect"}, ValueError, "reflect"),
        ErrorCase((x, (1, 1)), {"mode": "reflect"}, ValueError, "mode"),
        ErrorCase((x, (1, 1)), {"mode": "wrap"}, ValueError, "mode"),
        ErrorCase((x, (6, 1, 0, 0)), {"mode": "circular"}, ValueError, "circular"),
        ErrorCase((x, (-4, -2)), {}, ValueError, "negative"),
        ErrorCase((x, (1.0, 1)), {}, TypeError, "pad"),
        ErrorCase((x, (1, 1, 1, 1)), {"mode": "reflect", "value": 2.0}, ValueError, "value"),
        ErrorCase((np.ones((2, 3), np.int64), (1, 1)), {}, TypeError, "float32 or float64"),
    ]


def _pad_torch(t, x, pad, mode="constant", value=None):
    return t.nn.functional.pad(x, pad, mode=mode, value=value)


# --- upsample_nearest2d -------------------------------------------------------------------------


def _up_samples(rng, dtype):
    return [
        Sample((randn(rng, (2, 3, 4, 5), dtype),), {}, "default"),
        Sample((randn(rng, (1, 3, 3, 5), dtype),), {"size": (3, 2)}, "3x2"),
        Sample((randn(rng, (1, 2, 5, 3), dtype),), {"size": 1}, "1"),
        Sample((randn(rng, (4, 32, 33, 17), dtype),), {"size": (2, 3)}, "parallel"),
    ]


def _up_ref(x, size=(2, 2)):
    sh, sw = (size, size) if isinstance(size, int) else size
    return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)


def _up_torch(t, x, size=(2, 2)):
    sh, sw = (size, size) if isinstance(size, int) else size
    return x.repeat_interleave(sh, dim=2).repeat_interleave(sw, dim=3)


def _up_errors():
    x = np.ones((2, 3, 4, 5), np.float32)
    return [
        ErrorCase((np.ones((3, 4, 5), np.float32),), {}, ValueError, "4-D"),
        ErrorCase((x,), {"size": (0, 2)}, ValueError, "size"),
        ErrorCase((x,), {"size": (2, 2, 2)}, TypeError, "size"),
        ErrorCase((np.ones((2, 3, 4, 5), np.int64),), {}, TypeError, "float32 or float64"),
    ]


def _bench_4d(shapes, **kw):
    def bench(rng, dtype, size):
        s = shapes[size]
        return Sample((randn(rng, s, dtype),), dict(kw))

    return bench


SMALL_LARGE = {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}

TABLE = [
    OpInfo(
        name="flatten",
        samples=_flatten_samples,
        ref=_flatten_ref,
        torch_ref=lambda t, x, **k: t.flatten(x, **k),
        errors=_with(_dtype_errors(lambda x: (x,)), _flatten_errors),
        bench=_bench_4d(SMALL_LARGE, start_dim=1),
    ),
    OpInfo(
        name="reshape",
        samples=_reshape_samples,
        ref=lambda x, shape: x.reshape(shape),
        torch_ref=lambda t, x, shape: t.reshape(x, shape),
        errors=_reshape_errors,
        bench=_bench_4d(SMALL_LARGE, shape=(-1,)),
    ),
    OpInfo(
        name="channel_shuffle",
        samples=_cs_samples,
        ref=_cs_ref,
        torch_ref=lambda t, x, groups: t.nn.functional.channel_shuffle(x, groups),
        errors=_cs_errors,
        bench=_bench_4d(SMALL_LARGE, groups=4),
    ),
    OpInfo(
        name="pixel_shuffle",
        samples=_ps_samples,
        ref=_ps_ref,
        torch_ref=lambda t, x, upscale_factor: t.nn.functional.pixel_shuffle(x, upscale_factor),
        errors=_ps_errors,
        bench=_bench_4d(SMALL_LARGE, upscale_factor=2),
    ),
    OpInfo(
        name="pad",
        samples=_pad_samples,
        ref=_pad_ref,
        torch_ref=_pad_torch,
        errors=_pad_errors,
        bench=lambda rng, dtype, size: Sample((randn(rng, SMALL_LARGE[size], dtype),), {"pad": (1, 1, 1, 1), "mode": "reflect"}),
    ),
    OpInfo(
        name="upsample_nearest2d",
        samples=_up_samples,
        ref=_up_ref,
        torch_ref=_up_torch,
        errors=_up_errors,
        bench=_bench_4d(SMALL_LARGE),
    ),
]
