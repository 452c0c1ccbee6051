"""Pooling family: max/avg pooling, unpooling, adaptive and global pooling, RoI pooling and align."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import adaptive, adaptive_max, avg_pool, max_pool, max_unpool, roi  # noqa: F401
