"""The digits dataset (scikit-learn's 8x8 handwritten digits), split and scaled for the examples."""
import numpy as np


def load_digits(test_fraction=0.25, seed=0, dtype=np.float32):
    """``(x_train, y_train, x_test, y_test)``: images (N, 8, 8) scaled to [0, 1], labels int64.

    A fixed, stratification-free random split (``seed``). Needs scikit-learn (``fastops[examples]``).
    """
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the examples need scikit-learn's digits dataset: pip install 'fastops[examples]'") from e
    d = _load()
    x = (d.images / 16.0).astype(dtype)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = idx[:n_test], idx[n_test:]
    return x[tr], y[tr], x[te], y[te]


def batches(n, batch_size, rng):
    """Shuffled index batches covering ``range(n)`` once."""
    perm = rng.permutation(n)
    for s in range(0, n, batch_size):
        yield perm[s : s + batch_size]
