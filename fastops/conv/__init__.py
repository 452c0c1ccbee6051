"""Linear and convolution family: linear, conv1d/2d/3d, conv_transpose1d/2d/3d, separable_conv2d,
deform_conv2d, correlation."""
from .conv import conv1d, conv2d, conv3d  # noqa: F401
from .conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d  # noqa: F401
from .correlation import correlation  # noqa: F401
from .deform import deform_conv2d  # noqa: F401
from .linear import linear  # noqa: F401
from .separable import separable_conv2d  # noqa: F401
