"""``correlation``: the FlowNet correlation layer (FlowNetC's "cost volume").

Reference: the original FlowNet Caffe ``CorrelationLayer`` (lmb-freiburg/flownet2
``src/caffe/layers/correlation_layer.cu``, multiplicative mode), also ported as
NVIDIA/flownet2-pytorch ``Correlation(pad_size, kernel_size, max_displacement, stride1, stride2)``:

* both inputs are zero-padded by ``pad_size`` on each spatial side (Hp = H + 2*pad_size);
* ``kernel_radius = (kernel_size - 1) // 2``, ``border = max_displacement + kernel_radius``,
  ``H_out = ceil((Hp - 2*border) / stride1)`` (W_out likewise);
* ``r = max_displacement // stride2``, ``D = 2r + 1``: output channel ``tc = (tj + r) * D + (ti + r)``
  for the displacement ``(dy, dx) = (tj * stride2, ti * stride2)``, ``tj, ti in [-r, r]``;
* ``out[n, tc, oy, ox] = sum_{c, j, i} x1p[n, c, y1 + j, x1 + i] * x2p[n, c, y1 + j + dy, x1 + i + dx]
  / (kernel_size**2 * C)`` with ``y1 = oy*stride1 + max_displacement``, ``x1 = ox*stride1 +
  max_displacement`` and ``j, i in [0, kernel_size)`` (padded coordinates: the patch is centred
  at ``oy*stride1 + border``).

For ``kernel_size = 1`` (FlowNetC's setting) this is exactly flownet2-pytorch's CUDA kernel. For
``kernel_size > 1`` flownet2-pytorch centres the patch ``kernel_radius`` pixels earlier (at
``oy*stride1 + max_displacement``) and then reads outside the padded image; fastops follows the
Caffe layer, which always stays inside it. ``kernel_size`` must be odd, as in Caffe.

Kernels: the forward runs over (n, output row) items, accumulating all D*D displacement rows of that
output row in a (D*D, W_out) tile that stays in L1 (81 x 64 floats = 20 KB for FlowNetC-like
shapes), with the innermost loop contiguous over W_out. The backward runs over (n, block of
``_CB`` channels), each iteration owning its channels' gradient planes (no races, bitwise the same
for any thread count); the block lets one grad_output row serve ``_CB`` channels from cache.
"""

import numpy as np
from numba import prange

from .. import _dispatch, _threads
from .._op import op
from .._validate import float_arrays, grad_like, int_scalar
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND

_OP = "correlation"
# Channels per backward iteration: grad_output rows (D*D x W_out) are re-read once per block
# instead of once per channel.
_CB = 8


def _fwd_template(x1p, x2p, KS, R, s1, s2, md, out):
    N, C = x1p.shape[0], x1p.shape[1]
    D2, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    D = 2 * R + 1
    nel = T(KS * KS * C)
    for it in prange(N * Ho):
        n = it // Ho
        oy = it % Ho
        acc = np.zeros((D2, Wo), T)
        y1 = oy * s1 + md
        for c in range(C):
            for j in range(KS):
                r1 = x1p[n, c, y1 + j]
                for tj in range(D):
                    r2 = x2p[n, c, y1 + j + (tj - R) * s2]
                    for i in range(KS):
                        b1 = md + i
                        for ti in range(D):
                            a = acc[tj * D + ti]
                            b2 = md + i + (ti - R) * s2
                            if s1 == 1:
                                p1 = r1[b1:b1 + Wo]
                                p2 = r2[b2:b2 + Wo]
                                for ox in range(Wo):
                                    a[ox] += p1[ox] * p2[ox]
                            else:
                                for ox in range(Wo):
                                    a[ox] += r1[b1 + ox * s1] * r2[b2 + ox * s1]
        for tc in range(D2):
            for ox in range(Wo):
                out[n, tc, oy, ox] = acc[tc, ox] / nel


def _bwd_template(g, x1p, x2p, KS, R, s1, s2, md, CB, gx1p, gx2p):
    # g is grad_output already divided by KS*KS*C
    N, C, Hp, Wp = x1p.shape
    Ho, Wo = g.shape[2], g.shape[3]
    D = 2 * R + 1
    NB = (C + CB - 1) // CB
    for it in prange(N * NB):
        n = it // NB
        c0 = (it % NB) * CB
        c1 = min(c0 + CB, C)
        for c in range(c0, c1):
            for y in range(Hp):
                for x in range(Wp):
                    gx1p[n, c, y, x] = T(0)
                    gx2p[n, c, y, x] = T(0)
        for oy in range(Ho):
            y1 = oy * s1 + md
            for j in range(KS):
                for tj in range(D):
                    y2 = y1 + j + (tj - R) * s2
                    for i in range(KS):
                        b1 = md + i
                        for ti in range(D):
                            b2 = md + i + (ti - R) * s2
                            gr = g[n, tj * D + ti, oy]
                            for c in range(c0, c1):
                                r1 = x1p[n, c, y1 + j]
                                r2 = x2p[n, c, y2]
                                q1 = gx1p[n, c, y1 + j]
                                q2 = gx2p[n, c, y2]
                                if s1 == 1:
                                    p1 = r1[b1:b1 + Wo]
                                    p2 = r2[b2:b2 + Wo]
                                    u1 = q1[b1:b1 + Wo]
                                    u2 = q2[b2:b2 + Wo]
                                    for ox in range(Wo):
                                        u1[ox] += gr[ox] * p2[ox]
                                        u2[ox] += gr[ox] * p1[ox]
                                else:
                                    for ox in range(Wo):
                                        q1[b1 + ox * s1] += gr[ox] * r2[b2 + ox * s1]
                                        q2[b2 + ox * s1] += gr[ox] * r1[b1 + ox * s1]


_TEMPLATES = {"fwd": _fwd_template, "bwd": _bwd_template}
_KERNELS = KernelSet("correlation", _TEMPLATES)


def _run(which, dtype, items, work, *args):
    _KERNELS.run(which, dtype, _dispatch.parallel_backend(dtype, work, _threads.get_num_threads(), "transcendental", units=items), *args)


def _int(name, v, minimum):
    v = int_scalar(_OP, name, v)
    if v < minimum:
        raise ValueError(f"{_OP}: argument '{name}' must be >= {minimum}, got {v}")
    return v


def _geometry(shape, kernel_size, max_displacement, stride1, stride2, pad_size):
    ks = _int("kernel_size", kernel_size, 1)
    if ks % 2 == 0:
        raise ValueError(f"{_OP}: argument 'kernel_size' must be odd, got {ks}")
    md = _int("max_displacement", max_displacement, 0)
    s1 = _int("stride1", stride1, 1)
    s2 = _int("stride2", stride2, 1)
    p = _int("pad_size", pad_size, 0)
    N, C, H, W = shape
    Hp, Wp = H + 2 * p, W + 2 * p
    border = md + (ks - 1) // 2
    if Hp - 2 * border < 1 or Wp - 2 * border < 1:
        raise ValueError(
            f"{_OP}: kernel_size={ks} with max_displacement={md} needs a padded input of at least "
            f"{2 * border + 1}x{2 * border + 1}, got {Hp}x{Wp} (input {tuple(shape)}, pad_size={p})"
        )
    Ho = -(-(Hp - 2 * border) // s1)
    Wo = -(-(Wp - 2 * border) // s1)
    R = md // s2
    return dict(ks=ks, md=md, s1=s1, s2=s2, p=p, Hp=Hp, Wp=Wp, Ho=Ho, Wo=Wo, R=R, D2=(2 * R + 1) ** 2)


def _prepare(x1, x2, kernel_size, max_displacement, stride1, stride2, pad_size):
    a, b = float_arrays(_OP, ("x1", "x2"), (x1, x2))
    if a.ndim != 4:
        raise ValueError(f"{_OP}: argument 'x1' must be 4-D (N, C, H, W), got shape {a.shape}")
    if b.shape != a.shape:
        raise ValueError(f"{_OP}: x1 and x2 must have the same shape, got x1 {a.shape}, x2 {b.shape}")
    if a.shape[1] == 0:
        raise ValueError(f"{_OP}: argument 'x1' has no channels, shape {a.shape}")
    geo = _geometry(a.shape, kernel_size, max_displacement, stride1, stride2, pad_size)
    return a, b, geo


def _padded(x, p):
    if p == 0:
        return x
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2 * p, W + 2 * p), x.dtype)
    out[:, :, p:p + H, p:p + W] = x
    return out


@op
def correlation(x1, x2, kernel_size=1, max_displacement=4, stride1=1, stride2=1, pad_size=4):
    """FlowNet correlation layer (multiplicative), see the module docstring for the exact formula.

    ``x1``, ``x2``: (N, C, H, W), same shape and dtype. Returns
    (N, (2*(max_displacement // stride2) + 1)**2, H_out, W_out), normalised by kernel_size**2 * C.

    Backward: ``correlation.backward(grad_output, x1, x2, ...)`` -> ``(grad_x1, grad_x2)``.
    """
    a, b, geo = _prepare(x1, x2, kernel_size, max_displacement, stride1, stride2, pad_size)
    N, C = a.shape[:2]
    out = np.empty((N, geo["D2"], geo["Ho"], geo["Wo"]), a.dtype)
    if out.size:
        work = N * C * geo["D2"] * geo["Ho"] * geo["Wo"] * geo["ks"] ** 2
        _run("fwd", a.dtype, N * geo["Ho"], work, _padded(a, geo["p"]), _padded(b, geo["p"]), geo["ks"], geo["R"],
             geo["s1"], geo["s2"], geo["md"], out)
    return out


@correlation.defbackward
def _(grad_output, x1, x2, kernel_size=1, max_displacement=4, stride1=1, stride2=1, pad_size=4):
    a, b, geo = _prepare(x1, x2, kernel_size, max_displacement, stride1, stride2, pad_size)
    N, C, H, W = a.shape
    g = grad_like(_OP, grad_output, (N, geo["D2"], geo["Ho"], geo["Wo"]), a.dtype)
    p = geo["p"]
    gx1p = np.empty((N, C, geo["Hp"], geo["Wp"]), a.dtype)
    gx2p = np.empty_like(gx1p)
    if gx1p.size:
        gs = g / a.dtype.type(geo["ks"] ** 2 * C)
        work = N * C * geo["D2"] * geo["Ho"] * geo["Wo"] * geo["ks"] ** 2 * 2
        _run("bwd", a.dtype, N * -(-C // _CB), work, gs, _padded(a, p), _padded(b, p), geo["ks"], geo["R"], geo["s1"],
             geo["s2"], geo["md"], _CB, gx1p, gx2p)
    if p:
        gx1p = np.ascontiguousarray(gx1p[:, :, p:p + H, p:p + W])
        gx2p = np.ascontiguousarray(gx2p[:, :, p:p + H, p:p + W])
    return gx1p, gx2p


@correlation.defexplain
def _(shape, dtype="float32", kernel_size=1, max_displacement=4, stride1=1, stride2=1, pad_size=4, **params):
    geo = _geometry(tuple(shape), kernel_size, max_displacement, stride1, stride2, pad_size)
    N, C = shape[:2]
    nt = _threads.get_num_threads()
    work = N * C * geo["D2"] * geo["Ho"] * geo["Wo"] * geo["ks"] ** 2
    be = _dispatch.parallel_backend(dtype, work, nt, "transcendental", units=N * geo["Ho"])
    return {
        "kernel": _KERNELS.kernel_name("fwd", dtype, be),
        "backend": be,
        "backward_backend": _dispatch.parallel_backend(dtype, 2 * work, nt, "transcendental", units=N * -(-C // _CB)),
        "threads": nt,
        "output_shape": (N, geo["D2"], geo["Ho"], geo["Wo"]),
    }


__all__ = ["correlation"]
