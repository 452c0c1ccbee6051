"""Normalization ops (OPS.md "Normalization"): batch, layer, group and instance norm, LRN, L2."""
from .batch_norm import batch_norm  # noqa: F401
from .group_norm import group_norm  # noqa: F401
from .instance_norm import instance_norm  # noqa: F401
from .l2_normalize import l2_normalize  # noqa: F401
from .layer_norm import layer_norm  # noqa: F401
from .lrn import local_response_norm  # noqa: F401
