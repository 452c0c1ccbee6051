"""Shared machinery of the elementwise losses: one scalar loss ``f(x, y, w, pw, a)`` and its
partial derivatives ``df(x, y, w, pw, a) -> (dl/dx, dl/dy)`` per op, instantiated per dtype.

Forward: the elementwise losses are written to a buffer (the output itself for
``reduction="none"``), then summed with :func:`fastops._simd.row_sum` in a fixed lane
order (serial: bitwise the same for every thread count). ``mean`` divides that sum by the element
count (``batchmean``: by ``input.shape[0]``), in the input's dtype.
Backward: ``grad_input = g * dl/dx`` with ``g`` the output gradient (a scalar, divided by the
count for ``mean``, or one per element for ``none``).
"""
import numpy as np

from .. import _jit, _reduce
from .._elementwise import math_bindings
from .._validate import choice, float_array, grad_like
from .._simd import row_sum
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = DF = F = UNBOUND

REDUCTIONS = ("mean", "sum", "none")


def _fwd_template(x, y, w, pw, out, a, hw, hpw):
    n = x.size
    one = T(1)
    for i in range(n):
        wi = w[i] if hw else one
        pwi = pw[i] if hpw else one
        out[i] = F(x[i], y[i], wi, pwi, a)


def _bwd_template(x, y, w, pw, g, gs, garr, dx, dy, a, hw, hpw):
    n = x.size
    one = T(1)
    for i in range(n):
        wi = w[i] if hw else one
        pwi = pw[i] if hpw else one
        gi = g[i] if garr else gs
        ddx, ddy = DF(x[i], y[i], wi, pwi, a)
        dx[i] = gi * ddx
        dy[i] = gi * ddy


def _sum_template(a):
    return row_sum(a)


_SUM = KernelSet("loss_sum", {"sum": _sum_template}, kernel_name=lambda which, dt, be, v: f"loss_sum_{_jit.SUFFIX[dt]}")


def total(a):
    """Deterministic, vectorized sum of the 1-D contiguous array ``a``."""
    return a.dtype.type(_SUM.kernel("sum", a.dtype)(a))


class Elementwise:
    """``broadcast=True``: input and target broadcast against each other like torch's
    ``mse_loss``/``l1_loss``/``smooth_l1_loss``/``huber_loss``/``kl_div`` (torch warns, fastops does
    not); the loss is taken over the broadcast shape and each gradient is summed back to its
    argument's shape (``_reduce.sum_to_shape``, deterministic). ``broadcast=False`` (the binary cross
    entropies, as torch): the shapes must be equal."""

    def __init__(self, name, f, df, broadcast=False, kernel_name=None):
        self.name, self.f, self.df, self.broadcast = name, f, df, broadcast
        self.kname = kernel_name or name  # kernels' names (an op may have variants: one name each)
        self.kernels = KernelSet(
            self.kname, {"fwd": _fwd_template, "bwd": _bwd_template}, bind=self._bindings,
            kernel_name=lambda which, dt, be, v: f"{self.kname}_loss_{which}_{_jit.SUFFIX[dt]}",
        )

    def _bindings(self, dt, which, variant):
        scalar = self.f if which == "fwd" else self.df
        fn = _jit.inline(_jit.clone(scalar, f"{self.kname}_{which}_scalar_{_jit.SUFFIX[dt]}", math_bindings(dt)))
        return {"F" if which == "fwd" else "DF": fn}

    def kernel(self, which, dtype):
        return self.kernels.kernel(which, dtype)

    def prepare(self, input, target, weight=None, pos_weight=None, reduction="mean", reductions=REDUCTIONS):
        op = self.name
        x = float_array(op, "input", input)
        y = float_array(op, "target", target, x.dtype)
        if y.shape != x.shape:
            if not self.broadcast:
                raise ValueError(f"{op}: 'target' shape {y.shape} must match 'input' shape {x.shape}")
            try:
                shape = np.broadcast_shapes(x.shape, y.shape)
            except ValueError:
                raise ValueError(
                    f"{op}: 'target' shape {y.shape} does not broadcast with 'input' shape {x.shape}"
                ) from None
            x = _jit.broadcast_c(x, shape)
            y = _jit.broadcast_c(y, shape)
        choice(op, "reduction", reduction, reductions)
        ws = []
        for nm, w in (("weight", weight), ("pos_weight", pos_weight)):
            if w is None:
                ws.append(None)
                continue
            w = float_array(op, nm, w, x.dtype)
            try:
                w = _jit.broadcast_c(w, x.shape)
            except ValueError:
                raise ValueError(f"{op}: '{nm}' of shape {w.shape} does not broadcast to the input shape {x.shape}") from None
            ws.append(w)
        return x, y, ws[0], ws[1]

    @staticmethod
    def _flat(w, x):
        return (w.reshape(-1), True) if w is not None else (x.reshape(-1)[:0], False)

    def forward(self, input, target, weight=None, pos_weight=None, reduction="mean", a=0.0, divisor=None,
                reductions=REDUCTIONS):
        x, y, w, pw = self.prepare(input, target, weight, pos_weight, reduction, reductions)
        T = x.dtype.type
        out = np.empty(x.shape, x.dtype)
        wf, hw = self._flat(w, x)
        pf, hp = self._flat(pw, x)
        if x.size:
            self.kernel("fwd", x.dtype)(x.reshape(-1), y.reshape(-1), wf, pf, out.reshape(-1), T(a), hw, hp)
        if reduction == "none":
            return out
        s = total(out.reshape(-1))
        if reduction == "sum":
            return np.asarray(s, x.dtype)
        n = x.size if divisor is None else divisor
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(T(s) / T(n), x.dtype)

    def backward(self, grad_output, input, target, weight=None, pos_weight=None, reduction="mean", a=0.0,
                 divisor=None, reductions=REDUCTIONS):
        x, y, w, pw = self.prepare(input, target, weight, pos_weight, reduction, reductions)
        T = x.dtype.type
        oshape = x.shape if reduction == "none" else ()
        g = grad_like(self.name, grad_output, oshape, x.dtype)
        dx = np.empty(x.shape, x.dtype)
        dy = np.empty(x.shape, x.dtype)
        wf, hw = self._flat(w, x)
        pf, hp = self._flat(pw, x)
        if x.size:
            if reduction == "none":
                garr, gs, gflat = True, T(0), g.reshape(-1)
            else:
                gs = T(g[()])
                if reduction != "sum":
                    gs = T(gs / T(x.size if divisor is None else divisor))
                garr, gflat = False, x.reshape(-1)[:0]
            self.kernel("bwd", x.dtype)(x.reshape(-1), y.reshape(-1), wf, pf, gflat, gs, garr,
                                        dx.reshape(-1), dy.reshape(-1), T(a), hw, hp)
        xs, ys = np.shape(input), np.shape(target)
        if xs != x.shape:  # broadcast input: sum its gradient back to its shape
            dx = np.array(_reduce.sum_to_shape(dx, xs), dtype=x.dtype)
        if ys != x.shape:
            dy = np.array(_reduce.sum_to_shape(dy, ys), dtype=x.dtype)
        return dx, dy
