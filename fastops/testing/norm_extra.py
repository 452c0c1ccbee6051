"""Op table entries for local_response_norm and l2_normalize (the normalization ops of the
regularization helper; batch/layer/group/instance norm live in their own module)."""
import numpy as np

from . import ErrorCase, OpInfo, Sample, randn

# ---------------------------------------------------------------------------------------------
# local_response_norm


def _lrn_ref(x, size, alpha=1e-4, beta=0.75, k=1.0):
    # torch: zero-pad size//2 channels in front, (size-1)//2 behind, average x**2 over `size`
    C = x.shape[1]
    sq = x * x
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    sqp = np.pad(sq, pad)
    win = sum(np.take(sqp, np.arange(j, j + C), axis=1) for j in range(size))
    d = k + alpha * win / size
    return (x / d**beta).astype(x.dtype)


def _lrn_samples(rng, dtype):
    out = []
    cases = [
        ((2, 7, 5), 3, {}),
        ((2, 7, 5), 4, {"alpha": 0.5, "beta": 0.6, "k": 2.0}),
        ((2, 6, 3, 4), 5, {"alpha": 1.0, "beta": 0.75, "k": 1.0}),
        ((2, 6, 3, 4), 2, {"alpha": 0.3, "beta": 1.5, "k": 0.5}),
        ((1, 5, 2, 3, 2), 1, {"alpha": 0.2}),
        ((1, 4, 2, 3, 2), 8, {"alpha": 2.0, "beta": 0.75, "k": 1.0}),  # window wider than C
        ((0, 3, 4), 3, {}),
    ]
    for shape, size, kw in cases:
        out.append(Sample((randn(rng, shape, dtype),), dict(size=size, **kw)))
    return out


def _lrn_errors():
    x = np.ones((2, 4, 3), np.float32)
    return [
        ErrorCase((np.ones((2, 4, 3), np.int64),), {"size": 3}, TypeError, "float32 or float64"),
        ErrorCase(([1.0],), {"size": 3}, TypeError, "numpy.ndarray"),
        ErrorCase((np.ones((2, 4), np.float32),), {"size": 3}, ValueError, "3 or more dims"),
        ErrorCase((x,), {"size": 0}, ValueError, "size"),
        ErrorCase((x,), {"size": 2.5}, TypeError, "size"),
        ErrorCase((x,), {"size": 3, "alpha": "a"}, TypeError, "alpha"),
        ErrorCase((x,), {"size": 3, "beta": None}, TypeError, "beta"),
        ErrorCase((x,), {"size": 3, "k": float("nan")}, ValueError, "'k'"),
    ]


def _lrn_bench(rng, dtype, size):
    shape = {"small": (2, 8, 5, 5), "large": (16, 96, 55, 55)}[size]  # AlexNet conv1
    return Sample((randn(rng, shape, dtype),), {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})


# ---------------------------------------------------------------------------------------------
# l2_normalize


def _l2_ref(x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    if across_spatial:
        # (an explicit row length: reshape(0, -1) of an empty batch is ambiguous)
        ss = (x * x).reshape(x.shape[0], int(np.prod(x.shape[1:]))).sum(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    else:
        ss = (x * x).sum(axis=1, keepdims=True)
    y = x / np.sqrt(ss + eps)
    if scale is not None:
        y = y * (scale[0] if channel_shared else scale.reshape((1, -1) + (1,) * (x.ndim - 2)))
    return y.astype(x.dtype)


def _l2_torch(t, x, scale=None, across_spatial=False, channel_shared=False, eps=1e-10):
    # Caffe's Normalize in torch ops (F.normalize clamps the norm at eps instead of adding eps)
    if across_spatial:
        ss = (x * x).reshape(x.shape[0], int(np.prod(x.shape[1:]))).sum(1).reshape((-1,) + (1,) * (x.dim() - 1))
    else:
        ss = (x * x).sum(1, keepdim=True)
    y = x / t.sqrt(ss + eps)
    if scale is not None:
        y = y * (scale if channel_shared else scale.reshape((1, -1) + (1,) * (x.dim() - 2)))
    return y


def _l2_samples(rng, dtype):
    out = []
    cases = [((2, 5, 3, 4), False, False), ((2, 5, 3, 4), True, False), ((2, 5, 3, 4), False, True),
             ((2, 5, 3, 4), True, True), ((3, 4), False, False), ((2, 3, 5), True, False), ((1, 3, 70), False, False)]
    for shape, across, shared in cases:
        x = randn(rng, shape, dtype)
        s = rng.uniform(0.5, 2.0, (1,) if shared else (shape[1],)).astype(dtype)
        out.append(Sample((x, s), {"across_spatial": across, "channel_shared": shared}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype), None), {}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype), None), {"across_spatial": True, "eps": 0.5}))
    out.append(Sample((randn(rng, (2, 4, 3), dtype, scale=0.1), rng.uniform(1, 2, 4).astype(dtype)), {"eps": 0.01}))
    out.append(Sample((randn(rng, (0, 4, 3), dtype), np.ones(4, dtype)), {}, "empty"))
    return out


def _l2_errors():
    x = np.ones((2, 4, 3, 3), np.float32)
    s = np.ones(4, np.float32)
    return [
        ErrorCase((np.ones((2, 4), np.int32), None), {}, TypeError, "float32 or float64"),
        ErrorCase((np.ones(4, np.float32), None), {}, ValueError, "2 or more dims"),
        ErrorCase((x, np.ones(3, np.float32)), {}, ValueError, "scale"),
        ErrorCase((x, s), {"channel_shared": True}, ValueError, "scale"),
        ErrorCase((x, np.ones((4, 1), np.float32)), {}, ValueError, "scale"),
        ErrorCase((x, np.ones(4, np.float64)), {}, TypeError, "mixed"),
        ErrorCase((x, s), {"eps": -1.0}, ValueError, "eps"),
        ErrorCase((x, s), {"across_spatial": 1}, TypeError, "across_spatial"),
        ErrorCase((x, s), {"channel_shared": "no"}, TypeError, "channel_shared"),
    ]


def _l2_bench(rng, dtype, size):
    shape = {"small": (2, 8, 4, 4), "large": (16, 512, 38, 38)}[size]  # SSD conv4_3
    return Sample((randn(rng, shape, dtype), np.full(shape[1], 20.0, dtype)), {})


TABLE = [
    OpInfo(
        name="local_response_norm",
        samples=_lrn_samples,
        ref=_lrn_ref,
        torch_ref=lambda t, x, **k: t.nn.functional.local_response_norm(x, **k),
        grad_args=(0,),
        errors=_lrn_errors,
        tol={np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)},
        bench=_lrn_bench,
    ),
    OpInfo(
        name="l2_normalize",
        samples=_l2_samples,
        ref=_l2_ref,
        torch_ref=_l2_torch,
        grad_args=(0, 1),
        errors=_l2_errors,
        tol={np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)},
        bench=_l2_bench,
    ),
]
