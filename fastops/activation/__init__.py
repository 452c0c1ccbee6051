"""Activation family: pointwise activations, prelu, rrelu, softmax, log_softmax."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import log_softmax, pointwise, prelu, rrelu, softmax  # noqa: F401
