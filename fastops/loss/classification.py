"""nll_loss and cross_entropy (class indices or class probabilities), PyTorch semantics.

Layout: the input ``(N, C)`` or ``(N, C, d1, ...)`` (or unbatched ``(C,)`` with a 0-d target) is
viewed as rows of ``C`` class scores, one per position ``(n, d1, ...)`` (the spatial case is
transposed to that row layout once). ``cross_entropy`` fuses the log-softmax into the loss: per
row one max, one exp-sum (``_simd.row_exp_sum``: vector exponentials and lane sums, the next row
prefetched meanwhile) and the gathered score; the log-probabilities are never stored. Backward
recomputes the row's log-sum-exp.

Reductions: per-row losses (and, with class indices, per-row target weights) are written to
buffers and summed with ``row_sum`` serially (fixed order: the same bits for every thread count);
``mean`` divides by the summed target weights of the non-ignored rows (class indices) or by the
number of rows (probability targets), as ATen does.
"""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _jit, _threads
from .._elementwise import math_bindings
from .._op import op
from .._validate import choice, float_array, grad_like, int_scalar, real_scalar
from .._simd import row_dot, row_exp_sum, row_max, row_sum
from ._common import REDUCTIONS, total
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = LOG = LOGSM = UNBOUND

BLOCK = 64  # rows per parallel work unit (each unit owns one scratch row)

# ---------------------------------------------------------------------------------------------
# kernels (T, LOG bound per dtype; the exponentials through _simd.row_exp_sum)


def _ce_idx_fwd_template(x2, t, w, hw, eps, ignore, loss, wt):
    R, C = x2.shape
    nb = (R + BLOCK - 1) // BLOCK
    for b in prange(nb):
        buf = np.empty(C, x2.dtype)
        for r in range(b * BLOCK, min(R, (b + 1) * BLOCK)):
            k = t[r]
            if k == ignore:
                loss[r] = T(0)
                wt[r] = T(0)
                continue
            xs = x2[r]
            if LOGSM:
                m = row_max(xs)
                lse = m + LOG(row_exp_sum(xs, T(1), m, buf, x2[min(r + 1, R - 1)]))
            else:
                lse = T(0)
            wk = w[k] if hw else T(1)
            v = (T(1) - eps) * wk * (lse - xs[k])
            if eps != T(0):
                if hw:
                    sm = row_sum(w) * lse - row_dot(w, xs)
                else:
                    sm = T(C) * lse - row_sum(xs)
                v += eps / T(C) * sm
            loss[r] = v
            wt[r] = wk


def _ce_idx_bwd_template(x2, t, w, hw, eps, ignore, g, gs, garr, dx):
    R, C = x2.shape
    nb = (R + BLOCK - 1) // BLOCK
    for b in prange(nb):
        buf = np.empty(C, x2.dtype)
        for r in range(b * BLOCK, min(R, (b + 1) * BLOCK)):
            k = t[r]
            ds = dx[r]
            if k == ignore:
                for c in range(C):
                    ds[c] = T(0)
                continue
            xs = x2[r]
            gi = g[r] if garr else gs
            wk = w[k] if hw else T(1)
            if LOGSM:
                # softmax = exp(x - max) / sum: the exponentials of the max pass are reused (one
                # exp per element, not two)
                m = row_max(xs)
                se = row_exp_sum(xs, T(1), m, buf, x2[min(r + 1, R - 1)])
                W = row_sum(w) if hw else T(C)
                coef = (T(1) - eps) * wk + eps / T(C) * W
                fc = gi * coef / se
                ge = gi * eps / T(C)
                if hw:
                    for c in range(C):
                        ds[c] = buf[c] * fc - ge * w[c]
                else:
                    for c in range(C):
                        ds[c] = buf[c] * fc - ge
            else:
                for c in range(C):
                    ds[c] = T(0)
            ds[k] -= gi * (T(1) - eps) * wk


def _ce_prob_fwd_template(x2, y2, w, hw, eps, loss):
    R, C = x2.shape
    nb = (R + BLOCK - 1) // BLOCK
    for b in prange(nb):
        buf = np.empty(C, x2.dtype)
        for r in range(b * BLOCK, min(R, (b + 1) * BLOCK)):
            xs = x2[r]
            ys = y2[r]
            m = row_max(xs)
            lse = m + LOG(row_exp_sum(xs, T(1), m, buf, x2[min(r + 1, R - 1)]))
            for c in range(C):
                wc = w[c] if hw else T(1)
                yc = (T(1) - eps) * ys[c] + eps / T(C)
                buf[c] = wc * yc * (lse - xs[c])
            loss[r] = row_sum(buf)


def _ce_prob_bwd_template(x2, y2, w, hw, eps, g, gs, garr, dx, dy):
    R, C = x2.shape
    nb = (R + BLOCK - 1) // BLOCK
    for b in prange(nb):
        buf = np.empty(C, x2.dtype)
        ebuf = np.empty(C, x2.dtype)
        for r in range(b * BLOCK, min(R, (b + 1) * BLOCK)):
            xs = x2[r]
            ys = y2[r]
            gi = g[r] if garr else gs
            m = row_max(xs)
            se = row_exp_sum(xs, T(1), m, ebuf, x2[min(r + 1, R - 1)])
            lse = m + LOG(se)
            for c in range(C):
                wc = w[c] if hw else T(1)
                buf[c] = wc * ((T(1) - eps) * ys[c] + eps / T(C))
            s = row_sum(buf)
            f = s / se  # softmax = exp(x - max) / sum (one exp per element)
            for c in range(C):
                wc = w[c] if hw else T(1)
                dx[r, c] = gi * (ebuf[c] * f - buf[c])
                dy[r, c] = gi * (T(1) - eps) * wc * (lse - xs[c])


_TEMPLATES = {
    "idx_fwd": _ce_idx_fwd_template,
    "idx_bwd": _ce_idx_bwd_template,
    "prob_fwd": _ce_prob_fwd_template,
    "prob_bwd": _ce_prob_bwd_template,
}
# variant: LOGSM (True: cross_entropy's kernels, log-softmax fused; False: nll_loss's)
_KERNELS = KernelSet(
    "classification", _TEMPLATES,
    consts=dict(BLOCK=BLOCK, row_max=row_max, row_sum=row_sum, row_dot=row_dot, row_exp_sum=row_exp_sum),
    bind=lambda dt, which, logsm: dict(math_bindings(dt), LOGSM=logsm),
    kernel_name=lambda which, dt, be, logsm: f"{'cross_entropy' if logsm else 'nll_loss'}_{which}_{_jit.SUFFIX[dt]}_{be}",
)


def _run(which, logsm, dtype, shape, *args):
    # serial for small problems (and whenever fastops runs on one thread, e.g. in a forked worker
    # of a process that used OpenMP, see fastops._threads); parallel over rows otherwise
    be = _dispatch.parallel_backend(dtype, math.prod(shape), _threads.get_num_threads(), "transcendental", units=shape[0])
    _KERNELS.run(which, dtype, be, *args, variant=logsm)


# ---------------------------------------------------------------------------------------------
# validation and layout


def _rows(op_name, input, target, weight, reduction, ignore_index, label_smoothing, allow_prob):
    x = float_array(op_name, "input", input)
    choice(op_name, "reduction", reduction, REDUCTIONS)
    ignore_index = int_scalar(op_name, "ignore_index", ignore_index)
    eps = real_scalar(op_name, "label_smoothing", label_smoothing, minimum=0.0, maximum=1.0)
    if x.ndim == 0:
        raise ValueError(f"{op_name}: 'input' must have at least 1 dimension (C,) or (N, C, ...), got shape {x.shape}")
    unbatched = x.ndim == 1
    xb = x[None] if unbatched else x
    N, C = xb.shape[0], xb.shape[1]
    spatial = xb.shape[2:]
    S = math.prod(spatial)
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{op_name}: argument 'target' must be a numpy.ndarray, got {type(target).__name__}")
    prob = target.dtype.kind == "f"
    if prob:
        if not allow_prob:
            raise TypeError(f"{op_name}: 'target' must have an integer dtype (class indices), got {target.dtype}")
        y = float_array(op_name, "target", target, x.dtype)
        if y.shape != x.shape:
            raise ValueError(f"{op_name}: probability 'target' shape {y.shape} must match 'input' shape {x.shape}")
    else:
        if target.dtype.kind not in "iu":
            raise TypeError(f"{op_name}: 'target' must have an integer dtype (class indices), got {target.dtype}")
        expect = () if unbatched else (N,) + spatial
        if target.shape != expect:
            raise ValueError(f"{op_name}: 'target' shape {target.shape} does not match input shape {x.shape} "
                             f"(expected {expect})")
        y = np.ascontiguousarray(target, dtype=np.int64).reshape(-1)
        bad = ((y < 0) | (y >= C)) & (y != ignore_index)
        if bad.any():
            v = int(y[bad][0])
            raise ValueError(f"{op_name}: 'target' value {v} out of range [0, {C}) (ignore_index={ignore_index})")
    if weight is not None:
        weight = float_array(op_name, "weight", weight, x.dtype)
        if weight.shape != (C,):
            raise ValueError(f"{op_name}: 'weight' must have shape ({C},) (one per class), got {weight.shape}")
    if S == 1 or not spatial:
        x2 = xb.reshape(N * S, C) if spatial else xb
    else:
        x2 = np.ascontiguousarray(xb.reshape(N, C, S).transpose(0, 2, 1)).reshape(N * S, C)
    if prob:
        yb = y[None] if unbatched else y
        if spatial and S != 1:
            y = np.ascontiguousarray(yb.reshape(N, C, S).transpose(0, 2, 1)).reshape(N * S, C)
        else:
            y = yb.reshape(N * S, C)
    out_shape = () if unbatched else (N,) + spatial
    return x, x2, y, prob, weight, eps, ignore_index, (N, C, S, spatial, unbatched), out_shape


def _unrows(d2, x, dims):
    N, C, S, spatial, unbatched = dims
    if spatial and S != 1:
        d = np.ascontiguousarray(d2.reshape(N, S, C).transpose(0, 2, 1))
    else:
        d = d2
    return d.reshape(x.shape)


def _forward(op_name, logsm, input, target, weight, ignore_index, reduction, label_smoothing):
    x, x2, y, prob, w, eps, ign, dims, out_shape = _rows(
        op_name, input, target, weight, reduction, ignore_index, label_smoothing, logsm)
    T = x.dtype.type
    R = x2.shape[0]
    hw = w is not None
    wv = w if hw else x2.reshape(-1)[:0]
    loss = np.empty(R, x.dtype)
    if prob:
        if R:
            _run("prob_fwd", logsm, x.dtype, x2.shape, x2, y, wv, hw, T(eps), loss)
        denom = T(R)
    else:
        wt = np.empty(R, x.dtype)
        if R:
            _run("idx_fwd", logsm, x.dtype, x2.shape, x2, y, wv, hw, T(eps), ign, loss, wt)
        denom = total(wt) if reduction == "mean" else T(1)
    if reduction == "none":
        return loss.reshape(out_shape)
    s = total(loss)
    if reduction == "sum":
        return np.asarray(s, x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(T(s) / T(denom), x.dtype)


def _backward(op_name, logsm, grad_output, input, target, weight, ignore_index, reduction, label_smoothing):
    x, x2, y, prob, w, eps, ign, dims, out_shape = _rows(
        op_name, input, target, weight, reduction, ignore_index, label_smoothing, logsm)
    T = x.dtype.type
    R, C = x2.shape
    g = grad_like(op_name, grad_output, out_shape if reduction == "none" else (), x.dtype)
    hw = w is not None
    wv = w if hw else x2.reshape(-1)[:0]
    if reduction == "none":
        garr, gs, gf = True, T(0), g.reshape(-1)
    else:
        garr, gf, gs = False, x2.reshape(-1)[:0], T(g[()])
        if reduction == "mean":
            if prob:
                denom = T(R)
            else:
                wt = np.empty(R, x.dtype)
                loss = np.empty(R, x.dtype)
                if R:
                    _run("idx_fwd", False, x.dtype, x2.shape, x2, y, wv, hw, T(0), ign, loss, wt)
                denom = total(wt)
            with np.errstate(invalid="ignore", divide="ignore"):
                gs = T(gs / denom)
    dx2 = np.empty((R, C), x.dtype)
    if prob:
        dy2 = np.empty((R, C), x.dtype)
        if R:
            _run("prob_bwd", logsm, x.dtype, x2.shape, x2, y, wv, hw, T(eps), gf, gs, garr, dx2, dy2)
        return _unrows(dx2, x, dims), _unrows(dy2, x, dims)
    if R:
        _run("idx_bwd", logsm, x.dtype, x2.shape, x2, y, wv, hw, T(eps), ign, gf, gs, garr, dx2)
    return _unrows(dx2, x, dims), None


@op
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """``F.nll_loss`` on log-probabilities ``(N, C)``/``(N, C, d1, ...)``/``(C,)`` with integer class
    ``target``. Backward: ``(grad_input, None, None)``."""
    return _forward("nll_loss", False, input, target, weight, ignore_index, reduction, 0.0)


@nll_loss.defbackward
def _(grad_output, input, target, weight=None, ignore_index=-100, reduction="mean"):
    gx, _ = _backward("nll_loss", False, grad_output, input, target, weight, ignore_index, reduction, 0.0)
    return gx, None, None


@op
def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """``F.cross_entropy``: fused log-softmax + NLL. ``target``: integer class indices (shape of the
    input without the class dim) or float class probabilities (the input's shape). Backward:
    ``(grad_input, grad_target or None, None)``."""
    return _forward("cross_entropy", True, input, target, weight, ignore_index, reduction, label_smoothing)


@cross_entropy.defbackward
def _(grad_output, input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    gx, gy = _backward("cross_entropy", True, grad_output, input, target, weight, ignore_index, reduction,
                       label_smoothing)
    return gx, gy, None
