"""fastops: JIT-compiled (Numba) CPU kernels for deep-learning operators on NumPy arrays.

Every op has PyTorch's name, arguments and semantics, takes and returns ``numpy.ndarray``
(float32 or float64, each with its own compiled kernel), and carries its backward pass:
``fastops.relu.backward(grad_output, x)`` returns one gradient per array argument.
Kernels compile on first use and are cached on disk (see ``fastops._config``).
"""
from ._version import __version__  # noqa: F401
from ._threads import get_num_threads, set_num_threads, threads  # noqa: F401
from ._op import REGISTRY as _REGISTRY

# activations and elementwise
from .activation.pointwise import (  # noqa: F401
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
from .activation.log_softmax import log_softmax  # noqa: F401
from .activation.prelu import prelu  # noqa: F401
from .activation.rrelu import rrelu  # noqa: F401
from .activation.softmax import softmax  # noqa: F401

# tensor arithmetic
from .arithmetic.binary import add, div, mul, sub  # noqa: F401
from .arithmetic.axpy import axpy  # noqa: F401
from .arithmetic.bias_add import bias_add  # noqa: F401
from .arithmetic.eltwise import eltwise  # noqa: F401
from .arithmetic.matmul import matmul  # noqa: F401
from .arithmetic.reduce import mean, sum  # noqa: F401

# losses
from .loss.pointwise import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
)
from .loss.classification import cross_entropy, nll_loss  # noqa: F401
from .loss.triplet import triplet_margin_loss  # noqa: F401

# normalization (batch, layer, group, instance, local response, L2)
from .norm.batch_norm import batch_norm  # noqa: F401
from .norm.group_norm import group_norm  # noqa: F401
from .norm.instance_norm import instance_norm  # noqa: F401
from .norm.l2_normalize import l2_normalize  # noqa: F401
from .norm.layer_norm import layer_norm  # noqa: F401
from .norm.lrn import local_response_norm  # noqa: F401
from .norm.fold import fold_batch_norm  # noqa: F401  (a weight transform for inference, not an op)

# shape and resampling
from .shape.affine_grid import affine_grid  # noqa: F401
from .shape.grid import grid_sample  # noqa: F401
from .shape.shuffle import channel_shuffle, pixel_shuffle  # noqa: F401
from .shape.reshape import flatten, reshape  # noqa: F401
from .shape.interpolate import interpolate  # noqa: F401
from .shape.pad import pad  # noqa: F401
from .shape.upsample import upsample_nearest2d  # noqa: F401

# pooling (windows, adaptive, unpooling, RoI)
from .pooling.adaptive import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    global_avg_pool2d,
)
from .pooling.adaptive_max import adaptive_max_pool1d, adaptive_max_pool2d  # noqa: F401
from .pooling.avg_pool import avg_pool1d, avg_pool2d, avg_pool3d  # noqa: F401
from .pooling.max_pool import max_pool1d, max_pool2d, max_pool3d  # noqa: F401
from .pooling.max_unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: F401
from .pooling.roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool  # noqa: F401

# recurrent
from .recurrent.sequence import gru, lstm, rnn  # noqa: F401
from .recurrent.cells import gru_cell, lstm_cell, rnn_cell  # noqa: F401

# optimizers and learning-rate schedulers (fastops.optim.Adam, ...)
from . import optim  # noqa: F401

# linear and convolution
from .conv.conv import conv1d, conv2d, conv3d  # noqa: F401
from .conv.conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d  # noqa: F401
from .conv.correlation import correlation  # noqa: F401
from .conv.deform import deform_conv2d  # noqa: F401
from .conv.linear import linear  # noqa: F401
from .conv.separable import separable_conv2d  # noqa: F401

# regularization
from .regularization.dropout import dropout, dropout2d  # noqa: F401

# attention
from .attention.sdpa import scaled_dot_product_attention  # noqa: F401


def ops():
    """Names of all ops fastops provides, sorted."""
    return sorted(_REGISTRY)


# the public namespace: every op, the thread controls, the optimizers' module, ops(), the batch-norm
# folding helper and the version
__all__ = sorted(_REGISTRY) + [
    "get_num_threads", "set_num_threads", "threads", "optim", "ops", "fold_batch_norm", "__version__"]
