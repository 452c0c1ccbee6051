"""Linear and convolution family: linear, conv1d/2d/3d, conv_transpose1d/2d/3d, separable_conv2d,
deform_conv2d, correlation."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import conv, conv_transpose, correlation, deform, linear, separable  # noqa: F401
