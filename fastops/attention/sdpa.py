"""``scaled_dot_product_attention`` (``torch.nn.functional.scaled_dot_product_attention``).

Three paths (``_dispatch.attention_plan``, reported by ``explain``, forced by ``_dispatch.force``):

* "tiled" (the "rows" sizes, float32 with E and Ev multiples of 64): the same blocks, their
  products in fastops' register-tiled micro-kernel (``fastops._tile``) inside one parallel Numba
  kernel per direction (``_tiled``).
* "rows" (from ~2**21 multiply-adds per batch entry, keys up to 8192 float32): a block of query
  rows x all keys (at most 1 MiB of scores) at a time, the block products on fastops' GEMM engine
  and the softmax / its gradient in fused Numba kernels, each stage on fastops' threads (``_rows``);
  the backward recomputes each block's softmax from its scores.
* "blocked": all-Numba online softmax (FlashAttention-2) for small problems and long key
  sequences: never more than one (BN,) row of scores and one packed (E, BN) block of K^T per task;
  it saves the per-row logsumexp, from which the backward recomputes the probabilities block by
  block (``_kernels``).
"""
import math

import numpy as np

from .. import _dispatch, _gemm, _jit, _random, _threads, _tile
from .._op import op
from .._validate import float_array, float_arrays, grad_like, real_scalar
from . import _kernels, _rows, _tiled
from .._kernelset import KernelSet

OP = "scaled_dot_product_attention"

# Query rows per task and keys per block. BN = 128: the K^T block (E x BN) and the score row stay
# in L1 (64 x 128 float32 = 32 KiB); BM = 64 gives L=1024 16 tasks per head (8 heads: 128 tasks).
BM = 64
BN = 128

KERNELS = KernelSet(
    "sdpa", {"fwd": _kernels._fwd_template, "dq": _kernels._dq_template, "dkv": _kernels._dkv_template},
    consts=dict(BM=BM, BN=BN), bind=lambda dt, which, v: _kernels.bindings(dt),
)


def _fail(msg, exc=ValueError):
    raise exc(f"{OP}: {msg}")


class _Prep:
    pass


def _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, seed):
    q, k, v = float_arrays(OP, ("query", "key", "value"), (query, key, value))
    for name, a in (("query", q), ("key", k), ("value", v)):
        if a.ndim < 2:
            _fail(f"argument '{name}' must have at least 2 dims (..., L or S, E), got shape {a.shape}")
    if q.shape[-1] != k.shape[-1]:
        _fail(f"query and key must have the same embedding size (last dim), got query {q.shape}, key {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        _fail(f"key and value must have the same sequence length (dim -2), got key {k.shape}, value {v.shape}")
    dt = q.dtype
    T = dt.type
    if not isinstance(is_causal, (bool, np.bool_)):
        _fail(f"argument 'is_causal' must be a bool, got {type(is_causal).__name__}", TypeError)
    if not isinstance(enable_gqa, (bool, np.bool_)):
        _fail(f"argument 'enable_gqa' must be a bool, got {type(enable_gqa).__name__}", TypeError)
    p = real_scalar(OP, "dropout_p", dropout_p, minimum=0.0, maximum=1.0)
    L, E = q.shape[-2:]
    S, Ev = v.shape[-2:]
    if scale is None:
        sc = 1.0 / math.sqrt(E) if E > 0 else 1.0
    else:
        sc = real_scalar(OP, "scale", scale)
    rk = _random.key(OP, 0)
    if p > 0:
        if seed is None:
            _fail("dropout_p > 0 needs seed= (an int): the dropout mask is a function of the seed, and the "
                  "backward must be given the same seed to reproduce it")
        rk = _random.key(OP, seed)
    elif seed is not None:
        _random.key(OP, seed)  # type-checked although unused

    # batch dims: key and value broadcast together; grouped-query heads; then against the query
    qb, kb_, vb = q.shape[:-2], k.shape[:-2], v.shape[:-2]
    try:
        kvb = np.broadcast_shapes(kb_, vb)
    except ValueError:
        _fail(f"key and value batch dims do not broadcast: key {k.shape}, value {v.shape}")
    kx = k if kb_ == kvb else _jit.broadcast_c(k, kvb + k.shape[-2:])
    vx = v if vb == kvb else _jit.broadcast_c(v, kvb + v.shape[-2:])
    Bk = math.prod(kvb)
    idx = np.arange(Bk, dtype=np.int64).reshape(kvb)
    if enable_gqa and q.ndim >= 3 and len(kvb) >= 1:
        hq, hk = q.shape[-3], kvb[-1]
        if hk != hq:
            if hk == 0 or hq % hk:
                _fail(f"enable_gqa=True needs the query heads (dim -3) to be a multiple of the key/value heads, "
                      f"got query {q.shape}, key {k.shape}, value {v.shape}")
            idx = np.repeat(idx, hq // hk, axis=-1)
    try:
        outb = np.broadcast_shapes(qb, idx.shape)
    except ValueError:
        extra = "" if enable_gqa else " (grouped-query heads need enable_gqa=True)"
        _fail(f"query and key/value batch dims do not broadcast: query {q.shape}, key {k.shape}, "
              f"value {v.shape}{extra}")
    B = math.prod(outb)
    qx = q if qb == outb else _jit.broadcast_c(q, outb + q.shape[-2:])
    kvidx = _jit.broadcast_c(idx, outb).reshape(B)

    # mask: boolean (True takes part) -> additive 0 / -inf; float: added to the scores
    has_mask = attn_mask is not None
    mask_float = False
    if has_mask and is_causal:
        _fail(f"attn_mask (shape {getattr(attn_mask, 'shape', None)}) and is_causal=True cannot both be set "
              f"(as PyTorch: put the causal pattern into the mask)")
    if has_mask:
        m = attn_mask
        if not isinstance(m, np.ndarray):
            _fail(f"argument 'attn_mask' must be a numpy.ndarray (bool or {dt}) or None, got {type(m).__name__}", TypeError)
        if m.dtype == np.bool_:
            mf = np.where(m, T(0), T(-np.inf)).astype(dt)
        else:
            mf = float_array(OP, "attn_mask", m, dt)
            mask_float = True
        full = outb + (L, S)
        if mf.ndim > len(full) or any(a not in (1, b) for a, b in zip(mf.shape[::-1], full[::-1])):
            _fail(f"attn_mask of shape {m.shape} does not broadcast to the attention shape {full} "
                  f"(query {q.shape}, key {k.shape})")
        mshape = (1,) * (len(full) - mf.ndim) + mf.shape
        mbatch = mshape[:-2]
        Bm = math.prod(mbatch)
        mask3 = _jit.broadcast_c(mf.reshape((Bm,) + mshape[-2:]), (Bm, L, S))
        midx = _jit.broadcast_c(np.arange(Bm, dtype=np.int64).reshape(mbatch), outb).reshape(B)
    else:
        mask3 = np.zeros((1, 1, 1), dt)
        midx = np.zeros(B, np.int64)

    P = _Prep()
    P.q, P.k, P.v = q, k, v
    P.q3 = qx.reshape(B, L, E)
    P.k3 = kx.reshape(Bk, S, E)
    P.v3 = vx.reshape(Bk, S, Ev)
    P.kvb, P.outb, P.B, P.Bk, P.L, P.S, P.E, P.Ev = kvb, outb, B, Bk, L, S, E, Ev
    P.kvidx, P.mask3, P.midx, P.has_mask, P.mask_float = kvidx, mask3, midx, has_mask, mask_float
    P.mask_shape = attn_mask.shape if has_mask else None
    P.causal = bool(is_causal)
    P.scale, P.p, P.key, P.dtype = T(sc), T(p), rk, dt
    return P


def _path(P):
    """``(path, backend)`` of ``_dispatch.attention_plan``."""
    return _dispatch.attention_plan(P.dtype, P.B, P.L, P.S, P.E, P.Ev, _threads.get_num_threads())


# the paths that go block by block (query rows x all keys): same forward/backward interface
_BLOCK_PATHS = {"tiled": _tiled, "rows": _rows}


def _forward(P):
    path, backend = _path(P)
    if P.B and P.L and P.S and path in _BLOCK_PATHS:
        out, lse = _BLOCK_PATHS[path].forward(P, backend)
        return out, lse, backend
    out = np.empty((P.B, P.L, P.Ev), P.dtype)
    lse = np.empty((P.B, P.L), P.dtype)
    if P.B and P.L:
        if P.S == 0:
            out[...] = 0
            lse[...] = np.inf
        else:
            KERNELS.run("fwd", P.dtype, backend,
                        P.q3, P.k3, P.v3, P.kvidx, P.mask3, P.midx, P.has_mask, P.causal, P.scale, P.p, P.key, out, lse)
    return out, lse, backend


@op
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False, seed=None):
    """Attention ``softmax(query @ key^T * scale + mask) @ value``, as
    ``torch.nn.functional.scaled_dot_product_attention``.

    Parameters
    ----------
    query : ndarray (N, ..., L, E), float32 or float64
    key : ndarray (N, ..., S, E)
    value : ndarray (N, ..., S, Ev)
        Batch dims broadcast against each other (as PyTorch). With ``enable_gqa=True`` the heads
        (dim -3) of key/value may divide the query's: query head ``h`` uses key/value head
        ``h // (Hq // Hkv)`` (PyTorch's ``repeat_interleave``).
    attn_mask : ndarray or None
        Broadcastable to (N, ..., L, S). Boolean: ``True`` takes part; float (the query's dtype):
        added to the scaled scores.
    dropout_p : float in [0, 1]
        Dropout on the attention probabilities (kept ones scaled by 1 / (1 - p)). The mask is
        fastops' counter-based one (``_random``): element (b, i, j) of the flattened (B, L, S)
        probabilities is kept iff ``uniform(seed, (b * L + i) * S + j) >= p``; ``seed=`` is then
        required, and the backward given the same seed uses the same mask. Not PyTorch's stream.
    is_causal : bool
        Key ``j`` takes part in query row ``i`` only if ``j <= i`` (top-left aligned, as PyTorch,
        also when L != S). ``ValueError`` together with ``attn_mask``, as PyTorch's documented
        behaviour (2.13's CPU fused kernel combines the two when no gradient is required, its
        autograd path raises).
    scale : float or None
        Default ``1 / sqrt(E)``.
    enable_gqa : bool
    seed : int or None
        Only used when ``dropout_p > 0``.

    Returns
    -------
    ndarray (N, ..., L, Ev): the broadcast batch dims, then L, Ev.

    A query row whose keys are all masked out gives 0 (PyTorch 2.13's CPU result, for boolean
    and ``-inf`` float masks alike), with zero gradients.

    Kernels: large problems go block by block (a block of query rows x all keys, at most 1 MiB of
    scores at a time), the block products in fastops' register-tiled micro-kernel for float32 with
    E and Ev multiples of 64 (``fastops.attention._tiled``), on the rows path otherwise
    (``fastops.attention._rows``); small ones and long key sequences through a blocked online
    softmax (never more than a (BN,) row of scores and a packed (E, BN) block of K^T per task;
    ``fastops.attention._kernels``). ``explain`` names the path.

    Backward: ``scaled_dot_product_attention.backward(grad_output, query, key, value, attn_mask,
    ...)`` -> ``(grad_query, grad_key, grad_value, grad_attn_mask)``; ``grad_attn_mask`` is None
    for a boolean or absent mask (PyTorch gives a gradient for a float mask only). Tiled and rows
    paths: per block of query rows, scores and dP = dO V^T as block products, softmax and dS in
    one fused kernel, then dV += P^T dO, dQ = dS K, dK += dS^T Q (fixed-order accumulation).
    Blocked path: the forward again for the logsumexp, then FlashAttention-2's two passes: dQ (and
    dS for a float mask) parallel over query blocks, dK and dV parallel over key blocks. All
    deterministic.
    """
    P = _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, seed)
    out, _, _ = _forward(P)
    return out.reshape(P.outb + (P.L, P.Ev))


def _unbroadcast(g, shape):
    """Sum ``g`` over the dims it was broadcast along to reach its shape from ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.ascontiguousarray(g.reshape(shape))


@scaled_dot_product_attention.defbackward
def _(grad_output, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
      enable_gqa=False, seed=None):
    P = _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, seed)
    g = grad_like(OP, grad_output, P.outb + (P.L, P.Ev), P.dtype)
    go3 = g.reshape(P.B, P.L, P.Ev)
    want_dm = P.mask_float
    path, backend = _path(P)
    if P.B and P.L and P.S and path in _BLOCK_PATHS:
        dq3, dk3, dv3, dm3 = _BLOCK_PATHS[path].backward(P, np.ascontiguousarray(go3), backend, want_dm)
        return _grads_out(P, dq3, dk3, dv3, dm3)
    out, lse, backend = _forward(P)
    # D_i = rowsum(dO * O) (equals sum_j P_ij dP_ij also with dropout: O holds the dropped P)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as in the math
        dd = np.multiply(go3, out).sum(axis=-1)
    dq3 = np.zeros((P.B, P.L, P.E), P.dtype)
    dk3 = np.zeros((P.Bk, P.S, P.E), P.dtype)
    dv3 = np.zeros((P.Bk, P.S, P.Ev), P.dtype)
    dm3 = np.zeros((P.B, P.L, P.S) if want_dm else (1, 1, 1), P.dtype)
    if P.B and P.L and P.S:
        KERNELS.run(
            "dq", P.dtype, backend,
            P.q3, P.k3, P.v3, P.kvidx, P.mask3, P.midx, P.has_mask, P.causal, P.scale, P.p, P.key,
            lse, dd, go3, dq3, dm3, want_dm)
        order = np.argsort(P.kvidx, kind="stable")
        inv_ptr = np.zeros(P.Bk + 1, np.int64)
        np.cumsum(np.bincount(P.kvidx, minlength=P.Bk), out=inv_ptr[1:])
        inv_b = np.ascontiguousarray(order.astype(np.int64))
        KERNELS.run(
            "dkv", P.dtype, backend,
            P.q3, P.k3, P.v3, inv_ptr, inv_b, P.mask3, P.midx, P.has_mask, P.causal, P.scale, P.p, P.key,
            lse, dd, go3, dk3, dv3)
    return _grads_out(P, dq3, dk3, dv3, dm3 if want_dm else None)


def _grads_out(P, dq3, dk3, dv3, dm3):
    gq = _unbroadcast(dq3.reshape(P.outb + (P.L, P.E)), P.q.shape)
    gk = _unbroadcast(dk3.reshape(P.kvb + (P.S, P.E)), P.k.shape)
    gv = _unbroadcast(dv3.reshape(P.kvb + (P.S, P.Ev)), P.v.shape)
    gm = None
    if dm3 is not None:
        gm = _unbroadcast(dm3.reshape(P.outb + (P.L, P.S)), P.mask_shape)
    return gq, gk, gv, gm


@scaled_dot_product_attention.defexplain
def _(shape, dtype="float32", key_shape=None, value_shape=None, **params):
    """``shape``: the query's; ``key_shape``/``value_shape`` default to the query's."""
    shape = tuple(shape)
    ks = tuple(key_shape) if key_shape is not None else shape
    vs = tuple(value_shape) if value_shape is not None else ks
    B = math.prod(shape[:-2])
    L, S, E, Ev = shape[-2], ks[-2], shape[-1], vs[-1]
    nt = _threads.get_num_threads()
    path, backend = _dispatch.attention_plan(dtype, B, L, S, E, Ev, nt)
    blocks = {"threads": nt, "block_rows": _dispatch.attention_block_rows(L, S, np.dtype(dtype).itemsize), "block_keys": S}
    if path == "tiled":
        return {"path": path, "kernel": _tiled.KERNELS.kernel_name("fwd", dtype, backend), "backend": backend,
                "gemm": f"fastops._tile ({_tile.MR} x {_tile.NR} register tile)", **blocks}
    if path == "rows":
        bm = blocks["block_rows"]
        kbe = _rows._kernel_backend(np.dtype(dtype), min(bm, L), S)
        return {"path": path, "kernel": _rows.KERNELS.kernel_name("probs", dtype, kbe), "backend": backend,
                "gemm": f"fastops._gemm ({_gemm.backend(min(bm, L), S, E, dtype=dtype)}, block after block)", **blocks}
    return {"path": path, "kernel": KERNELS.kernel_name("fwd", dtype, backend), "backend": backend,
            "block_rows": BM, "block_keys": BN}
