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
from .activation import (  # noqa: F401
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    log_softmax,
    mish,
    prelu,
    relu,
    relu6,
    rrelu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)

# tensor arithmetic
from .arithmetic import (  # noqa: F401
    add,
    axpy,
    bias_add,
    div,
    eltwise,
    matmul,
    mul,
    sub,
)

# losses
from .loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
    triplet_margin_loss,
)

# normalization (batch, layer, group, instance, local response, L2)
from .norm import (  # noqa: F401
    batch_norm,
    group_norm,
    instance_norm,
    l2_normalize,
    layer_norm,
    local_response_norm,
)

# shape and resampling
from .shape import (  # noqa: F401
    affine_grid,
    channel_shuffle,
    flatten,
    grid_sample,
    interpolate,
    pad,
    pixel_shuffle,
    reshape,
    upsample_nearest2d,
)

# pooling (windows, adaptive, unpooling, RoI)
from .pooling import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    global_avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
    ps_roi_align,
    ps_roi_pool,
    roi_align,
    roi_pool,
)

# recurrent
from .recurrent import (  # noqa: F401
    gru,
    gru_cell,
    lstm,
    lstm_cell,
    rnn,
    rnn_cell,
)

# optimizers and learning-rate schedulers (fastops.optim.Adam, ...)
from . import optim  # noqa: F401

# linear and convolution
from .conv import (  # noqa: F401
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    correlation,
    deform_conv2d,
    linear,
    separable_conv2d,
)

# regularization
from .regularization import (  # noqa: F401
    dropout,
    dropout2d,
)

# attention
from .attention import (  # noqa: F401
    scaled_dot_product_attention,
)


def ops():
    """Names of all ops fastops provides, sorted."""
    return sorted(_REGISTRY)


# the public namespace: every op, the thread controls, the optimizers' module, ops() and the version
__all__ = sorted(_REGISTRY) + ["get_num_threads", "set_num_threads", "threads", "optim", "ops", "__version__"]
