"""Shared kernels of the normalization family (batch_norm, instance_norm, group_norm, layer_norm).

Two layouts:

* **planes** (batch_norm, instance_norm, group_norm): the input is viewed as ``(P, S)`` with
  ``P = N * C`` planes of ``S`` contiguous spatial elements. Every kernel runs ``prange`` over planes
  and handles a plane in a fixed order, writing only that plane's output row or its own slot of a
  ``(P, 2)`` partial-sum array. The per-group statistics (a channel over the batch for batch_norm, a
  plane for instance_norm, ``C/G`` consecutive planes for group_norm) are then combined from the
  per-plane partials in NumPy, in plane order. Nothing depends on the thread count.
* **groups** (group_norm, instance_norm with input statistics): a group's planes are contiguous,
  so one ``prange`` iteration per (sample, group) computes the statistics and normalises (or, in
  the backward, sums and computes grad_input) while the group is still in L1/L2.
* **rows** (layer_norm): ``(R, L)`` rows, an element-wise affine of length ``L``; a unit is a fixed
  chunk of rows (chunk size a function of the shape only); the weight/bias gradients are summed per
  unit into the unit's own partial row, the partials combined in unit order.

Statistics are *shifted* sums: ``sum(x - k)`` and ``sum((x - k)^2)`` with ``k`` the first element of
the group, so a large mean (1e4 with std 1 in float32) does not cancel catastrophically as
``E[x^2] - E[x]^2`` would. One read of the data (a two-pass mean/variance would read it twice).

Speed: the plane sums keep their partials in register vectors (``fastops._simd``: LLVM does not
vectorize a scalar ``s += x[i]`` without ``reassoc``: 4.8 GB/s vs 48 GB/s for 64 lanes, see
``fastops._reduce``, commit f87ccf2). The
backward sums need the activation's gradient per element first: it is computed into a small
L1-resident tile (``TILE`` elements), which ``row_sum``/``row_dot`` then reduce.
"""
import numpy as np
from numba import prange

from .. import _dispatch, _epilogue, _jit, _threads
from .._simd import hsum, nlanes, row_dot, row_sum, vadd, vload, vmul, vsplat
from .._jit import inline
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = ACT = DACT = UNBOUND

IDENTITY = _epilogue.parse("norm", None)
TILE = 1024  # elements of the per-plane scratch tiles of the backward sums (8 KB f64: L1)


@inline
def moments(a, k):
    """``(sum(a - k), sum((a - k)**2))`` of a 1-D C-contiguous array, in a fixed lane order."""
    n = a.size
    vl = nlanes(a)
    w = 2 * vl
    nk = vsplat(a, -k)
    z = vsplat(a, 0.0)
    s0, s1, q0, q1 = z, z, z, z
    for b in range(n // w):
        o = b * w
        d0 = vadd(vload(a, o), nk)
        d1 = vadd(vload(a, o + vl), nk)
        s0 = vadd(s0, d0)
        s1 = vadd(s1, d1)
        q0 = vadd(q0, vmul(d0, d0))
        q1 = vadd(q1, vmul(d1, d1))
    for b in range((n // w) * 2, n // vl):
        d0 = vadd(vload(a, b * vl), nk)
        s0 = vadd(s0, d0)
        q0 = vadd(q0, vmul(d0, d0))
    s = hsum(vadd(s0, s1))
    q = hsum(vadd(q0, q1))
    for i in range((n // vl) * vl, n):
        d = a[i] - k
        s += d
        q += d * d
    return s, q


@inline
def dot_centered(a, b, c, m):
    """``sum(a * b * (c - m))`` over three 1-D C-contiguous arrays of one length, fixed lane order."""
    n = a.size
    vl = nlanes(a)
    nm = vsplat(a, -m)
    z = vsplat(a, 0.0)
    s0, s1 = z, z
    w = 2 * vl
    for t in range(n // w):
        o = t * w
        s0 = vadd(s0, vmul(vmul(vload(a, o), vload(b, o)), vadd(vload(c, o), nm)))
        s1 = vadd(s1, vmul(vmul(vload(a, o + vl), vload(b, o + vl)), vadd(vload(c, o + vl), nm)))
    for t in range((n // w) * 2, n // vl):
        o = t * vl
        s0 = vadd(s0, vmul(vmul(vload(a, o), vload(b, o)), vadd(vload(c, o), nm)))
    tot = hsum(vadd(s0, s1))
    for i in range((n // vl) * vl, n):
        tot += a[i] * b[i] * (c[i] - m)
    return tot


@inline
def dot_c(a, c, m):
    """``sum(a * (c - m))`` over two 1-D C-contiguous arrays of one length, fixed lane order."""
    n = a.size
    vl = nlanes(a)
    nm = vsplat(a, -m)
    z = vsplat(a, 0.0)
    s0, s1 = z, z
    w = 2 * vl
    for t in range(n // w):
        o = t * w
        s0 = vadd(s0, vmul(vload(a, o), vadd(vload(c, o), nm)))
        s1 = vadd(s1, vmul(vload(a, o + vl), vadd(vload(c, o + vl), nm)))
    for t in range((n // w) * 2, n // vl):
        o = t * vl
        s0 = vadd(s0, vmul(vload(a, o), vadd(vload(c, o), nm)))
    tot = hsum(vadd(s0, s1))
    for i in range((n // vl) * vl, n):
        tot += a[i] * (c[i] - m)
    return tot


@inline
def row_stats(a, inv_cnt, eps, one):
    """``(mean, biased var, 1/sqrt(var + eps))`` of a 1-D C-contiguous array from its sums shifted
    by its first element (``moments``); ``inv_cnt`` = 1/a.size, ``one`` a 1 of the dtype (typed
    constants: a literal would promote float32 to float64)."""
    k = a[0]
    s, q = moments(a, k)
    md = s * inv_cnt
    var = q * inv_cnt - md * md
    if var < one - one:
        var = one - one
    return k + md, var, one / np.sqrt(var + eps)


# ---------------------------------------------------------------------------------------------
# plane kernels (templates; ACT / DACT / T bound by KERNELS below)


def _moments_template(x2, k, out):
    P = x2.shape[0]
    for p in prange(P):
        s, q = moments(x2[p], k[p])
        out[p, 0] = s
        out[p, 1] = q


def _affine_template(x2, m, sc, bi, out2, a, b):
    P, S = x2.shape
    for p in prange(P):
        xr = x2[p]
        orow = out2[p]
        mp, sp, bp = m[p], sc[p], bi[p]
        for i in range(S):
            orow[i] = ACT((xr[i] - mp) * sp + bp, a, b)


def _gsums_template(x2, g2, m, sc, bi, inv, out, tw, a, b):
    # per plane: sg = sum(g'), sgx = sum(g' * xhat) with g' = DACT(pre, g), pre = (x - m) * sc + bi,
    # xhat = (x - m) * inv; g' and xhat go through an L1 tile, reduced by row_sum / row_dot.
    P, S = x2.shape
    for p in prange(P):
        xr = x2[p]
        gr = g2[p]
        mp, sp, bp, ip = m[p], sc[p], bi[p], inv[p]
        gt = np.empty(tw, T)
        xt = np.empty(tw, T)
        sg = T(0)
        sgx = T(0)
        for t0 in range(0, S, tw):
            w = min(tw, S - t0)
            xs = xr[t0 : t0 + w]
            gs = gr[t0 : t0 + w]
            for i in range(w):
                d = xs[i] - mp
                gt[i] = DACT(d * sp + bp, gs[i], a, b)
                xt[i] = d * ip
            for i in range(w, tw):  # last, partial tile: zeros add nothing
                gt[i] = T(0)
                xt[i] = T(0)
            sg += row_sum(gt)
            sgx += row_dot(gt, xt)
        out[p, 0] = sg
        out[p, 1] = sgx


def _ginput_template(x2, g2, m, sc, bi, al, be, ga, gx2, a, b):
    # grad_input = al * g' + (x - m) * be + ga (per-plane coefficients, see batch_norm.py)
    P, S = x2.shape
    for p in prange(P):
        xr = x2[p]
        gr = g2[p]
        orow = gx2[p]
        mp, sp, bp, ap, ep, cp = m[p], sc[p], bi[p], al[p], be[p], ga[p]
        if ep == 0 and cp == 0:
            # running statistics (eval): grad_input does not depend on x through the statistics,
            # so a NaN/Inf in x must not reach it through (x - m) * 0 (PyTorch's is finite there)
            for i in range(S):
                orow[i] = ap * DACT((xr[i] - mp) * sp + bp, gr[i], a, b)
        else:
            for i in range(S):
                d = xr[i] - mp
                orow[i] = ap * DACT(d * sp + bp, gr[i], a, b) + d * ep + cp


# ---------------------------------------------------------------------------------------------
# fused per-group kernels (group_norm, instance_norm with input statistics): a group is K planes
# of S contiguous elements (one row of xg); its statistics and its normalisation run in the same
# prange iteration, so the second read of the group comes from L1/L2 (group_norm (16,256,28,28):
# 25 KB per group) and there is one parallel region instead of two. Serial, f32, best of 20 on a
# loaded machine: 1.53 ms fused vs 0.53 + 0.99 ms for the moments + affine plane kernels (no gain
# measurable there; a copy 1.2 ms; commit ba0e286).


def _grp_fwd_template(xg, w, bb, out, st, K, S, G, eps, inv_cnt):
    R = xg.shape[0]
    for r in prange(R):
        xr = xg[r]
        mean, var, rstd = row_stats(xr, inv_cnt, eps, T(1))
        st[r, 0] = mean
        st[r, 1] = var
        c0 = (r % G) * K
        orow = out[r]
        for k in range(K):
            sc = w[c0 + k] * rstd
            bi = bb[c0 + k]
            xs = xr[k * S : (k + 1) * S]
            os = orow[k * S : (k + 1) * S]
            for i in range(S):
                os[i] = (xs[i] - mean) * sc + bi


def _grp_bwd_template(xg, gg, w, gx, sums, K, S, G, eps, inv_cnt):
    # per group: statistics, per-channel register-lane sums sum(g), sum(g * (x - mean)) straight
    # from the rows, then grad_input = rstd * w * g - rstd^2 * B * (x - mean) - rstd * A
    # (see planes_backward); the group's second and third reads come from L1/L2.
    R = xg.shape[0]
    for r in prange(R):
        xr = xg[r]
        gr = gg[r]
        mean, var, rstd = row_stats(xr, inv_cnt, eps, T(1))
        c0 = (r % G) * K
        A = T(0)
        B = T(0)
        for k in range(K):
            xs = xr[k * S : (k + 1) * S]
            gs = gr[k * S : (k + 1) * S]
            sg = row_sum(gs)
            sgx = dot_c(gs, xs, mean) * rstd
            sums[r * K + k, 0] = sg
            sums[r * K + k, 1] = sgx
            A += w[c0 + k] * sg
            B += w[c0 + k] * sgx
        ga = -rstd * (A * inv_cnt)
        be = -(rstd * rstd) * (B * inv_cnt)
        orow = gx[r]
        for k in range(K):
            al = w[c0 + k] * rstd
            xs = xr[k * S : (k + 1) * S]
            gs = gr[k * S : (k + 1) * S]
            os = orow[k * S : (k + 1) * S]
            for i in range(S):
                os[i] = al * gs[i] + (xs[i] - mean) * be + ga


# ---------------------------------------------------------------------------------------------
# row kernels (layer_norm)


def _ln_fwd_template(x2, w, bb, out2, eps, inv_l, chunk):
    R, L = x2.shape
    for u in prange((R + chunk - 1) // chunk):
        for r in range(u * chunk, min(u * chunk + chunk, R)):
            xr = x2[r]
            mean, var, rstd = row_stats(xr, inv_l, eps, T(1))
            orow = out2[r]
            for i in range(L):
                orow[i] = (xr[i] - mean) * rstd * w[i] + bb[i]


def _ln_bwd_template(x2, g2, w, gx2, pw, pb, eps, inv_l, chunk):
    # No scratch rows: sum(g * w) and sum(g * w * (x - mean)) are register-lane reductions straight
    # from the rows (``row_dot``, ``dot_centered``). Serial, (4096, 784) f32, best of 24 on a loaded
    # machine: 3.2 ms (forward 0.9 ms, copy 1.1 ms); per-unit scratch rows for xhat and g * w
    # were not measurably different (both bimodal, 2.5-17 ms: preemption under load 10; commit
    # 6623d24).
    R, L = x2.shape
    for u in prange((R + chunk - 1) // chunk):
        gwu = pw[u]
        gbu = pb[u]
        for i in range(L):
            gwu[i] = T(0)
            gbu[i] = T(0)
        for r in range(u * chunk, min(u * chunk + chunk, R)):
            xr = x2[r]
            gr = g2[r]
            mean, var, rstd = row_stats(xr, inv_l, eps, T(1))
            A = row_dot(gr, w) * inv_l
            B = dot_centered(gr, w, xr, mean) * (rstd * inv_l)
            orow = gx2[r]
            for i in range(L):
                orow[i] = rstd * (gr[i] * w[i] - A - (xr[i] - mean) * rstd * B)
            for i in range(L):
                gwu[i] += gr[i] * ((xr[i] - mean) * rstd)
            for i in range(L):
                gbu[i] += gr[i]


_PLANE = {"moments": _moments_template, "affine": _affine_template, "gsums": _gsums_template,
          "ginput": _ginput_template}
_ROWS = {"ln_fwd": _ln_fwd_template, "ln_bwd": _ln_bwd_template, "grp_fwd": _grp_fwd_template,
         "grp_bwd": _grp_bwd_template}
_USES_ACT = ("affine", "gsums", "ginput")  # variant: the fused activation's name (None: identity)


def _bindings(dt, which, act):
    epi = _epilogue.Epilogue(act)
    if which == "affine":
        return {"ACT": _epilogue.act_scalar(epi, dt)}
    if which in ("gsums", "ginput"):
        return {"DACT": _epilogue.dact_scalar(epi, dt)}
    return {}


def _name(which, dt, backend, act):
    tag = f"_{_epilogue.Epilogue(act).key}" if which in _USES_ACT else ""
    return f"norm_{which}{tag}_{_jit.SUFFIX[dt]}_{backend}"


KERNELS = KernelSet("norm", dict(_PLANE, **_ROWS), bind=_bindings, kernel_name=_name)


def _variant(which, epi):
    return epi.name if which in _USES_ACT and epi is not None else None


def backend(dtype, units, size, which=""):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), units=units)


def run(which, dtype, units, size, *args, epi=None):
    KERNELS.run(which, dtype, backend(dtype, units, size, which), *args, variant=_variant(which, epi))


def explain(which, dtype, units, size, epi=None):
    be = backend(dtype, units, size, which)
    return {
        "kernel": KERNELS.kernel_name(which, dtype, be, _variant(which, epi)),
        "backend": be,
        "units": units,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
    }


# ---------------------------------------------------------------------------------------------
# plane-layout helpers used by batch_norm / instance_norm / group_norm


def plane_moments(x2, shift):
    """Per-plane shifted sums ``(P, 2)`` of ``x2`` (P, S) around ``shift`` (P,)."""
    P, S = x2.shape
    out = np.empty((P, 2), x2.dtype)
    run("moments", x2.dtype, P, x2.size, x2, shift, out)
    return out


def group_stats(part, shift_g, count, eps):
    """Mean, biased variance and 1/sqrt(var + eps) of groups from summed shifted partials.

    ``part``: (G, 2) sums ``(sum(x - k), sum((x - k)^2))`` over ``count`` elements per group.
    """
    T = part.dtype.type
    inv = T(1.0 / count)
    # Inf/NaN inputs give NaN statistics, as in PyTorch: no RuntimeWarning for inf - inf
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        md = part[:, 0] * inv
        var = part[:, 1] * inv - md * md
        np.maximum(var, T(0), out=var)
        mean = shift_g + md
        rstd = T(1) / np.sqrt(var + T(eps))
    return mean, var, rstd


def affine_planes(x2, m, sc, bi, epi):
    out = np.empty(x2.shape, x2.dtype)
    T = x2.dtype.type
    run("affine", x2.dtype, x2.shape[0], x2.size, x2, m, sc, bi, out, T(epi.a), T(epi.b), epi=epi)
    return out


def grad_sums(x2, g2, m, sc, bi, inv, epi):
    """Per plane ``(sum g', sum g' * xhat)`` with ``g'`` the gradient through the activation."""
    P, S = x2.shape
    out = np.empty((P, 2), x2.dtype)
    T = x2.dtype.type
    tw = max(1, min(S, TILE))
    run("gsums", x2.dtype, P, 2 * x2.size, x2, g2, m, sc, bi, inv, out, tw, T(epi.a), T(epi.b), epi=epi)
    return out


def grad_input(x2, g2, m, sc, bi, al, be, ga, epi):
    gx = np.empty(x2.shape, x2.dtype)
    T = x2.dtype.type
    run("ginput", x2.dtype, x2.shape[0], 2 * x2.size, x2, g2, m, sc, bi, al, be, ga, gx, T(epi.a), T(epi.b),
        epi=epi)
    return gx


def row_chunk(R, L):
    """Rows per unit of the layer_norm kernels: a function of the shape only (determinism).
    About 64 units (enough for any thread count here, few weight-gradient partial rows)."""
    return max(1, -(-R // 64))


class Groups:
    """Which planes of an ``(N*C, S)`` view form one statistics group.

    ``"channel"`` (batch_norm): channel ``c`` over the batch, planes ``n*C + c``;
    ``"plane"`` (instance_norm): every plane alone;
    ``"block"`` (group_norm): ``K`` consecutive planes (``C/K`` groups per sample).
    Partials are reduced in plane order (NumPy, single-threaded): deterministic.
    """

    def __init__(self, kind, N, C, S, K=1):
        self.kind, self.N, self.C, self.S, self.K = kind, N, C, S, K
        planes = {"channel": N, "plane": 1, "block": K}[kind]
        self.count = planes * S

    def reduce(self, a):
        N, C, K = self.N, self.C, self.K
        if self.kind == "channel":
            return a.reshape((N, C) + a.shape[1:]).sum(axis=0)
        if self.kind == "plane":
            return a
        return a.reshape((N * C // K, K) + a.shape[1:]).sum(axis=1)

    def expand(self, v):
        if self.kind == "channel":
            return np.tile(v, self.N)
        if self.kind == "plane":
            return v
        return np.repeat(v, self.K)

    def shift(self, x2):
        if self.kind == "channel":
            return np.ascontiguousarray(x2[: self.C, 0])
        if self.kind == "plane":
            return np.ascontiguousarray(x2[:, 0])
        return np.ascontiguousarray(x2[:: self.K, 0])


def batch_stats(x2, groups, eps):
    """Mean, biased variance, 1/sqrt(var + eps) per group (shifted sums, one read of ``x2``)."""
    shift = groups.shift(x2)
    part = groups.reduce(plane_moments(x2, groups.expand(shift)))
    return group_stats(part, shift, groups.count, eps)


def per_channel(v, N, C, T, fill):
    """A per-channel parameter (or ``fill`` where absent) expanded to the ``N*C`` planes."""
    if v is None:
        return np.full(N * C, fill, T)
    return np.tile(v, N)


def planes_forward(x2, groups, mean, rstd, w_p, b_p, epi):
    """``ACT((x - mean) * rstd * w + b)`` over the planes; ``mean``/``rstd`` per group."""
    return affine_planes(x2, groups.expand(mean), groups.expand(rstd) * w_p, b_p, epi)


def planes_backward(x2, g2, groups, mean, rstd, w_p, b_p, epi, batch):
    """``(grad_input, per-plane sums (sum g', sum g' * xhat))``.

    ``batch``: the statistics came from this batch (training), so grad_input has the terms through
    the mean and variance: with ``dxhat = w * g'`` and ``M`` elements per group,
    ``grad_input = rstd * (dxhat - mean_g(dxhat) - xhat * mean_g(dxhat * xhat))``. Otherwise
    (running statistics) ``grad_input = rstd * dxhat``.
    """
    T = x2.dtype.type
    m_p = groups.expand(mean)
    r_p = groups.expand(rstd)
    sc_p = r_p * w_p
    sums = grad_sums(x2, g2, m_p, sc_p, b_p, r_p, epi)
    if batch:
        inv = T(1.0 / groups.count)
        A = groups.reduce(w_p * sums[:, 0]) * inv
        B = groups.reduce(w_p * sums[:, 1]) * inv
        be = -(r_p * r_p) * groups.expand(B)
        ga = -r_p * groups.expand(A)
    else:
        be = np.zeros_like(r_p)
        ga = be
    gx = grad_input(x2, g2, m_p, sc_p, b_p, sc_p, be, ga, epi)
    return gx, sums


def fused_group_forward(x, N, C, S, G, w_c, b_c, eps):
    """group_norm / instance_norm forward, statistics and normalisation fused per group (K = C/G
    planes). Returns the output and the (N*G, 2) per-group mean and biased variance."""
    T = x.dtype.type
    K = C // G
    out = np.empty(x.shape, x.dtype)
    st = np.empty((N * G, 2), x.dtype)
    xg = x.reshape(N * G, K * S)
    run("grp_fwd", x.dtype, N * G, x.size, xg, w_c, b_c, out.reshape(N * G, K * S), st, K, S, G, T(eps),
        T(1.0 / (K * S)))
    return out, st


def fused_group_backward(x, g, N, C, S, G, w_c, eps):
    """``(grad_input, per-plane sums (N*C, 2) of (sum g, sum g * xhat))``, one fused pass per group."""
    T = x.dtype.type
    K = C // G
    gx = np.empty(x.shape, x.dtype)
    sums = np.empty((N * C, 2), x.dtype)
    run("grp_bwd", x.dtype, N * G, 2 * x.size, x.reshape(N * G, K * S), g.reshape(N * G, K * S), w_c,
        gx.reshape(N * G, K * S), sums, K, S, G, T(eps), T(1.0 / (K * S)))
    return gx, sums
