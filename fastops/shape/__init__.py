"""Shape and resampling family: flatten, reshape, channel_shuffle, pixel_shuffle, pad,
upsample_nearest2d, interpolate, affine_grid, grid_sample."""
# the family's modules (each op is ``fastops.<op>``, imported from its module by fastops/__init__.py)
from . import affine_grid, grid, interpolate, pad, reshape, shuffle, upsample  # noqa: F401
