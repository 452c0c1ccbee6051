"""Regularization ops: dropout, dropout2d."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import dropout  # noqa: F401
