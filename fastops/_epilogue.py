"""Fused activation epilogues: the ``activation=`` / ``activation_param=`` of conv, linear and norm ops.

An op that fuses an activation validates the pair once with :func:`parse`, which returns an
:class:`Epilogue`. A kernel that applies the activation while its output block is still in
registers or cache binds ``act_scalar(epi, dtype)`` as a global (``ACT(v, a, b)``, inlined) in its
loop template (a binding of its kernel set, ``fastops._kernelset``) and passes ``epi.a``, ``epi.b``
as arguments. Ops without a fused path (the GEMM engine) call :func:`activated` on their output (one extra pass).

Backward: ``activation(pre)`` with ``pre`` the op's output before the activation, so the op's
backward first turns ``grad_output`` into the gradient w.r.t. ``pre`` with :func:`grad` (which
needs ``pre``: ops either recompute it or accept it saved), then runs its own backward on that.
"""
from dataclasses import dataclass

import numpy as np

from . import _jit
from ._elementwise import math_bindings
from . import _activations as _act


def _identity_f(v, a, b):
    return v


def _identity_df(v, g, a, b):
    return g


# name -> (Pointwise kernel or None, forward scalar, gradient scalar, default param, uses param as)
_TABLE = {
    None: (None, _identity_f, _identity_df, None),
    "relu": (_act.RELU, _act._relu_f, _act._relu_df, None),
    "relu6": (_act.HARDTANH, _act._hardtanh_f, _act._hardtanh_df, None),
    "leaky_relu": (_act.LEAKY_RELU, _act._leaky_f, _act._leaky_df, 0.01),
    "elu": (_act.ELU, _act._elu_f, _act._elu_df, 1.0),
    "sigmoid": (_act.SIGMOID, _act._sigmoid_f, _act._sigmoid_df, None),
    "tanh": (_act.TANH_K, _act._tanh_f, _act._tanh_df, None),
    "gelu": (_act.GELU, _act._gelu_f, _act._gelu_df, None),
    "silu": (_act.SILU, _act._silu_f, _act._silu_df, None),
}

NAMES = tuple(k for k in _TABLE if k is not None)


@dataclass(frozen=True)
class Epilogue:
    """A validated activation: ``name`` (``None`` = identity) and its scalar parameters ``a``, ``b``."""

    name: object
    a: float = 0.0
    b: float = 0.0

    @property
    def identity(self):
        return self.name is None

    @property
    def key(self):
        """Short name for kernel names: ``"id"``, ``"relu"``, ..."""
        return "id" if self.name is None else self.name


def parse(op, activation, activation_param=None):
    """Validate ``activation=`` / ``activation_param=`` of op ``op``; return an :class:`Epilogue`."""
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{op}: argument 'activation' must be None or one of {NAMES}, got {activation!r}")
    if activation not in _TABLE:
        raise ValueError(f"{op}: argument 'activation' must be None or one of {NAMES}, got {activation!r}")
    default = _TABLE[activation][3]
    if activation_param is not None:
        if default is None:
            raise ValueError(
                f"{op}: activation {activation!r} takes no activation_param (got {activation_param!r}); "
                "only 'leaky_relu' (negative slope) and 'elu' (alpha) do"
            )
        if isinstance(activation_param, (bool, np.bool_)) or not isinstance(
            activation_param, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"{op}: argument 'activation_param' must be a real number, got {activation_param!r}")
        if not np.isfinite(activation_param):
            raise ValueError(f"{op}: argument 'activation_param' must be finite, got {activation_param!r}")
    param = float(default if activation_param is None else activation_param) if default is not None else 0.0
    if activation == "relu6":
        return Epilogue(activation, 0.0, 6.0)
    return Epilogue(activation, param, 0.0)


_SCALARS = {}


def act_scalar(epi, dtype):
    """Inlined scalar ``ACT(v, a, b)`` of the activation, for binding into a kernel template."""
    return _scalar(epi.name, np.dtype(dtype), 1)


def dact_scalar(epi, dtype):
    """Inlined scalar ``DACT(v, g, a, b)``: gradient w.r.t. the pre-activation value ``v``."""
    return _scalar(epi.name, np.dtype(dtype), 2)


def _scalar(name, dt, which):
    key = (name, dt, which)
    fn = _SCALARS.get(key)
    if fn is None:
        src = _TABLE[name][which]
        tag = "id" if name is None else name
        kind = "act" if which == 1 else "dact"
        fn = _SCALARS[key] = _jit.inline(_jit.clone(src, f"epi_{tag}_{kind}_{_jit.SUFFIX[dt]}", math_bindings(dt)))
    return fn


def activated(x, epi):
    """The activation of ``x`` as a new array (unfused path: one pass of the activation op's own
    vectorized kernel). Out of place on purpose: with input and output the same memory, LLVM's
    run-time alias check sends the kernel to its scalar loop (design note: gelu on 256x1024
    float32 ran 0.19 ms out of place, 2.8 ms in place; see ``_gemm._activate``, commit 03717ad)."""
    if epi.identity or x.size == 0:
        return x
    return _TABLE[epi.name][0].forward(x, False, epi.a, epi.b)


def from_output(epi):
    """Whether the gradient w.r.t. the pre-activation is exactly :func:`grad` evaluated at the
    *output* instead (the activation keeps the sign tests the gradient makes): relu and relu6
    (``0 < out`` iff ``0 < pre``, ``out < 6`` iff ``pre < 6``) and leaky_relu with a slope >= 0.
    A forward that keeps its output for the backward then needs no pre-activation."""
    return epi.name in ("relu", "relu6") or (epi.name == "leaky_relu" and epi.a >= 0)


def grad(grad_output, pre, epi):
    """Gradient w.r.t. the pre-activation ``pre`` given the gradient of ``activation(pre)``."""
    if epi.identity:
        return grad_output
    return _TABLE[epi.name][0].grad(grad_output, pre, epi.a, epi.b)
