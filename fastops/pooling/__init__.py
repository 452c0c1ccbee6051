"""Pooling family: global and adaptive average pooling."""
from .adaptive import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    global_avg_pool2d,
)
