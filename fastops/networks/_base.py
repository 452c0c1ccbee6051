"""The base class of the reference networks (see ``fastops.networks``)."""
import copy

import numpy as np

import fastops


class Network:
    """Parameters, buffers, the loss and the training step; subclasses write ``__init__`` (filling
    ``params`` and ``buffers``), ``example_batch``, ``forward``, ``backward``, ``torch_module`` and
    ``torch_names``."""

    folded = False  # True on the inference copy fold_batch_norm() returns
    BN_EPS = 1e-5  # the batch norms' eps (nn.BatchNorm's default)

    def __init__(self, dtype=np.float32, seed=0):
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.params = {}
        self.buffers = {}

    # ---- initialisation helpers (PyTorch's defaults)

    def _uniform(self, bound, shape):
        return self.rng.uniform(-bound, bound, shape).astype(self.dtype)

    def add_conv(self, name, out_ch, in_ch_per_group, *kernel, bias=True):
        """``name.weight`` (and ``name.bias``) as ``nn.ConvNd`` initialises them: Kaiming-uniform with
        a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both."""
        fan_in = in_ch_per_group * int(np.prod(kernel))
        bound = 1 / np.sqrt(fan_in)
        self.params[f"{name}.weight"] = self._uniform(bound, (out_ch, in_ch_per_group) + tuple(kernel))
        if bias:
            self.params[f"{name}.bias"] = self._uniform(bound, (out_ch,))

    def add_linear(self, name, out_f, in_f, bias=True):
        """``name.weight`` (and ``name.bias``) as ``nn.Linear`` initialises them."""
        bound = 1 / np.sqrt(in_f)
        self.params[f"{name}.weight"] = self._uniform(bound, (out_f, in_f))
        if bias:
            self.params[f"{name}.bias"] = self._uniform(bound, (out_f,))

    def add_norm(self, name, channels, running=True):
        """``name.weight`` 1 and ``name.bias`` 0 (BatchNorm / LayerNorm), and for BatchNorm the running
        statistics ``name.running_mean`` 0 and ``name.running_var`` 1 in ``buffers``."""
        self.params[f"{name}.weight"] = np.ones(channels, self.dtype)
        self.params[f"{name}.bias"] = np.zeros(channels, self.dtype)
        if running:
            self.buffers[f"{name}.running_mean"] = np.zeros(channels, self.dtype)
            self.buffers[f"{name}.running_var"] = np.ones(channels, self.dtype)

    # ---- recording the forward

    @staticmethod
    def record(t, key, op, *args, **kwargs):
        """``op(*args, **kwargs)``, with its pullback kept in the tape ``t`` under ``key``
        (``t[key](grad_output, needs=None)`` returns ``op.backward``'s entries). A training forward
        (``t["training"]``) records through ``op.vjp``, so the backward reuses what the forward
        computed (the recurrent tapes, batch_norm's batch statistics, the output of a conv/linear
        with a fused relu or relu6) instead of running it again; otherwise the forward runs alone and
        the pullback is ``op.backward`` on the same arguments."""
        if t["training"]:
            out, t[key] = op.vjp(*args, **kwargs)
            return out

        def pullback(grad_output, needs=None):
            return op.backward(grad_output, *args, needs=needs, **kwargs)

        t[key] = pullback
        return op(*args, **kwargs)

    # ---- inference: batch norms folded into the convs before them

    def conv_bn_units(self):
        """``(conv, bn)`` name pairs of every conv followed by a batch norm (networks without batch
        norms: none)."""
        return []

    def fold_batch_norm(self):
        """An inference copy of the network with every eval-mode batch norm folded into the conv
        before it (``fastops.fold_batch_norm``): each conv + batch norm (+ activation) unit runs as
        one fused conv + bias (+ activation) kernel. The copy's ``params`` hold the folded conv
        weights and biases (no batch-norm parameters or running statistics); its ``forward`` runs
        in eval mode only (``training=True``, ``backward`` and ``train_step`` raise ValueError), and
        its logits equal the eval-mode logits of the original up to rounding. The original is
        unchanged; later changes to it do not reach the copy (fold again)."""
        if self.folded:
            raise ValueError(f"{type(self).__name__}: the network's batch norms are already folded")
        net = copy.copy(self)
        net.params, net.buffers, net.folded = dict(self.params), dict(self.buffers), True
        for conv, bn in self.conv_bn_units():
            w, b = fastops.fold_batch_norm(
                self.params[f"{conv}.weight"], self.params.get(f"{conv}.bias"),
                self.buffers[f"{bn}.running_mean"], self.buffers[f"{bn}.running_var"],
                self.params[f"{bn}.weight"], self.params[f"{bn}.bias"], eps=self.BN_EPS)
            net.params[f"{conv}.weight"], net.params[f"{conv}.bias"] = w, b
            for k in (f"{bn}.weight", f"{bn}.bias"):
                del net.params[k]
            for k in (f"{bn}.running_mean", f"{bn}.running_var"):
                del net.buffers[k]
        return net

    def _check_trainable(self, what):
        if self.folded:
            raise ValueError(f"{type(self).__name__}: {what} of a network with folded batch norms "
                             "(fold_batch_norm() returns an inference-only copy)")

    # ---- the loss and the step

    @staticmethod
    def loss(logits, target):
        """Mean cross-entropy over the rows of ``logits`` (N, classes) and its gradient."""
        loss = fastops.cross_entropy(logits, target)
        (g,) = fastops.cross_entropy.backward(np.ones((), logits.dtype), logits, target)[:1]
        return float(loss), g

    def train_step(self, x, target, optimizer):
        """One training step: forward (training), loss, backward, ``optimizer.step``. Returns the loss."""
        self._check_trainable("a training step")
        logits, tape = self.forward(x, training=True)
        loss, g = self.loss(logits, target)
        grads = self.backward(tape, g)
        optimizer.step([grads[k] for k in self.params])
        return loss

    def num_params(self):
        return sum(p.size for p in self.params.values())

    # ---- torch (tests and benchmarks only)

    def torch_names(self):
        """``{params name: torch parameter name}`` (identity unless a subclass says otherwise)."""
        return {k: k for k in self.params}

    def load_into_torch(self, module):
        """Copy ``params`` and ``buffers`` into the torch module (matching names) and return it."""
        import torch

        names = self.torch_names()
        state = {names[k]: torch.from_numpy(v.copy()) for k, v in self.params.items()}
        state.update({names.get(k, k): torch.from_numpy(v.copy()) for k, v in self.buffers.items()})
        missing, unexpected = module.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__}: torch module state differs: missing {missing}, "
                             f"unexpected {unexpected}")
        return module
