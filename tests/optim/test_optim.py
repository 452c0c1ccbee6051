"""fastops.optim: step-for-step agreement with torch.optim and with independent NumPy references."""
import math

import numpy as np
import pytest

import fastops
from fastops import optim

from ..conftest import requires_torch, torch

SHAPES = [(7, 5), (13,), (3, 2, 2)]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=0.9, rho=0.8, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True, maximize=True)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
STEPS = 6


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


# --- independent NumPy float64 references (straight from the update rules) ------------------------


def _ref_run(name, kw, params, grads):
    p = [x.astype(np.float64) for x in params]
    st = [dict() for _ in p]
    lr = kw.get("lr")
    wd = kw.get("weight_decay", 1e-2 if name == "AdamW" else 0.0)
    sign = -1.0 if kw.get("maximize") else 1.0
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = sign * g.astype(np.float64)
            s = st[i]
            if name == "SGD":
                d = g + wd * p[i]
                mom = kw.get("momentum", 0.0)
                if mom:
                    b = d.copy() if t == 1 else mom * s["b"] + (1 - kw.get("dampening", 0.0)) * d
                    s["b"] = b
                    d = d + mom * b if kw.get("nesterov") else b
                p[i] = p[i] - lr * d
            elif name == "Adagrad":
                d = g + wd * p[i]
                s["sum"] = s.get("sum", np.full_like(d, kw.get("initial_accumulator_value", 0.0))) + d * d
                clr = lr / (1 + (t - 1) * kw.get("lr_decay", 0.0))
                p[i] = p[i] - clr * d / (np.sqrt(s["sum"]) + 1e-10)
            elif name == "Adadelta":
                rho, eps = kw.get("rho", 0.9), 1e-6
                d = g + wd * p[i]
                s["sq"] = rho * s.get("sq", 0.0) + (1 - rho) * d * d
                delta = np.sqrt(s.get("acc", 0.0) + eps) / np.sqrt(s["sq"] + eps) * d
                s["acc"] = rho * s.get("acc", 0.0) + (1 - rho) * delta * delta
                p[i] = p[i] - lr * delta
            elif name == "RMSprop":
                a, eps, mom = kw.get("alpha", 0.99), 1e-8, kw.get("momentum", 0.0)
                d = g + wd * p[i]
                s["sq"] = a * s.get("sq", 0.0) + (1 - a) * d * d
                if kw.get("centered"):
                    s["ga"] = a * s.get("ga", 0.0) + (1 - a) * d
                    avg = np.sqrt(s["sq"] - s["ga"] ** 2) + eps
                else:
                    avg = np.sqrt(s["sq"]) + eps
                if mom > 0:
                    s["b"] = mom * s.get("b", 0.0) + d / avg
                    p[i] = p[i] - lr * s["b"]
                else:
                    p[i] = p[i] - lr * d / avg
            else:  # Adam, AdamW
                b1, b2 = kw.get("betas", (0.9, 0.999))
                if name == "AdamW":
                    p[i] = p[i] * (1 - lr * wd)
                    d = g
                else:
                    d = g + wd * p[i]
                s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * d
                s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * d * d
                v = s["v"]
                if kw.get("amsgrad"):
                    s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
                    v = s["vmax"]
                mhat = s["m"] / (1 - b1**t)
                p[i] = p[i] - lr * mhat / (np.sqrt(v / (1 - b2**t)) + 1e-8)
    return p


def _fastops_run(name, kw, params, grads):
    p = [x.copy() for x in params]
    opt = getattr(optim, name)(p, **kw)
    for gs in grads:
        opt.step(gs)
    return p, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_matches_numpy_reference(name, kw, dtype):
    params, grads = _problem(dtype)
    before = [g.copy() for gs in grads for g in gs]
    got, _ = _fastops_run(name, kw, params, grads)
    ref = _ref_run(name, kw, params, grads)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(got, ref):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert all(np.array_equal(a, b) for a, b in zip(before, [g for gs in grads for g in gs]))  # grads untouched


@requires_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_matches_torch_step_for_step(name, kw, dtype):
    params, grads = _problem(dtype, seed=1)
    p = [x.copy() for x in params]
    opt = getattr(optim, name)(p, **kw)
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in params]
    topt = getattr(torch.optim, name)(tp, foreach=False, **kw)
    tol = 3e-6 if dtype == np.float32 else 1e-13
    for gs in grads:
        opt.step(gs)
        for t, g in zip(tp, gs):
            t.grad = torch.from_numpy(g.copy())
        topt.step()
        for a, t in zip(p, tp):
            np.testing.assert_allclose(a, t.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name,kw", CONFIGS[:: 3], ids=IDS[:: 3])
def test_state_dict_round_trip_and_groups(name, kw):
    params, grads = _problem(np.float64, seed=2)
    p1, opt1 = _fastops_run(name, kw, params, grads[:3])
    sd = opt1.state_dict()
    p2 = [x.copy() for x in p1]
    opt2 = getattr(optim, name)(p2, **kw)
    opt2.load_state_dict(sd)
    for gs in grads[3:]:
        opt1.step(gs)
        opt2.step(gs)
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)
    # parameter groups with their own lr; None gradient skips a parameter
    q = [x.copy() for x in params]
    opt = getattr(optim, name)([{"params": q[:1], "lr": 0.0}, {"params": q[1:]}], **kw)
    opt.step([grads[0][0], None, grads[0][2]])
    if name not in ("AdamW",):  # lr 0 leaves group 0 unchanged (AdamW's decay is lr * wd = 0 too)
        assert np.array_equal(q[0], params[0])
    assert np.array_equal(q[1], params[1])
    assert not np.array_equal(q[2], params[2])


def test_bitwise_same_for_one_and_two_threads():
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(300_000).astype(np.float32)
    gs = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(3)]
    out = []
    for n in (1, 2):
        with fastops.threads(n):
            p = p0.copy()
            opt = optim.Adam([p], lr=0.01, amsgrad=True)
            for g in gs:
                opt.step([g])
            out.append(p)
    assert np.array_equal(out[0], out[1])


def test_errors():
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="float32 or float64"):
        optim.Adam([np.zeros(3, np.int32)])
    with pytest.raises(ValueError, match="writeable"):
        optim.Adam([np.zeros((3, 4), np.float32)[:, ::2]])
    with pytest.raises(ValueError, match="twice"):
        optim.Adam([p, p])
    opt = optim.Adam([p])
    with pytest.raises(ValueError, match="2 gradients for 1"):
        opt.step([p, p])
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros(4, np.float32)])
    with pytest.raises(TypeError, match="mixed"):
        opt.step([np.zeros(3, np.float64)])


def test_l1_penalty():
    p = [np.array([-2.0, 0.0, 3.0], np.float32), np.array([[1.5]], np.float32)]
    v, g = optim.l1_penalty(p, 0.1)
    assert math.isclose(v, 0.1 * 6.5, rel_tol=1e-6)
    np.testing.assert_array_equal(g[0], np.float32([-0.1, 0.0, 0.1]))
    assert g[1].dtype == np.float32 and g[1].shape == (1, 1)


# --- schedulers --------------------------------------------------------------------------------

SCHEDS = [
    ("ExponentialLR", dict(gamma=0.9), "SGD", dict(lr=0.1)),
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD", dict(lr=0.1)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4), "SGD", dict(lr=0.1, momentum=0.9)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5, mode="triangular2"), "SGD",
     dict(lr=0.1, momentum=0.9)),
    ("CyclicLR", dict(base_lr=0.001, max_lr=0.01, step_size_up=2, mode="exp_range", gamma=0.9), "Adam",
     dict(lr=0.01)),
]


def _lr_sequence(mod_optim, sched, skw, oname, okw, n=20, params=None):
    opt = getattr(mod_optim, oname)(params, **okw)
    s = getattr(mod_optim.lr_scheduler if hasattr(mod_optim, "lr_scheduler") else mod_optim, sched)(opt, **skw)
    seq = []
    for _ in range(n):
        g = opt.param_groups[0]
        seq.append((s.get_last_lr()[0], g.get("momentum"), g.get("betas", (None,))[0]))
        s.step()
    return seq


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("sched,skw,oname,okw", SCHEDS, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDS)])
def test_scheduler_sequences(sched, skw, oname, okw):
    seq = _lr_sequence(optim, sched, skw, oname, okw, params=[np.zeros(2)])
    lrs = [s[0] for s in seq]
    if sched == "ExponentialLR":
        np.testing.assert_allclose(lrs, 0.1 * 0.9 ** np.arange(20), rtol=1e-12)
    elif sched == "StepLR":
        np.testing.assert_allclose(lrs, 0.1 * 0.5 ** (np.arange(20) // 3), rtol=1e-12)
    elif skw.get("mode", "triangular") == "triangular":
        tri = 0.01 + 0.09 * (1 - np.abs(np.arange(20) % 8 - 4) / 4)
        np.testing.assert_allclose(lrs, tri, rtol=1e-12)
        moms = [s[1] for s in seq]
        np.testing.assert_allclose(moms, 0.9 - 0.1 * (1 - np.abs(np.arange(20) % 8 - 4) / 4), rtol=1e-12)
    if torch is not None:
        tseq = _lr_sequence(torch.optim, sched, skw, oname, okw, params=[torch.zeros(2, requires_grad=True)])
        assert seq == tseq  # bit-identical learning rates and momenta


def test_reduce_lr_on_plateau():
    metrics = [5, 4, 4, 4, 4, 3.9999, 4, 4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1]
    kw = dict(factor=0.5, patience=2, cooldown=1, threshold=1e-3, min_lr=0.02)
    opt = optim.SGD([np.zeros(2)], lr=0.1)
    s = optim.ReduceLROnPlateau(opt, **kw)
    got = []
    for m in metrics:
        s.step(m)
        got.append(s.get_last_lr()[0])
    assert got[-1] == 0.02 and got[0] == 0.1 and 0.05 in got  # halved, floored at min_lr
    if torch is not None:
        topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
        ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
        exp = []
        for m in metrics:
            ts.step(m)
            exp.append(ts.get_last_lr()[0])
        assert got == exp
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(opt, factor=1.5)


def test_cyclic_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        optim.CyclicLR(optim.Adagrad([np.zeros(2)]), 0.01, 0.1)


# --- NaN / inf in gradients and parameters: the same propagation as torch.optim (foreach=False) -----

SPECIAL_CONFIGS = CONFIGS + [
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1)),
    ("Adadelta", dict(lr=1.0)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.0)),
]
SPECIAL_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SPECIAL_CONFIGS)]


def _same_special(a, b, what):
    """Exactly the same NaN/+inf/-inf positions; finite values equal to rounding."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NaN at {np.isnan(a)} vs torch {np.isnan(b)}\n{a}\n{b}"
    assert np.array_equal(np.isposinf(a), np.isposinf(b)), f"{what}: +inf at {np.isposinf(a)} vs torch\n{a}\n{b}"
    assert np.array_equal(np.isneginf(a), np.isneginf(b)), f"{what}: -inf at {np.isneginf(a)} vs torch\n{a}\n{b}"
    fin = np.isfinite(a)
    tol = 3e-6 if a.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=tol, err_msg=what)


@requires_torch
@pytest.mark.parametrize("where", ["grad", "param", "both"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "posinf", "neginf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kw", SPECIAL_CONFIGS, ids=SPECIAL_IDS)
def test_nan_inf_propagate_as_in_torch(name, kw, dtype, value, where):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(6).astype(dtype), rng.standard_normal((2, 3)).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(4)]
    if where in ("param", "both"):
        params[0][1] = value
        params[1][0, 2] = -value
    if where in ("grad", "both"):
        grads[1][0][3] = value  # a special gradient at the second step
        grads[0][1][1, 1] = value  # and at the first (creates the state buffers from it)
        grads[2][1][0, 0] = -value
    p = [x.copy() for x in params]
    opt = getattr(optim, name)(p, **kw)
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in params]
    topt = getattr(torch.optim, name)(tp, foreach=False, **kw)
    with np.errstate(all="ignore"):
        for step, gs in enumerate(grads):
            opt.step(gs)
            for t, g in zip(tp, gs):
                t.grad = torch.from_numpy(g.copy())
            topt.step()
            for i, (a, t) in enumerate(zip(p, tp)):
                _same_special(a, t.detach().numpy(), f"{name} {kw} step {step} param {i}")
                for key, tv in topt.state[t].items():
                    if key == "step" or not torch.is_tensor(tv) or tv.ndim == 0:
                        continue
                    assert key in opt.state[i], f"{name}: no state {key!r}"
                    _same_special(opt.state[i][key], tv.numpy(), f"{name} {kw} step {step} param {i} state {key}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_amsgrad_max_propagates_nan(dtype):
    # torch.maximum(max_exp_avg_sq, exp_avg_sq) is NaN where either is; the kernel's builtin max
    # dropped a NaN (found with test_nan_inf_propagate_as_in_torch)
    p = np.ones(3, dtype)
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    with np.errstate(invalid="ignore"):
        opt.step([np.array([1.0, np.nan, 1.0], dtype)])
        opt.step([np.ones(3, dtype)])
    assert np.isnan(opt.state[0]["max_exp_avg_sq"][1]) and np.isnan(p[1])
    assert np.isfinite(np.delete(opt.state[0]["max_exp_avg_sq"], 1)).all() and np.isfinite(np.delete(p, 1)).all()
