"""Normalization ops."""
from .l2_normalize import l2_normalize  # noqa: F401
from .lrn import local_response_norm  # noqa: F401
