"""``separable_conv2d``: Keras ``SeparableConv2D`` on NCHW in one call: a depthwise convolution
(``groups = C``, depth multiplier ``m``, weight (C*m, 1, kh, kw), no bias) followed by a 1x1
pointwise convolution (weight (O, C*m, 1, 1)) with ``bias`` and the fused ``activation``.

Both stages run the conv core: the depthwise stage its direct kernel (per-group channel product
m <= 16), the pointwise stage the 1x1 GEMM path with the bias + activation pass. The
intermediate (N, C*m, H', W') is not kept between forward and backward (recomputed).

Backward: ``separable_conv2d.backward(grad_output, x, depthwise_weight, pointwise_weight, bias=None,
**kwargs)`` -> ``(grad_x, grad_depthwise_weight, grad_pointwise_weight, grad_bias or None)``.
"""
import numpy as np

from .._op import op
from .._validate import float_arrays
from .conv import _backward, _forward, conv2d

OP = "separable_conv2d"


def _prepare(x, depthwise_weight, pointwise_weight, bias):
    x, dw, pw, b = float_arrays(OP, ("x", "depthwise_weight", "pointwise_weight", "bias"),
                                (x, depthwise_weight, pointwise_weight, bias))
    if x.ndim not in (3, 4):
        raise ValueError(f"{OP}: argument 'x' must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    C = x.shape[-3]
    if dw.ndim != 4 or dw.shape[1] != 1 or dw.shape[0] % max(C, 1) or dw.shape[0] == 0:
        raise ValueError(
            f"{OP}: argument 'depthwise_weight' must have shape (C*m, 1, kh, kw) with C = {C} (x shape {x.shape}), "
            f"got {dw.shape}"
        )
    if pw.ndim != 4 or pw.shape[1] != dw.shape[0] or pw.shape[2:] != (1, 1):
        raise ValueError(
            f"{OP}: argument 'pointwise_weight' must have shape (O, {dw.shape[0]}, 1, 1) (depthwise_weight shape "
            f"{dw.shape}), got {pw.shape}"
        )
    return x, dw, pw, b


@op
def separable_conv2d(x, depthwise_weight, pointwise_weight, bias=None, stride=1, padding=0, dilation=1,
                     activation=None, activation_param=None):
    """Depthwise ``conv2d(x, depthwise_weight, groups=C, stride, padding, dilation)`` then
    ``activation(conv2d(., pointwise_weight, bias))``. ``padding``: int, pair, ``"same"`` or
    ``"valid"`` (Keras' two modes)."""
    x, dw, pw, b = _prepare(x, depthwise_weight, pointwise_weight, bias)
    C = x.shape[-3]
    y = _forward(OP, 2, x, dw, None, stride, padding, dilation, C, "zeros", None, None)
    return _forward(OP, 2, y, pw, b, 1, 0, 1, 1, "zeros", activation, activation_param)


@separable_conv2d.defbackward
def _(grad_output, x, depthwise_weight, pointwise_weight, bias=None, stride=1, padding=0, dilation=1,
      activation=None, activation_param=None):
    x, dw, pw, b = _prepare(x, depthwise_weight, pointwise_weight, bias)
    C = x.shape[-3]
    y = _forward(OP, 2, x, dw, None, stride, padding, dilation, C, "zeros", None, None)
    gy, gpw, gb = _backward(OP, 2, grad_output, y, pw, b, 1, 0, 1, 1, "zeros", activation, activation_param)
    gx, gdw, _ = _backward(OP, 2, gy, x, dw, None, stride, padding, dilation, C, "zeros", None, None)
    return gx, gdw, gpw, gb


@separable_conv2d.defexplain
def _(shape, dtype, depthwise_weight_shape=None, pointwise_weight_shape=None, stride=1, padding=0, dilation=1,
      **params):
    C = shape[-3]
    dws = depthwise_weight_shape or (C, 1, 3, 3)
    d1 = conv2d.explain(shape, dtype, weight_shape=dws, stride=stride, padding=padding, dilation=dilation, groups=C)
    pws = pointwise_weight_shape or (dws[0], dws[0], 1, 1)
    d2 = conv2d.explain(d1["output_shape"], dtype, weight_shape=pws)
    return {"depthwise": d1, "pointwise": d2, "output_shape": d2["output_shape"]}


__all__ = ["separable_conv2d"]
