"""LeNet-5 (LeCun et al. 1998, with ReLU and max pooling) for 1x28x28 images, written with fastops ops.

Layers (shapes for the default 1x28x28 input)::

    conv1  conv2d(1 -> 6, 5x5, pad 2, activation="relu")     # 6 x 28 x 28
           max_pool2d(2)                                      # 6 x 14 x 14
    conv2  conv2d(6 -> 16, 5x5, activation="relu")            # 16 x 10 x 10
           max_pool2d(2)                                      # 16 x 5 x 5
           flatten                                            # 400
    fc1    linear(400 -> 120, activation="relu")
    fc2    linear(120 -> 84, activation="relu")
    fc3    linear(84 -> 10)                                   # logits

61,706 parameters at the default sizes. Each conv and linear is recorded with ``Network.record``
(its pullback in the tape; a training forward through ``op.vjp``), and the backward calls the
pullbacks in reverse order; each fused ``activation=`` is undone by the same op's backward.
"""
import numpy as np

import fastops

from ._base import Network


class LeNet5(Network):
    """LeNet-5. Sizes: ``in_channels`` (1), ``image_size`` (28; the flattened size is
    ``16 * ((image_size - 8) // 4) ** 2``, 400 at 28), ``num_classes`` (10)."""

    def __init__(self, dtype=np.float32, seed=0, in_channels=1, image_size=28, num_classes=10):
        super().__init__(dtype, seed)
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        side = (image_size // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet5: image_size {image_size} is too small (at least 10)")
        self.flat = 16 * side * side
        self.add_conv("conv1", 6, in_channels, 5, 5)
        self.add_conv("conv2", 16, 6, 5, 5)
        self.add_linear("fc1", 120, self.flat)
        self.add_linear("fc2", 84, 120)
        self.add_linear("fc3", num_classes, 84)

    def example_batch(self, batch=64, rng=None):
        rng = np.random.default_rng(0) if rng is None else rng
        x = rng.standard_normal((batch, self.in_channels, self.image_size, self.image_size)).astype(self.dtype)
        return x, rng.integers(0, self.num_classes, batch)

    def forward(self, x, training=False):
        """Logits (N, num_classes) and the tape (each op's pullback, and the pooling indices).
        ``training`` does not change the result (no batch norm, no dropout): it records what the
        backward reuses (``Network.record``: the fused relu's output, so no pre-activation is
        recomputed)."""
        p = self.params
        t = {"training": bool(training)}
        r = self.record
        c1 = r(t, "conv1", fastops.conv2d, x, p["conv1.weight"], p["conv1.bias"], padding=2, activation="relu")
        t["c1"] = c1
        p1, t["i1"] = fastops.max_pool2d(c1, 2, return_indices=True)
        c2 = r(t, "conv2", fastops.conv2d, p1, p["conv2.weight"], p["conv2.bias"], activation="relu")
        t["c2"] = c2
        p2, t["i2"] = fastops.max_pool2d(c2, 2, return_indices=True)
        t["p2"] = p2
        f = fastops.flatten(p2, 1)
        h1 = r(t, "fc1", fastops.linear, f, p["fc1.weight"], p["fc1.bias"], activation="relu")
        h2 = r(t, "fc2", fastops.linear, h1, p["fc2.weight"], p["fc2.bias"], activation="relu")
        return r(t, "fc3", fastops.linear, h2, p["fc3.weight"], p["fc3.bias"]), t

    def backward(self, tape, grad_logits):
        t, g = tape, {}
        gh2, g["fc3.weight"], g["fc3.bias"] = t["fc3"](grad_logits)
        gh1, g["fc2.weight"], g["fc2.bias"] = t["fc2"](gh2)
        gf, g["fc1.weight"], g["fc1.bias"] = t["fc1"](gh1)
        (gp2,) = fastops.flatten.backward(gf, t["p2"], 1)
        (gc2,) = fastops.max_pool2d.backward(gp2, t["c2"], 2, indices=t["i2"])
        gp1, g["conv2.weight"], g["conv2.bias"] = t["conv2"](gc2)
        (gc1,) = fastops.max_pool2d.backward(gp1, t["c1"], 2, indices=t["i1"])
        # the image needs no gradient: conv1's data gradient is not computed
        _, g["conv1.weight"], g["conv1.bias"] = t["conv1"](gc1, needs=(False, True, True))
        return {k: g[k] for k in self.params}

    def torch_module(self):
        return self.load_into_torch(_torch_lenet5(self.in_channels, self.flat, self.num_classes, self.dtype))


def _torch_lenet5(in_channels, flat, num_classes, dtype):
    import torch
    from torch import nn

    class TorchLeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(flat, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def forward(self, x):
            F = nn.functional
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return TorchLeNet5().to(torch.float64 if dtype == np.float64 else torch.float32)
