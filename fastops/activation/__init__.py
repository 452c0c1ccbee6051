"""Activation family: pointwise activations, prelu, rrelu, softmax, log_softmax."""
from .pointwise import (  # noqa: F401
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    mish,
    relu,
    relu6,
    sigmoid,
    silu,
    softplus,
    tanh,
)
