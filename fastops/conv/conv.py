"""``conv1d``, ``conv2d``, ``conv3d``: ``F.conv{1,2,3}d`` + ``padding_mode`` + fused ``activation=``.

One implementation for the three ranks (1-D and 2-D run the 3-D core with unit dims, see
``_core``). Padding: int, tuple, ``"valid"`` (0) or ``"same"`` (stride 1 only; total padding
``dilation*(k-1)`` per dim, the extra one on the right for even kernels, as PyTorch).
``padding_mode`` ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"`` pads first (like
``nn.Conv*d``), with ``fastops.pad`` for the non-zero modes.

Backward: ``convNd.backward(grad_output, input, weight, bias=None, **same kwargs)`` ->
``(grad_input, grad_weight, grad_bias or None)``. With an activation, the pre-activation output is
recomputed (one extra forward) to form the gradient through the activation. ``convNd.vjp(...)``
keeps what the backward needs instead for relu, relu6 and leaky_relu (the output: no second
convolution; other activations still recompute it), and ``needs=(False, True, True)`` (backward
or pullback) skips grad_input, as a network's first layer wants.
"""
import numpy as np

from .. import _epilogue
from .._op import op
from .._validate import choice, grad_like
from ..shape.pad import pad as _pad
from . import _core
from ._params import arrays, groups_arg, pad3, to5, tuple_arg

MODES = ("zeros", "reflect", "replicate", "circular")


def prepare(op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
            activation_param):
    x, w, b, batched = arrays(op_name, k, input, weight, bias, "(out_channels, in_channels/groups, *kernel)")
    stride = tuple_arg(op_name, "stride", stride, k, 1)
    dilation = tuple_arg(op_name, "dilation", dilation, k, 1)
    groups = groups_arg(op_name, groups)
    padding_mode = choice(op_name, "padding_mode", padding_mode, MODES)
    epi = _epilogue.parse(op_name, activation, activation_param)
    N, C = x.shape[:2]
    O = w.shape[0]
    ks = w.shape[2:]
    if C % groups:
        raise ValueError(f"{op_name}: groups={groups} does not divide the input channels {C} (input shape {x.shape})")
    if O % groups:
        raise ValueError(
            f"{op_name}: groups={groups} does not divide the output channels {O} (weight shape {w.shape})"
        )
    if O == 0:  # as torch: "expected weight to be at least <groups> at dimension 0"
        raise ValueError(f"{op_name}: argument 'weight' has 0 output channels (shape {w.shape}); "
                         f"with groups={groups} expected at least {groups}")
    if w.shape[1] * groups != C:
        raise ValueError(
            f"{op_name}: channel mismatch: input has {C} channels (shape {x.shape}) but weight shape {w.shape} "
            f"with groups={groups} expects {w.shape[1] * groups}"
        )
    if b is not None and b.shape[0] != O:
        raise ValueError(f"{op_name}: argument 'bias' has shape {b.shape}, expected ({O},) (weight shape {w.shape})")
    if any(s == 0 for s in ks):
        raise ValueError(f"{op_name}: argument 'weight' has an empty kernel, shape {w.shape}")
    if isinstance(padding, str):
        padding = choice(op_name, "padding", padding, ("same", "valid"))
        if padding == "valid":
            pads = ((0, 0),) * k
        else:
            if any(s != 1 for s in stride):
                raise ValueError(f"{op_name}: padding='same' is not supported for strided convolutions (stride {stride})")
            pads = []
            for kk, d in zip(ks, dilation):
                tot = d * (kk - 1)
                pads.append((tot // 2, tot - tot // 2))
            pads = tuple(pads)
    else:
        p = tuple_arg(op_name, "padding", padding, k, 0)
        pads = tuple((e, e) for e in p)
    spatial = x.shape[2:]
    if any(s == 0 for s in spatial):
        raise ValueError(f"{op_name}: argument 'input' has an empty spatial dim, shape {x.shape}")
    for L, (lo, hi), kk, d in zip(spatial, pads, ks, dilation):
        if L + lo + hi < d * (kk - 1) + 1:
            raise ValueError(
                f"{op_name}: kernel size {tuple(ks)} (dilation {dilation}) is larger than the padded input "
                f"(input shape {x.shape}, padding {tuple(pads)})"
            )
        if padding_mode == "reflect" and (lo >= L or hi >= L):
            raise ValueError(f"{op_name}: reflect padding {tuple(pads)} must be < the input size (shape {x.shape})")
        if padding_mode == "circular" and (lo > L or hi > L):
            raise ValueError(f"{op_name}: circular padding {tuple(pads)} must be <= the input size (shape {x.shape})")
    out_sp = tuple((L + lo + hi - d * (kk - 1) - 1) // s + 1
                   for L, (lo, hi), kk, d, s in zip(spatial, pads, ks, dilation, stride))
    return x, w, b, batched, stride, dilation, groups, padding_mode, epi, pads, out_sp


def _torch_pad(pads):
    flat = []
    for lo, hi in reversed(pads):
        flat.extend((lo, hi))
    return tuple(flat)


def pad_input(x, pads, mode):
    """``x`` padded by a non-zero padding mode (zero padding is the core's, see _core_input)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    return _pad(x, _torch_pad(pads), mode={"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[mode])


def unpad_grad(gxp, x, pads, mode):
    """The gradient of ``x`` from that of ``pad_input(x, pads, mode)`` (a non-zero mode)."""
    if not any(lo or hi for lo, hi in pads):
        return gxp
    return _pad.backward(gxp, x, _torch_pad(pads), mode=mode)[0]


def _core_input(x, pads, mode, k):
    """``(5-D core input, padded, zero pads or None)``: zero padding is left to the core (its
    depthwise kernels pad in their own buffers, the other paths pad there), other modes are
    applied here."""
    padded = any(lo or hi for lo, hi in pads)
    if mode == "zeros":
        return to5(x, k), padded, ((0, 0),) * (3 - k) + tuple(pads)
    xp = pad_input(x, pads, mode)
    return to5(xp, k), padded, None


def _forward(op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
             activation_param, identity=False):
    x, w, b, batched, stride, dilation, groups, mode, epi, pads, out_sp = prepare(
        op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation, activation_param)
    if identity:
        epi = _epilogue.parse(op_name, None)
    xp, padded, zpads = _core_input(x, pads, mode, k)
    out = _core.forward(xp, to5(w, k), b, epi, pad3(stride, k, 1), pad3(dilation, k, 1), groups,
                        pad3(out_sp, k, 1), padded, pads=zpads)
    out = out.reshape(out.shape[:2] + out_sp)
    return out if batched else out[0]


def _backward(op_name, k, grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode,
              activation, activation_param, needs=None, saved=None):
    """The backward's entries. ``needs``: None or 3 bools (entries not asked for are not computed).
    ``saved``: what the forward kept for an activation, the pre-activation or (where
    ``_epilogue.from_output``) the output; None: the pre-activation is recomputed."""
    x, w, b, batched, stride_, dilation_, groups_, mode, epi, pads, out_sp = prepare(
        op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation, activation_param)
    N, O = x.shape[0], w.shape[0]
    oshape = ((N,) if batched else ()) + (O,) + out_sp
    g = grad_like(op_name, grad_output, oshape, x.dtype)
    g = g.reshape((N, O) + out_sp)
    need_x, need_w, need_b = (True, True, True) if needs is None else needs
    xp, padded, zpads = _core_input(x, pads, mode, k)
    s3, d3, o3 = pad3(stride_, k, 1), pad3(dilation_, k, 1), pad3(out_sp, k, 1)
    if not epi.identity:
        if saved is None:
            saved = _core.forward(xp, to5(w, k), b, _epilogue.parse(op_name, None), s3, d3, groups_, o3,
                                  padded, pads=zpads)
        g = _epilogue.grad(g, saved.reshape(g.shape), epi)
    gx = gw = None
    if need_x or need_w:
        g5 = to5(np.ascontiguousarray(g), k)
        gxp, gw = _core.backward(xp, g5, to5(w, k), s3, d3, groups_, padded, need_data=need_x,
                                 need_weight=need_w, pads=zpads)
        if need_x:
            # zero padding: the core's gradient already is the unpadded input's
            gx = gxp.reshape(x.shape) if zpads is not None else unpad_grad(
                gxp.reshape(xp.shape[:2] + xp.shape[5 - k:]), x, pads, mode)
            if not batched:
                gx = gx[0]
        if need_w:
            gw = gw.reshape(w.shape)
    gb = g.sum(axis=(0,) + tuple(range(2, 2 + k))) if (b is not None and need_b) else None
    return gx, gw, gb


def _vjp(op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
         activation_param):
    """``(output, what the backward needs of the forward)``: the output itself where the
    activation's gradient can be read from it (``_epilogue.from_output``: relu, relu6, leaky_relu);
    None otherwise (no activation; or one whose gradient needs the pre-activation, which the
    pullback then recomputes: the fused kernels apply the activation in registers, and an unfused
    pre-activation + activation pass does not round as they do, so keeping it would change the
    forward's result)."""
    out = _forward(op_name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                   activation_param)
    epi = _epilogue.parse(op_name, activation, activation_param)
    return out, (out if (not epi.identity and _epilogue.from_output(epi)) else None)


def _explain(op_name, k):
    def fn(shape, dtype, weight_shape=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
           activation=None, activation_param=None, **params):
        if weight_shape is None:
            raise ValueError(f"{op_name}.explain needs weight_shape=(out_channels, in_channels/groups, *kernel)")
        x = np.empty(shape, dtype)
        w = np.empty(weight_shape, dtype)
        x, w, b, batched, stride, dilation, groups, mode, epi, pads, out_sp = prepare(
            op_name, k, x, w, None, stride, padding, dilation, groups, padding_mode, activation, activation_param)
        padded = any(lo or hi for lo, hi in pads)
        d = _core.explain(dtype, x.shape[0], x.shape[1], w.shape[0], groups, pad3(w.shape[2:], k, 1),
                          pad3(stride, k, 1), padded, pad3(out_sp, k, 1), dilation=pad3(dilation, k, 1))
        d["output_shape"] = ((x.shape[0],) if batched else ()) + (w.shape[0],) + out_sp
        return d

    return fn


def _make(k):
    name = f"conv{k}d"

    def forward(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                activation=None, activation_param=None):
        return _forward(name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                        activation_param)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = (
        f"``F.conv{k}d(input, weight, bias, stride, padding, dilation, groups)`` with ``padding_mode`` and a fused\n"
        f"    ``activation=``. input (N, C, *spatial) or unbatched (C, *spatial) with {k} spatial dims; weight\n"
        f"    (O, C/groups, *kernel); bias (O,) or None. Result = activation(conv + bias).\n\n"
        f"    Backward: ``{name}.backward(grad_output, input, weight, bias=None, **kwargs)`` ->\n"
        f"    ``(grad_input, grad_weight, grad_bias or None)`` (pre-activation recomputed; ``{name}.vjp`` does\n"
        f"    not for relu/relu6/leaky_relu, and ``needs=`` skips the gradients not asked for, e.g. a first\n"
        f"    layer's grad_input).\n"
    )
    o = op(forward)

    @o.defbackward(needs=3)
    def _(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
          activation=None, activation_param=None, needs=None):
        return _backward(name, k, grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                         activation, activation_param, needs)

    @o.defvjp
    def _(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", activation=None,
          activation_param=None):
        out, saved = _vjp(name, k, input, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                          activation_param)

        def inner(grad_output, needs):
            return _backward(name, k, grad_output, input, weight, bias, stride, padding, dilation, groups,
                             padding_mode, activation, activation_param, needs, saved)

        return out, inner

    o.defexplain(_explain(name, k))
    return o


conv1d = _make(1)
conv2d = _make(2)
conv3d = _make(3)

__all__ = ["conv1d", "conv2d", "conv3d"]
