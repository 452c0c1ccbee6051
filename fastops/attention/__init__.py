"""Attention family: scaled_dot_product_attention (blocked, memory-efficient, online softmax)."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import sdpa  # noqa: F401
