"""Tiled path of ``scaled_dot_product_attention``: the rows path's blocks (a block of query rows x
all visible keys, the block's softmax exact in one pass), with the block products in fastops'
register-tiled micro-kernel (``fastops._tile``), all in one parallel Numba kernel per direction
(no per-block Python calls).

For float32 with E and Ev multiples of ``_tile.NR`` (64): every B operand of the micro-kernel has
64-lane contiguous rows: K^T and V^T packed in 64-key panels ((Sp / 64, E, 64), keys zero-padded
to Sp, a multiple of 64; a parallel kernel), V, K, Q and dO as they are. Per task (forward: (b, block of query rows);
backward: (b, fixed chunk of row blocks), the chunk's dK/dV partials summed afterwards in a fixed
order, as in ``_rows``):

forward   s = Q_blk K^T;  s -> exp(s * scale + mask - max) (dropout), 1 / sum;  O = (s V) / sum
backward  s = Q_blk K^T,  dp = dO_blk V^T;  s -> P (dropped), dp -> dS * scale;
          dQ_blk = dp K;  dV += s^T dO_blk;  dK += dp^T Q_blk

The softmax and its gradient are ``_rows``'s kernels (serial builds, called per task). The forward
runs one prange iteration per thread (worker ``w`` takes tasks ``w, w + nw, ...`` with one score
buffer); which worker runs a task changes no result.

Speed ((1, 8, 1024, 1024, 64) float32, 2 threads, interleaved with torch in one process: the
"1-proc" columns of ``python -m fastops bench --ops scaled_dot_product_attention --size large
--threads 2``): forward 1.25x torch, forward + backward 1.18-1.20x (two runs, commit 8c2d35d);
the Q K^T block product runs at ~113 GFLOP/s (``_tile``). Design note: blocks of 256 KiB or 64 KiB of
scores instead of 1 MiB ran no faster, resp. 2x slower (commit b153788). Results depend on the
shapes only (the block size is fixed by S and the dtype, each task writes its own rows or its own
partial): bitwise identical for any thread count.
"""
import numpy as np
from numba import prange

from .. import _dispatch, _threads, _tile
from . import _kernels, _rows
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = GEMM = GRADS = PROBS = UNBOUND

NR = _tile.NR


def _fwd_template(q3, kTp, v3, kvidx, mask3, midx, has_mask, causal, scale, p, key, bm, nw, out3, lse2):
    B, L, E = q3.shape
    S, Ev = v3.shape[1], v3.shape[2]
    Sp = kTp.shape[1] * NR
    kTf = kTp.reshape(kTp.size)
    vf = v3.reshape(v3.size)
    of = out3.reshape(out3.size)
    nqb = (L + bm - 1) // bm
    ntask = B * nqb
    for w in prange(nw):  # worker w takes tasks w, w + nw, ... with one score buffer
        sbuf = np.empty(bm * Sp, q3.dtype)
        rinv = np.empty(bm, q3.dtype)
        for t in range(w, ntask, nw):
            b = t // nqb
            i0 = (t - b * nqb) * bm
            mr = min(bm, L - i0)
            kb = kvidx[b]
            n = S
            if causal:
                n = min(S, i0 + mr)
            n64 = (n + NR - 1) // NR * NR
            s = sbuf[:mr * n64].reshape((mr, n64))
            GEMM(q3[b, i0:i0 + mr], kTf, kb * E * Sp, NR, E * NR, n64, sbuf, 0, n64, 0, rinv)
            PROBS(s, n, i0, b, L, S, mask3, midx[b], has_mask, causal, scale, p, key,
                  lse2[b, i0:i0 + mr], rinv)
            GEMM(s[:, :n], vf, kb * S * Ev, Ev, NR, Ev, of, (b * L + i0) * Ev, Ev, 2, rinv)


def _bwd_template(q3, k3, kTp, vTp, go3, kvidx, mask3, midx, has_mask, causal, scale, p, key, bm, nch,
                  dq3, dkp, dvp, dm3, want_dm):
    B, L, E = q3.shape
    S = k3.shape[1]
    Ev = go3.shape[2]
    Sp = kTp.shape[1] * NR
    kTf = kTp.reshape(kTp.size)
    vTf = vTp.reshape(vTp.size)
    kf = k3.reshape(k3.size)
    qf = q3.reshape(q3.size)
    gf = go3.reshape(go3.size)
    dqf = dq3.reshape(dq3.size)
    dkf = dkp.reshape(dkp.size)
    dvf = dvp.reshape(dvp.size)
    nqb = (L + bm - 1) // bm
    rs = np.empty(1, q3.dtype)
    for t in prange(B * nch):
        b = t // nch
        c = t - b * nch
        kb = kvidx[b]
        sbuf = np.empty(bm * Sp, q3.dtype)
        pbuf = np.empty(bm * Sp, q3.dtype)
        pk = (b * nch + c) * S * E
        pv = (b * nch + c) * S * Ev
        for i in range(S * E):  # the task's own partials (zeroed here, in parallel)
            dkf[pk + i] = T(0)
        for i in range(S * Ev):
            dvf[pv + i] = T(0)
        for blk in range(c * nqb // nch, (c + 1) * nqb // nch):
            i0 = blk * bm
            mr = min(bm, L - i0)
            n = S
            if causal:
                n = min(S, i0 + mr)
            n64 = (n + NR - 1) // NR * NR
            s = sbuf[:mr * n64].reshape((mr, n64))  # C-contiguous blocks (the row kernels need it)
            dp = pbuf[:mr * n64].reshape((mr, n64))
            qb = q3[b, i0:i0 + mr]
            gb = go3[b, i0:i0 + mr]
            GEMM(qb, kTf, kb * E * Sp, NR, E * NR, n64, sbuf, 0, n64, 0, rs)
            GEMM(gb, vTf, kb * Ev * Sp, NR, Ev * NR, n64, pbuf, 0, n64, 0, rs)
            bm_ = b if want_dm else 0
            im_ = i0 if want_dm else 0
            GRADS(s, dp, n, i0, b, L, S, mask3, midx[b], has_mask, causal, scale, p, key,
                  dm3[bm_, im_:im_ + mr], want_dm)
            GEMM(dp[:, :n], kf, kb * S * E, E, NR, E, dqf, (b * L + i0) * E, E, 0, rs)
            GEMM(s[:, :n].T, gf, (b * L + i0) * Ev, Ev, NR, Ev, dvf, pv, Ev, 1, rs)
            GEMM(dp[:, :n].T, qf, (b * L + i0) * E, E, NR, E, dkf, pk, E, 1, rs)


def _sum_template(part, kvidx, out):
    """``out[kb] = sum of part[b, c]`` over the b with ``kvidx[b] == kb`` and the chunks c, added in
    the order (b, c) ascending from 0 (fixed, whatever the thread count); parallel over rows."""
    B, nch, S, D = part.shape
    Bk = out.shape[0]
    for j in prange(S):
        for kb in range(Bk):
            o = out[kb, j]
            for d in range(D):
                o[d] = T(0)
        for b in range(B):
            o = out[kvidx[b], j]
            for c in range(nch):
                r = part[b, c, j]
                for d in range(D):
                    o[d] += r[d]


def _bindings(dt, which, variant):
    b = dict(_kernels.bindings(dt), GEMM=_tile.gemm(dt), NR=NR)
    if which == "fwd":
        b["PROBS"] = _rows.KERNELS.kernel("probs", dt)
    elif which == "bwd":
        b["GRADS"] = _rows.KERNELS.kernel("grads", dt)
    return b


def _pack_template(x3, out):
    """(Bk, S, D) -> (Bk, Sp / NR, D, NR): the transpose in NR-key panels (each a contiguous
    (D, NR) block), keys zero-padded to Sp; parallel over panels."""
    Bk, S, D = x3.shape
    npn = out.shape[1]
    for t in prange(Bk * npn):
        kb = t // npn
        jp = t - kb * npn
        j0 = jp * NR
        nj = min(NR, S - j0)
        panel = out[kb, jp]
        for d in range(D):
            pr = panel[d]
            for o in range(nj, NR):
                pr[o] = T(0)
        xb = x3[kb]
        for d in range(D):
            pr = panel[d]
            for o in range(nj):
                pr[o] = xb[j0 + o, d]


_TEMPLATES = {"fwd": _fwd_template, "bwd": _bwd_template, "sum": _sum_template, "pack": _pack_template}
KERNELS = KernelSet("sdpa_tiled", _TEMPLATES, bind=_bindings)


def _pack_t(x3, backend):
    Bk, S, D = x3.shape
    out = np.empty((Bk, -(-S // NR), D, NR), x3.dtype)
    KERNELS.run("pack", x3.dtype, backend, x3, out)
    return out


def forward(P, backend):
    B, L, S, Ev, dt = P.B, P.L, P.S, P.Ev, P.dtype
    out = np.empty((B, L, Ev), dt)
    lse = np.empty((B, L), dt)
    kTp = _pack_t(P.k3, backend)
    bm = _dispatch.attention_block_rows(L, S, dt.itemsize)
    nw = _threads.get_num_threads() if backend == "parallel" else 1
    KERNELS.run("fwd", dt, backend, P.q3, kTp, P.v3, P.kvidx, P.mask3, P.midx, P.has_mask, P.causal, P.scale,
                P.p, P.key, bm, min(nw, B * -(-L // bm)), out, lse)
    return out, lse


# The backward's row blocks of one batch entry go in NCHUNK fixed chunks (not one per thread, so
# that the result does not depend on the thread count), each accumulating its own dk/dv partial.
NCHUNK = 2


def backward(P, go3, backend, want_dm):
    B, L, S, E, Ev, dt = P.B, P.L, P.S, P.E, P.Ev, P.dtype
    bm = _dispatch.attention_block_rows(L, S, dt.itemsize)
    nch = min(NCHUNK, -(-L // bm))
    kTp = _pack_t(P.k3, backend)
    vTp = _pack_t(P.v3, backend)
    dq3 = np.empty((B, L, E), dt)
    dm3 = np.zeros((B, L, S) if want_dm else (1, 1, 1), dt)
    dkp = np.empty((B, nch, S, E), dt)  # per-task partials, zeroed by their tasks
    dvp = np.empty((B, nch, S, Ev), dt)
    KERNELS.run("bwd", dt, backend, P.q3, P.k3, kTp, vTp, go3, P.kvidx, P.mask3, P.midx, P.has_mask, P.causal,
                P.scale, P.p, P.key, bm, nch, dq3, dkp, dvp, dm3, want_dm)
    dk3 = np.empty((P.Bk, S, E), dt)
    dv3 = np.empty((P.Bk, S, Ev), dt)
    kvidx = np.ascontiguousarray(P.kvidx, dtype=np.int64)
    KERNELS.run("sum", dt, backend, dkp, kvidx, dk3)
    KERNELS.run("sum", dt, backend, dvp, kvidx, dv3)
    return dq3, dk3, dv3, (dm3 if want_dm else None)
