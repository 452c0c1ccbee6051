"""Pointwise activations: relu, leaky_relu, relu6, elu, sigmoid, tanh, gelu, silu, softplus,
hardsigmoid, hardswish, mish.

Each op is a forward scalar function ``f(v, a, b)`` and a gradient ``df(v, g, a, b)`` (see
``fastops._elementwise``), plus a thin public wrapper with PyTorch's signature. Formulas, NaN
behaviour and the value of the gradient at kinks follow ATen's CPU kernels; comparisons are
written so that NaN falls through to the branch that propagates it.

``backward(grad_output, input, ...)`` takes the forward's arguments and returns ``(grad_input,)``.
With ``inplace=True`` the forward overwrites ``input``; its backward still needs the original
input values.
"""
import numpy as np

from .._elementwise import Pointwise, real_scalar
from .._op import op

# ---------------------------------------------------------------------------------------------
# scalar functions (T, EXP, EXPM1, TANH, ERFC, LOG1P are bound per dtype by _elementwise)


def _relu_f(v, a, b):
    return T(0) if v <= T(0) else v  # noqa: F821  (NaN <= 0 is False: NaN propagates)


def _relu_df(v, g, a, b):
    return T(0) if v <= T(0) else g  # noqa: F821  (ATen threshold_backward: 0 at v == 0)


def _leaky_f(v, a, b):
    return v if v > T(0) else v * a  # noqa: F821


def _leaky_df(v, g, a, b):
    return g if v > T(0) else g * a  # noqa: F821


def _hardtanh_f(v, a, b):  # a = min_val, b = max_val (relu6: 0, 6)
    return a if v < a else (b if v > b else v)


def _hardtanh_df(v, g, a, b):
    return T(0) if (v <= a or v >= b) else g  # noqa: F821


def _elu_f(v, a, b):
    return v if v > T(0) else a * EXPM1(v)  # noqa: F821


def _elu_df(v, g, a, b):
    # NaN takes the positive branch (gradient g), as in PyTorch's elu_backward (x <= 0 ? ... : g)
    return g * a * EXP(v) if v <= T(0) else g  # noqa: F821


def _sigmoid_f(v, a, b):
    return T(1) / (T(1) + EXP(-v))  # noqa: F821


def _sigmoid_df(v, g, a, b):
    s = T(1) / (T(1) + EXP(-v))  # noqa: F821
    return g * s * (T(1) - s)  # noqa: F821


def _tanh_f(v, a, b):
    return TANH(v)  # noqa: F821


def _tanh_df(v, g, a, b):
    t = TANH(v)  # noqa: F821
    return g * (T(1) - t * t)  # noqa: F821


def _gelu_f(v, a, b):  # exact: x * Phi(x) = 0.5 x erfc(-x / sqrt 2)
    return T(0.5) * v * ERFC(v * T(-0.70710678118654752440))  # noqa: F821


def _gelu_df(v, g, a, b):
    cdf = T(0.5) * ERFC(v * T(-0.70710678118654752440))  # noqa: F821
    pdf = EXP(T(-0.5) * v * v) * T(0.39894228040143267794)  # noqa: F821
    return g * (cdf + v * pdf)


def _gelu_tanh_f(v, a, b):  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    inner = T(0.79788456080286535588) * (v + T(0.044715) * v * v * v)  # noqa: F821
    return T(0.5) * v * (T(1) + TANH(inner))  # noqa: F821


def _gelu_tanh_df(v, g, a, b):
    x2 = v * v
    t = TANH(T(0.79788456080286535588) * (v + T(0.044715) * x2 * v))  # noqa: F821
    left_d = T(0.5) * (T(1) + t)  # noqa: F821
    right_d = T(0.5) * v * (T(1) - t * t) * T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x2)  # noqa: F821
    return g * (left_d + right_d)


def _silu_f(v, a, b):
    return v / (T(1) + EXP(-v))  # noqa: F821


def _silu_df(v, g, a, b):
    s = T(1) / (T(1) + EXP(-v))  # noqa: F821
    return g * s * (T(1) + v * (T(1) - s))  # noqa: F821


def _softplus_f(v, a, b):  # a = beta, b = threshold
    z = v * a
    return v if z > b else LOG1P(EXP(z)) / a  # noqa: F821


def _softplus_df(v, g, a, b):
    z = v * a
    e = EXP(z)  # noqa: F821
    return g if z > b else g * e / (e + T(1))  # noqa: F821


def _hardsigmoid_f(v, a, b):
    return T(0) if v <= T(-3) else (T(1) if v >= T(3) else v * T(1.0 / 6.0) + T(0.5))  # noqa: F821


def _hardsigmoid_df(v, g, a, b):
    return g * T(1.0 / 6.0) if (v > T(-3) and v < T(3)) else T(0)  # noqa: F821


def _hardswish_f(v, a, b):
    # v * 0, not 0: -inf gives NaN and finite v <= -3 gives -0.0, as PyTorch's x * min(max(x + 3, 0), 6) / 6
    return v * T(0) if v <= T(-3) else (v if v >= T(3) else v * (v + T(3)) * T(1.0 / 6.0))  # noqa: F821


def _hardswish_df(v, g, a, b):
    return T(0) if v < T(-3) else (g * (v * T(1.0 / 3.0) + T(0.5)) if v <= T(3) else g)  # noqa: F821


def _mish_f(v, a, b):
    # tanh(softplus(v)) = tanh(log1p(e^v)) = n / (n + 2) with n = e^v (e^v + 2): no log, vectorizes
    e = EXP(min(v, T(20)))  # noqa: F821
    n = e * (e + T(2))  # noqa: F821
    ts = n / (n + T(2)) if v < T(20) else T(1)  # noqa: F821
    return v * ts


def _mish_df(v, g, a, b):
    e = EXP(min(v, T(20)))  # noqa: F821
    n = e * (e + T(2))  # noqa: F821
    ts = n / (n + T(2)) if v < T(20) else T(1)  # noqa: F821
    s = T(1) / (T(1) + EXP(-v))  # noqa: F821
    return g * (ts + v * s * (T(1) - ts * ts))  # noqa: F821


# ---------------------------------------------------------------------------------------------
# kernels ("cheap": memory-bound; "transcendental": exp/tanh/erfc per element)

RELU = Pointwise("relu", _relu_f, _relu_df)
LEAKY_RELU = Pointwise("leaky_relu", _leaky_f, _leaky_df)
HARDTANH = Pointwise("relu6", _hardtanh_f, _hardtanh_df)
ELU = Pointwise("elu", _elu_f, _elu_df, cost="transcendental")
SIGMOID = Pointwise("sigmoid", _sigmoid_f, _sigmoid_df, cost="transcendental")
TANH_K = Pointwise("tanh", _tanh_f, _tanh_df, cost="transcendental")
GELU = Pointwise("gelu", _gelu_f, _gelu_df, cost="transcendental")
GELU_TANH = Pointwise("gelu_tanh", _gelu_tanh_f, _gelu_tanh_df, cost="transcendental")
SILU = Pointwise("silu", _silu_f, _silu_df, cost="transcendental")
SOFTPLUS = Pointwise("softplus", _softplus_f, _softplus_df, cost="transcendental")
HARDSIGMOID = Pointwise("hardsigmoid", _hardsigmoid_f, _hardsigmoid_df)
HARDSWISH = Pointwise("hardswish", _hardswish_f, _hardswish_df)
MISH = Pointwise("mish", _mish_f, _mish_df, cost="transcendental")


def _explainer(pw):
    def explain(shape, dtype, **params):
        return pw.explain(shape, dtype)

    return explain


# ---------------------------------------------------------------------------------------------
# public ops


@op
def relu(input, inplace=False):
    """ReLU, ``max(x, 0)`` elementwise (``torch.nn.functional.relu``). NaN propagates.

    Backward: ``relu.backward(grad_output, input)`` -> ``(grad_input,)``, 0 where ``input <= 0``.
    """
    return RELU.forward(input, inplace)


@relu.defbackward
def _(grad_output, input, inplace=False):
    return (RELU.grad(grad_output, input),)


relu.defexplain(_explainer(RELU))


@op
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """Leaky ReLU, ``x if x > 0 else negative_slope * x`` (``F.leaky_relu``)."""
    s = real_scalar("leaky_relu", "negative_slope", negative_slope)
    return LEAKY_RELU.forward(input, inplace, s)


@leaky_relu.defbackward
def _(grad_output, input, negative_slope=0.01, inplace=False):
    s = real_scalar("leaky_relu", "negative_slope", negative_slope)
    return (LEAKY_RELU.grad(grad_output, input, s),)


leaky_relu.defexplain(_explainer(LEAKY_RELU))


@op
def relu6(input, inplace=False):
    """ReLU6, ``min(max(x, 0), 6)`` (``F.relu6`` = ``hardtanh(x, 0, 6)``); gradient 0 at 0 and 6."""
    return HARDTANH.forward(input, inplace, 0.0, 6.0)


@relu6.defbackward
def _(grad_output, input, inplace=False):
    return (HARDTANH.grad(grad_output, input, 0.0, 6.0),)


relu6.defexplain(_explainer(HARDTANH))


@op
def elu(input, alpha=1.0, inplace=False):
    """ELU, ``x if x > 0 else alpha * (exp(x) - 1)`` (``F.elu``), with an accurate expm1 near 0."""
    a = real_scalar("elu", "alpha", alpha)
    return ELU.forward(input, inplace, a)


@elu.defbackward
def _(grad_output, input, alpha=1.0, inplace=False):
    a = real_scalar("elu", "alpha", alpha)
    return (ELU.grad(grad_output, input, a),)


elu.defexplain(_explainer(ELU))


@op
def sigmoid(input):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (``torch.sigmoid``)."""
    return SIGMOID.forward(input)


@sigmoid.defbackward
def _(grad_output, input):
    return (SIGMOID.grad(grad_output, input),)


sigmoid.defexplain(_explainer(SIGMOID))


@op
def tanh(input):
    """Hyperbolic tangent (``torch.tanh``)."""
    return TANH_K.forward(input)


@tanh.defbackward
def _(grad_output, input):
    return (TANH_K.grad(grad_output, input),)


tanh.defexplain(_explainer(TANH_K))


def _gelu_kernel(approximate):
    if approximate == "none":
        return GELU
    if approximate == "tanh":
        return GELU_TANH
    raise ValueError(f"gelu: argument 'approximate' must be 'none' or 'tanh', got {approximate!r}")


@op
def gelu(input, approximate="none"):
    """GELU (``F.gelu``): ``x * Phi(x)`` (``approximate="none"``, erf form) or the tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate="tanh"``)."""
    return _gelu_kernel(approximate).forward(input)


@gelu.defbackward
def _(grad_output, input, approximate="none"):
    return (_gelu_kernel(approximate).grad(grad_output, input),)


@gelu.defexplain
def _(shape, dtype, approximate="none", **params):
    return _gelu_kernel(approximate).explain(shape, dtype)


@op
def silu(input, inplace=False):
    """SiLU / swish, ``x * sigmoid(x)`` (``F.silu``)."""
    return SILU.forward(input, inplace)


@silu.defbackward
def _(grad_output, input, inplace=False):
    return (SILU.grad(grad_output, input),)


silu.defexplain(_explainer(SILU))


def _softplus_params(beta, threshold):
    b = real_scalar("softplus", "beta", beta)
    if b == 0:
        raise ValueError("softplus: argument 'beta' must be nonzero")
    return b, real_scalar("softplus", "threshold", threshold)


@op
def softplus(input, beta=1.0, threshold=20.0):
    """Softplus ``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (``F.softplus``)."""
    return SOFTPLUS.forward(input, False, *_softplus_params(beta, threshold))


@softplus.defbackward
def _(grad_output, input, beta=1.0, threshold=20.0):
    return (SOFTPLUS.grad(grad_output, input, *_softplus_params(beta, threshold)),)


softplus.defexplain(_explainer(SOFTPLUS))


@op
def hardsigmoid(input, inplace=False):
    """Hard sigmoid ``clip(x / 6 + 1/2, 0, 1)`` (``F.hardsigmoid``); gradient 1/6 on (-3, 3)."""
    return HARDSIGMOID.forward(input, inplace)


@hardsigmoid.defbackward
def _(grad_output, input, inplace=False):
    return (HARDSIGMOID.grad(grad_output, input),)


hardsigmoid.defexplain(_explainer(HARDSIGMOID))


@op
def hardswish(input, inplace=False):
    """Hard swish ``x * clip(x + 3, 0, 6) / 6`` (``F.hardswish``)."""
    return HARDSWISH.forward(input, inplace)


@hardswish.defbackward
def _(grad_output, input, inplace=False):
    return (HARDSWISH.grad(grad_output, input),)


hardswish.defexplain(_explainer(HARDSWISH))


@op
def mish(input, inplace=False):
    """Mish ``x * tanh(softplus(x))`` (``F.mish``)."""
    return MISH.forward(input, inplace)


@mish.defbackward
def _(grad_output, input, inplace=False):
    return (MISH.grad(grad_output, input),)


mish.defexplain(_explainer(MISH))

__all__ = [
    "relu",
    "leaky_relu",
    "relu6",
    "elu",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "softplus",
    "hardsigmoid",
    "hardswish",
    "mish",
]
