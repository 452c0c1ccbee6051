"""Activation functions as scalar functions and their pointwise kernels (core: the activation
family's ops and every fused ``activation=`` epilogue of conv, linear and norm use them).

Each activation is a forward scalar function ``f(v, a, b)`` and a gradient ``df(v, g, a, b)``
(see ``fastops._elementwise``), wrapped in a :class:`~fastops._elementwise.Pointwise` (its
kernels and dispatch). Formulas, NaN behaviour and the value of the gradient at kinks follow
ATen's CPU kernels; comparisons are written so that NaN falls through to the branch that
propagates it.
"""
from ._elementwise import Pointwise
from ._kernelset import UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = ERFC = EXP = EXPM1 = LOG1P = TANH = UNBOUND

# ---------------------------------------------------------------------------------------------
# scalar functions (T, EXP, EXPM1, TANH, ERFC, LOG1P are bound per dtype by _elementwise)


def _relu_f(v, a, b):
    return T(0) if v <= T(0) else v  # NaN <= 0 is False: NaN propagates


def _relu_df(v, g, a, b):
    return T(0) if v <= T(0) else g  # ATen threshold_backward: 0 at v == 0


def _leaky_f(v, a, b):
    return v if v > T(0) else v * a


def _leaky_df(v, g, a, b):
    return g if v > T(0) else g * a


def _hardtanh_f(v, a, b):  # a = min_val, b = max_val (relu6: 0, 6)
    return a if v < a else (b if v > b else v)


def _hardtanh_df(v, g, a, b):
    return T(0) if (v <= a or v >= b) else g


def _elu_f(v, a, b):
    return v if v > T(0) else a * EXPM1(v)


def _elu_df(v, g, a, b):
    # NaN takes the positive branch (gradient g), as in PyTorch's elu_backward (x <= 0 ? ... : g)
    return g * a * EXP(v) if v <= T(0) else g


def _sigmoid_f(v, a, b):
    return T(1) / (T(1) + EXP(-v))


def _sigmoid_df(v, g, a, b):
    s = T(1) / (T(1) + EXP(-v))
    return g * s * (T(1) - s)


def _tanh_f(v, a, b):
    return TANH(v)


def _tanh_df(v, g, a, b):
    t = TANH(v)
    return g * (T(1) - t * t)


def _gelu_f(v, a, b):  # exact: x * Phi(x) = 0.5 x erfc(-x / sqrt 2)
    return T(0.5) * v * ERFC(v * T(-0.70710678118654752440))


def _gelu_df(v, g, a, b):
    cdf = T(0.5) * ERFC(v * T(-0.70710678118654752440))
    pdf = EXP(T(-0.5) * v * v) * T(0.39894228040143267794)
    return g * (cdf + v * pdf)


def _gelu_tanh_f(v, a, b):  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    inner = T(0.79788456080286535588) * (v + T(0.044715) * v * v * v)
    return T(0.5) * v * (T(1) + TANH(inner))


def _gelu_tanh_df(v, g, a, b):
    x2 = v * v
    t = TANH(T(0.79788456080286535588) * (v + T(0.044715) * x2 * v))
    left_d = T(0.5) * (T(1) + t)
    right_d = T(0.5) * v * (T(1) - t * t) * T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x2)
    return g * (left_d + right_d)


def _silu_f(v, a, b):
    return v / (T(1) + EXP(-v))


def _silu_df(v, g, a, b):
    s = T(1) / (T(1) + EXP(-v))
    return g * s * (T(1) + v * (T(1) - s))


def _softplus_f(v, a, b):  # a = beta, b = threshold
    z = v * a
    return v if z > b else LOG1P(EXP(z)) / a


def _softplus_df(v, g, a, b):
    z = v * a
    e = EXP(z)
    return g if z > b else g * e / (e + T(1))


def _hardsigmoid_f(v, a, b):
    return T(0) if v <= T(-3) else (T(1) if v >= T(3) else v * T(1.0 / 6.0) + T(0.5))


def _hardsigmoid_df(v, g, a, b):
    return g * T(1.0 / 6.0) if (v > T(-3) and v < T(3)) else T(0)


def _hardswish_f(v, a, b):
    # v * 0, not 0: -inf gives NaN and finite v <= -3 gives -0.0, as PyTorch's x * min(max(x + 3, 0), 6) / 6
    return v * T(0) if v <= T(-3) else (v if v >= T(3) else v * (v + T(3)) * T(1.0 / 6.0))


def _hardswish_df(v, g, a, b):
    return T(0) if v < T(-3) else (g * (v * T(1.0 / 3.0) + T(0.5)) if v <= T(3) else g)


def _mish_f(v, a, b):
    # tanh(softplus(v)) = tanh(log1p(e^v)) = n / (n + 2) with n = e^v (e^v + 2): no log, vectorizes
    e = EXP(min(v, T(20)))
    n = e * (e + T(2))
    ts = n / (n + T(2)) if v < T(20) else T(1)
    return v * ts


def _mish_df(v, g, a, b):
    e = EXP(min(v, T(20)))
    n = e * (e + T(2))
    ts = n / (n + T(2)) if v < T(20) else T(1)
    s = T(1) / (T(1) + EXP(-v))
    return g * (ts + v * s * (T(1) - ts * ts))


# ---------------------------------------------------------------------------------------------
# kernels ("cheap": memory-bound; "transcendental": exp/tanh/erfc per element)

RELU = Pointwise("relu", _relu_f, _relu_df)
LEAKY_RELU = Pointwise("leaky_relu", _leaky_f, _leaky_df)
HARDTANH = Pointwise("relu6", _hardtanh_f, _hardtanh_df)
ELU = Pointwise("elu", _elu_f, _elu_df, cost="transcendental")
SIGMOID = Pointwise("sigmoid", _sigmoid_f, _sigmoid_df, cost="transcendental")
TANH_K = Pointwise("tanh", _tanh_f, _tanh_df, cost="transcendental")
GELU = Pointwise("gelu", _gelu_f, _gelu_df, cost="transcendental")
GELU_TANH = Pointwise("gelu_tanh", _gelu_tanh_f, _gelu_tanh_df, cost="transcendental")
SILU = Pointwise("silu", _silu_f, _silu_df, cost="transcendental")
SOFTPLUS = Pointwise("softplus", _softplus_f, _softplus_df, cost="transcendental")
HARDSIGMOID = Pointwise("hardsigmoid", _hardsigmoid_f, _hardsigmoid_df)
HARDSWISH = Pointwise("hardswish", _hardswish_f, _hardswish_df)
MISH = Pointwise("mish", _mish_f, _mish_df, cost="transcendental")
