"""Loss functions."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import classification, pointwise, triplet  # noqa: F401
