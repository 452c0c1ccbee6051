"""triplet_margin_loss (``F.triplet_margin_loss``): ``max(margin + d(a, p) - d(a, n), 0)`` per row,
``d(x, y) = ||x - y + eps||_p`` over the last dim (``swap``: ``d(a, n)`` replaced by
``min(d(a, n), d(p, n))``). Rows are independent (parallel over rows); the reduction sums the row
losses in ``row_sum``'s fixed order. Backward returns ``(grad_anchor, grad_positive, grad_negative)``.
"""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _threads
from .._elementwise import math_bindings
from .._op import op
from .._validate import choice, float_arrays, grad_like, real_scalar
from ._common import REDUCTIONS, total
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = DGRAD = DIST = UNBOUND


def _dist_inline(a, b, eps, p):
    D = a.size
    s = T(0)
    if p == T(2):
        for k in range(D):
            u = a[k] - b[k] + eps
            s += u * u
        return math.sqrt(s)
    if p == T(1):
        for k in range(D):
            s += abs(a[k] - b[k] + eps)
        return s
    for k in range(D):
        s += abs(a[k] - b[k] + eps) ** p
    return s ** (T(1) / p)


def _dgrad_inline(a, b, eps, p, d, scale, ga, gb):
    # ga += scale * dd/da; gb -= scale * dd/db... (dd/db = -dd/da)
    D = a.size
    if d == T(0):
        return
    for k in range(D):
        u = a[k] - b[k] + eps
        if p == T(2):
            v = u / d
        elif p == T(1):
            v = T(1) if u > T(0) else (T(-1) if u < T(0) else T(0))
        else:
            sg = T(1) if u > T(0) else (T(-1) if u < T(0) else T(0))
            v = sg * abs(u) ** (p - T(1)) / d ** (p - T(1))
        ga[k] += scale * v
        gb[k] -= scale * v


def _fwd_template(A, P, N, margin, p, eps, swap, loss):
    R = A.shape[0]
    for r in prange(R):
        dap = DIST(A[r], P[r], eps, p)
        dan = DIST(A[r], N[r], eps, p)
        if swap:
            dpn = DIST(P[r], N[r], eps, p)
            dan = dpn if (dpn < dan or dpn != dpn) else dan  # torch.min: NaN wins
        h = margin + dap - dan
        loss[r] = T(0) if h <= T(0) else h  # clamp_min keeps NaN


def _bwd_template(A, P, N, margin, p, eps, swap, g, gs, garr, dA, dP, dN):
    R, D = A.shape
    for r in prange(R):
        for k in range(D):
            dA[r, k] = T(0)
            dP[r, k] = T(0)
            dN[r, k] = T(0)
        dap = DIST(A[r], P[r], eps, p)
        dan = DIST(A[r], N[r], eps, p)
        use_pn = False
        dpn = T(0)
        if swap:
            dpn = DIST(P[r], N[r], eps, p)
            if dpn < dan or dpn != dpn:
                use_pn = True
        dmin = dpn if use_pn else dan
        h = margin + dap - dmin
        gi = g[r] if garr else gs
        if not (abs(dap) < np.inf and abs(dan) < np.inf and abs(dpn) < np.inf):
            # a NaN or Inf distance (rare): torch's autograd arithmetic, every branch's coefficient
            # times its distance gradient (0 * NaN = NaN): clamp_min passes where h >= 0, torch.min
            # (swap) sends the gradient to the smaller, half to each when equal, all to both for NaN
            c = gi if h >= T(0) else T(0)
            DGRAD(A[r], P[r], eps, p, dap, c, dA[r], dP[r])
            can = c
            if swap:
                cpn = c
                if dan == dpn:
                    can = c / T(2)
                    cpn = can
                elif dan > dpn:
                    can = T(0)
                elif dan < dpn:
                    cpn = T(0)
                DGRAD(P[r], N[r], eps, p, dpn, -cpn, dP[r], dN[r])
            DGRAD(A[r], N[r], eps, p, dan, -can, dA[r], dN[r])
            continue
        if not (h > T(0)):
            continue
        DGRAD(A[r], P[r], eps, p, dap, gi, dA[r], dP[r])
        if use_pn:
            DGRAD(P[r], N[r], eps, p, dpn, -gi, dP[r], dN[r])
        else:
            DGRAD(A[r], N[r], eps, p, dan, -gi, dA[r], dN[r])


def _bindings(dt, which, variant):
    sfx = _jit.SUFFIX[dt]
    b = math_bindings(dt)
    dist = _jit.inline(_jit.clone(_dist_inline, f"triplet_dist_{sfx}", b))
    dgrad = _jit.inline(_jit.clone(_dgrad_inline, f"triplet_dgrad_{sfx}", b))
    return dict(b, DIST=dist, DGRAD=dgrad)


_KERNELS = KernelSet("triplet_margin_loss", {"fwd": _fwd_template, "bwd": _bwd_template}, bind=_bindings)


def _run(which, dtype, shape, *args):
    be = _dispatch.parallel_backend(dtype, shape[0] * shape[1], _threads.get_num_threads(), "transcendental", units=shape[0])
    _KERNELS.run(which, dtype, be, *args)


NAME = "triplet_margin_loss"


def _prepare(anchor, positive, negative, margin, p, eps, swap, reduction):
    a, pp, n = float_arrays(NAME, ("anchor", "positive", "negative"), (anchor, positive, negative))
    for nm, v in (("anchor", a), ("positive", pp), ("negative", n)):
        if v is None:
            raise TypeError(f"{NAME}: argument '{nm}' must be a numpy.ndarray, got None")
    if not (a.ndim == pp.ndim == n.ndim) or a.ndim not in (1, 2):
        raise ValueError(f"{NAME}: 'anchor', 'positive', 'negative' must all be 1-D (D,) or 2-D (N, D), got "
                         f"shapes {a.shape}, {pp.shape}, {n.shape}")
    if not (a.shape == pp.shape == n.shape):
        raise ValueError(f"{NAME}: shapes must match, got anchor {a.shape}, positive {pp.shape}, negative {n.shape}")
    margin = real_scalar(NAME, "margin", margin, minimum=0.0, min_open=True)
    p = real_scalar(NAME, "p", p, minimum=0.0, min_open=True)
    eps = real_scalar(NAME, "eps", eps)
    if not isinstance(swap, (bool, np.bool_)):
        raise TypeError(f"{NAME}: argument 'swap' must be a bool, got {type(swap).__name__}")
    choice(NAME, "reduction", reduction, REDUCTIONS)
    out_shape = (a.shape[0],) if a.ndim == 2 else ()
    rows = a.shape[0] if a.ndim == 2 else 1
    a2, p2, n2 = (v.reshape(rows, v.shape[-1]) for v in (a, pp, n))  # D = 0 too (-1 can't be inferred)
    return a, a2, p2, n2, margin, p, eps, bool(swap), out_shape


@op
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    """``F.triplet_margin_loss`` for ``(N, D)`` or ``(D,)`` inputs."""
    a, a2, p2, n2, margin, p, eps, swap, out_shape = _prepare(anchor, positive, negative, margin, p, eps, swap, reduction)
    T = a.dtype.type
    R = a2.shape[0]
    loss = np.empty(R, a.dtype)
    if R:
        _run("fwd", a.dtype, a2.shape, a2, p2, n2, T(margin), T(p), T(eps), swap, loss)
    if reduction == "none":
        return loss.reshape(out_shape)
    s = total(loss)
    if reduction == "sum":
        return np.asarray(s, a.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(T(s) / T(R), a.dtype)


@triplet_margin_loss.defbackward
def _(grad_output, anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    a, a2, p2, n2, margin, p, eps, swap, out_shape = _prepare(anchor, positive, negative, margin, p, eps, swap, reduction)
    T = a.dtype.type
    R = a2.shape[0]
    g = grad_like(NAME, grad_output, out_shape if reduction == "none" else (), a.dtype)
    if reduction == "none":
        garr, gs, gf = True, T(0), g.reshape(-1)
    else:
        garr, gf, gs = False, a2.reshape(-1)[:0], T(g[()])
        if reduction == "mean":
            gs = T(gs / T(R))
    dA, dP, dN = (np.empty(a2.shape, a.dtype) for _ in range(3))
    if R:
        _run("bwd", a.dtype, a2.shape, a2, p2, n2, T(margin), T(p), T(eps), swap, gf, gs, garr, dA, dP, dN)
    return dA.reshape(a.shape), dP.reshape(a.shape), dN.reshape(a.shape)
