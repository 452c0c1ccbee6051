"""``conv_transpose1d``, ``conv_transpose2d``, ``conv_transpose3d`` (``F.conv_transpose{1,2,3}d``)
with a fused ``activation=``.

The forward is the input gradient of the convolution with the same weight, stride, dilation and
groups: the core's ``backward_data`` writes into an output buffer padded by ``padding`` on each side
(size ``(L-1)*stride + dilation*(k-1) + output_padding + 1``), which is then cropped. Its backward
is a convolution of the output gradient (zero-padded back) for the input, and the convolution's
weight gradient with the roles of input and output swapped for the weight.

Output size per dim: ``(L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``;
``output_padding`` must be smaller than stride or dilation (as PyTorch).
Backward: ``conv_transposeNd.backward(grad_output, input, weight, bias=None, **kwargs)`` ->
``(grad_input, grad_weight, grad_bias or None)`` (pre-activation recomputed with an activation).
"""
import numpy as np

from .. import _epilogue
from .._op import op
from .._validate import grad_like
from . import _core
from . import _kernels as K
from ._params import arrays, groups_arg, pad3, to5, tuple_arg


def prepare(op_name, k, input, weight, bias, stride, padding, output_padding, groups, dilation, activation,
            activation_param):
    x, w, b, batched = arrays(op_name, k, input, weight, bias, "(in_channels, out_channels/groups, *kernel)")
    stride = tuple_arg(op_name, "stride", stride, k, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op_name}: argument 'padding' must be an int or a tuple of {k} ints, got {padding!r}")
    padding = tuple_arg(op_name, "padding", padding, k, 0)
    output_padding = tuple_arg(op_name, "output_padding", output_padding, k, 0)
    dilation = tuple_arg(op_name, "dilation", dilation, k, 1)
    groups = groups_arg(op_name, groups)
    epi = _epilogue.parse(op_name, activation, activation_param)
    N, C = x.shape[:2]
    ks = w.shape[2:]
    if C % groups:
        raise ValueError(f"{op_name}: groups={groups} does not divide the input channels {C} (input shape {x.shape})")
    if w.shape[0] != C:
        raise ValueError(
            f"{op_name}: channel mismatch: input has {C} channels (shape {x.shape}) but weight shape {w.shape} "
            f"expects {w.shape[0]} (weight is (in_channels, out_channels/groups, *kernel))"
        )
    O = w.shape[1] * groups
    if b is not None and b.shape[0] != O:
        raise ValueError(f"{op_name}: argument 'bias' has shape {b.shape}, expected ({O},) (weight shape {w.shape}, "
                         f"groups={groups})")
    if any(s == 0 for s in ks):
        raise ValueError(f"{op_name}: argument 'weight' has an empty kernel, shape {w.shape}")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(
                f"{op_name}: output_padding {output_padding} must be smaller than either stride {stride} or "
                f"dilation {dilation}"
            )
    if any(s == 0 for s in x.shape[2:]):
        raise ValueError(f"{op_name}: argument 'input' has an empty spatial dim, shape {x.shape}")
    out_sp = tuple((L - 1) * s - 2 * p + d * (kk - 1) + op_ + 1
                   for L, s, p, d, kk, op_ in zip(x.shape[2:], stride, padding, dilation, ks, output_padding))
    if any(o <= 0 for o in out_sp):
        raise ValueError(
            f"{op_name}: the output size {out_sp} is not positive (input shape {x.shape}, weight shape {w.shape}, "
            f"stride {stride}, padding {padding})"
        )
    return x, w, b, batched, stride, padding, dilation, groups, epi, O, out_sp


def _crop(a, padding, out_sp):
    sl = (slice(None), slice(None)) + tuple(slice(p, p + L) for p, L in zip(padding, out_sp))
    return np.ascontiguousarray(a[sl])


def _core_len(full, in_sp, stride, dilation, ks):
    """Longest buffer the core maps back to the input length exactly (see ``_pre``)."""
    return tuple(min(f, (L - 1) * s + d * (kk - 1) + s) for f, L, s, d, kk in zip(full, in_sp, stride, dilation, ks))


def _pre(x, w, b, epi, k, stride, padding, dilation, groups, O, out_sp):
    N = x.shape[0]
    full = tuple(L + 2 * p for L, p in zip(out_sp, padding))
    # The core derives the input length from the buffer length as (full - d*(k-1) - 1) // s + 1,
    # which is the true input length only while output_padding < stride. PyTorch also allows
    # stride <= output_padding < dilation: the last output_padding positions then receive no
    # input at all, so the core runs on the buffer without them and they are appended as zeros.
    core = _core_len(full, x.shape[2:], stride, dilation, w.shape[2:])
    padded = any(padding)
    s3, d3 = pad3(stride, k, 1), pad3(dilation, k, 1)
    buf = _core.backward_data(to5(x, k), to5(w, k), s3, d3, groups, (N, O) + pad3(core, k, 1), padded)
    buf = buf.reshape((N, O) + core)
    if core != full:
        buf = np.pad(buf, ((0, 0), (0, 0)) + tuple((0, f - c) for f, c in zip(full, core)))
    out = _crop(buf, padding, out_sp)
    if out.size and (b is not None or not epi.identity):
        be = _core.PASS_BACKEND  # memory-bound pass: serial, see _core.PASS_BACKEND
        K.call("epilogue_rows", x.dtype, be, out.reshape(N, O, -1), b if b is not None else np.zeros(O, x.dtype),
               epi.a, epi.b, epi=epi)
    return out


def _forward(op_name, k, input, weight, bias, stride, padding, output_padding, groups, dilation, activation,
             activation_param):
    x, w, b, batched, stride, padding, dilation, groups, epi, O, out_sp = prepare(
        op_name, k, input, weight, bias, stride, padding, output_padding, groups, dilation, activation,
        activation_param)
    out = _pre(x, w, b, epi, k, stride, padding, dilation, groups, O, out_sp)
    return out if batched else out[0]


def _backward(op_name, k, grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation,
              activation, activation_param):
    x, w, b, batched, stride, padding, dilation, groups, epi, O, out_sp = prepare(
        op_name, k, input, weight, bias, stride, padding, output_padding, groups, dilation, activation,
        activation_param)
    N, C = x.shape[:2]
    g = grad_like(op_name, grad_output, ((N,) if batched else ()) + (O,) + out_sp, x.dtype).reshape((N, O) + out_sp)
    if not epi.identity:
        pre = _pre(x, w, b, _epilogue.parse(op_name, None), k, stride, padding, dilation, groups, O, out_sp)
        g = _epilogue.grad(g, pre, epi)
    padded = any(padding)
    gp = np.pad(g, ((0, 0), (0, 0)) + tuple((p, p) for p in padding)) if padded else np.ascontiguousarray(g)
    core = _core_len(gp.shape[2:], x.shape[2:], stride, dilation, w.shape[2:])
    if core != gp.shape[2:]:  # output_padding >= stride: the tail positions see no input (see _pre)
        gp = np.ascontiguousarray(gp[(slice(None), slice(None)) + tuple(slice(0, c) for c in core)])
    s3, d3 = pad3(stride, k, 1), pad3(dilation, k, 1)
    gx = _core.forward(to5(gp, k), to5(w, k), None, _epilogue.parse(op_name, None), s3, d3, groups,
                       pad3(x.shape[2:], k, 1), padded).reshape(x.shape)
    gw = _core.backward_weight(to5(gp, k), to5(x, k), to5(w, k).shape, s3, d3, groups, padded).reshape(w.shape)
    gb = g.sum(axis=(0,) + tuple(range(2, 2 + k))) if b is not None else None
    if not batched:
        gx = gx[0]
    return gx, gw, gb


def _explain(op_name, k):
    def fn(shape, dtype, weight_shape=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
           activation=None, activation_param=None, **params):
        if weight_shape is None:
            raise ValueError(f"{op_name}.explain needs weight_shape=(in_channels, out_channels/groups, *kernel)")
        x, w, b, batched, stride, padding, dilation, groups, epi, O, out_sp = prepare(
            op_name, k, np.empty(shape, dtype), np.empty(weight_shape, dtype), None, stride, padding, output_padding,
            groups, dilation, activation, activation_param)
        # the forward runs the core's data-gradient path of the equivalent convolution
        d = _core.explain(dtype, x.shape[0], O, x.shape[1], groups, pad3(w.shape[2:], k, 1), pad3(stride, k, 1),
                          any(padding), pad3(x.shape[2:], k, 1), which="bwd_data")
        d["output_shape"] = ((x.shape[0],) if batched else ()) + (O,) + out_sp
        return d

    return fn


def _make(k):
    name = f"conv_transpose{k}d"

    def forward(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                activation=None, activation_param=None):
        return _forward(name, k, input, weight, bias, stride, padding, output_padding, groups, dilation, activation,
                        activation_param)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = (
        f"``F.conv_transpose{k}d(input, weight, bias, stride, padding, output_padding, groups, dilation)`` with a\n"
        f"    fused ``activation=``. input (N, C_in, *spatial) or unbatched; weight (C_in, C_out/groups, *kernel).\n\n"
        f"    Backward: ``{name}.backward(grad_output, input, weight, bias=None, **kwargs)`` ->\n"
        f"    ``(grad_input, grad_weight, grad_bias or None)``.\n"
    )
    o = op(forward)

    @o.defbackward
    def _(grad_output, input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
          activation=None, activation_param=None):
        return _backward(name, k, grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation,
                         activation, activation_param)

    o.defexplain(_explain(name, k))
    return o


conv_transpose1d = _make(1)
conv_transpose2d = _make(2)
conv_transpose3d = _make(3)

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
