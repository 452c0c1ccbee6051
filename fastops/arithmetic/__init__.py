"""Tensor arithmetic: add, sub, mul, div (broadcasting), bias_add, matmul, axpy, eltwise."""
from .axpy import axpy  # noqa: F401
from .bias_add import bias_add  # noqa: F401
from .binary import add, div, mul, sub  # noqa: F401
from .eltwise import eltwise  # noqa: F401
from .matmul import matmul  # noqa: F401
