"""Elementwise losses: mse_loss, l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy,
binary_cross_entropy_with_logits, kl_div (PyTorch semantics; see ``_common`` for the kernels).

``backward(grad_output, input, target, ...)`` returns ``(grad_input, grad_target)`` (plus ``None``
for ``weight``/``pos_weight``); ``grad_output`` is 0-d for "mean"/"sum", the input's shape for "none".
"""
import numpy as np

from .._op import op
from .._validate import real_scalar
from ._common import REDUCTIONS, Elementwise
from .._kernelset import UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = EXP = LOG = LOG1P = UNBOUND

# scalar functions: f(x, y, w, pw, a) -> loss; df -> (dl/dx, dl/dy). T, EXP, LOG, LOG1P bound per dtype.


def _mse_f(x, y, w, pw, a):
    d = x - y
    return d * d


def _mse_df(x, y, w, pw, a):
    d = T(2) * (x - y)
    return d, -d


def _l1_f(x, y, w, pw, a):
    return abs(x - y)


def _l1_df(x, y, w, pw, a):
    d = x - y
    s = T(1) if d > T(0) else (T(-1) if d < T(0) else T(0))
    return s, -s


def _sl1_f(x, y, w, pw, a):  # a = beta
    d = x - y
    ad = abs(d)
    if ad < a:
        return T(0.5) * d * d / a
    return ad - T(0.5) * a


def _sl1_df(x, y, w, pw, a):
    d = x - y
    # branch order of PyTorch's smooth_l1_backward: a NaN difference falls through to d / beta (NaN)
    if d < -a:
        s = T(-1)
    elif d > a:
        s = T(1)
    elif a > T(0):
        s = d / a
    else:  # beta = 0: l1_loss
        s = T(1) if d > T(0) else (T(-1) if d < T(0) else T(0))
    return s, -s


def _huber_f(x, y, w, pw, a):  # a = delta
    d = x - y
    ad = abs(d)
    if ad < a:
        return T(0.5) * d * d
    return a * (ad - T(0.5) * a)


def _huber_df(x, y, w, pw, a):
    d = x - y
    s = -a if d < -a else (a if d > a else d)
    return s, -s


def _bce_f(x, y, w, pw, a):
    lx = LOG(x)
    l1x = LOG(T(1) - x)
    lx = lx if lx > T(-100) else T(-100)
    l1x = l1x if l1x > T(-100) else T(-100)
    return -w * (y * lx + (T(1) - y) * l1x)


def _bce_df(x, y, w, pw, a):
    den = (T(1) - x) * x
    den = den if den > T(1e-12) else T(1e-12)
    lx = LOG(x)
    l1x = LOG(T(1) - x)
    lx = lx if lx > T(-100) else T(-100)
    l1x = l1x if l1x > T(-100) else T(-100)
    return w * (x - y) / den, w * (l1x - lx)


def _softplus_neg(x):  # log(1 + exp(-x)), stable
    m = -x if x < T(0) else T(0)
    return LOG1P(EXP(-abs(x))) + m


# Two kernels, as PyTorch's two formulas: without pos_weight the log weight is exactly 1, so that
# infinite targets give +-inf ((1 - y) x - log_sigmoid(x)) instead of (1 - 1) * inf = NaN; with
# pos_weight it is (pw - 1) y + 1. The pos_weight-free kernel never reads pw.


def _bcel_f(x, y, w, pw, a):
    m = -x if x < T(0) else T(0)
    sp = LOG1P(EXP(-abs(x))) + m  # softplus(-x) = -log_sigmoid(x)
    return w * ((T(1) - y) * x + sp)


def _bcel_df(x, y, w, pw, a):  # torch: sigmoid(x) - y, and -x for the target
    if x >= T(0):
        e = EXP(-x)
        sneg = e / (T(1) + e)  # sigmoid(-x)
    else:
        sneg = T(1) / (T(1) + EXP(x))
    return w * ((T(1) - y) - sneg), -w * x


def _bcelpw_f(x, y, w, pw, a):
    lw = (pw - T(1)) * y + T(1)
    m = -x if x < T(0) else T(0)
    sp = LOG1P(EXP(-abs(x))) + m
    return w * ((T(1) - y) * x + lw * sp)


def _bcelpw_df(x, y, w, pw, a):
    # torch's formulas: (pw y + 1 - y) sigmoid(x) - pw y, and pw softplus(-x) - softplus(x)
    # (equal to (1 - y) - lw sigmoid(-x) and -x + (pw - 1) softplus(-x) for finite y and x)
    if x >= T(0):
        sig = T(1) / (T(1) + EXP(-x))
    else:
        ex = EXP(x)
        sig = ex / (T(1) + ex)
    lg = LOG1P(EXP(-abs(x)))
    m = -x if x < T(0) else T(0)
    mp = x if x > T(0) else T(0)
    tp = pw * y
    return w * ((tp + T(1) - y) * sig - tp), w * (pw * (lg + m) - (lg + mp))


def _kl_f(x, y, w, pw, a):  # a = log_target (1.0 / 0.0)
    if a != T(0):
        return EXP(y) * (y - x)
    if y > T(0):
        return y * (LOG(y) - x)
    if y == T(0):
        return T(0)  # xlogy(0, 0) = 0 and 0 * x = 0 for finite x
    return y * (LOG(y) - x)  # NaN


def _kl_df(x, y, w, pw, a):
    if a != T(0):
        e = EXP(y)
        return -e, e * (y - x + T(1))
    if y > T(0):
        return -y, LOG(y) + T(1) - x
    return -y, T(0)


MSE = Elementwise("mse_loss", _mse_f, _mse_df, broadcast=True)
L1 = Elementwise("l1_loss", _l1_f, _l1_df, broadcast=True)
SL1 = Elementwise("smooth_l1_loss", _sl1_f, _sl1_df, broadcast=True)
HUBER = Elementwise("huber_loss", _huber_f, _huber_df, broadcast=True)
BCE = Elementwise("binary_cross_entropy", _bce_f, _bce_df)
BCEL = Elementwise("binary_cross_entropy_with_logits", _bcel_f, _bcel_df)
BCELPW = Elementwise("binary_cross_entropy_with_logits", _bcelpw_f, _bcelpw_df, kernel_name="binary_cross_entropy_with_logits_pw")
KL = Elementwise("kl_div", _kl_f, _kl_df, broadcast=True)


@op
def mse_loss(input, target, reduction="mean"):
    """``F.mse_loss``: ``(input - target)**2``, reduced."""
    return MSE.forward(input, target, reduction=reduction)


@mse_loss.defbackward
def _(grad_output, input, target, reduction="mean"):
    return MSE.backward(grad_output, input, target, reduction=reduction)


@op
def l1_loss(input, target, reduction="mean"):
    """``F.l1_loss``: ``|input - target|``, reduced (gradient 0 where they are equal)."""
    return L1.forward(input, target, reduction=reduction)


@l1_loss.defbackward
def _(grad_output, input, target, reduction="mean"):
    return L1.backward(grad_output, input, target, reduction=reduction)


@op
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``F.smooth_l1_loss``: quadratic below ``beta``, linear above; ``beta=0`` is ``l1_loss``."""
    beta = real_scalar("smooth_l1_loss", "beta", beta, minimum=0.0)
    return SL1.forward(input, target, reduction=reduction, a=beta)


@smooth_l1_loss.defbackward
def _(grad_output, input, target, reduction="mean", beta=1.0):
    beta = real_scalar("smooth_l1_loss", "beta", beta, minimum=0.0)
    return SL1.backward(grad_output, input, target, reduction=reduction, a=beta)


@op
def huber_loss(input, target, reduction="mean", delta=1.0):
    """``F.huber_loss``: ``0.5 d**2`` below ``delta``, ``delta * (|d| - delta/2)`` above."""
    delta = real_scalar("huber_loss", "delta", delta, minimum=0.0, min_open=True)
    return HUBER.forward(input, target, reduction=reduction, a=delta)


@huber_loss.defbackward
def _(grad_output, input, target, reduction="mean", delta=1.0):
    delta = real_scalar("huber_loss", "delta", delta, minimum=0.0, min_open=True)
    return HUBER.backward(grad_output, input, target, reduction=reduction, a=delta)


def _check_probabilities(input, target):
    # as ATen: NaN is not between 0 and 1 either (it fails both comparisons)
    for name, a in (("input", input), ("target", target)):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
            if not np.all((a >= 0) & (a <= 1)):
                raise ValueError(f"binary_cross_entropy: all elements of '{name}' must be between 0 and 1")


@op
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``F.binary_cross_entropy`` on probabilities; logs clamped at -100 like ATen.
    ``weight`` broadcasts to the input. Backward: ``(grad_input, grad_target, None)``."""
    _check_probabilities(input, target)
    return BCE.forward(input, target, weight, reduction=reduction)


@binary_cross_entropy.defbackward
def _(grad_output, input, target, weight=None, reduction="mean"):
    _check_probabilities(input, target)
    return BCE.backward(grad_output, input, target, weight, reduction=reduction) + (None,)


@op
def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """``F.binary_cross_entropy_with_logits`` (stable for large |input|); ``weight`` and
    ``pos_weight`` broadcast to the input. Backward: ``(grad_input, grad_target, None, None)``, one
    entry per array parameter in signature order (``weight`` and ``pos_weight`` are not
    differentiated)."""
    return (BCEL if pos_weight is None else BCELPW).forward(input, target, weight, pos_weight, reduction=reduction)


@binary_cross_entropy_with_logits.defbackward
def _(grad_output, input, target, weight=None, reduction="mean", pos_weight=None):
    return (BCEL if pos_weight is None else BCELPW).backward(grad_output, input, target, weight, pos_weight,
                                                             reduction=reduction) + (None, None)


_KL_RED = REDUCTIONS + ("batchmean",)


def _kl_div_divisor(input, reduction):
    if reduction == "batchmean":
        shape = getattr(input, "shape", ())
        return shape[0] if len(shape) else 1
    return None


@op
def kl_div(input, target, reduction="mean", log_target=False):
    """``F.kl_div``: ``target * (log(target) - input)`` (``exp(target) * (target - input)`` with
    ``log_target``); ``reduction="batchmean"`` divides the sum by ``input.shape[0]``."""
    red = "mean" if reduction == "batchmean" else reduction
    if reduction not in _KL_RED:
        red = reduction
    return KL.forward(input, target, reduction=red, a=1.0 if log_target else 0.0,
                      divisor=_kl_div_divisor(input, reduction), reductions=_KL_RED)


@kl_div.defbackward
def _(grad_output, input, target, reduction="mean", log_target=False):
    red = "mean" if reduction == "batchmean" else reduction
    return KL.backward(grad_output, input, target, reduction=red, a=1.0 if log_target else 0.0,
                       divisor=_kl_div_divisor(input, reduction), reductions=_KL_RED)
