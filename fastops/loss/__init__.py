"""Loss functions (OPS.md "Losses")."""
from .pointwise import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
)
from .classification import cross_entropy, nll_loss  # noqa: F401
from .triplet import triplet_margin_loss  # noqa: F401
