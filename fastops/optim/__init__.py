"""``fastops.optim``: optimizers and learning-rate schedulers with ``torch.optim`` semantics, updating
NumPy parameter arrays in place with fused Numba kernels."""
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop, l1_penalty  # noqa: F401
from .schedulers import CyclicLR, ExponentialLR, LRScheduler, ReduceLROnPlateau, StepLR  # noqa: F401

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Adam",
    "AdamW",
    "l1_penalty",
    "LRScheduler",
    "ExponentialLR",
    "StepLR",
    "ReduceLROnPlateau",
    "CyclicLR",
]
