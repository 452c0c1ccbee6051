"""Sliding-window pooling shared by ``max_pool{1,2,3}d``, ``avg_pool{1,2,3}d`` and
``max_unpool{1,2,3}d``: argument parsing (PyTorch's rules and messages), output sizes and kernels.

Every op runs on a (planes, D, H, W) view (1-D and 2-D inputs as D = H = 1, kernel 1, stride 1):
one compiled kernel per (template, dtype, serial/parallel) serves all three ranks. Kernels are
parallel over the N*C planes (``prange``), each plane handled by one iteration in a fixed order,
so forward and backward are bitwise the same for any thread count (the backward's scatter-adds
stay inside the plane's own gradient slice: no races).

Speed: the forward kernels loop "window offset outer, output column inner". For one output row
(od, oh) and each kernel offset (a, b, c) they sweep the output row ``ow`` in a simple counted
loop over the input row ``x[d, h, ow*sw + c*dw - pw]``, the valid ``ow`` range computed once per
offset (no per-element bounds test). The output row stays in L1 across the kh*kw sweeps. Per
output element the offsets are still visited in PyTorch's scan order (d, then h, then w), so ties
and NaNs select the same element as PyTorch. Float32, 2 threads, interleaved with torch 2.13 in
one process (the "1-proc" columns of ``python -m fastops bench --ops max_pool2d avg_pool2d --size
large --threads 2``), shared and noisy 2-core machine: max_pool2d 3x3 s2 p1 on (8,64,112,112)
forward 3.1-3.9x torch, avg_pool2d 2x2 on the same input forward 1.7-2.4x, forward+backward
1.8-2.5x (commit a90bd8e); max_pool2d forward+backward 1.66x (commit 8f4281c, with the separable
argmax of ``max_fwd``/``max_bwd``).
"""
import numbers

import numpy as np
from numba import prange

from .._jit import inline
from .._kernelset import PlaneSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = UNBOUND


# --- kernels ------------------------------------------------------------------------------------


@inline
def _hsweep(xrow, hvrow, hirow, cs0, neg, kw, sw, pw, dw, W, OW):
    # Horizontal stage of the separable max/argmax: per output column ``ow`` the maximum of the
    # input row over the window's columns and its column offset (``c * dw`` from the window start
    # ``ow * sw - pw``), with PyTorch's update rule ``v > cur or isnan(v)`` in scan order. Stride 1
    # and 2 get their own loops so the load stride is a constant LLVM vectorizes (interleaved loads).
    for ow in range(OW):
        hvrow[ow] = neg
        hirow[ow] = cs0[ow]
    for c in range(kw):
        off = c * dw - pw
        lo = 0 if off >= 0 else (-off + sw - 1) // sw
        hi = min((W - 1 - off) // sw + 1, OW) if W - 1 - off >= 0 else 0
        code = np.int32(c * dw)
        n = hi - lo
        if n <= 0:
            continue
        # slices indexed from 0 (see _elementwise.py): 14 ms vs 44 ms with ``xrow[np.uintp(2 * ow
        # + off)]`` for this sweep over the 112 rows of 512 planes (3x3 s2 p1, f32, CPU time;
        # commit 1d0013f)
        hvs = hvrow[lo:hi]
        his = hirow[lo:hi]
        if sw == 2:
            xs = xrow[2 * lo + off : 2 * lo + off + 2 * n - 1]
            for i in range(n):
                v = xs[2 * i]
                cur = hvs[i]
                u = (v > cur) | (v != v)
                hvs[i] = v if u else cur
                his[i] = code if u else his[i]
        elif sw == 1:
            xs = xrow[lo + off : lo + off + n]
            for i in range(n):
                v = xs[i]
                cur = hvs[i]
                u = (v > cur) | (v != v)
                hvs[i] = v if u else cur
                his[i] = code if u else his[i]
        else:
            xs = xrow[lo * sw + off : lo * sw + off + (n - 1) * sw + 1]
            for i in range(n):
                v = xs[i * sw]
                cur = hvs[i]
                u = (v > cur) | (v != v)
                hvs[i] = v if u else cur
                his[i] = code if u else his[i]


@inline
def _window_argmax(xp, hv, hi, done, cs0, cur, ks, neg, od, oh, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    # Max and argmax of the windows of output row (od, oh) of one plane, separable: the rows'
    # horizontal maxima (``_hsweep``, each input row computed once per plane, on first use, kept
    # in ``hv``/``hi``), then a vertical select over the window's rows in scan order (d, then h),
    # contiguous and vectorized. Same choice as PyTorch's scan over the whole window: with no NaN
    # the first row holding the maximum, and in it the first column; else the last NaN. ``cur``
    # gets the values, ``ks`` the position relative to the window's origin ``((d0 * H + h0) * W
    # + ow * sw - pw``; one int32 select per row: a separate row and column select cost ~10% more,
    # commit 1d0013f); a window without an element in range keeps PyTorch's initial index (first
    # in-range position after dilation). Returns whether any of the window's rows is in range.
    D, H, W = xp.shape
    OW = cur.shape[0]
    d0 = od * sd - pd
    df = d0 if d0 >= 0 else d0 + ((-d0 + dd - 1) // dd) * dd
    h0 = oh * sh - ph
    hf = h0 if h0 >= 0 else h0 + ((-h0 + dh - 1) // dh) * dh
    rbase = d0 * H + h0
    k0 = np.int32((df * H + hf - rbase) * W)
    anyrow = False
    for ow in range(OW):
        cur[ow] = neg
        ks[ow] = k0 + cs0[ow]
    for a in range(kd):
        d = d0 + a * dd
        if d < 0 or d >= D:
            continue
        for b in range(kh):
            h = h0 + b * dh
            if h < 0 or h >= H:
                continue
            anyrow = True
            r = d * H + h
            hvrow = hv[r]
            hirow = hi[r]
            if done[r] == 0:
                _hsweep(xp[d, h], hvrow, hirow, cs0, neg, kw, sw, pw, dw, W, OW)
                done[r] = 1
            rc = np.int32((r - rbase) * W)
            for ow in range(OW):
                v = hvrow[ow]
                c0 = cur[ow]
                u = (v > c0) | (v != v)
                cur[ow] = v if u else c0
                ks[ow] = (rc + hirow[ow]) if u else ks[ow]
    return anyrow


@inline
def _plane_buffers(D, H, W, OW, kw, sw, pw, dw, dtype):
    hv = np.empty((D * H, OW), dtype)
    hi = np.empty((D * H, OW), np.int32)
    done = np.zeros(D * H, np.uint8)
    cs0 = np.empty(OW, np.int32)  # first in-range column offset of each window (PyTorch's start)
    cv = np.empty(OW, np.uint8)  # the window has an in-range column
    for ow in range(OW):
        w0 = ow * sw - pw
        wf = w0 if w0 >= 0 else w0 + ((-w0 + dw - 1) // dw) * dw
        cs0[ow] = wf - w0
        cv[ow] = 1 if (wf < W and wf <= w0 + (kw - 1) * dw) else 0
    return hv, hi, done, cs0, cv, np.empty(OW, np.int32)


def _max_fwd_template(x4, out4, idx4, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    # Values and indices (return_indices=True), separable (``_window_argmax``): tracking the argmax
    # inside a 2-D window sweep (branch or select on an index row) cost 4.5-7.5 ns per window
    # element against 1.0-1.7 ns for max_val's value sweep (commit c06a5fe). max_pool2d 3x3 s2 p1 on
    # (8,64,112,112) f32 serial, CPU time medians of 9 interleaved rounds in one process on the
    # shared machine: this kernel 15.7 ms (max_val 14 ms), max_bwd 18.2 ms (commit 8f4281c). Design
    # note: values then a reverse-order sweep marking the maximum ran 38 ms (commit 1d0013f), and
    # max_bwd 41.7 ms before the separable argmax (commit 8f4281c).
    P, OD, OH, OW = out4.shape
    D, H, W = x4.shape[1], x4.shape[2], x4.shape[3]
    neg = -T(np.inf)
    for p in prange(P):
        xp = x4[p]
        hv, hi, done, cs0, cv, ks = _plane_buffers(D, H, W, OW, kw, sw, pw, dw, x4.dtype)
        for od in range(OD):
            for oh in range(OH):
                orow = out4[p, od, oh]
                _window_argmax(xp, hv, hi, done, cs0, orow, ks, neg, od, oh, kd, kh, kw, sd, sh, sw, pd, ph,
                               pw, dd, dh, dw)
                irow = idx4[p, od, oh]
                base = ((od * sd - pd) * H + oh * sh - ph) * W - pw
                for ow in range(OW):
                    irow[ow] = base + ow * sw + ks[ow]


def _max_bwd_template(g4, x4, gx2, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    # Backward without saved indices: max_fwd's separable argmax, scattering the output gradient
    # straight into the plane's own gradient (no int64 index array written and read back).
    P, OD, OH, OW = g4.shape
    D, H, W = x4.shape[1], x4.shape[2], x4.shape[3]
    neg = -T(np.inf)
    for p in prange(P):
        xp = x4[p]
        gp = gx2[p]
        for i in range(gp.shape[0]):
            gp[i] = T(0)
        hv, hi, done, cs0, cv, ks = _plane_buffers(D, H, W, OW, kw, sw, pw, dw, x4.dtype)
        cur = np.empty(OW, x4.dtype)
        for od in range(OD):
            for oh in range(OH):
                anyrow = _window_argmax(xp, hv, hi, done, cs0, cur, ks, neg, od, oh, kd, kh, kw, sd, sh, sw, pd,
                                        ph, pw, dd, dh, dw)
                if not anyrow:  # no element in range: nothing to scatter (as before: no saved index)
                    continue
                grow = g4[p, od, oh]
                base = ((od * sd - pd) * H + oh * sh - ph) * W - pw
                for ow in range(OW):
                    if cv[ow]:
                        gp[base + ow * sw + ks[ow]] += grow[ow]


def _max_val_template(x4, out4, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    # max_fwd without indices (forward with return_indices=False). Same offsets-outer sweep; the
    # update is a select on values only, which LLVM vectorizes: 1.0-1.7 ns vs 4.7 ns per window
    # element for an argmax-tracking branch in this sweep (float32 row of 56, stride 2, measured on
    # the shared 2-core machine; both an int32 index row and a branch-free select stayed >= 4.5 ns;
    # commit c06a5fe).
    P, OD, OH, OW = out4.shape
    D, H, W = x4.shape[1], x4.shape[2], x4.shape[3]
    for p in prange(P):
        xp = x4[p]
        for od in range(OD):
            d0 = od * sd - pd
            for oh in range(OH):
                h0 = oh * sh - ph
                orow = out4[p, od, oh]
                for ow in range(OW):
                    orow[ow] = -T(np.inf)
                for a in range(kd):
                    d = d0 + a * dd
                    if d < 0 or d >= D:
                        continue
                    for b in range(kh):
                        h = h0 + b * dh
                        if h < 0 or h >= H:
                            continue
                        xrow = xp[d, h]
                        for c in range(kw):
                            off = c * dw - pw
                            lo = 0 if off >= 0 else (-off + sw - 1) // sw
                            hi = min((W - 1 - off) // sw + 1, OW) if W - 1 - off >= 0 else 0
                            for ow in range(lo, hi):
                                v = xrow[ow * sw + off]
                                cur = orow[ow]
                                orow[ow] = v if (v > cur or v != v) else cur


def _scatter_template(g2, idx2, gx2):
    # gx[p, idx[p, o]] += g[p, o]; indices outside the plane are skipped (validated by the caller)
    P, O = g2.shape
    L = gx2.shape[1]
    for p in prange(P):
        gp = gx2[p]
        for i in range(L):
            gp[i] = T(0)
        gs = g2[p]
        ix = idx2[p]
        for o in range(O):
            j = ix[o]
            if j >= 0 and j < L:
                gp[j] += gs[o]


def _avg_fwd_template(x4, out4, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, divisor):
    P, OD, OH, OW = out4.shape
    D, H, W = x4.shape[1], x4.shape[2], x4.shape[3]
    for p in prange(P):
        xp = x4[p]
        for od in range(OD):
            d0 = od * sd - pd
            d1 = min(d0 + kd, D + pd)
            pool_d = d1 - d0
            n_d = min(d1, D) - max(d0, 0)
            for oh in range(OH):
                h0 = oh * sh - ph
                h1 = min(h0 + kh, H + ph)
                pool_h = h1 - h0
                n_h = min(h1, H) - max(h0, 0)
                orow = out4[p, od, oh]
                for ow in range(OW):
                    orow[ow] = T(0)
                for a in range(kd):
                    d = d0 + a
                    if d < 0 or d >= D:
                        continue
                    for b in range(kh):
                        h = h0 + b
                        if h < 0 or h >= H:
                            continue
                        xrow = xp[d, h]
                        for c in range(kw):
                            off = c - pw
                            lo = 0 if off >= 0 else (-off + sw - 1) // sw
                            hi = min((W - 1 - off) // sw + 1, OW) if W - 1 - off >= 0 else 0
                            for ow in range(lo, hi):
                                orow[ow] += xrow[ow * sw + off]
                for ow in range(OW):
                    w0 = ow * sw - pw
                    w1 = min(w0 + kw, W + pw)
                    n_w = min(w1, W) - max(w0, 0)
                    if n_d <= 0 or n_h <= 0 or n_w <= 0:
                        orow[ow] = T(0)
                        continue
                    if divisor > 0:
                        div = divisor
                    elif count_include_pad:
                        div = pool_d * pool_h * (w1 - w0)
                    else:
                        div = n_d * n_h * n_w
                    orow[ow] = orow[ow] / T(div)


def _avg_bwd_template(g4, gx4, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, divisor):
    P, OD, OH, OW = g4.shape
    D, H, W = gx4.shape[1], gx4.shape[2], gx4.shape[3]
    for p in prange(P):
        gp = gx4[p]
        for d in range(D):
            for h in range(H):
                grow = gp[d, h]
                for w in range(W):
                    grow[w] = T(0)
        tmp = np.empty(OW, g4.dtype)
        for od in range(OD):
            d0 = od * sd - pd
            d1 = min(d0 + kd, D + pd)
            pool_d = d1 - d0
            n_d = min(d1, D) - max(d0, 0)
            for oh in range(OH):
                h0 = oh * sh - ph
                h1 = min(h0 + kh, H + ph)
                pool_h = h1 - h0
                n_h = min(h1, H) - max(h0, 0)
                if n_d <= 0 or n_h <= 0:
                    continue
                g = g4[p, od, oh]
                for ow in range(OW):
                    w0 = ow * sw - pw
                    w1 = min(w0 + kw, W + pw)
                    n_w = min(w1, W) - max(w0, 0)
                    if divisor > 0:
                        div = divisor
                    elif count_include_pad:
                        div = pool_d * pool_h * (w1 - w0)
                    else:
                        div = n_d * n_h * max(n_w, 1)
                    tmp[ow] = g[ow] / T(div)
                for a in range(kd):
                    d = d0 + a
                    if d < 0 or d >= D:
                        continue
                    for b in range(kh):
                        h = h0 + b
                        if h < 0 or h >= H:
                            continue
                        grow = gp[d, h]
                        for c in range(kw):
                            off = c - pw
                            lo = 0 if off >= 0 else (-off + sw - 1) // sw
                            hi = min((W - 1 - off) // sw + 1, OW) if W - 1 - off >= 0 else 0
                            for ow in range(lo, hi):
                                grow[ow * sw + off] += tmp[ow]


def _unpool_fwd_template(x2, idx2, out2):
    P, L = x2.shape
    O = out2.shape[1]
    for p in prange(P):
        op = out2[p]
        for i in range(O):
            op[i] = T(0)
        xs = x2[p]
        ix = idx2[p]
        for i in range(L):
            j = ix[i]
            if j >= 0 and j < O:  # validated by the caller; kept so no index can leave the plane
                op[j] = xs[i]


def _gather_template(g2, idx2, gx2):
    P, L = gx2.shape
    O = g2.shape[1]
    for p in prange(P):
        gs = g2[p]
        ix = idx2[p]
        out = gx2[p]
        for i in range(L):
            j = ix[i]
            out[i] = gs[j] if (j >= 0 and j < O) else T(0)


K = PlaneSet(
    "pool",
    {
        "max_fwd": _max_fwd_template,
        "max_val": _max_val_template,
        "max_bwd": _max_bwd_template,
        "scatter": _scatter_template,
        "avg_fwd": _avg_fwd_template,
        "avg_bwd": _avg_bwd_template,
        "unpool_fwd": _unpool_fwd_template,
        "gather": _gather_template,
    },
)


# --- arguments ----------------------------------------------------------------------------------


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def int_tuple(name, arg, v, k):
    """An int or a sequence of 1 or ``k`` ints (PyTorch's ``_single/_pair/_triple``)."""
    if _is_int(v):
        return (int(v),) * k
    if isinstance(v, (tuple, list)) and len(v) in (1, k) and all(_is_int(e) for e in v):
        t = tuple(int(e) for e in v)
        return t * k if len(t) == 1 else t
    raise TypeError(f"{name}: argument '{arg}' must be an int or a tuple of {k} ints, got {v!r}")


def input_array(name, k, input):
    from .._validate import float_array

    x = float_array(name, "input", input)
    if x.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"{name}: argument 'input' must be {k + 1}-D or {k + 2}-D ((N,) C, spatial...), got shape {x.shape}"
        )
    if any(s == 0 for s in x.shape[-(k + 1):]):
        raise ValueError(f"{name}: argument 'input' has an empty channel or spatial dim, shape {x.shape}")
    return x


def output_len(L, k, s, p, d, ceil_mode):
    """PyTorch's ``pooling_output_shape``: the last window must start inside the input or the left
    padding when ``ceil_mode`` rounds up."""
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def geometry(name, k, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated (kernel, stride, padding, dilation, out_spatial) tuples of length ``k``."""
    ks = int_tuple(name, "kernel_size", kernel_size, k)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        st = ks
    else:
        st = int_tuple(name, "stride", stride, k)
    pd = int_tuple(name, "padding", padding, k)
    dl = int_tuple(name, "dilation", dilation, k)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{name}: argument 'ceil_mode' must be a bool, got {ceil_mode!r}")
    if any(v <= 0 for v in ks):
        raise ValueError(f"{name}: argument 'kernel_size' must be positive, got {ks}")
    if any(v == 0 for v in st):
        raise ValueError(f"{name}: argument 'stride' should not be zero, got {st}")
    if any(v < 0 for v in st):
        raise ValueError(f"{name}: argument 'stride' must be positive, got {st}")
    if any(v < 0 for v in pd):
        raise ValueError(f"{name}: argument 'padding' must be non-negative, got {pd}")
    if any(v <= 0 for v in dl):
        raise ValueError(f"{name}: argument 'dilation' must be positive, got {dl}")
    if any(p > kk // 2 for p, kk in zip(pd, ks)):
        raise ValueError(
            f"{name}: pad should be at most half of kernel size, but got padding={pd}, kernel_size={ks}"
        )
    spatial = tuple(int(s) for s in x.shape[-k:])
    out = tuple(output_len(L, kk, s, p, d, bool(ceil_mode)) for L, kk, s, p, d in zip(spatial, ks, st, pd, dl))
    if any(o < 1 for o in out):
        raise ValueError(
            f"{name}: given input of shape {x.shape}, kernel_size={ks}, stride={st}, padding={pd}, "
            f"dilation={dl}: calculated output size {out} is too small (kernel larger than the padded input)"
        )
    return ks, st, pd, dl, out


def to3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def planes(x, k):
    import math

    return math.prod(x.shape[:-k])
