"""Tensor arithmetic: add, sub, mul, div (broadcasting), bias_add, matmul, axpy, eltwise, sum, mean."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import axpy, bias_add, binary, eltwise, matmul, reduce  # noqa: F401
