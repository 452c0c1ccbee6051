"""Convolution family (OPS.md "Linear and convolution")."""
from .correlation import correlation  # noqa: F401
from .deform import deform_conv2d  # noqa: F401
