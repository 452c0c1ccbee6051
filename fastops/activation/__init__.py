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
from .log_softmax import log_softmax  # noqa: F401
from .prelu import prelu  # noqa: F401
from .rrelu import rrelu  # noqa: F401
from .softmax import softmax  # noqa: F401
