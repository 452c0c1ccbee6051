"""Op table: losses (docs/ops.md, "Losses")."""
import warnings

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, away_from, randn

SHAPES = [(7,), (3, 5), (2, 3, 4), (70001,)]
REDS = ("mean", "sum", "none")


def _reduce(v, reduction, dtype, divisor=None):
    if reduction == "none":
        return v.astype(dtype)
    s = np.sum(v)
    if reduction == "mean":
        s = s / (v.size if divisor is None else divisor)
    return np.asarray(s, dtype)


def _pair_samples(make_xy, kwargs_list=({},), shapes=SHAPES):
    def samples(rng, dtype):
        out = []
        for kw in kwargs_list:
            for red in REDS:
                for shape in shapes:
                    args = make_xy(rng, shape)
                    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) else a for a in args)
                    out.append(Sample(args, dict(kw, reduction=red), desc=str(shape)))
                # input and target broadcast against each other (as torch allows for these losses)
                x, y = make_xy(rng, (3, 5))[:2]
                x, y = x.astype(dtype), y.astype(dtype)
                for xb, yb in ((x, y[:1]), (x[:, :1], y), (x[0], y)):
                    out.append(Sample((np.ascontiguousarray(xb), np.ascontiguousarray(yb)), dict(kw, reduction=red), "broadcast"))
        return out

    return samples


def _diff_xy(kinks):
    def make(rng, shape):
        x = rng.standard_normal(shape) * 2
        y = rng.standard_normal(shape) * 2
        d = away_from(x - y, kinks, 2e-2)
        return x, x - d

    return make


def _pair_errors(name, n_extra=0, extra=()):
    def errors():
        x = np.ones((2, 3), np.float32)
        pad = (None,) * n_extra
        cases = [
            ErrorCase((x, np.ones((3, 2), np.float32)) + pad, {}, ValueError, "target"),
            ErrorCase((x, np.ones((2, 3), np.float64)) + pad, {}, TypeError, "target"),
            ErrorCase((np.ones((2, 3), np.int64), x) + pad, {}, TypeError, "input"),
            ErrorCase((x, x) + pad, {"reduction": "avg"}, ValueError, "reduction"),
            ErrorCase(([1.0], x) + pad, {}, TypeError, "input"),
        ]
        cases.extend(ErrorCase((x, x) + pad, kw, exc, m) for kw, exc, m in extra)
        return cases

    return errors


def _bench_pair(rng, dtype, size):
    n = {"small": 1000, "large": 1 << 22}[size]
    return Sample((randn(rng, (n,), dtype), randn(rng, (n,), dtype)), {"reduction": "mean"})


def _mse_ref(x, y, reduction="mean"):
    return _reduce((x - y) ** 2, reduction, x.dtype)


def _l1_ref(x, y, reduction="mean"):
    return _reduce(np.abs(x - y), reduction, x.dtype)


def _sl1_ref(x, y, reduction="mean", beta=1.0):
    d = np.abs(x - y)
    v = np.where(d < beta, 0.5 * d * d / (beta if beta else 1.0), d - 0.5 * beta)
    return _reduce(v, reduction, x.dtype)


def _huber_ref(x, y, reduction="mean", delta=1.0):
    d = np.abs(x - y)
    v = np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(v, reduction, x.dtype)


def _bce_ref(x, y, w=None, reduction="mean"):
    v = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    if w is not None:
        v = v * w
    return _reduce(v, reduction, x.dtype)


def _bcel_ref(x, y, w=None, reduction="mean", pos_weight=None):
    pw = 1.0 if pos_weight is None else pos_weight
    v = (1 - y) * x + ((pw - 1) * y + 1) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    if w is not None:
        v = v * w
    return _reduce(v, reduction, x.dtype)


def _kl_ref(x, y, reduction="mean", log_target=False):
    v = np.exp(y) * (y - x) if log_target else y * (np.log(y) - x)
    if reduction == "batchmean":
        return _reduce(v, "mean", x.dtype, divisor=x.shape[0] if x.ndim else 1)
    return _reduce(v, reduction, x.dtype)


def _bce_xy(rng, shape):
    x = rng.uniform(0.05, 0.95, shape)
    y = rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2.0, shape[-1:])
    return x, y, w


def _bce_xy_now(rng, shape):
    x, y, _ = _bce_xy(rng, shape)
    return x, y, None


def _bcel_xy(rng, shape):
    x = rng.standard_normal(shape) * 3
    y = rng.uniform(0, 1, shape)
    return x, y, rng.uniform(0.5, 2.0, shape[-1:])


def _bcel_samples(rng, dtype):
    out = []
    for red in REDS:
        for shape in SHAPES:
            x, y, w = _bcel_xy(rng, shape)
            pw = rng.uniform(0.5, 3.0, shape[-1:])
            c = lambda a: a.astype(dtype)  # noqa: E731
            out.append(Sample((c(x), c(y), None), {"reduction": red}, str(shape)))
            out.append(Sample((c(x), c(y), c(w)), {"reduction": red, "pos_weight": c(pw)}, str(shape) + " w pw"))
    # large logits: stable
    x = np.array([1e3, -1e3, 50.0, -50.0, 0.5])
    y = np.array([0.0, 1.0, 0.3, 0.7, 0.5])
    out.append(Sample((x.astype(dtype), y.astype(dtype), None), {"reduction": "none"}, "large logits"))
    return out


def _bce_samples(rng, dtype):
    out = []
    for red in REDS:
        for shape in SHAPES:
            x, y, w = _bce_xy(rng, shape)
            out.append(Sample((x.astype(dtype), y.astype(dtype), None), {"reduction": red}, str(shape)))
            out.append(Sample((x.astype(dtype), y.astype(dtype), w.astype(dtype)), {"reduction": red}, str(shape) + " w"))
    return out


def _kl_samples(rng, dtype):
    out = []
    for lt in (False, True):
        for red in REDS + ("batchmean",):
            for shape in SHAPES:
                x = rng.standard_normal(shape)
                y = rng.standard_normal(shape) if lt else rng.uniform(0.05, 1.0, shape)
                out.append(Sample((x.astype(dtype), y.astype(dtype)), {"reduction": red, "log_target": lt}, str(shape)))
            x = rng.standard_normal((3, 5)).astype(dtype)
            y = (rng.standard_normal(5) if lt else rng.uniform(0.05, 1.0, 5)).astype(dtype)
            out.append(Sample((x, y), {"reduction": red, "log_target": lt}, "broadcast target"))
            out.append(Sample((np.ascontiguousarray(x[:1]), np.tile(y, (2, 1))), {"reduction": red, "log_target": lt}, "broadcast input"))
    return out


def _f(name):
    def ref(t, *a, **k):
        with warnings.catch_warnings():  # torch warns when input and target broadcast
            warnings.simplefilter("ignore", UserWarning)
            return getattr(t.nn.functional, name)(*a, **k)

    return ref


def _bce_torch(t, x, y, w=None, **k):
    return t.nn.functional.binary_cross_entropy(x, y, weight=w, **k)


def _bcel_torch(t, x, y, w=None, pos_weight=None, **k):
    if pos_weight is not None:
        pos_weight = t.from_numpy(pos_weight)
    return t.nn.functional.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pos_weight, **k)


def _bench_bce(rng, dtype, size):
    n = {"small": 1000, "large": 1 << 22}[size]
    x, y, _ = _bce_xy(rng, (n,))
    return Sample((x.astype(dtype), y.astype(dtype), None), {"reduction": "mean"})


def _bench_kl(rng, dtype, size):
    n = {"small": 1000, "large": 1 << 22}[size]
    x, y, _ = _bce_xy(rng, (n,))
    return Sample((np.log(x).astype(dtype), y.astype(dtype)), {"reduction": "batchmean"})


# Dispatch paths (tests/test_paths.py). The elementwise losses run serial kernels and a serial
# sum at any thread count (fastops/loss/_common.py) and report no explain; the one parallel step is
# a broadcast gradient summed back to its argument's shape (fastops._reduce, parallel above 2**16
# elements).
def _pair_paths(kwargs, broadcast=False):
    def paths(rng, dtype):
        out = [PathCase("serial", Sample((randn(rng, (100_001,), dtype), randn(rng, (100_001,), dtype)), dict(kwargs),
                                         desc="(100001,)"))]
        if broadcast:
            x, y = randn(rng, (1000, 101), dtype), randn(rng, (101,), dtype)
            out.append(PathCase("broadcast_target_reduce", Sample((x, y), dict(kwargs), desc="(1000, 101) target (101,)")))
        return out

    return paths


TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)}

TABLE = [
    OpInfo(
        name="mse_loss", samples=_pair_samples(_diff_xy(())), ref=_mse_ref, torch_ref=_f("mse_loss"),
        grad_args=(0, 1), errors=_pair_errors("mse_loss"), bench=_bench_pair, tol=TOL, paths=_pair_paths({}, True),
    ),
    OpInfo(
        name="l1_loss", samples=_pair_samples(_diff_xy((0.0,))), ref=_l1_ref, torch_ref=_f("l1_loss"),
        grad_args=(0, 1), errors=_pair_errors("l1_loss"), bench=_bench_pair, tol=TOL, nondiff_kinks=True,
    ),
    OpInfo(
        name="smooth_l1_loss",
        samples=_pair_samples(_diff_xy((0.0, 1.0, -1.0, 0.5, -0.5)), ({}, {"beta": 0.5}, {"beta": 0.0})),
        ref=_sl1_ref, torch_ref=_f("smooth_l1_loss"), grad_args=(0, 1),
        errors=_pair_errors("smooth_l1_loss", extra=[({"beta": -1.0}, ValueError, "beta")]),
        bench=_bench_pair, tol=TOL, nondiff_kinks=True, paths=_pair_paths({"reduction": "sum"}),
    ),
    OpInfo(
        name="huber_loss",
        samples=_pair_samples(_diff_xy((1.0, -1.0, 0.5, -0.5)), ({}, {"delta": 0.5})),
        ref=_huber_ref, torch_ref=_f("huber_loss"), grad_args=(0, 1),
        errors=_pair_errors("huber_loss", extra=[({"delta": 0.0}, ValueError, "delta")]),
        bench=_bench_pair, tol=TOL, nondiff_kinks=True,
    ),
    OpInfo(
        name="binary_cross_entropy", samples=_bce_samples, ref=_bce_ref, torch_ref=_bce_torch,
        grad_args=(0, 1), bench=_bench_bce, tol=TOL,
        errors=lambda: _pair_errors("binary_cross_entropy", 1)() + [
            ErrorCase((np.array([0.5, 1.5], np.float32), np.array([0.0, 1.0], np.float32), None), {}, ValueError, "between 0 and 1")],
    ),
    OpInfo(
        name="binary_cross_entropy_with_logits", samples=_bcel_samples, ref=_bcel_ref, torch_ref=_bcel_torch,
        grad_args=(0, 1), errors=_pair_errors("binary_cross_entropy_with_logits", 1), bench=_bench_bce, tol=TOL,
    ),
    OpInfo(
        name="kl_div", samples=_kl_samples, ref=_kl_ref, torch_ref=_f("kl_div"),
        grad_args=(0, 1), errors=_pair_errors("kl_div"), bench=_bench_kl, tol=TOL,
    ),
]


# ---------------------------------------------------------------------------------------------
# nll_loss, cross_entropy

CLS_SHAPES = [(6, 5), (3, 4, 2, 3), (5,), (70, 33)]


def _to_rows(x):
    """(N, C, d...) -> (N*S, C) rows; (C,) -> (1, C)."""
    if x.ndim == 1:
        return x[None]
    N, C = x.shape[:2]
    return np.moveaxis(x.reshape(N, C, -1), 1, 2).reshape(-1, C)


def _log_softmax_rows(x2):
    m = x2.max(axis=1, keepdims=True)
    return x2 - m - np.log(np.exp(x2 - m).sum(axis=1, keepdims=True))


def _cls_ref(logsm):
    def ref(x, t, w=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        x2 = _to_rows(x)
        C = x2.shape[1]
        lp = _log_softmax_rows(x2) if logsm else x2
        wv = np.ones(C) if w is None else w
        eps = label_smoothing
        out_shape = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
        if t.dtype.kind == "f":
            y2 = _to_rows(t) * (1 - eps) + eps / C
            v = -(lp * y2 * wv).sum(axis=1)
            if reduction == "none":
                return v.reshape(out_shape).astype(x.dtype)
            s = v.sum() / (len(v) if reduction == "mean" else 1)
            return np.asarray(s, x.dtype)
        tf = t.reshape(-1).astype(np.int64)
        keep = tf != ignore_index
        tk = np.where(keep, tf, 0)
        wt = np.where(keep, wv[tk], 0.0)
        nll = -lp[np.arange(len(tf)), tk] * wt
        smooth = np.where(keep, -(lp * wv).sum(axis=1), 0.0)
        v = (1 - eps) * nll + eps / C * smooth
        if reduction == "none":
            return v.reshape(out_shape).astype(x.dtype)
        s = v.sum() / (wt.sum() if reduction == "mean" else 1)
        return np.asarray(s, x.dtype)

    return ref


def _cls_samples(kwargs_list, with_ignore=True):
    def samples(rng, dtype):
        out = []
        for kw in kwargs_list:
            for red in REDS:
                for shape in CLS_SHAPES:
                    x = rng.standard_normal(shape) * 2
                    C = shape[1] if len(shape) > 1 else shape[0]
                    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
                    t = rng.integers(0, C, tshape)
                    if with_ignore and t.ndim:
                        t.reshape(-1)[0] = kw.get("ignore_index", -100)
                    w = rng.uniform(0.5, 2.0, C).astype(dtype) if kw.get("_w") else None
                    k = {a: b for a, b in kw.items() if a != "_w"}
                    out.append(Sample((x.astype(dtype), t, w), dict(k, reduction=red), str(shape)))
        return out

    return samples


def _prob_samples(rng, dtype):
    out = []
    for kw in ({}, {"_w": True, "label_smoothing": 0.1}):
        for red in REDS:
            for shape in CLS_SHAPES:
                x = rng.standard_normal(shape) * 2
                ax = 1 if len(shape) > 1 else 0
                p = rng.uniform(0.05, 1.0, shape)
                p = p / p.sum(axis=ax, keepdims=True)
                C = shape[ax]
                w = rng.uniform(0.5, 2.0, C).astype(dtype) if kw.get("_w") else None
                k = {a: b for a, b in kw.items() if a != "_w"}
                out.append(Sample((x.astype(dtype), p.astype(dtype), w), dict(k, reduction=red), str(shape) + " prob"))
    return out


def _cls_errors(name, prob_ok):
    def errors():
        x = np.ones((4, 3), np.float32)
        t = np.array([0, 1, 2, 1])
        cases = [
            ErrorCase((x, np.array([0, 1, 2])), {}, ValueError, "target"),
            ErrorCase((x, np.array([0, 1, 3, 1])), {}, ValueError, "target"),
            ErrorCase((x, np.array([0, 1, -1, 1])), {}, ValueError, "target"),
            ErrorCase((x, t), {"reduction": "avg"}, ValueError, "reduction"),
            ErrorCase((x, t, np.ones(4, np.float32)), {}, ValueError, "weight"),
            ErrorCase((x, t, np.ones(3, np.float64)), {}, TypeError, "weight"),
            ErrorCase((np.ones((4, 3), np.int64), t), {}, TypeError, "input"),
            ErrorCase((x, np.array([0.0, 1, 2, 1], np.complex64)), {}, TypeError, "target"),
        ]
        if not prob_ok:
            cases.append(ErrorCase((x, np.ones((4, 3), np.float32)), {}, TypeError, "integer"))
        else:
            cases.append(ErrorCase((x, np.ones((4, 2), np.float32)), {}, ValueError, "target"))
            cases.append(ErrorCase((x, t), {"label_smoothing": 1.5}, ValueError, "label_smoothing"))
        return cases

    return errors


def _cls_bench(rng, dtype, size):
    n, c = {"small": (64, 10), "large": (4096, 1000)}[size]
    return Sample((randn(rng, (n, c), dtype), rng.integers(0, c, n), None), {"reduction": "mean"})


def _nll_torch(t, x, tg, w=None, **k):
    return t.nn.functional.nll_loss(x, tg, weight=w, **k)


def _ce_torch(t, x, tg, w=None, **k):
    return t.nn.functional.cross_entropy(x, tg, weight=w, **k)


# Dispatch paths (tests/test_paths.py): rows of C class scores, parallel over blocks of rows from
# 2**15 elements (fastops/loss/classification.py; no explain): 1000 x 37 is above it. Some rows
# ignored.
def _cls_paths(kwargs):
    def paths(rng, dtype):
        x = randn(rng, (1000, 37), dtype)
        t = rng.integers(0, 37, 1000)
        t[::7] = -100
        return [PathCase("parallel_rows", Sample((x, t, None), dict(kwargs), desc="(1000, 37)"))]

    return paths


TABLE += [
    OpInfo(
        name="nll_loss", samples=_cls_samples(({}, {"_w": True}, {"_w": True, "ignore_index": 1})),
        ref=_cls_ref(False), torch_ref=_nll_torch, grad_args=(0,), errors=_cls_errors("nll_loss", False),
        bench=_cls_bench, tol=TOL, paths=_cls_paths({}),
    ),
    OpInfo(
        name="cross_entropy",
        samples=_cls_samples(({}, {"_w": True}, {"_w": True, "label_smoothing": 0.2}, {"label_smoothing": 0.1, "ignore_index": 2})),
        ref=_cls_ref(True), torch_ref=_ce_torch, grad_args=(0,), errors=_cls_errors("cross_entropy", True),
        bench=_cls_bench, tol=TOL, paths=_cls_paths({"label_smoothing": 0.1}),
    ),
    # probability targets: the target is differentiable too (a second entry, same op)
    OpInfo(
        name="cross_entropy", samples=_prob_samples, ref=_cls_ref(True), torch_ref=_ce_torch, grad_args=(0, 1),
        errors=lambda: [], bench=None, bench_sizes=(), tol=TOL,
    ),
]


# ---------------------------------------------------------------------------------------------
# triplet_margin_loss


def _pdist(x, y, p, eps):
    return (np.abs(x - y + eps) ** p).sum(axis=-1) ** (1.0 / p)


def _triplet_rows(a, p_, n, margin=1.0, p=2, eps=1e-6, swap=False):
    dap, dan = _pdist(a, p_, p, eps), _pdist(a, n, p, eps)
    if swap:
        dan = np.minimum(dan, _pdist(p_, n, p, eps))
    return margin + dap - dan


def _triplet_ref(a, p_, n, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    h = np.maximum(_triplet_rows(a, p_, n, margin, p, eps, swap), 0.0)
    return _reduce(np.asarray(h), reduction, a.dtype)


def _triplet_samples(rng, dtype):
    out = []
    for kw in ({}, {"p": 1, "margin": 2.0}, {"p": 3, "swap": True}, {"swap": True, "margin": 1.5}):
        for red in REDS:
            for shape in [(6, 5), (7,), (40, 16)]:
                while True:
                    a, p_, n = (rng.standard_normal(shape) for _ in range(3))
                    h = np.atleast_1d(_triplet_rows(a, p_, n, **kw))
                    if kw.get("swap"):
                        dan, dpn = _pdist(a, n, kw.get("p", 2), 1e-6), _pdist(p_, n, kw.get("p", 2), 1e-6)
                        if np.any(np.abs(np.atleast_1d(dan - dpn)) < 2e-2):
                            continue
                    if np.all(np.abs(h) > 2e-2):
                        break
                out.append(Sample((a.astype(dtype), p_.astype(dtype), n.astype(dtype)), dict(kw, reduction=red), str(shape)))
    return out


def _triplet_errors():
    x = np.ones((4, 3), np.float32)
    return [
        ErrorCase((x, x, np.ones((4, 2), np.float32)), {}, ValueError, "shape"),
        ErrorCase((x, x, np.ones((4, 3), np.float64)), {}, TypeError, "negative"),
        ErrorCase((x, x, x), {"reduction": "avg"}, ValueError, "reduction"),
        ErrorCase((x, x, x), {"margin": -1.0}, ValueError, "margin"),
        ErrorCase((x, x, x), {"p": 0}, ValueError, "p"),
        ErrorCase((np.ones((2, 2, 2), np.float32),) * 3, {}, ValueError, "anchor"),
    ]


def _triplet_bench(rng, dtype, size):
    n, d = {"small": (64, 16), "large": (4096, 256)}[size]
    return Sample(tuple(randn(rng, (n, d), dtype) for _ in range(3)), {"reduction": "mean"})


def _triplet_paths(rng, dtype):
    # parallel over rows from 2**15 elements (fastops/loss/triplet.py; no explain): 4000 x 9 is
    # above it. Rows within 2e-2 of the hinge get a new negative until none is (the finite
    # differences stay on one side of it)
    a, p_, n = (rng.standard_normal((4000, 9)) for _ in range(3))
    while True:
        near = np.abs(_triplet_rows(a, p_, n)) < 2e-2
        if not near.any():
            break
        n[near] = rng.standard_normal((int(near.sum()), 9))
    return [PathCase("parallel_rows", Sample((a.astype(dtype), p_.astype(dtype), n.astype(dtype)), {}, desc="(4000, 9)"))]


TABLE += [
    OpInfo(
        name="triplet_margin_loss", samples=_triplet_samples, ref=_triplet_ref,
        torch_ref=lambda t, *a, **k: t.nn.functional.triplet_margin_loss(*a, **k), grad_args=(0, 1, 2),
        errors=_triplet_errors, bench=_triplet_bench, tol=TOL, nondiff_kinks=True, paths=_triplet_paths,
    ),
]
