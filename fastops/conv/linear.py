"""``linear``: ``F.linear(input, weight, bias)`` with a fused ``activation=`` epilogue.

``input`` (*, in_features) with any leading dims, ``weight`` (out_features, in_features), ``bias``
(out_features,) or None. The product is one GEMM over all leading rows on fastops' engine
(``fastops._gemm``), with the bias added in its epilogue while each output tile is in registers;
the activation follows as one pass of the activation op's vectorized kernel over the output.

Backward: ``linear.backward(grad_output, input, weight, bias=None, activation=None,
activation_param=None)`` -> ``(grad_input, grad_weight, grad_bias or None)``; with an activation
the pre-activation output is recomputed (one extra GEMM); ``linear.vjp(...)`` keeps what the
backward needs instead, and ``needs=`` skips the gradients not asked for.
"""
import math

import numpy as np

from .. import _epilogue, _gemm, _threads
from .._op import op
from .._validate import float_arrays, grad_like

OP = "linear"


def _prepare(input, weight, bias, activation, activation_param):
    x, w, b = float_arrays(OP, ("input", "weight", "bias"), (input, weight, bias))
    if x.ndim < 1:
        raise ValueError(f"{OP}: argument 'input' must have at least 1 dim, got shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"{OP}: argument 'weight' must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{OP}: input shape {x.shape} has {x.shape[-1]} features but weight shape {w.shape} expects {w.shape[1]}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{OP}: argument 'bias' has shape {b.shape}, expected ({w.shape[0]},) (weight shape {w.shape})")
    epi = _epilogue.parse(OP, activation, activation_param)
    return x, w, b, epi


def _pre_and_out(x, w, b, epi):
    rows = math.prod(x.shape[:-1])
    O = w.shape[0]
    out = _gemm.gemm(x.reshape(rows, x.shape[-1]), w.T, bias=b, epi=epi)
    return out.reshape(x.shape[:-1] + (O,))


@op
def linear(input, weight, bias=None, activation=None, activation_param=None):
    """``activation(input @ weight.T + bias)`` (``F.linear`` + fused activation).

    Backward: ``linear.backward(grad_output, input, weight, bias=None, activation=None,
    activation_param=None)`` -> ``(grad_input, grad_weight, grad_bias or None)``.
    """
    x, w, b, epi = _prepare(input, weight, bias, activation, activation_param)
    return _pre_and_out(x, w, b, epi)


def _backward(grad_output, x, w, b, epi, needs=None, saved=None):
    O, I = w.shape
    g = grad_like(OP, grad_output, x.shape[:-1] + (O,), x.dtype)
    if not epi.identity:
        if saved is None:
            saved = _pre_and_out(x, w, b, _epilogue.parse(OP, None))
        g = _epilogue.grad(g, saved, epi)
    need_x, need_w, need_b = (True, True, True) if needs is None else needs
    rows = math.prod(x.shape[:-1])
    g2 = np.ascontiguousarray(g).reshape(rows, O)
    x2 = x.reshape(rows, I)
    gx = _gemm.gemm(g2, w).reshape(x.shape) if need_x else None
    gw = _gemm.gemm(g2.T, x2) if need_w else None
    gb = g2.sum(axis=0) if (b is not None and need_b) else None
    return gx, gw, gb


@linear.defbackward(needs=3)
def _(grad_output, input, weight, bias=None, activation=None, activation_param=None, needs=None):
    x, w, b, epi = _prepare(input, weight, bias, activation, activation_param)
    return _backward(grad_output, x, w, b, epi, needs)


@linear.defvjp
def _(input, weight, bias=None, activation=None, activation_param=None):
    # what the backward needs of the forward: the output itself where the activation's gradient can
    # be read from it (relu, relu6, leaky_relu), else the pre-activation (the GEMM without the
    # activation, then the same activation pass the engine applies: bitwise the fused result)
    x, w, b, epi = _prepare(input, weight, bias, activation, activation_param)
    if epi.identity or _epilogue.from_output(epi):
        out = _pre_and_out(x, w, b, epi)
        saved = None if epi.identity else out
    else:
        saved = _pre_and_out(x, w, b, _epilogue.parse(OP, None))
        out = _epilogue.activated(saved, epi)
    return out, lambda g, needs: _backward(g, x, w, b, epi, needs, saved)


@linear.defexplain
def _(shape, dtype, weight_shape=None, **params):
    rows = math.prod(shape[:-1])
    O = weight_shape[0] if weight_shape is not None else shape[-1]
    epi = _epilogue.parse(OP, params.get("activation"), params.get("activation_param"))
    return {"path": "gemm", "epilogue": "bias in the GEMM epilogue" + ("" if epi.identity else f", then {epi.key} (one vectorized pass)"),
            "backend": _gemm.backend(rows, O, shape[-1], dtype=dtype), "threads": _threads.get_num_threads()}


__all__ = ["linear"]
