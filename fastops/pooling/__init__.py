"""Pooling family: max/avg pooling, unpooling, adaptive and global pooling, RoI pooling and align."""
from .adaptive import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    global_avg_pool2d,
)
from .roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool  # noqa: F401
from .adaptive_max import adaptive_max_pool1d, adaptive_max_pool2d  # noqa: F401
from .avg_pool import avg_pool1d, avg_pool2d, avg_pool3d  # noqa: F401
from .max_pool import max_pool1d, max_pool2d, max_pool3d  # noqa: F401
from .max_unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: F401
