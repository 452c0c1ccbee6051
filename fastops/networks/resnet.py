"""ResNet-18 (He et al. 2015; torchvision's ``resnet18`` architecture), written with fastops ops.

Layers (``w`` = ``width``, 64 by default; shapes for a 3 x 224 x 224 input)::

    conv1    conv2d(3 -> w, 7x7, stride 2, pad 3, no bias)                 # w x 112 x 112
    bn1      batch_norm(activation="relu")
             max_pool2d(3, stride 2, pad 1)                                # w x 56 x 56
    layer1   2 BasicBlocks, w channels                                     # w x 56 x 56
    layer2   2 BasicBlocks, 2w channels, the first with stride 2           # 2w x 28 x 28
    layer3   2 BasicBlocks, 4w channels, the first with stride 2           # 4w x 14 x 14
    layer4   2 BasicBlocks, 8w channels, the first with stride 2           # 8w x 7 x 7
             adaptive_avg_pool2d(1), flatten                               # 8w
    fc       linear(8w -> num_classes)                                     # logits

A BasicBlock ``layerL.B``::

    conv1 conv2d(3x3, stride s, pad 1, no bias) -> bn1 batch_norm(activation="relu")
    conv2 conv2d(3x3, pad 1, no bias)           -> bn2 batch_norm
    shortcut: the input, or (first block of layers 2-4) downsample.0 conv2d(1x1, stride s, no bias)
              -> downsample.1 batch_norm
    relu(add(bn2, shortcut))

11,689,512 parameters at the default sizes (width 64, 1000 classes), named as torchvision's
``state_dict`` (``conv1.weight``, ``bn1.weight``, ``layer2.0.downsample.0.weight``, ``fc.bias``, ...;
the running statistics ``bn1.running_mean``, ... in ``buffers``). Initialisation: ``nn.Conv2d`` /
``nn.BatchNorm2d`` / ``nn.Linear`` defaults (torchvision's ``resnet18`` re-initialises the convs with
Kaiming-normal, fan-out; the architecture is the same).

Batch norm: a training forward normalises with the batch statistics and updates the running
statistics in place (momentum 0.1). Each conv and batch norm is recorded with
``Network.record``: a training forward runs ``op.vjp``, whose pullback reuses the batch statistics
(and leaves the running statistics alone); the backward calls the pullbacks in reverse order.
The network's input needs no gradient: conv1's pullback is asked for its weight gradient only
(``needs=(False, True, False)``), so its data gradient is never computed.
"""
import numpy as np

import fastops

from ._base import Network


class ResNet18(Network):
    """ResNet-18. Sizes: ``width`` (base channels, 64), ``num_classes`` (1000), ``image_size`` (224;
    only ``example_batch`` uses it: the network takes any image size of at least 32),
    ``in_channels`` (3)."""

    STAGES = (1, 2, 3, 4)
    BLOCKS = 2

    def __init__(self, dtype=np.float32, seed=0, width=64, num_classes=1000, image_size=224, in_channels=3):
        super().__init__(dtype, seed)
        self.width, self.num_classes, self.image_size, self.in_channels = width, num_classes, image_size, in_channels
        self.add_conv("conv1", width, in_channels, 7, 7, bias=False)
        self.add_norm("bn1", width)
        self.blocks = []  # (name, in_channels, out_channels, stride, has_downsample)
        cin = width
        for stage in self.STAGES:
            cout = width * 2 ** (stage - 1)
            for b in range(self.BLOCKS):
                stride = 2 if (stage > 1 and b == 0) else 1
                name = f"layer{stage}.{b}"
                down = stride != 1 or cin != cout
                self.add_conv(f"{name}.conv1", cout, cin, 3, 3, bias=False)
                self.add_norm(f"{name}.bn1", cout)
                self.add_conv(f"{name}.conv2", cout, cout, 3, 3, bias=False)
                self.add_norm(f"{name}.bn2", cout)
                if down:
                    self.add_conv(f"{name}.downsample.0", cout, cin, 1, 1, bias=False)
                    self.add_norm(f"{name}.downsample.1", cout)
                self.blocks.append((name, cin, cout, stride, down))
                cin = cout
        self.add_linear("fc", num_classes, cin)

    def example_batch(self, batch=4, rng=None):
        rng = np.random.default_rng(0) if rng is None else rng
        x = rng.standard_normal((batch, self.in_channels, self.image_size, self.image_size)).astype(self.dtype)
        return x, rng.integers(0, self.num_classes, batch)

    # ---- conv -> batch norm (-> activation), the unit everything is built of

    def conv_bn_units(self):
        units = [("conv1", "bn1")]
        for name, _, _, _, down in self.blocks:
            units += [(f"{name}.conv1", f"{name}.bn1"), (f"{name}.conv2", f"{name}.bn2")]
            if down:
                units.append((f"{name}.downsample.0", f"{name}.downsample.1"))
        return units

    def _conv_bn(self, t, conv, bn, x, stride, padding, activation):
        """batch_norm(conv2d(x)) with the fused activation; the pullbacks of both go in the tape.
        Folded (``fold_batch_norm``): one conv2d with the folded bias and the fused activation."""
        p, s = self.params, self.buffers
        if self.folded:
            return fastops.conv2d(x, p[f"{conv}.weight"], p[f"{conv}.bias"], stride=stride, padding=padding,
                                  activation=activation)
        c = self.record(t, conv, fastops.conv2d, x, p[f"{conv}.weight"], None, stride=stride, padding=padding)
        return self.record(t, bn, fastops.batch_norm, c, s[f"{bn}.running_mean"], s[f"{bn}.running_var"],
                           p[f"{bn}.weight"], p[f"{bn}.bias"], training=t["training"], activation=activation)

    def _conv_bn_backward(self, t, g, grads, conv, bn, need_input=True):
        """The gradient of ``_conv_bn``'s input (None without ``need_input``: the conv's data
        gradient is not computed); the parameters' gradients go into ``grads``."""
        gc, _, _, grads[f"{bn}.weight"], grads[f"{bn}.bias"] = t[bn](g)
        gx, grads[f"{conv}.weight"], _ = t[conv](gc, needs=(need_input, True, False))
        return gx

    # ---- the network

    def forward(self, x, training=False):
        """Logits (N, num_classes) and the tape. ``training``: batch statistics in the batch norms,
        whose running statistics (``buffers``) are updated in place."""
        if training:
            self._check_trainable("a training forward")
        p = self.params
        t = {"training": bool(training)}
        h = self._conv_bn(t, "conv1", "bn1", x, 2, 3, "relu")
        t["maxpool"] = h
        h, t["maxpool.indices"] = fastops.max_pool2d(h, 3, 2, 1, return_indices=True)
        for name, _, _, stride, down in self.blocks:
            y = self._conv_bn(t, f"{name}.conv1", f"{name}.bn1", h, stride, 1, "relu")
            y = self._conv_bn(t, f"{name}.conv2", f"{name}.bn2", y, 1, 1, None)
            sc = self._conv_bn(t, f"{name}.downsample.0", f"{name}.downsample.1", h, stride, 0, None) if down else h
            t[f"{name}.add"] = (y, sc)
            # relu in place on add's fresh result: relu's gradient mask (input > 0) is also (output > 0),
            # so the backward passes the output as relu's input
            h = fastops.relu(fastops.add(y, sc), inplace=True)
            t[f"{name}.relu"] = h
        t["avgpool"] = h
        h = fastops.adaptive_avg_pool2d(h, 1)
        t["flatten"] = h
        h = fastops.flatten(h, 1)
        t["fc"] = h
        return fastops.linear(h, p["fc.weight"], p["fc.bias"]), t

    def backward(self, tape, grad_logits):
        self._check_trainable("the backward")
        p, t, g = self.params, tape, {}
        gh, g["fc.weight"], g["fc.bias"] = fastops.linear.backward(grad_logits, t["fc"], p["fc.weight"], p["fc.bias"])
        (gh,) = fastops.flatten.backward(gh, t["flatten"], 1)
        (gh,) = fastops.adaptive_avg_pool2d.backward(gh, t["avgpool"], 1)
        for name, _, _, stride, down in reversed(self.blocks):
            (gs,) = fastops.relu.backward(gh, t[f"{name}.relu"])
            gy, gsc = fastops.add.backward(gs, *t[f"{name}.add"])
            gy = self._conv_bn_backward(t, gy, g, f"{name}.conv2", f"{name}.bn2")
            gy = self._conv_bn_backward(t, gy, g, f"{name}.conv1", f"{name}.bn1")
            if down:
                gsc = self._conv_bn_backward(t, gsc, g, f"{name}.downsample.0", f"{name}.downsample.1")
            gh = fastops.add(gy, gsc)  # the block's input feeds both paths
        (gh,) = fastops.max_pool2d.backward(gh, t["maxpool"], 3, 2, 1, indices=t["maxpool.indices"])
        self._conv_bn_backward(t, gh, g, "conv1", "bn1", need_input=False)  # the image needs no gradient
        return {k: g[k] for k in p}

    def torch_module(self):
        return self.load_into_torch(_torch_resnet18(self))


def _torch_resnet18(net):
    """torchvision's resnet18 written with torch.nn (same module names), sized as ``net``."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride, down):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                               if down else None)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            w = net.width
            self.conv1 = nn.Conv2d(net.in_channels, w, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(w)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            for stage in ResNet18.STAGES:
                blocks = [BasicBlock(cin, cout, stride, down) for name, cin, cout, stride, down in net.blocks
                          if name.startswith(f"layer{stage}.")]
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(w * 8, net.num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet().to(torch.float64 if net.dtype == np.float64 else torch.float32)
