"""Rows path of ``scaled_dot_product_attention``: block products on fastops' GEMM engine
(``fastops._gemm``), softmax and its gradient in small fused Numba kernels, every stage on fastops'
thread pool (Numba's; no Python threads). It serves what the tiled path (``_tiled``) does not:
float64, and E or Ev not multiples of 64.

Blocks: for each output batch entry ``b``, query rows are taken ``BM`` at a time against *all*
(causal: all visible) keys: ``s = q[b, rows] @ k[kb]^T`` is a (BM, S) block of the score matrix,
at most ``_dispatch.ATTENTION_BLOCK_BYTES`` (1 MiB: it stays in L2 between the GEMM, the softmax
kernel and the next GEMM); the whole L x S matrix is never held (memory is O(BM * S), not O(L *
S)). Since a block holds complete rows, its softmax is exact in one pass (no online rescaling) and
the backward recomputes the row max and sum from the same block (no saved logsumexp needed, nor
the forward output: ``D_i = sum_j P_ij dP_ij`` is taken from the block itself).

Forward per block: ``s = q_blk @ k^T``; kernel ``probs``: ``exp(s * scale + mask - max)`` (dropout
applied, kept ones scaled by ``1 / (1 - p)``) in place and the rows' 1 / sum;
``out[rows] = (s @ v) / sum``.
Backward per block: ``s = q_blk @ k^T``, ``dp = dO_blk @ v^T``; kernel ``grads``: P (undropped),
``dS = P * (dP_dropped - D)`` times ``scale`` into ``dp`` (``dS`` itself into the mask gradient),
the dropped P into ``s``; then ``dv += s^T @ dO_blk``, ``dq[rows] = dp @ k``,
``dk += dp^T @ q_blk``.

Threads: the blocks go one after the other, in a fixed order (batch entries, then row blocks,
ascending); each stage of a block runs on fastops' threads: the GEMMs split their output tiles
(``_gemm``: the result depends on the shapes only), the kernels give each prange iteration its own
row, and dk/dv accumulate block after block in that fixed order. Results therefore do not depend
on fastops' thread count, and ``fastops.threads(n)`` bounds every stage.
"""
import math

import numpy as np
from numba import prange

from .. import _dispatch, _gemm, _jit, _threads
from . import _kernels
from .._simd import row_dot, row_exp_sum, row_max
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = U = UNBOUND

@_jit.inline
def _any_nan(a):
    """Whether the 1-D ``a`` holds a NaN. Called only for rows whose ``row_max`` (which skips NaN)
    is -inf, so that a row of NaN scores gives NaN (as the math: softmax of NaN) instead of being
    taken for a fully masked row; finite rows never pay for it."""
    for c in range(a.size):
        if a[c] != a[c]:
            return True
    return False


def _probs_template(s, n, i0, b, L, S, mask3, mb, has_mask, causal, scale, p, key, lse, rinv):
    """Rows of ``s`` (mr, n) in place -> unnormalised probabilities ``exp(x - max)`` (dropped:
    times 0 or ``1 / (1 - p)``), ``rinv[r]`` the row's 1 / sum (the caller scales the output rows:
    Ev multiplies per row instead of n), ``lse[r]`` its logsumexp.

    Without a mask (and scale > 0) the scale is folded into the exponent, ``exp(s * scale -
    max(s) * scale)``: three passes over the row (max, exp, sum) instead of five (scale, max, exp,
    sum, normalise). Design note (float32, 1 thread, CPU time, one (256, 1024) block, loaded
    machine): 0.66 ms this way against 0.83 ms for the five passes (commit c3d3e17)."""
    mr = s.shape[0]
    keep = T(0) if p >= T(1) else T(1) / (T(1) - p)
    for r in prange(mr):
        i = i0 + r
        row = s[r]
        nv = n
        if causal:
            nv = min(n, i + 1)
        sv = row[:nv]
        if has_mask or not scale > T(0):
            if has_mask:
                mrw = mask3[mb, i, :nv]
                for c in range(nv):
                    sv[c] = sv[c] * scale + mrw[c]
            else:
                for c in range(nv):
                    sv[c] = sv[c] * scale
            mx = row_max(sv)
            if mx == -np.inf and not _any_nan(sv):  # fully masked row: output 0 (PyTorch's CPU result)
                for c in range(n):
                    row[c] = T(0)
                lse[r] = np.inf
                rinv[r] = T(0)
                continue
            tot = row_exp_sum(sv, T(1), mx, sv, s[min(r + 1, mr - 1)])
        else:
            mx = row_max(sv) * scale
            tot = row_exp_sum(sv, scale, mx, sv, s[min(r + 1, mr - 1)])
        rinv[r] = T(1) / tot
        if p > T(0):
            base = (np.int64(b) * L + i) * S
            for c in range(nv):
                sv[c] = sv[c] * keep if U(key, base + c) >= p else T(0)
        for c in range(nv, n):
            row[c] = T(0)
        lse[r] = mx + T(math.log(tot))


def _grads_template(s, dp, n, i0, b, L, S, mask3, mb, has_mask, causal, scale, p, key, dm, want_dm):
    """Rows of the score block ``s`` and of ``dp = dO v^T`` (mr, n), in place: ``s`` -> dropped P,
    ``dp`` -> ``dS * scale``; ``dm[r, :n] = dS`` when ``want_dm``."""
    mr = s.shape[0]
    keep = T(0) if p >= T(1) else T(1) / (T(1) - p)
    for r in prange(mr):
        i = i0 + r
        row = s[r]
        drow = dp[r]
        nv = n
        if causal:
            nv = min(n, i + 1)
        sv = row[:nv]
        dv = drow[:nv]
        folded = not has_mask and scale > T(0)  # as in the forward kernel
        if has_mask:
            mrw = mask3[mb, i, :nv]
            for c in range(nv):
                sv[c] = sv[c] * scale + mrw[c]
        elif not folded:
            for c in range(nv):
                sv[c] = sv[c] * scale
        mx = row_max(sv)
        if mx == -np.inf and not _any_nan(sv):  # fully masked row: zero gradients
            nv = 0
        if nv > 0:  # the forward's exponentials and sum, recomputed bit for bit
            if folded:
                tot = row_exp_sum(sv, scale, mx * scale, sv, s[min(r + 1, mr - 1)])
            else:
                tot = row_exp_sum(sv, T(1), mx, sv, s[min(r + 1, mr - 1)])
            inv = T(1) / tot
            for c in range(nv):
                sv[c] = sv[c] * inv  # P
            if p > T(0):
                base = (np.int64(b) * L + i) * S
                for c in range(nv):
                    dv[c] = dv[c] * keep if U(key, base + c) >= p else T(0)
            di = row_dot(sv, dv)  # D_i = sum_j P_ij dP_ij (dropped dP)
            if want_dm:
                dmr = dm[r]
                for c in range(nv):
                    dmr[c] = sv[c] * (dv[c] - di)
            for c in range(nv):
                dv[c] = sv[c] * (dv[c] - di) * scale
            if p > T(0):
                base = (np.int64(b) * L + i) * S
                for c in range(nv):
                    sv[c] = sv[c] * keep if U(key, base + c) >= p else T(0)
        for c in range(nv, n):
            row[c] = T(0)
            drow[c] = T(0)
        if want_dm:
            dmr = dm[r]
            for c in range(nv, n):
                dmr[c] = T(0)


KERNELS = KernelSet(
    "sdpa_rows", {"probs": _probs_template, "grads": _grads_template}, bind=lambda dt, which, v: _kernels.bindings(dt)
)


def _block(buf, mr, n):
    """A C-contiguous (mr, n) view of the flat buffer (the GEMM writes it in place)."""
    return buf[: mr * n].reshape(mr, n)


def _visible(P, i0, mr):
    """Keys a block of query rows [i0, i0 + mr) can see: all, or (causal) those j < i0 + mr."""
    return min(P.S, i0 + mr) if P.causal else P.S


def _kernel_backend(dt, mr, n):
    """The build of the softmax kernels for a (mr, n) block: rows are the units (cost table's
    "transcendental" class over the block's elements)."""
    return _dispatch.parallel_backend(dt, mr * n, _threads.get_num_threads(), "transcendental", units=mr)


def forward(P, backend=None):
    """``(out (B, L, Ev), lse (B, L))`` through the block products, block after block."""
    B, L, S, Ev, dt = P.B, P.L, P.S, P.Ev, P.dtype
    out = np.empty((B, L, Ev), dt)
    lse = np.empty((B, L), dt)
    bm = _dispatch.attention_block_rows(L, S, dt.itemsize)
    kT3 = P.k3.transpose(0, 2, 1)  # a view: the GEMM's packing reads it transposed
    buf = np.empty(bm * S, dt)
    rinv = np.empty(bm, dt)
    for b in range(B):
        kb = P.kvidx[b]
        for i0 in range(0, L, bm):
            mr = min(bm, L - i0)
            n = _visible(P, i0, mr)
            s = _block(buf, mr, n)
            _gemm.gemm(P.q3[b, i0 : i0 + mr], kT3[kb, :, :n], s)
            KERNELS.run("probs", dt, _kernel_backend(dt, mr, n), s, n, i0, b, L, S, P.mask3, P.midx[b], P.has_mask,
                        P.causal, P.scale, P.p, P.key, lse[b, i0 : i0 + mr], rinv)
            o = out[b, i0 : i0 + mr]
            _gemm.gemm(s, P.v3[kb, :n], o)
            np.multiply(o, rinv[:mr, None], out=o)
    return out, lse


def backward(P, go3, backend=None, want_dm=False):
    """``(dq3, dk3, dv3, dm3)`` through the block products (``dm3`` (B, L, S) or None), block after
    block; dk/dv accumulate in that fixed order."""
    B, L, S, E, Ev, dt = P.B, P.L, P.S, P.E, P.Ev, P.dtype
    bm = _dispatch.attention_block_rows(L, S, dt.itemsize)
    dq3 = np.empty((B, L, E), dt)
    dm3 = np.zeros((B, L, S), dt) if want_dm else None
    dm_dummy = np.zeros((1, 1), dt)
    dk3 = np.zeros((P.Bk, S, E), dt)
    dv3 = np.zeros((P.Bk, S, Ev), dt)
    kT3 = P.k3.transpose(0, 2, 1)  # views: the GEMM's packing reads them transposed
    vT3 = P.v3.transpose(0, 2, 1)
    sbuf = np.empty(bm * S, dt)
    pbuf = np.empty(bm * S, dt)
    for b in range(B):
        kb = P.kvidx[b]
        kk = P.k3[kb]
        for i0 in range(0, L, bm):
            mr = min(bm, L - i0)
            n = _visible(P, i0, mr)
            s = _block(sbuf, mr, n)
            dp = _block(pbuf, mr, n)
            qb = P.q3[b, i0 : i0 + mr]
            gb = go3[b, i0 : i0 + mr]
            _gemm.gemm(qb, kT3[kb, :, :n], s)
            _gemm.gemm(gb, vT3[kb, :, :n], dp)
            dmb = dm3[b, i0 : i0 + mr] if want_dm else dm_dummy
            KERNELS.run("grads", dt, _kernel_backend(dt, mr, n), s, dp, n, i0, b, L, S, P.mask3, P.midx[b],
                        P.has_mask, P.causal, P.scale, P.p, P.key, dmb, want_dm)
            _gemm.gemm(dp, kk[:n], dq3[b, i0 : i0 + mr])
            _gemm.gemm(s.T, gb, dv3[kb, :n], accumulate=True)
            _gemm.gemm(dp.T, qb, dk3[kb, :n], accumulate=True)
    return dq3, dk3, dv3, dm3
