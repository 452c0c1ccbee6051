"""Attention family: scaled_dot_product_attention (blocked, memory-efficient, online softmax)."""
from .sdpa import scaled_dot_product_attention  # noqa: F401
