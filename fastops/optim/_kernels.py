"""Fused update kernels of the optimizers: one pass over each parameter, its gradient and its state.

Every kernel reads and writes each element once (an Adam step over 10M float32 parameters moves
7 x 40 MB: parameter, gradient, two moments read; parameter and moments written), in the same
order of operations as ``torch.optim``'s single-tensor (``foreach=False``) CPU path so that the
results agree to rounding. Scalars arrive already cast to the parameter's dtype (float32 stays
float32). The work is split in fixed chunks (``_elementwise.CHUNK``); no element depends on
another, so results are the same for any thread count.
"""
import numpy as np
from numba import prange

from .. import _dispatch, _threads
from .._elementwise import CHUNK
from .._kernelset import KernelSet

# ``flags`` bits
HAS_WD = 1
MAXIMIZE = 2
NESTEROV = 4
AMSGRAD = 8
CENTERED = 16
FIRST = 32  # the momentum buffer does not exist yet (SGD: buf = d_p)


def _sgd_template(p, g, buf, lr, wd, momentum, undamp, flags):
    # undamp = 1 - dampening (complements are computed in Python and passed in the parameter's
    # dtype: an int literal in ``1 - x`` would promote float32 arithmetic to float64, numba#888)
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        gs = g[s:e]
        bs = buf[s:e]
        for i in range(ps.size):
            d = -gs[i] if flags & MAXIMIZE else gs[i]
            if flags & HAS_WD:
                d = d + wd * ps[i]
            if momentum != 0:
                if flags & FIRST:
                    b = d
                else:
                    b = bs[i] * momentum + d * undamp
                bs[i] = b
                d = d + momentum * b if flags & NESTEROV else b
            ps[i] = ps[i] - lr * d


def _adagrad_template(p, g, ssum, clr, wd, eps, flags):
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        gs = g[s:e]
        ss = ssum[s:e]
        for i in range(ps.size):
            d = -gs[i] if flags & MAXIMIZE else gs[i]
            if flags & HAS_WD:
                d = d + wd * ps[i]
            sq = ss[i] + d * d
            ss[i] = sq
            ps[i] = ps[i] - clr * d / (np.sqrt(sq) + eps)


def _adadelta_template(p, g, sqavg, accd, lr, rho, rho_c, eps, wd, flags):
    # rho_c = 1 - rho
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        gs = g[s:e]
        sa = sqavg[s:e]
        ad = accd[s:e]
        for i in range(ps.size):
            d = -gs[i] if flags & MAXIMIZE else gs[i]
            if flags & HAS_WD:
                d = d + wd * ps[i]
            sq = sa[i] * rho + d * d * rho_c
            sa[i] = sq
            delta = np.sqrt(ad[i] + eps) / np.sqrt(sq + eps) * d
            ad[i] = ad[i] * rho + delta * delta * rho_c
            ps[i] = ps[i] - lr * delta


def _rmsprop_template(p, g, sqavg, gavg, buf, lr, alpha, alpha_c, eps, wd, momentum, flags):
    # alpha_c = 1 - alpha
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        gs = g[s:e]
        sa = sqavg[s:e]
        ga = gavg[s:e]
        bs = buf[s:e]
        for i in range(ps.size):
            d = -gs[i] if flags & MAXIMIZE else gs[i]
            if flags & HAS_WD:
                d = d + wd * ps[i]
            sq = sa[i] * alpha + d * d * alpha_c
            sa[i] = sq
            if flags & CENTERED:
                # torch: grad_avg.lerp_(grad, 1 - alpha), weight < 0.5 form
                m = ga[i] + alpha_c * (d - ga[i])
                ga[i] = m
                avg = np.sqrt(sq - m * m) + eps
            else:
                avg = np.sqrt(sq) + eps
            if momentum > 0:
                b = bs[i] * momentum + d / avg
                bs[i] = b
                ps[i] = ps[i] - lr * b
            else:
                ps[i] = ps[i] - lr * d / avg


def _adam_template(p, g, m, v, vmax, step_size, bc2_sqrt, beta1_c, beta2, beta2_c, eps, wd, decay, flags):
    # beta1_c = 1 - beta1, beta2_c = 1 - beta2; decay: AdamW's decoupled multiplier
    # 1 - lr * weight_decay (1 for Adam)
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        gs = g[s:e]
        ms = m[s:e]
        vs = v[s:e]
        xs = vmax[s:e]
        for i in range(ps.size):
            pv = ps[i] * decay
            d = -gs[i] if flags & MAXIMIZE else gs[i]
            if flags & HAS_WD:
                d = d + wd * pv
            # torch: exp_avg.lerp_(grad, 1 - beta1); 1 - beta1 < 0.5, so self + w * (end - self)
            mm = ms[i] + beta1_c * (d - ms[i])
            ms[i] = mm
            vv = vs[i] * beta2 + d * d * beta2_c
            vs[i] = vv
            if flags & AMSGRAD:
                # torch.maximum: NaN if either is NaN (the builtin max drops a NaN in its first argument)
                x = xs[i]
                vv = vv if (vv > x or vv != vv) else x
                xs[i] = vv
            ps[i] = pv - step_size * mm / (np.sqrt(vv) / bc2_sqrt + eps)


def _l1_template(p, out, lam):
    # out = lam * sign(p) (torch.sign: 0 at 0, NaN propagates)
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        s = c * CHUNK
        e = min(s + CHUNK, n)
        ps = p[s:e]
        os = out[s:e]
        for i in range(ps.size):
            x = ps[i]
            os[i] = lam if x > 0 else (-lam if x < 0 else x * lam)


_TEMPLATES = {
    "sgd": _sgd_template,
    "adagrad": _adagrad_template,
    "adadelta": _adadelta_template,
    "rmsprop": _rmsprop_template,
    "adam": _adam_template,
    "l1": _l1_template,
}
# dtype-generic (one kernel per name and backend; Numba specialises it per argument types)
KERNELS = KernelSet(
    "optim", _TEMPLATES,
    consts=dict(CHUNK=CHUNK, HAS_WD=HAS_WD, MAXIMIZE=MAXIMIZE, NESTEROV=NESTEROV, AMSGRAD=AMSGRAD, CENTERED=CENTERED,
                FIRST=FIRST),
)


def backend(size):
    return _dispatch.parallel_backend(np.float32, size, _threads.get_num_threads(), "cheap")


def run(name, p, *args):
    """Run kernel ``name`` over parameter ``p`` (flat) and the remaining arrays and scalars."""
    KERNELS.run(name, None, backend(p.size), p, *args)
