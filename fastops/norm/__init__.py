"""Normalization ops: batch, layer, group and instance norm, LRN, L2."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import batch_norm, group_norm, instance_norm, l2_normalize, layer_norm, lrn  # noqa: F401
