"""Normalization ops (OPS.md "Normalization")."""
from .batch_norm import batch_norm  # noqa: F401
from .group_norm import group_norm  # noqa: F401
from .instance_norm import instance_norm  # noqa: F401
from .layer_norm import layer_norm  # noqa: F401
