"""A Transformer encoder classifier over token sequences, written with fastops ops.

Model (tokens (N, T) -> logits (N, classes))::

    embedding(vocab -> d)[tokens] + pos_embedding(seq_len -> d)[:T]           # (N, T, d)
    num_layers x the post-norm layer of torch.nn.TransformerEncoderLayer(
        d, nhead, dim_feedforward, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=False):
        qkv = linear(h, in_proj_weight (3d, d), in_proj_bias)                 # one GEMM for q, k, v
        a   = scaled_dot_product_attention(q, k, v)                           # nhead heads of d / nhead
        h   = layer_norm(h + linear(a, out_proj))                             # norm1
        h   = layer_norm(h + linear(linear(h, linear1, activation="gelu"), linear2))   # norm2
    mean over the T tokens -> linear(d -> classes)

Default sizes (issue 21): 2 layers, d 512, 8 heads, feed-forward 2048, 8 x 256 tokens; the issue
names no vocabulary or class count, so both are 1000 here. That is 7,460,840 parameters.

Parameters carry torch's ``state_dict`` names (``layers.0.self_attn.in_proj_weight``,
``layers.0.linear1.weight``, ``layers.0.norm1.weight``, ``embedding.weight``,
``classifier.weight``, ...): :meth:`TransformerEncoder.torch_module` is a subclass of
``nn.TransformerEncoder`` holding the embeddings and the classifier, and loads them directly.

fastops has no embedding op: the lookup is NumPy indexing (``weight[tokens]``) and its gradient
``np.add.at`` (a scatter-add over repeated tokens). The head split/merge of the attention are
NumPy reshapes and transposes; everything else is a fastops op (the mean over tokens too), and
the backward is the chain of those ops' ``.backward`` calls, in reverse order (``linear1``, whose
GELU needs its pre-activation, through the pullback of ``Network.record``: a training forward
keeps it, so the backward does not run that GEMM again).
"""
import numpy as np

import fastops

from ._base import Network


class TransformerEncoder(Network):
    """Token classifier: embeddings, ``num_layers`` post-norm encoder layers (GELU), mean, linear."""

    def __init__(self, dtype=np.float32, seed=0, vocab=1000, classes=1000, d_model=512, nhead=8,
                 dim_feedforward=2048, num_layers=2, seq_len=256, eps=1e-5):
        super().__init__(dtype, seed)
        if d_model % nhead:
            raise ValueError(f"TransformerEncoder: d_model {d_model} is not a multiple of nhead {nhead}")
        self.vocab, self.classes, self.d_model, self.nhead = vocab, classes, d_model, nhead
        self.dim_feedforward, self.num_layers, self.seq_len, self.eps = dim_feedforward, num_layers, seq_len, eps
        d = d_model
        # nn.Embedding initialises N(0, 1)
        self.params["embedding.weight"] = self.rng.standard_normal((vocab, d)).astype(self.dtype)
        self.params["pos_embedding.weight"] = self.rng.standard_normal((seq_len, d)).astype(self.dtype)
        for i in range(num_layers):
            p = f"layers.{i}."
            # nn.MultiheadAttention: xavier-uniform in_proj_weight, zero in_proj_bias and out_proj.bias
            bound = np.sqrt(6.0 / (d + 3 * d))
            self.params[p + "self_attn.in_proj_weight"] = self._uniform(bound, (3 * d, d))
            self.params[p + "self_attn.in_proj_bias"] = np.zeros(3 * d, self.dtype)
            self.add_linear(p + "self_attn.out_proj", d, d)
            self.params[p + "self_attn.out_proj.bias"][:] = 0
            self.add_linear(p + "linear1", dim_feedforward, d)
            self.add_linear(p + "linear2", d, dim_feedforward)
            self.add_norm(p + "norm1", d, running=False)
            self.add_norm(p + "norm2", d, running=False)
        self.add_linear("classifier", classes, d)

    def example_batch(self, batch=8, rng=None):
        """``(tokens (batch, seq_len) int64, targets (batch,) int64)``, uniformly random."""
        rng = np.random.default_rng(0) if rng is None else rng
        tokens = rng.integers(0, self.vocab, (batch, self.seq_len), dtype=np.int64)
        return tokens, rng.integers(0, self.classes, batch, dtype=np.int64)

    # ---- forward

    def _check_tokens(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.dtype.kind not in "iu":
            raise ValueError(f"TransformerEncoder: tokens must be an integer array (N, T), got {x.dtype} {x.shape}")
        if x.shape[1] > self.seq_len:
            raise ValueError(f"TransformerEncoder: {x.shape[1]} tokens, more than seq_len {self.seq_len}")
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            raise ValueError(f"TransformerEncoder: token ids outside [0, {self.vocab})")
        return x

    def _layer(self, h, i, training=False):
        """One encoder layer on h (N, T, d); returns its output and the layer's tape."""
        P, p = self.params, f"layers.{i}."
        N, T, d = h.shape
        H = self.nhead
        t = {"h": h, "training": training}
        qkv = fastops.linear(h, P[p + "self_attn.in_proj_weight"], P[p + "self_attn.in_proj_bias"])
        # (N, T, 3, H, dh) -> q, k, v each (N, H, T, dh), as nn.MultiheadAttention splits the heads
        qkv = qkv.reshape(N, T, 3, H, d // H).transpose(2, 0, 3, 1, 4)
        t["q"], t["k"], t["v"] = (np.ascontiguousarray(qkv[j]) for j in range(3))
        a = fastops.scaled_dot_product_attention(t["q"], t["k"], t["v"])
        t["a"] = np.ascontiguousarray(a.transpose(0, 2, 1, 3)).reshape(N, T, d)  # merge the heads
        t["o"] = fastops.linear(t["a"], P[p + "self_attn.out_proj.weight"], P[p + "self_attn.out_proj.bias"])
        t["r1"] = fastops.add(h, t["o"])
        t["n1"] = fastops.layer_norm(t["r1"], (d,), P[p + "norm1.weight"], P[p + "norm1.bias"], eps=self.eps)
        # recorded (Network.record): a training forward keeps the GELU's pre-activation for the backward
        t["f1"] = self.record(t, "linear1", fastops.linear, t["n1"], P[p + "linear1.weight"], P[p + "linear1.bias"],
                              activation="gelu")
        t["f2"] = fastops.linear(t["f1"], P[p + "linear2.weight"], P[p + "linear2.bias"])
        t["r2"] = fastops.add(t["n1"], t["f2"])
        out = fastops.layer_norm(t["r2"], (d,), P[p + "norm2.weight"], P[p + "norm2.bias"], eps=self.eps)
        return out, t

    def forward(self, x, training=False):
        """Logits (N, classes) of tokens x (N, T), and the tape. ``training`` does not change the
        result (the network has no dropout and no batch statistics): it records what the backward
        reuses (``Network.record``)."""
        x = self._check_tokens(x)
        P = self.params
        T = x.shape[1]
        tape = {"x": x, "layers": []}
        e = P["embedding.weight"][x]  # (N, T, d): the lookup, NumPy indexing (no fastops embedding op)
        tape["pos"] = P["pos_embedding.weight"][:T]
        h = fastops.add(e, tape["pos"])
        tape["e"] = e
        for i in range(self.num_layers):
            h, t = self._layer(h, i, bool(training))
            tape["layers"].append(t)
        tape["out"] = h
        tape["pooled"] = fastops.mean(h, dim=1)  # (N, d), the mean over the tokens
        return fastops.linear(tape["pooled"], P["classifier.weight"], P["classifier.bias"]), tape

    # ---- backward

    def _layer_backward(self, g, t, i, grads):
        """Gradient of the layer's input from the gradient g of its output; fills ``grads``."""
        P, p = self.params, f"layers.{i}."
        N, T, d = g.shape
        H = self.nhead
        eps = self.eps
        gr2, grads[p + "norm2.weight"], grads[p + "norm2.bias"] = fastops.layer_norm.backward(
            g, t["r2"], (d,), P[p + "norm2.weight"], P[p + "norm2.bias"], eps=eps)
        gn1_skip, gf2 = fastops.add.backward(gr2, t["n1"], t["f2"])
        gf1, grads[p + "linear2.weight"], grads[p + "linear2.bias"] = fastops.linear.backward(
            gf2, t["f1"], P[p + "linear2.weight"], P[p + "linear2.bias"])
        gn1_ffn, grads[p + "linear1.weight"], grads[p + "linear1.bias"] = t["linear1"](gf1)
        gn1 = fastops.add(gn1_skip, gn1_ffn)
        gr1, grads[p + "norm1.weight"], grads[p + "norm1.bias"] = fastops.layer_norm.backward(
            gn1, t["r1"], (d,), P[p + "norm1.weight"], P[p + "norm1.bias"], eps=eps)
        gh_skip, go = fastops.add.backward(gr1, t["h"], t["o"])
        ga, grads[p + "self_attn.out_proj.weight"], grads[p + "self_attn.out_proj.bias"] = fastops.linear.backward(
            go, t["a"], P[p + "self_attn.out_proj.weight"], P[p + "self_attn.out_proj.bias"])
        ga = ga.reshape(N, T, H, d // H).transpose(0, 2, 1, 3)  # split the heads again: (N, H, T, dh)
        gq, gk, gv, _ = fastops.scaled_dot_product_attention.backward(ga, t["q"], t["k"], t["v"])
        # (3, N, H, T, dh) -> (N, T, 3, H, dh) -> (N, T, 3d): the gradient of the one qkv projection
        gqkv = np.stack([gq, gk, gv]).transpose(1, 3, 0, 2, 4).reshape(N, T, 3 * d)
        gh_attn, grads[p + "self_attn.in_proj_weight"], grads[p + "self_attn.in_proj_bias"] = fastops.linear.backward(
            gqkv, t["h"], P[p + "self_attn.in_proj_weight"], P[p + "self_attn.in_proj_bias"])
        return fastops.add(gh_skip, gh_attn)

    def backward(self, tape, grad_logits):
        """Gradients of every parameter (dict, ``params`` order) from the gradient of the logits."""
        P = self.params
        grads = {}
        gp, grads["classifier.weight"], grads["classifier.bias"] = fastops.linear.backward(
            grad_logits, tape["pooled"], P["classifier.weight"], P["classifier.bias"])
        out = tape["out"]
        T = out.shape[1]
        (g,) = fastops.mean.backward(gp, out, dim=1)
        for i in reversed(range(self.num_layers)):
            g = self._layer_backward(g, tape["layers"][i], i, grads)
        ge, gpos = fastops.add.backward(g, tape["e"], tape["pos"])
        # the embedding lookups' gradients: scatter-add of the rows (np.add.at sums repeated tokens)
        gemb = np.zeros_like(P["embedding.weight"])
        np.add.at(gemb, tape["x"], ge)
        grads["embedding.weight"] = gemb
        gposw = np.zeros_like(P["pos_embedding.weight"])
        gposw[:T] = gpos
        grads["pos_embedding.weight"] = gposw
        return {k: grads[k] for k in P}

    # ---- torch

    def torch_module(self):
        """The equivalent ``nn.Module`` (a subclass of ``nn.TransformerEncoder``), this network's
        weights copied in, in this network's dtype."""
        import torch
        from torch import nn

        class _TorchTransformer(nn.TransformerEncoder):
            def __init__(self, net):
                layer = nn.TransformerEncoderLayer(net.d_model, net.nhead, net.dim_feedforward, dropout=0.0,
                                                   activation="gelu", layer_norm_eps=net.eps, batch_first=True,
                                                   norm_first=False)
                super().__init__(layer, net.num_layers, enable_nested_tensor=False)
                self.embedding = nn.Embedding(net.vocab, net.d_model)
                self.pos_embedding = nn.Embedding(net.seq_len, net.d_model)
                self.classifier = nn.Linear(net.d_model, net.classes)

            def forward(self, tokens):
                pos = torch.arange(tokens.shape[1], device=tokens.device)
                h = super().forward(self.embedding(tokens) + self.pos_embedding(pos))
                return self.classifier(h.mean(dim=1))

        module = _TorchTransformer(self).to(getattr(torch, self.dtype.name))
        return self.load_into_torch(module)
