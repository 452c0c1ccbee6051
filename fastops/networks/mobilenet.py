"""MobileNetV2 (Sandler et al. 2018; torchvision's ``mobilenet_v2`` architecture), written with fastops ops.

Layers at ``width_mult`` 1 (shapes for a 3 x 224 x 224 input)::

    features.0       conv2d(3 -> 32, 3x3, stride 2, pad 1) -> batch_norm(activation="relu6")  # 32 x 112 x 112
    features.1..17   inverted residual blocks, (t, c, n, s) = (1, 16, 1, 1), (6, 24, 2, 2),
                     (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)
                     (expansion t, output channels c, n blocks, stride s of the first)            # 320 x 7 x 7
    features.18      conv2d(320 -> 1280, 1x1) -> batch_norm(activation="relu6")
                     adaptive_avg_pool2d(1), flatten                                             # 1280
    classifier.0     dropout(0.2) (training only)
    classifier.1     linear(1280 -> num_classes)                                                 # logits

An inverted residual block ``features.i`` (input ``inp``, output ``oup`` channels, ``hidden = inp * t``)::

    conv.0   conv2d(inp -> hidden, 1x1) -> batch_norm(activation="relu6")       # expand (absent if t = 1)
    conv.1   conv2d(hidden -> hidden, 3x3, stride s, pad 1, groups=hidden)
             -> batch_norm(activation="relu6")                                   # depthwise
    conv.2   conv2d(hidden -> oup, 1x1) -> conv.3 batch_norm                    # project, linear
    add(input, ...) when s = 1 and inp = oup

(for t = 1 the depthwise unit is ``conv.0`` and the projection ``conv.1`` / ``conv.2``). No conv has a
bias. Channels at other ``width_mult`` follow torchvision's ``_make_divisible(c * width_mult, 8)``
(the last conv: ``_make_divisible(1280 * max(1, width_mult), 8)``).

3,504,872 parameters at the default sizes, named as torchvision's ``state_dict``
(``features.0.0.weight``, ``features.1.conv.0.0.weight``, ``features.2.conv.3.running_var``,
``classifier.1.weight``, ...). Initialisation: ``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.Linear``
defaults (torchvision re-initialises convs Kaiming-normal and the classifier N(0, 0.01); the
architecture is the same).

Batch norm and the convs: as in :mod:`fastops.networks.resnet` (recorded with ``Network.record``:
a training forward updates the running statistics once and its pullback reuses the batch
statistics). Dropout: a training forward draws the
mask from a seed (``forward(..., seed=)``, by default the next of a counter started from the
network's ``seed``), saved in the tape for the backward; the mask is fastops', not torch's, so the
tests compare with torch at ``dropout=0`` (and with fastops' own mask applied in torch). The first
conv's input gradient is not computed (its pullback is called with ``needs=(False, True, False)``).
"""
import numpy as np

import fastops

from ._base import Network

SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v, divisor=8):
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, at least
    ``divisor`` and not below 90% of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV2(Network):
    """MobileNetV2. Sizes: ``width_mult`` (1.0), ``num_classes`` (1000), ``image_size`` (224; only
    ``example_batch`` uses it), ``in_channels`` (3), ``dropout`` (0.2), ``setting`` (the (t, c, n, s)
    table; fewer rows or blocks shrink the network), ``last_channel`` (None: torchvision's rule)."""

    def __init__(self, dtype=np.float32, seed=0, width_mult=1.0, num_classes=1000, image_size=224, in_channels=3,
                 dropout=0.2, setting=SETTING, last_channel=None):
        super().__init__(dtype, seed)
        self.num_classes, self.image_size, self.in_channels = num_classes, image_size, in_channels
        self.dropout = dropout
        self._seed = int(seed) * 1_000_003
        # blocks: (units, residual); a unit: (conv name, bn name, in, out, kernel, stride, groups, activation)
        self.blocks = []
        cin = make_divisible(32 * width_mult)
        self._add_block([("features.0.0", "features.0.1", in_channels, cin, 3, 2, 1, "relu6")], False)
        for t, c, n, s in setting:
            cout = make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                name = f"features.{len(self.blocks)}.conv"
                hidden = int(round(cin * t))
                units, j = [], 0
                if t != 1:
                    units.append((f"{name}.0.0", f"{name}.0.1", cin, hidden, 1, 1, 1, "relu6"))
                    j = 1
                units.append((f"{name}.{j}.0", f"{name}.{j}.1", hidden, hidden, 3, stride, hidden, "relu6"))
                units.append((f"{name}.{j + 1}", f"{name}.{j + 2}", hidden, cout, 1, 1, 1, None))
                self._add_block(units, stride == 1 and cin == cout)
                cin = cout
        self.last_channel = make_divisible(1280 * max(1.0, width_mult)) if last_channel is None else last_channel
        last = f"features.{len(self.blocks)}"
        self._add_block([(f"{last}.0", f"{last}.1", cin, self.last_channel, 1, 1, 1, "relu6")], False)
        self.add_linear("classifier.1", num_classes, self.last_channel)

    def _add_block(self, units, residual):
        for conv, bn, cin, cout, k, _, groups, _ in units:
            self.add_conv(conv, cout, cin // groups, k, k, bias=False)
            self.add_norm(bn, cout)
        self.blocks.append((units, residual))

    def example_batch(self, batch=4, rng=None):
        rng = np.random.default_rng(0) if rng is None else rng
        x = rng.standard_normal((batch, self.in_channels, self.image_size, self.image_size)).astype(self.dtype)
        return x, rng.integers(0, self.num_classes, batch)

    # ---- conv -> batch norm (-> activation)

    def conv_bn_units(self):
        return [unit[:2] for units, _ in self.blocks for unit in units]

    def _conv_bn(self, t, unit, x):
        """batch_norm(conv2d(x)) with the fused activation; the pullbacks of both go in the tape
        (``Network.record``: through ``op.vjp`` in training)."""
        conv, bn, _, _, k, stride, groups, act = unit
        p, s = self.params, self.buffers
        if self.folded:  # fold_batch_norm: one conv2d with the folded bias and the fused activation
            return fastops.conv2d(x, p[f"{conv}.weight"], p[f"{conv}.bias"], stride=stride, padding=k // 2,
                                  groups=groups, activation=act)
        c = self.record(t, conv, fastops.conv2d, x, p[f"{conv}.weight"], None, stride=stride, padding=k // 2,
                        groups=groups)
        return self.record(t, bn, fastops.batch_norm, c, s[f"{bn}.running_mean"], s[f"{bn}.running_var"],
                           p[f"{bn}.weight"], p[f"{bn}.bias"], training=t["training"], activation=act)

    def _conv_bn_backward(self, t, unit, g, grads, need_input=True):
        conv, bn = unit[:2]
        gc, _, _, grads[f"{bn}.weight"], grads[f"{bn}.bias"] = t[bn](g)
        gx, grads[f"{conv}.weight"], _ = t[conv](gc, needs=(need_input, True, False))
        return gx

    # ---- the network

    def forward(self, x, training=False, seed=None):
        """Logits (N, num_classes) and the tape. ``training``: batch statistics (running statistics
        updated in place) and dropout with the mask of ``seed`` (None: the network's next seed)."""
        if training:
            self._check_trainable("a training forward")
        p = self.params
        t = {"training": bool(training)}
        h = x
        for i, (units, residual) in enumerate(self.blocks):
            y = h
            for unit in units:
                y = self._conv_bn(t, unit, y)
            if residual:
                t[f"features.{i}.add"] = (h, y)
                y = fastops.add(h, y)
            h = y
        t["avgpool"] = h
        h = fastops.adaptive_avg_pool2d(h, 1)
        t["flatten"] = h
        h = fastops.flatten(h, 1)
        if training and self.dropout > 0:
            if seed is None:
                seed, self._seed = self._seed, self._seed + 1
            t["dropout"], t["dropout.seed"] = h, seed
            h = fastops.dropout(h, self.dropout, training=True, seed=seed)
        t["classifier.1"] = h
        return fastops.linear(h, p["classifier.1.weight"], p["classifier.1.bias"]), t

    def backward(self, tape, grad_logits):
        self._check_trainable("the backward")
        p, t, g = self.params, tape, {}
        gh, g["classifier.1.weight"], g["classifier.1.bias"] = fastops.linear.backward(
            grad_logits, t["classifier.1"], p["classifier.1.weight"], p["classifier.1.bias"])
        if "dropout" in t:
            (gh,) = fastops.dropout.backward(gh, t["dropout"], self.dropout, True, False, t["dropout.seed"])
        (gh,) = fastops.flatten.backward(gh, t["flatten"], 1)
        (gh,) = fastops.adaptive_avg_pool2d.backward(gh, t["avgpool"], 1)
        for i in reversed(range(len(self.blocks))):
            units, residual = self.blocks[i]
            if residual:
                gin, gy = fastops.add.backward(gh, *t[f"features.{i}.add"])
            else:
                gy = gh
            for unit in reversed(units):  # the image needs no gradient: features.0's is not computed
                gy = self._conv_bn_backward(t, unit, gy, g, need_input=i > 0 or unit is not units[0])
            gh = fastops.add(gin, gy) if residual else gy  # the block's input feeds both paths
        return {k: g[k] for k in p}

    def torch_module(self):
        return self.load_into_torch(_torch_mobilenet_v2(self))


def _torch_mobilenet_v2(net):
    """torchvision's mobilenet_v2 written with torch.nn (same module names), sized as ``net``."""
    import torch
    from torch import nn

    def conv_bn(conv, bn, cin, cout, k, stride, groups, act):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return layers + ([nn.ReLU6(inplace=True)] if act else [])

    class InvertedResidual(nn.Module):
        def __init__(self, units, residual):
            super().__init__()
            self.use_res_connect = residual
            layers = []
            for u in units:
                if u[-1]:  # conv -> BN -> ReLU6 as one Conv2dNormActivation (names .j.0, .j.1)
                    layers.append(nn.Sequential(*conv_bn(*u)))
                else:  # the projection: conv and BN side by side (names .j, .j+1)
                    layers += conv_bn(*u)
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            # features.0 and the last conv are plain conv-BN-ReLU6 sequences, the others inverted residuals
            blocks = [InvertedResidual(units, residual) if ".conv." in units[0][0]
                      else nn.Sequential(*conv_bn(*units[0])) for units, residual in net.blocks]
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Sequential(nn.Dropout(net.dropout), nn.Linear(net.last_channel, net.num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    return MobileNet().to(torch.float64 if net.dtype == np.float64 else torch.float32)
