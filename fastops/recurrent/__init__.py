"""Recurrent family: cells (one step) and layers over sequences, forward and backward through time."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import cells, sequence  # noqa: F401
