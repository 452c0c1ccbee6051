"""Op table: deform_conv2d and correlation (docs/ops.md, "Linear and convolution").

References are independent NumPy implementations written from torchvision's
``deform_conv2d_kernel.cpp`` (bilinear_interpolate rule) and the FlowNet Caffe correlation layer.
torchvision itself does not load against the local torch, so the torch cross-check of
deform_conv2d is a composition of ``F.grid_sample(align_corners=True, padding_mode="zeros")``
(the same zero-outside bilinear rule) and a matmul; correlation's is the formula in torch ops.
"""
import numpy as np

from . import ErrorCase, OpInfo, Sample, randn


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
    # checked in tests/test_deform_corr.py
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


TABLE = [
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
    ),
]
