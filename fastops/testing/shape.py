"""Op table: shape and resampling (docs/ops.md, "Shape and resampling")."""
import itertools
import math

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, randn


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


def _sfx(dtype):
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


# Dispatch paths (tests/test_paths.py): per op, (path, input shape, kwargs), each large enough for
# the parallel kernels at 2 threads; the path is the forward kernel explain names (less its dtype
# and backend suffix).
_PATHS = {
    "channel_shuffle": [("shuffle_gather_planes", (4, 64, 17, 17), {"groups": 8})],
    "pixel_shuffle": [("shuffle_pixel_shuffle", (2, 64, 33, 33), {"upscale_factor": 2})],
    "pad": [("pad_gather", (4, 32, 33, 31), {"pad": (2, 2, 3, 1), "mode": "reflect"}),
            ("pad_gather", (4, 32, 33, 31), {"pad": (3, 3, 3, 3), "mode": "circular"})],
    "upsample_nearest2d": [("upsample_nearest2d_fwd", (4, 32, 33, 17), {"size": (2, 3)})],
}


def _paths(name):
    def paths(rng, dtype):
        return [PathCase(path, Sample((randn(rng, shape, dtype),), dict(kw), str(shape)),
                         expect={"kernel": f"{path}_{_sfx(dtype)}_parallel", "backend": "parallel"}, explain=dict(kw))
                for path, shape, kw in _PATHS[name]]

    return paths


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
        paths=_paths("channel_shuffle"),
    ),
    OpInfo(
        name="pixel_shuffle",
        samples=_ps_samples,
        ref=_ps_ref,
        torch_ref=lambda t, x, upscale_factor: t.nn.functional.pixel_shuffle(x, upscale_factor),
        errors=_ps_errors,
        bench=_bench_4d(SMALL_LARGE, upscale_factor=2),
        paths=_paths("pixel_shuffle"),
    ),
    OpInfo(
        name="pad",
        samples=_pad_samples,
        ref=_pad_ref,
        torch_ref=_pad_torch,
        errors=_pad_errors,
        bench=lambda rng, dtype, size: Sample((randn(rng, SMALL_LARGE[size], dtype),), {"pad": (1, 1, 1, 1), "mode": "reflect"}),
        paths=_paths("pad"),
    ),
    OpInfo(
        name="upsample_nearest2d",
        samples=_up_samples,
        ref=_up_ref,
        torch_ref=_up_torch,
        errors=_up_errors,
        bench=_bench_4d(SMALL_LARGE),
        paths=_paths("upsample_nearest2d"),
    ),
]


# === resampling: interpolate, affine_grid, grid_sample (shape/interpolate.py, affine_grid.py, grid.py) ===
# The NumPy references are written independently of the kernels: ``interpolate`` builds a dense
# (out, in) interpolation matrix per resized dim from PyTorch's coordinate rules (restated here) and
# applies them with ``tensordot``; ``grid_sample`` loops over output pixels in Python, reading the
# taps of each pixel for all channels at once (5-D: the 8 trilinear corners, or the nearest voxel).
# Both run in float64.

_LINEAR = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


# --- interpolate --------------------------------------------------------------------------------


def _cubic(t, A=-0.75):
    def c1(v):
        return ((A + 2) * v - (A + 3)) * v * v + 1

    def c2(v):
        return ((A * v - 5 * A) * v + 8 * A) * v - 4 * A

    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def _interp_matrix(mode, L, O, align, scale, nd):
    M = np.zeros((O, L))
    if align:
        r = (L - 1) / (O - 1) if O > 1 else 0.0
    elif scale is not None:
        r = 1.0 / scale
    else:
        r = L / O
    for o in range(O):
        if mode == "nearest":
            if nd == 2 and O == L:
                i = o
            elif nd == 2 and O == 2 * L:
                i = o // 2
            elif nd == 2:  # ATen's 2-D nearest computes its scale in float32
                sc = np.float32(1.0 / scale) if scale is not None else np.float32(L) / np.float32(O)
                i = int(np.floor(np.float32(sc * np.float32(o))))
            else:
                i = int(np.floor(np.float32(r * o)))
            M[o, min(i, L - 1)] = 1
        elif mode == "nearest-exact":
            M[o, min(int(np.floor(np.float32(r * (o + 0.5)))), L - 1)] = 1
        elif mode == "bicubic":
            src = r * o if align else r * (o + 0.5) - 0.5
            i0 = math.floor(src)
            for j, c in enumerate(_cubic(src - i0)):
                M[o, min(max(i0 - 1 + j, 0), L - 1)] += c
        elif O == L:
            M[o, o] = 1
        else:
            src = r * o if align else max(r * (o + 0.5) - 0.5, 0.0)
            i0 = min(math.floor(src), L - 1)
            lam = min(max(src - i0, 0.0), 1.0)
            M[o, i0] += 1 - lam
            M[o, min(i0 + 1, L - 1)] += lam
    return M


def _interp_ref(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    nd = x.ndim - 2
    spatial = x.shape[2:]
    if size is not None:
        out = (size,) * nd if isinstance(size, int) else tuple(size)
        scales = (None,) * nd
    else:
        sf = (scale_factor,) * nd if not isinstance(scale_factor, (tuple, list)) else tuple(scale_factor)
        out = tuple(int(math.floor(L * s)) for L, s in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else sf
    y = x
    for d in range(nd):
        M = _interp_matrix(mode, spatial[d], out[d], bool(align_corners), scales[d], nd)
        y = np.moveaxis(np.tensordot(M, np.moveaxis(y, 2 + d, 0), axes=(1, 0)), 0, 2 + d)
    return np.ascontiguousarray(y, dtype=x.dtype)


_SPECS = [
    ("up size", {"size": None}),
    ("down size", {"size": None}),
    ("sf 1.7", {"scale_factor": 1.7}),
    ("sf 0.6", {"scale_factor": 0.6}),
    ("sf tuple", {"scale_factor": None}),
    ("recompute", {"scale_factor": 1.7, "recompute_scale_factor": True}),
]
_SHAPES = {1: (2, 3, 5), 2: (1, 2, 5, 7), 3: (1, 2, 3, 4, 5)}
_UP = {1: (9,), 2: (8, 11), 3: (5, 6, 7)}
_DOWN = {1: (3,), 2: (3, 4), 3: (2, 3, 2)}
_SF_TUPLE = {1: (2.5,), 2: (1.5, 0.7), 3: (1.5, 0.8, 2.3)}


def _interp_samples(rng, dtype):
    out = []
    configs = [(m, nd, None) for m in ("nearest", "nearest-exact") for nd in (1, 2, 3)]
    configs += [(m, nd, al) for m, nd in _LINEAR.items() for al in (False, True)]
    for mode, nd, al in configs:
        for desc, spec in _SPECS:
            kw = dict(spec)
            if desc == "up size":
                kw["size"] = _UP[nd]
            elif desc == "down size":
                kw["size"] = _DOWN[nd]
            elif desc == "sf tuple":
                kw["scale_factor"] = _SF_TUPLE[nd]
            kw["mode"] = mode
            if al is not None:
                kw["align_corners"] = al
            out.append(Sample((randn(rng, _SHAPES[nd], dtype),), kw, f"{mode} {nd}d {desc} ac={al}"))
    # odd sizes, batch 1, an integer size and scale 2
    out += [
        Sample((randn(rng, (1, 1, 6, 5), dtype),), {"scale_factor": 2, "mode": "bilinear"}, "x2"),
        Sample((randn(rng, (1, 1, 6, 5), dtype),), {"size": 4, "mode": "bicubic"}, "int size"),
        Sample((randn(rng, (1, 2, 7, 9), dtype),), {"size": (1, 1), "mode": "bilinear", "align_corners": True}, "to 1x1 ac"),
        Sample((randn(rng, (1, 2, 4, 4), dtype),), {"scale_factor": 2, "mode": "nearest"}, "nearest x2"),
        Sample((randn(rng, (2, 1, 1, 1, 3), dtype),), {"size": (2, 3, 5), "mode": "trilinear"}, "from 1"),
    ]
    return out


def _interp_torch(t, x, **kw):
    return t.nn.functional.interpolate(x, **kw)


def _interp_errors():
    x3 = np.ones((1, 2, 5), np.float32)
    x4 = np.ones((1, 2, 5, 5), np.float32)
    return [
        ErrorCase((x3,), {"size": 4, "mode": "bilinear"}, ValueError, "4-D"),
        ErrorCase((x4,), {"size": 4, "mode": "trilinear"}, ValueError, "5-D"),
        ErrorCase((x4,), {"size": 4, "mode": "linear"}, ValueError, "3-D"),
        ErrorCase((np.ones((5, 5), np.float32),), {"size": 4}, ValueError, "input"),
        ErrorCase((x4,), {"size": 4, "scale_factor": 2.0}, ValueError, "exactly one"),
        ErrorCase((x4,), {"mode": "bilinear"}, ValueError, "exactly one"),
        ErrorCase((x4,), {"size": 4, "align_corners": True}, ValueError, "align_corners"),
        ErrorCase((x4,), {"size": 4, "mode": "bilinear", "antialias": True}, ValueError, "antialias"),
        ErrorCase((x4,), {"size": (4, 4, 4), "mode": "bilinear"}, TypeError, "size"),
        ErrorCase((x4,), {"scale_factor": -2.0, "mode": "bilinear"}, ValueError, "scale_factor"),
        ErrorCase((x4,), {"scale_factor": 0.1, "mode": "bilinear"}, ValueError, "sizes must be > 0"),
        ErrorCase((x4,), {"size": 4, "recompute_scale_factor": True}, ValueError, "recompute_scale_factor"),
        ErrorCase((x4,), {"size": 4, "mode": "area"}, ValueError, "mode"),
        ErrorCase((x4,), {"size": 4, "mode": "bilinear", "align_corners": 1}, TypeError, "align_corners"),
        ErrorCase((x4.astype(np.int32),), {"size": 4}, TypeError, "float32 or float64"),
    ]


def _interp_bench(rng, dtype, size):
    shape = {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}[size]
    return Sample((randn(rng, shape, dtype),), {"scale_factor": 2, "mode": "bilinear", "align_corners": False})


# --- affine_grid --------------------------------------------------------------------------------


def _ag_ref(theta, size, align_corners=False):
    sp = size[2:]
    k = len(sp)

    def lin(n):
        if n <= 1:
            return np.zeros(1)
        v = np.linspace(-1, 1, n)
        return v if align_corners else v * (n - 1) / n

    coords = np.meshgrid(*[lin(n) for n in sp], indexing="ij")  # z?, y, x
    base = np.stack([c for c in reversed(coords)] + [np.ones(sp)], axis=-1)  # (..., x, y, [z,] 1)
    return np.einsum("...j,nij->n...i", base, theta).astype(theta.dtype)


def _ag_torch(t, theta, size, align_corners=False):
    import warnings

    with warnings.catch_warnings():  # torch warns about size-1 dims with align_corners=True
        warnings.simplefilter("ignore", UserWarning)
        return t.nn.functional.affine_grid(theta, size, align_corners=align_corners)


def _ag_samples(rng, dtype):
    out = []
    for size in [(2, 3, 4, 5), (1, 1, 1, 3), (2, 2, 3, 4, 5), (1, 1, 2, 1, 3)]:
        k = len(size) - 2
        for al in (False, True):
            out.append(Sample((randn(rng, (size[0], k, k + 1), dtype),), {"size": size, "align_corners": al}, f"{size} {al}"))
    return out


def _ag_errors():
    t = np.ones((2, 2, 3), np.float32)
    return [
        ErrorCase((np.ones((2, 3, 3), np.float32),), {"size": (2, 1, 4, 4)}, ValueError, "theta"),
        ErrorCase((t,), {"size": (3, 1, 4, 4)}, ValueError, "theta"),
        ErrorCase((t,), {"size": (2, 1, 4, 4, 4)}, ValueError, "theta"),
        ErrorCase((t,), {"size": (2, 4, 4)}, TypeError, "size"),
        ErrorCase((t,), {"size": (2, 1, 0, 4)}, ValueError, "size"),
        ErrorCase((t.astype(np.int64),), {"size": (2, 1, 4, 4)}, TypeError, "float32 or float64"),
    ]


# --- grid_sample --------------------------------------------------------------------------------


def _unnorm(c, n, align):
    return (c + 1) / 2 * (n - 1) if align else ((c + 1) * n - 1) / 2


def _reflect(v, lo2, hi2):
    if lo2 == hi2:
        return 0.0
    lo, span = lo2 / 2, (hi2 - lo2) / 2
    v = abs(v - lo)
    flips = math.floor(v / span)
    extra = v - flips * span
    return extra + lo if flips % 2 == 0 else span - extra + lo


def _pad(v, n, padding, align):
    if padding == "border":
        return min(max(v, 0.0), n - 1.0)
    if padding == "reflection":
        v = _reflect(v, 0, 2 * (n - 1)) if align else _reflect(v, -1, 2 * n - 1)
        return min(max(v, 0.0), n - 1.0)
    return v


def _gs_ref(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    if x.ndim == 5:
        return _gs_ref3(x, grid, mode, padding_mode, align_corners)
    N, C, H, W = x.shape
    Ho, Wo = grid.shape[1:3]
    out = np.zeros((N, C, Ho, Wo))

    def val(n, yy, xx):
        if 0 <= yy < H and 0 <= xx < W:
            return x[n, :, yy, xx].astype(np.float64)
        return np.zeros(C)

    for n, h, w in itertools.product(range(N), range(Ho), range(Wo)):
        gx, gy = float(grid[n, h, w, 0]), float(grid[n, h, w, 1])
        ix, iy = _unnorm(gx, W, align_corners), _unnorm(gy, H, align_corners)
        if mode == "bicubic":
            x0, y0 = math.floor(ix), math.floor(iy)
            cx, cy = _cubic(ix - x0), _cubic(iy - y0)
            acc = np.zeros(C)
            for j in range(4):
                for i in range(4):
                    xx = int(_pad(float(x0 - 1 + i), W, padding_mode, align_corners))
                    yy = int(_pad(float(y0 - 1 + j), H, padding_mode, align_corners))
                    acc += cx[i] * cy[j] * val(n, yy, xx)
            out[n, :, h, w] = acc
            continue
        ix, iy = _pad(ix, W, padding_mode, align_corners), _pad(iy, H, padding_mode, align_corners)
        if mode == "nearest":
            out[n, :, h, w] = val(n, int(np.rint(iy)), int(np.rint(ix)))
        else:
            x0, y0 = math.floor(ix), math.floor(iy)
            tx, ty = ix - x0, iy - y0
            out[n, :, h, w] = ((1 - tx) * (1 - ty) * val(n, y0, x0) + tx * (1 - ty) * val(n, y0, x0 + 1)
                               + (1 - tx) * ty * val(n, y0 + 1, x0) + tx * ty * val(n, y0 + 1, x0 + 1))
    return out.astype(x.dtype)


def _gs_ref3(x, grid, mode, padding_mode, align_corners):
    """5-D input: trilinear ("bilinear") or nearest, grid (N, D', H', W', 3) of (x, y, z)."""
    N, C = x.shape[:2]
    sp = x.shape[2:]  # D, H, W
    osp = grid.shape[1:4]
    out = np.zeros((N, C) + osp)

    def val(n, p):  # p = (z, y, x)
        if all(0 <= i < L for i, L in zip(p, sp)):
            return x[(n, slice(None)) + tuple(p)].astype(np.float64)
        return np.zeros(C)

    for n, *o in itertools.product(range(N), *[range(L) for L in osp]):
        # grid component j (x, y, z) indexes input dim 2 - j (W, H, D)
        pos = [_pad(_unnorm(float(grid[(n, *o, 2 - d)]), sp[d], align_corners), sp[d], padding_mode, align_corners)
               for d in range(3)]
        if mode == "nearest":
            out[(n, slice(None), *o)] = val(n, [int(np.rint(v)) for v in pos])
            continue
        lo = [math.floor(v) for v in pos]
        acc = np.zeros(C)
        for bits in itertools.product((0, 1), repeat=3):
            wgt = 1.0
            for v, l, b in zip(pos, lo, bits):
                wgt *= (v - l) if b else (1 - (v - l))
            acc += wgt * val(n, [l + b for l, b in zip(lo, bits)])
        out[(n, slice(None), *o)] = acc
    return out.astype(x.dtype)


def _coords(rng, n, count, align, lo=-3.0, hi=None):
    """Normalized coordinates whose pixel positions keep their fractional part in [0.1, 0.4] or
    [0.6, 0.9]: away from the kinks of bilinear/clipping/reflection (integers, and -0.5 / n - 0.5)
    and from nearest's rounding jumps (half-integers)."""
    hi = n + 2.0 if hi is None else hi
    if n == 1 and align:  # every coordinate maps to pixel 0
        return rng.uniform(-1.5, 1.5, count)
    whole = rng.integers(int(lo), int(hi), count).astype(np.float64)
    frac = rng.uniform(0.1, 0.4, count) + 0.5 * rng.integers(0, 2, count)
    pix = whole + frac
    return pix / (n - 1) * 2 - 1 if align else (2 * pix + 1) / n - 1


def _gs_grid(rng, N, Ho, Wo, H, W, align, dtype, inside=False):
    lo, hx, hy = (0.0, W - 1.0, H - 1.0) if inside else (-3.0, W + 2.0, H + 2.0)
    gx = _coords(rng, W, N * Ho * Wo, align, lo, hx)
    gy = _coords(rng, H, N * Ho * Wo, align, lo, hy)
    return np.stack([gx, gy], -1).reshape(N, Ho, Wo, 2).astype(dtype)


def _gs_grid3(rng, N, out, sp, align, dtype):
    """A 5-D grid (N, *out, 3) for input spatial size sp = (D, H, W): components (x, y, z)."""
    count = N * int(np.prod(out))
    comps = [_coords(rng, n, count, align, -3.0, n + 2.0) for n in reversed(sp)]
    return np.stack(comps, -1).reshape((N,) + tuple(out) + (3,)).astype(dtype)


def _gs_samples(rng, dtype):
    out = []
    for mode in ("bilinear", "nearest", "bicubic"):
        for pad in ("zeros", "border", "reflection"):
            for al in (False, True):
                x = randn(rng, (2, 3, 5, 6), dtype)
                g = _gs_grid(rng, 2, 3, 4, 5, 6, al, dtype)
                out.append(Sample((x, g), {"mode": mode, "padding_mode": pad, "align_corners": al}, f"{mode} {pad} {al}"))
    out.append(Sample((randn(rng, (1, 2, 4, 5), dtype), _gs_grid(rng, 1, 6, 7, 4, 5, False, dtype, inside=True)), {}, "defaults, upsampling grid"))
    out.append(Sample((randn(rng, (1, 1, 1, 1), dtype), _gs_grid(rng, 1, 2, 3, 1, 1, True, dtype)), {"align_corners": True}, "1x1 input"))
    # 5-D (volumetric): trilinear ("bilinear") and nearest
    for mode in ("bilinear", "nearest"):
        for pad in ("zeros", "border", "reflection"):
            for al in (False, True):
                x = randn(rng, (2, 2, 3, 4, 5), dtype)
                g = _gs_grid3(rng, 2, (2, 3, 4), (3, 4, 5), al, dtype)
                out.append(Sample((x, g), {"mode": mode, "padding_mode": pad, "align_corners": al}, f"5d {mode} {pad} {al}"))
    out.append(Sample((randn(rng, (1, 2, 1, 1, 1), dtype), _gs_grid3(rng, 1, (2, 1, 3), (1, 1, 1), True, dtype)),
                      {"align_corners": True}, "5d 1x1x1 input"))
    return out


def _gs_errors():
    x = np.ones((2, 3, 4, 5), np.float32)
    g = np.zeros((2, 3, 3, 2), np.float32)
    x5 = np.ones((2, 3, 4, 4, 4), np.float32)
    g5 = np.zeros((2, 2, 3, 3, 3), np.float32)
    return [
        ErrorCase((x, np.zeros((2, 3, 3, 3), np.float32)), {}, ValueError, "argument 'grid'"),
        ErrorCase((x, np.zeros((1, 3, 3, 2), np.float32)), {}, ValueError, "argument 'grid'"),
        ErrorCase((x, np.zeros((2, 9, 2), np.float32)), {}, ValueError, "argument 'grid'"),
        ErrorCase((np.ones((2, 3, 4), np.float32), g), {}, ValueError, "argument 'input'"),
        # 5-D: grid (N, D', H', W', 3)
        ErrorCase((x5, g), {}, ValueError, "argument 'grid'"),
        ErrorCase((x5, np.zeros((2, 2, 3, 3, 2), np.float32)), {}, ValueError, "argument 'grid'"),
        ErrorCase((x5, np.zeros((1, 2, 3, 3, 3), np.float32)), {}, ValueError, "argument 'grid'"),
        ErrorCase((x5, g5), {"mode": "bicubic"}, ValueError, "argument 'mode' 'bicubic' supports only 4-D"),
        ErrorCase((x, g5), {}, ValueError, "argument 'grid'"),
        ErrorCase((np.ones((2, 3, 4, 4, 4, 4), np.float32), g), {}, ValueError, "argument 'input'"),
        ErrorCase((np.ones((2, 3, 0, 4, 4), np.float32), g5), {}, ValueError, "argument 'input' has an empty"),
        ErrorCase((x, g), {"mode": "area"}, ValueError, "mode"),
        ErrorCase((x, g), {"padding_mode": "wrap"}, ValueError, "padding_mode"),
        ErrorCase((x, g.astype(np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x.astype(np.int32), g), {}, TypeError, "float32 or float64"),
    ]


def _gs_bench(rng, dtype, size):
    from .. import affine_grid

    shape = {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}[size]
    N = shape[0]
    theta = (np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) + 0.2 * rng.standard_normal((N, 2, 3))).astype(dtype)
    grid = affine_grid(theta, shape, align_corners=False)
    return Sample((randn(rng, shape, dtype), grid), {"mode": "bilinear", "padding_mode": "zeros", "align_corners": False})


# --- dispatch paths (tests/test_paths.py) ---------------------------------------------------------
# Each large enough for the parallel kernels at 2 threads. interpolate: one kernel, the path is the
# mode (its tap maps). grid_sample: one gather kernel, the path is the mode and the input's rank
# (explain reports the taps per output pixel); the (mode, padding_mode, align_corners) combinations
# are those of the former thread-count tests, on 4-D input (2, 32, 24, 24) with a (2, 32, 40) grid
# and 5-D input (2, 32, 10, 12, 14) with a (2, 8, 12, 16) grid, the grids kink-free (``_coords``).

_INTERP_PATHS = [
    ((2, 16, 20, 24), {"scale_factor": 2, "mode": "bilinear"}),
    ((2, 16, 20, 24), {"size": (47, 49), "mode": "bicubic", "align_corners": True}),
    ((2, 16, 30, 24), {"scale_factor": 1.7, "mode": "nearest"}),
    ((2, 8, 10, 12, 14), {"scale_factor": 1.6, "mode": "trilinear"}),
]


def _interp_paths(rng, dtype):
    return [PathCase(kw["mode"], Sample((randn(rng, shape, dtype),), dict(kw), str(shape)),
                     expect={"kernel": f"interpolate_fwd_{_sfx(dtype)}_parallel", "backend": "parallel",
                             "mode": kw["mode"]},
                     explain=dict(kw))
            for shape, kw in _INTERP_PATHS]


_GS_PATHS = {
    4: [("bilinear", "zeros", False), ("bilinear", "reflection", True), ("nearest", "border", False),
        ("bicubic", "reflection", False)],
    5: [("bilinear", "zeros", False), ("bilinear", "border", True), ("nearest", "reflection", False)],
}
_GS_TAPS = {4: {"bilinear": 4, "nearest": 1, "bicubic": 16}, 5: {"bilinear": 8, "nearest": 1}}


def _gs_paths(rng, dtype):
    out = []
    for rank, combos in _GS_PATHS.items():
        for mode, pad, al in combos:
            if rank == 4:
                x, g = randn(rng, (2, 32, 24, 24), dtype), _gs_grid(rng, 2, 32, 40, 24, 24, al, dtype)
            else:
                x, g = randn(rng, (2, 32, 10, 12, 14), dtype), _gs_grid3(rng, 2, (8, 12, 16), (10, 12, 14), al, dtype)
            kw = {"mode": mode, "padding_mode": pad, "align_corners": al}
            out.append(PathCase(f"{mode}_{rank - 2}d", Sample((x, g), kw, f"{rank}-D {mode} {pad} {al}"),
                                expect={"kernel": f"grid_sample_gather_{_sfx(dtype)}_parallel", "backend": "parallel",
                                        "taps": _GS_TAPS[rank][mode]},
                                explain={"grid_shape": g.shape, "mode": mode}))
    return out


_TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}

_RESAMPLE_TABLE = [
    OpInfo(
        name="interpolate",
        samples=_interp_samples,
        ref=_interp_ref,
        torch_ref=_interp_torch,
        errors=_interp_errors,
        tol=_TOL,
        bench=_interp_bench,
        paths=_interp_paths,
    ),
    OpInfo(
        name="affine_grid",
        samples=_ag_samples,
        ref=_ag_ref,
        torch_ref=_ag_torch,
        errors=_ag_errors,
        tol=_TOL,
        bench=lambda rng, dtype, size: Sample(
            (randn(rng, ({"small": 1, "large": 8}[size], 2, 3), dtype),),
            {"size": {"small": (1, 4, 8, 8), "large": (8, 64, 56, 56)}[size]},
        ),
    ),
    OpInfo(
        name="grid_sample",
        samples=_gs_samples,
        ref=_gs_ref,
        torch_ref=lambda t, x, g, mode="bilinear", padding_mode="zeros", align_corners=False: t.nn.functional.grid_sample(
            x, g, mode=mode, padding_mode=padding_mode, align_corners=align_corners
        ),
        grad_args=(0, 1),
        errors=_gs_errors,
        tol=_TOL,
        bench=_gs_bench,
        nondiff_kinks=True,
        paths=_gs_paths,
    ),
]

TABLE = TABLE + _RESAMPLE_TABLE
