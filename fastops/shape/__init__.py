"""Shape and resampling family: flatten, reshape, channel_shuffle, pixel_shuffle, pad,
upsample_nearest2d."""
from .pad import pad  # noqa: F401
from .reshape import flatten, reshape  # noqa: F401
from .shuffle import channel_shuffle, pixel_shuffle  # noqa: F401
from .upsample import upsample_nearest2d  # noqa: F401
from .interpolate import interpolate  # noqa: F401
from .grid import affine_grid, grid_sample  # noqa: F401
