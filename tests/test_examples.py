"""The end-to-end training examples: shortened runs must learn (the loss goes down)."""
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the examples need scikit-learn (fastops[examples])")


def test_lstm_digits_learns():
    from fastops.examples import lstm_digits

    r = lstm_digits.train(epochs=1, max_steps=20, hidden=32, lr=2e-2)
    first, last = np.mean(r["losses"][:4]), np.mean(r["losses"][-4:])
    assert last < 0.8 * first, (first, last)
    assert r["test_accuracy"] > 0.3  # 20 steps from chance (0.1)


def test_cnn_digits_learns():
    from fastops.examples import cnn_digits

    r = cnn_digits.train(epochs=1, max_steps=20)
    first, last = np.mean(r["losses"][:4]), np.mean(r["losses"][-4:])
    assert last < 0.8 * first, (first, last)
    assert r["test_accuracy"] > 0.3
    # the running statistics moved away from their initial values (training forwards update them)
    assert not np.allclose(r["state"]["rm1"], 0)
