"""Pointwise activations: relu, leaky_relu, relu6, elu, sigmoid, tanh, gelu, silu, softplus,
hardsigmoid, hardswish, mish.

Each op is a thin public wrapper with PyTorch's signature around its kernels in
``fastops._activations`` (a forward scalar function ``f(v, a, b)`` and a gradient
``df(v, g, a, b)``; formulas, NaN behaviour and kinks as ATen's CPU kernels).

``backward(grad_output, input, ...)`` takes the forward's arguments and returns ``(grad_input,)``.
With ``inplace=True`` the forward overwrites ``input``; its backward still needs the original
input values.
"""
import numpy as np

from .._activations import (
    RELU, LEAKY_RELU, HARDTANH, ELU, SIGMOID, TANH_K, GELU, GELU_TANH, SILU, SOFTPLUS, HARDSIGMOID, HARDSWISH, MISH,
)
from .._elementwise import real_scalar
from .._op import op


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
