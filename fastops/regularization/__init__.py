"""Regularization ops: dropout, dropout2d."""
from .dropout import dropout, dropout2d  # noqa: F401

__all__ = ["dropout", "dropout2d"]
