"""Pooling family: global and adaptive average pooling, RoI pooling and align."""
from .adaptive import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    global_avg_pool2d,
)
from .roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool  # noqa: F401
