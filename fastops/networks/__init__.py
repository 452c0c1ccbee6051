"""Reference networks written with fastops ops only: code a user can read and copy.

Each network is a class with its parameters as NumPy arrays, a forward that returns the logits and
what its backward needs, the backward as the chain of ``op.backward`` calls, and a training step
(cross-entropy loss, ``fastops.optim`` step). For the tests and the benchmarks each also builds
the equivalent ``torch.nn.Module`` with the same weights (torch imported only then).

The contract (``Network``, the base class in ``_base``):

* ``Net(dtype=np.float32, seed=0, **sizes)``: parameters initialised as PyTorch initialises the
  equivalent module (Kaiming-uniform for conv/linear, BN weight 1 and bias 0, ...); ``sizes``
  shrink the network for tests (channels, classes, image size, sequence length, ...);
* ``params``: a dict name -> array (the trainable parameters, C-contiguous, updated in place by
  the optimizer), ``buffers``: a dict name -> array (running statistics, updated by training
  forwards);
* ``example_batch(batch, rng)`` -> ``(x, target)``: inputs of the network's kind and class targets;
* ``forward(x, training=False)`` -> ``(logits, tape)``;
* ``loss(logits, target)`` -> ``(loss, grad_logits)`` (mean cross-entropy and its gradient);
* ``backward(tape, grad_logits)`` -> dict name -> gradient, one per parameter;
* ``train_step(x, target, optimizer)`` -> loss: a training forward, the loss, the backward and
  ``optimizer.step`` on the gradients in ``params`` order (``optimizer`` built over
  ``list(net.params.values())``);
* ``torch_module()`` -> the equivalent ``torch.nn.Module`` holding copies of ``params`` and
  ``buffers`` (its parameters' names map to ``params``' names through ``torch_names()``).

``NETWORKS``: name -> class, for the tests and ``python -m fastops bench --networks``.
"""
import importlib

# name -> (module, class)
_MODULES = {
    "lenet5": ("lenet", "LeNet5"),
    "resnet18": ("resnet", "ResNet18"),
    "mobilenet_v2": ("mobilenet", "MobileNetV2"),
    "transformer": ("transformer", "TransformerEncoder"),
    "lstm_lm": ("lstm_lm", "LSTMLanguageModel"),
}


class _Registry(dict):
    """name -> network class, importing each network's module on first use."""

    def __missing__(self, name):
        if name not in _MODULES:
            raise KeyError(f"unknown network {name!r}; known: {sorted(_MODULES)}")
        module, cls = _MODULES[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
        self[name] = value
        return value

    def names(self):
        return list(_MODULES)


NETWORKS = _Registry()
