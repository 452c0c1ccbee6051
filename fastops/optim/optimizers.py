"""Optimizers (``torch.optim`` semantics) updating NumPy parameter arrays in place.

``opt = Adam(params, lr=1e-3, ...)``: ``params`` is a list of float32/float64 NumPy arrays (C-contiguous,
writeable: they are updated in place) or a list of parameter groups (dicts with a ``"params"`` list
and per-group hyper-parameters, as in torch). ``opt.step(grads)`` takes the gradients in the order
of the parameters (groups concatenated; ``None`` skips a parameter, as a torch parameter whose
``.grad`` is None). There is no ``zero_grad``: gradients are passed in, never accumulated.

One ``step`` matches one step of the torch optimizer with ``foreach=False`` (torch's default for
CPU tensors) to rounding: the same order of operations, in the parameter's dtype, one fused Numba
pass per parameter (``fastops.optim._kernels``). ``state_dict()`` / ``load_state_dict()`` save and
restore the hyper-parameters and the state (copies of the buffers).
"""
import copy

import numpy as np

from .._validate import float_array
from . import _kernels as K


class Optimizer:
    """Base class: parameter groups, validation, state, ``state_dict``."""

    name = "Optimizer"

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        if isinstance(params, np.ndarray):
            raise TypeError(f"{self.name}: params must be a list of arrays or of parameter groups, got one array")
        params = list(params)
        if not params:
            raise ValueError(f"{self.name}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        seen = set()
        for g in groups:
            if not isinstance(g, dict) or "params" not in g:
                raise TypeError(f"{self.name}: a parameter group must be a dict with a 'params' list")
            g = dict(g)
            ps = g["params"]
            ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
            for j, p in enumerate(ps):
                self._check_param(p, f"params[{j}]")
                if id(p) in seen:
                    raise ValueError(f"{self.name}: a parameter appears twice (shape {p.shape})")
                seen.add(id(p))
            g["params"] = ps
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            self._check_group(g)
            self.param_groups.append(g)
        self.state = {}  # flat parameter index -> dict of buffers and counters

    def _check_param(self, p, where):
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            d = f"dtype {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"{self.name}: {where} must be a float32 or float64 numpy.ndarray, got {d}")
        if not (p.flags.c_contiguous and p.flags.writeable and p.dtype.isnative):
            raise ValueError(
                f"{self.name}: {where} (shape {p.shape}) must be C-contiguous, writeable and native-byte-order: "
                "it is updated in place"
            )

    def _check_group(self, g):
        lr = g.get("lr")
        if lr is not None and not (isinstance(lr, (int, float, np.floating)) and lr >= 0):
            raise ValueError(f"{self.name}: invalid learning rate {lr!r} (must be a number >= 0)")
        for key in ("weight_decay", "momentum", "eps", "lr_decay", "initial_accumulator_value"):
            v = g.get(key)
            if v is not None and v < 0:
                raise ValueError(f"{self.name}: invalid {key} {v!r} (must be >= 0)")

    def _params(self):
        for g in self.param_groups:
            for p in g["params"]:
                yield g, p

    @property
    def num_params(self):
        return sum(len(g["params"]) for g in self.param_groups)

    def step(self, grads):
        """One update of every parameter from ``grads`` (same order; ``None`` skips one)."""
        grads = list(grads)
        if len(grads) != self.num_params:
            raise ValueError(f"{self.name}.step: got {len(grads)} gradients for {self.num_params} parameters")
        for idx, ((group, p), g) in enumerate(zip(self._params(), grads)):
            if g is None:
                continue
            g = float_array(f"{self.name}.step", f"grads[{idx}]", g, p.dtype)
            if g.shape != p.shape:
                raise ValueError(
                    f"{self.name}.step: grads[{idx}] has shape {g.shape}, its parameter has shape {p.shape}"
                )
            st = self.state.setdefault(idx, {})
            T = p.dtype.type
            self._update(group, p.reshape(-1), g.reshape(-1), st, T)

    def _update(self, group, p, g, state, T):  # pragma: no cover
        raise NotImplementedError

    def _buffer(self, state, key, p, fill=0.0):
        b = state.get(key)
        if b is None:
            b = state[key] = np.full(p.shape, fill, dtype=p.dtype)
        return b

    def state_dict(self):
        """``{"state": {index: {name: copy}}, "param_groups": [{hyper-parameters, "params": [indices]}]}``."""
        groups, start = [], 0
        for g in self.param_groups:
            d = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            d["params"] = list(range(start, start + len(g["params"])))
            start += len(g["params"])
            groups.append(d)
        shapes = [p.shape for _, p in self._params()]
        state = {
            i: {k: (v.reshape(shapes[i]).copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise ValueError(f"{self.name}.load_state_dict: the parameter groups do not match this optimizer's")
        for g, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    g[k] = copy.deepcopy(v)
        params = [p for _, p in self._params()]
        self.state = {}
        for i, s in state_dict["state"].items():
            i = int(i)
            new = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != params[i].reshape(-1).shape and v.shape != params[i].shape:
                        raise ValueError(f"{self.name}.load_state_dict: state {k!r} of parameter {i} has shape {v.shape}")
                    v = np.ascontiguousarray(v, dtype=params[i].dtype).reshape(-1).copy()
                new[k] = v
            self.state[i] = new

    def __repr__(self):
        hp = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{self.name}({self.num_params} parameters, {hp})"


def _flags(group, **extra):
    f = 0
    if group.get("weight_decay", 0) != 0:
        f |= K.HAS_WD
    if group.get("maximize", False):
        f |= K.MAXIMIZE
    for bit, on in extra.items():
        if on:
            f |= getattr(K, bit)
    return f


class SGD(Optimizer):
    """``torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False)``: ``d = g + wd p``; with momentum ``buf = momentum buf + (1 - dampening) d``
    (``buf = d`` at the first step), ``d = d + momentum buf`` (nesterov) or ``buf``; ``p -= lr d``."""

    name = "SGD"

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _update(self, group, p, g, st, T):
        mom = group["momentum"]
        first = mom != 0 and "momentum_buffer" not in st
        buf = self._buffer(st, "momentum_buffer", p) if mom != 0 else p  # (p: unused without momentum)
        flags = _flags(group, NESTEROV=group["nesterov"], FIRST=first)
        K.run("sgd", p, g, buf, T(group["lr"]), T(group["weight_decay"]), T(mom), T(1 - group["dampening"]), flags)


class Adagrad(Optimizer):
    """``torch.optim.Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, maximize=False)``: ``sum += g^2``; ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)``."""

    name = "Adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))
        # torch creates the state (step 0, the accumulator) in the constructor
        for idx, (group, p) in enumerate(self._params()):
            self.state[idx] = {"step": 0, "sum": np.full(p.size, group["initial_accumulator_value"], dtype=p.dtype)}

    def _update(self, group, p, g, st, T):
        st["step"] = st.get("step", 0) + 1
        ssum = self._buffer(st, "sum", p, group["initial_accumulator_value"])
        clr = group["lr"] / (1 + (st["step"] - 1) * group["lr_decay"])
        K.run("adagrad", p, g, ssum, T(clr), T(group["weight_decay"]), T(group["eps"]), _flags(group))


class Adadelta(Optimizer):
    """``torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)``."""

    name = "Adadelta"

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: invalid rho {rho!r} (must be in [0, 1])")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, group, p, g, st, T):
        st["step"] = st.get("step", 0) + 1
        sq = self._buffer(st, "square_avg", p)
        acc = self._buffer(st, "acc_delta", p)
        rho = group["rho"]
        K.run("adadelta", p, g, sq, acc, T(group["lr"]), T(rho), T(1 - rho), T(group["eps"]),
              T(group["weight_decay"]), _flags(group))


class RMSprop(Optimizer):
    """``torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, maximize=False)``."""

    name = "RMSprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False):
        if alpha < 0:
            raise ValueError(f"RMSprop: invalid alpha {alpha!r} (must be >= 0)")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _update(self, group, p, g, st, T):
        st["step"] = st.get("step", 0) + 1
        sq = self._buffer(st, "square_avg", p)
        ga = self._buffer(st, "grad_avg", p) if group["centered"] else p
        buf = self._buffer(st, "momentum_buffer", p) if group["momentum"] > 0 else p
        a = group["alpha"]
        K.run("rmsprop", p, g, sq, ga, buf, T(group["lr"]), T(a), T(1 - a), T(group["eps"]),
              T(group["weight_decay"]), T(group["momentum"]), _flags(group, CENTERED=group["centered"]))


class Adam(Optimizer):
    """``torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    maximize=False)``: ``m = lerp(m, g, 1 - b1)``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (``v``: running max with amsgrad).
    ``weight_decay`` is L2 (added to the gradient); :class:`AdamW` decouples it."""

    name = "Adam"
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False):
        b1, b2 = betas
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{self.name}: invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        if eps < 0:
            raise ValueError(f"{self.name}: invalid epsilon value {eps!r}")
        super().__init__(params, dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, group, p, g, st, T):
        t = st["step"] = st.get("step", 0) + 1
        m = self._buffer(st, "exp_avg", p)
        v = self._buffer(st, "exp_avg_sq", p)
        vmax = self._buffer(st, "max_exp_avg_sq", p) if group["amsgrad"] else p
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        step_size = lr / (1 - b1**t)
        bc2_sqrt = (1 - b2**t) ** 0.5
        if self.decoupled:
            decay, flags = 1 - lr * wd, _flags(dict(group, weight_decay=0), AMSGRAD=group["amsgrad"])
        else:
            decay, flags = 1.0, _flags(group, AMSGRAD=group["amsgrad"])
        K.run("adam", p, g, m, v, vmax, T(step_size), T(bc2_sqrt), T(1 - b1), T(b2), T(1 - b2), T(group["eps"]),
              T(wd), T(decay), flags)


class AdamW(Adam):
    """``torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
    maximize=False)``: Adam with decoupled weight decay ``p *= 1 - lr wd`` before the update."""

    name = "AdamW"
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)


def l1_penalty(params, lam):
    """L1 regularisation: ``(lam * sum_i sum |p_i|, [lam * sign(p_i)])``: the value to add to the loss
    and the gradients to add to the parameters' gradients (``torch.sign``: 0 at 0)."""
    if isinstance(params, np.ndarray):
        params = [params]
    lam = float(lam)
    if not lam >= 0:
        raise ValueError(f"l1_penalty: lam must be >= 0, got {lam!r}")
    value, grads = 0.0, []
    for j, p in enumerate(params):
        p = float_array("l1_penalty", f"params[{j}]", p)
        T = p.dtype.type
        value += float(np.abs(p).sum(dtype=p.dtype))
        out = np.empty(p.shape, p.dtype)
        if p.size:
            K.run("l1", p.reshape(-1), out.reshape(-1), T(lam))
        grads.append(out)
    return lam * value, grads
