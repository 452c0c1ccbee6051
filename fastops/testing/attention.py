"""Op table: attention (docs/ops.md, "Attention")."""
import math

import numpy as np

from . import ErrorCase, OpInfo, PathCase, Sample, randn


def sdpa_ref(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
             seed=None):
    """Naive NumPy reference: the full (..., L, S) score matrix, softmax, then the product with v.
    Fully masked rows give 0 (PyTorch 2.13 CPU). Dropout: fastops' counter-based mask
    (``fastops._random.uniform`` over the flat (B, L, S) probabilities)."""
    dt = q.dtype
    L, E = q.shape[-2:]
    S = k.shape[-2]
    sc = 1.0 / math.sqrt(E) if scale is None else scale
    if enable_gqa and q.ndim >= 3 and k.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    if enable_gqa and q.ndim >= 3 and v.ndim >= 3 and v.shape[-3] != q.shape[-3]:
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * sc
    if attn_mask is not None:
        if attn_mask.dtype == np.bool_:
            s = np.where(attn_mask, s, -np.inf)
        else:
            s = s + attn_mask
    if is_causal:
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    m = np.max(s, axis=-1, keepdims=True, initial=-np.inf)  # (initial: S = 0, no key)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    den = e.sum(axis=-1, keepdims=True)
    p = np.where(den > 0, e / np.where(den > 0, den, 1.0), 0.0)
    if dropout_p > 0:
        from .._random import uniform

        u = uniform(seed, p.size, np.float64).reshape(p.shape)
        keep = 0.0 if dropout_p >= 1 else 1.0 / (1.0 - dropout_p)
        p = np.where(u >= dropout_p, p * keep, 0.0)
    return np.matmul(p, v).astype(dt)


def sdpa_torch(t, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False,
               seed=None):
    if attn_mask is not None and not isinstance(attn_mask, t.Tensor):
        attn_mask = t.from_numpy(attn_mask)
    return t.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)


def _samples(rng, dtype):
    def r(*shape):
        return randn(rng, shape, dtype)

    out = [
        Sample((r(2, 3, 5, 4), r(2, 3, 7, 4), r(2, 3, 7, 6), None), {}, "4-D"),
        Sample((r(3, 9, 5), r(3, 6, 5), r(3, 6, 3), None), {"scale": 0.7}, "3-D scale"),
        Sample((r(2, 9, 4), r(2, 5, 4), r(2, 5, 4), None), {"is_causal": True}, "causal L > S"),
        Sample((r(2, 5, 4), r(2, 9, 4), r(2, 9, 3), None), {"is_causal": True}, "causal L < S"),
        # odd sizes across block boundaries (64 query rows, 128 keys per block)
        Sample((r(1, 70, 3), r(1, 131, 3), r(1, 131, 5), None), {"is_causal": True}, "blocks causal"),
        Sample((r(1, 67, 3), r(1, 130, 3), r(1, 130, 2), None), {}, "blocks"),
        Sample((r(2, 3, 4, 4), r(2, 3, 6, 4), r(2, 3, 6, 4), rng.standard_normal((1, 6)).astype(dtype)), {},
               "float mask (1, S)"),
        Sample((r(2, 3, 4, 4), r(2, 3, 6, 4), r(2, 3, 6, 4), rng.standard_normal((3, 1, 6)).astype(dtype)), {},
               "float mask (H, 1, S)"),
        Sample((r(2, 3, 4, 4), r(2, 3, 6, 4), r(2, 3, 6, 4), rng.random((2, 1, 4, 6)) > 0.3), {},
               "bool mask (N, 1, L, S)"),
        Sample((r(2, 4, 5, 4), r(2, 2, 6, 4), r(2, 2, 6, 3), None), {"enable_gqa": True}, "gqa"),
        Sample((r(2, 3, 5, 4), r(2, 1, 6, 4), r(1, 1, 6, 3), None), {}, "broadcast k/v batch"),
    ]
    # a fully masked query row (row 1): output 0, gradients 0
    m = rng.random((5, 7)) > 0.4
    m[1] = False
    m[:, 0] |= np.arange(5) != 1
    out.append(Sample((r(2, 5, 4), r(2, 7, 4), r(2, 7, 4), m), {}, "bool mask, fully masked row"))
    return out


def _errors():
    x = np.ones((2, 3, 4), np.float32)
    return [
        ErrorCase((x, x, np.ones((2, 3, 4), np.float64)), {}, TypeError, "value"),
        ErrorCase((np.ones((2, 3, 4), np.int32), x, x), {}, TypeError, "query"),
        ErrorCase((x, np.ones((2, 3, 5), np.float32), x), {}, ValueError, "embedding"),
        ErrorCase((x, x, np.ones((2, 4, 4), np.float32)), {}, ValueError, "sequence length"),
        ErrorCase((np.ones((4,), np.float32), x, x), {}, ValueError, "query"),
        ErrorCase((x, np.ones((3, 3, 4), np.float32), np.ones((3, 3, 4), np.float32)), {}, ValueError, "broadcast"),
        ErrorCase((x, x, x, np.ones((3, 4), np.float32)), {}, ValueError, "attn_mask"),
        ErrorCase((x, x, x, np.ones((3, 3), np.float64)), {}, TypeError, "attn_mask"),
        ErrorCase((x, x, x, np.ones((3, 3), np.int64)), {}, TypeError, "attn_mask"),
        ErrorCase((x, x, x, np.ones((3, 3), bool)), {"is_causal": True}, ValueError, "is_causal"),
        ErrorCase((x, x, x), {"dropout_p": 1.5}, ValueError, "dropout_p"),
        ErrorCase((x, x, x), {"dropout_p": 0.5}, ValueError, "seed"),
        ErrorCase((x, x, x), {"dropout_p": 0.5, "seed": 1.5}, TypeError, "seed"),
        ErrorCase((x, x, x), {"scale": "a"}, TypeError, "scale"),
        ErrorCase((x, x, x), {"is_causal": 1}, TypeError, "is_causal"),
        ErrorCase((np.ones((2, 4, 3, 4), np.float32), np.ones((2, 3, 3, 4), np.float32),
                   np.ones((2, 3, 3, 4), np.float32)), {"enable_gqa": True}, ValueError, "multiple"),
    ]


def _bench(rng, dtype, size):
    n, h, L, e = {"small": (1, 2, 128, 32), "large": (1, 8, 1024, 64)}[size]
    return Sample((randn(rng, (n, h, L, e), dtype), randn(rng, (n, h, L, e), dtype),
                   randn(rng, (n, h, L, e), dtype), None), {})


def _paths(rng, dtype):
    """The three paths (``_dispatch.AttentionPath``) with a float mask and dropout, and causal.
    ``blocked`` (small E, the online-softmax kernels) is chosen by the shape; ``rows`` and ``tiled``
    are forced with 16-row blocks, so that 70 query rows make several blocks and a partial one.
    ``tiled`` is float32 only (float64 runs ``rows``)."""
    def r(*shape):
        return randn(rng, shape, dtype)

    out = []
    q, k, v = r(2, 2, 70, 16), r(2, 2, 130, 16), r(2, 2, 130, 8)
    out.append(PathCase("blocked", Sample((q, k, v, r(2, 1, 70, 130)), {"dropout_p": 0.3, "seed": 5}, "float mask, dropout"),
                        expect={"path": "blocked", "backend": "parallel"},
                        explain={"key_shape": k.shape, "value_shape": v.shape}))
    for path, E, Ev, S in (("rows", 16, 8, 60), ("tiled", 64, 64, 90)):
        if path == "tiled" and dtype != np.float32:
            continue
        q, k, v = r(2, 2, 70, E), r(2, 2, S, E), r(2, 2, S, Ev)
        force = {"attention_path": path, "attention_block_rows": 16}
        shapes = {"key_shape": k.shape, "value_shape": v.shape}
        expect = {"path": path, "backend": "parallel"}
        out.append(PathCase(path, Sample((q, k, v, r(2, 1, 70, S)), {"dropout_p": 0.3, "seed": 5}, "float mask, dropout"),
                            force=force, expect=expect, explain=shapes))
        out.append(PathCase(path, Sample((q, k, v, None), {"is_causal": True}, "causal"),
                            force=force, expect=expect, explain=shapes))
    return out


TABLE = [
    OpInfo(
        name="scaled_dot_product_attention", samples=_samples, ref=sdpa_ref, torch_ref=sdpa_torch,
        grad_args=(0, 1, 2, 3),  # a float attn_mask is differentiable (as in torch); a bool one is not
        errors=_errors, bench=_bench,
        tol={np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-12)},
        paths=_paths,
    ),
]
