"""An LSTM language model (next-token prediction), written with fastops ops.

Model (tokens (B, T), batch first -> logits (B * T, vocab))::

    embedding(vocab -> embed)[tokens]                                   # (B, T, embed)
    lstm(embed -> hidden, num_layers, batch_first=True), zero initial state   # (B, T, hidden)
    linear(hidden -> vocab) on every step's output, rows in (b, t) order      # (B * T, vocab)
    cross-entropy over all B * T tokens, target = the next token

Default sizes (issue 21): vocab 1000, embedding 256, a 2-layer LSTM of 512 units, 32 sequences of
64 tokens. That is 4,447,208 parameters.

Parameters carry the state_dict names of :meth:`LSTMLanguageModel.torch_module`
(``embedding.weight``, ``lstm.weight_ih_l0``, ``lstm.weight_hh_l0``, ``lstm.bias_ih_l0``,
``lstm.bias_hh_l0``, ... ``decoder.weight``, ``decoder.bias``); the LSTM weights are handed to
``fastops.lstm`` as a list in ``nn.LSTM``'s ``_flat_weights`` order, which is that order.

fastops has no embedding op: the lookup is NumPy indexing (``weight[tokens]``) and its gradient
``np.add.at`` (a scatter-add over repeated tokens). The rest is fastops ops recorded with
``Network.record`` (a training forward keeps the LSTM's tape through ``lstm.vjp``: its backward
does not run the forward again), and the backward is their pullbacks in reverse order.
"""
import numpy as np

import fastops

from ._base import Network


class LSTMLanguageModel(Network):
    """Embedding, a multi-layer LSTM, a linear decoder on every step; next-token cross-entropy."""

    def __init__(self, dtype=np.float32, seed=0, vocab=1000, embed=256, hidden=512, num_layers=2, seq_len=64):
        super().__init__(dtype, seed)
        self.vocab, self.embed, self.hidden, self.num_layers, self.seq_len = vocab, embed, hidden, num_layers, seq_len
        # nn.Embedding: N(0, 1); nn.LSTM: every weight and bias U(-1/sqrt(hidden), 1/sqrt(hidden))
        self.params["embedding.weight"] = self.rng.standard_normal((vocab, embed)).astype(self.dtype)
        bound = 1 / np.sqrt(hidden)
        for layer in range(num_layers):
            n_in = embed if layer == 0 else hidden
            self.params[f"lstm.weight_ih_l{layer}"] = self._uniform(bound, (4 * hidden, n_in))
            self.params[f"lstm.weight_hh_l{layer}"] = self._uniform(bound, (4 * hidden, hidden))
            self.params[f"lstm.bias_ih_l{layer}"] = self._uniform(bound, (4 * hidden,))
            self.params[f"lstm.bias_hh_l{layer}"] = self._uniform(bound, (4 * hidden,))
        self.add_linear("decoder", vocab, hidden)
        self._lstm_names = [k for k in self.params if k.startswith("lstm.")]  # the _flat_weights order

    def example_batch(self, batch=32, rng=None):
        """``(tokens (batch, seq_len), targets (batch, seq_len))``, int64: a random sequence of
        seq_len + 1 tokens, the targets being the inputs shifted by one (the next token)."""
        rng = np.random.default_rng(0) if rng is None else rng
        seq = rng.integers(0, self.vocab, (batch, self.seq_len + 1), dtype=np.int64)
        return np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])

    def loss(self, logits, target):
        """Mean cross-entropy over the B * T rows of ``logits``; ``target`` (B, T) or flat (B * T,)."""
        return Network.loss(logits, np.asarray(target).reshape(-1))

    def _check_tokens(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.dtype.kind not in "iu":
            raise ValueError(f"LSTMLanguageModel: tokens must be an integer array (B, T), got {x.dtype} {x.shape}")
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            raise ValueError(f"LSTMLanguageModel: token ids outside [0, {self.vocab})")
        return x

    def forward(self, x, training=False):
        """Logits (B * T, vocab) of tokens x (B, T), and the tape. ``training`` does not change the
        result (no dropout between the LSTM layers): it records the LSTM's tape for the backward
        (``Network.record``)."""
        x = self._check_tokens(x)
        P = self.params
        B, T = x.shape
        e = P["embedding.weight"][x]  # (B, T, embed): the lookup, NumPy indexing (no fastops embedding op)
        lstm_params = [P[k] for k in self._lstm_names]
        t = {"training": bool(training), "x": x}
        out, _ = self.record(t, "lstm", fastops.lstm, e, None, lstm_params, num_layers=self.num_layers,
                             batch_first=True)
        h = out.reshape(B * T, self.hidden)  # rows in (b, t) order, as target.reshape(-1)
        logits = self.record(t, "decoder", fastops.linear, h, P["decoder.weight"], P["decoder.bias"])
        return logits, t

    def backward(self, tape, grad_logits):
        """Gradients of every parameter (dict, ``params`` order) from the gradient of the logits."""
        P = self.params
        grads = {}
        x = tape["x"]
        gh, grads["decoder.weight"], grads["decoder.bias"] = tape["decoder"](grad_logits)
        # h_n and c_n do not feed the loss: None for their gradients, and hx None (zeros, no gradient)
        ge, _, glstm = tape["lstm"]((gh.reshape(x.shape + (self.hidden,)), (None, None)))
        grads.update(zip(self._lstm_names, glstm))
        # the embedding lookup's gradient: scatter-add of the rows (np.add.at sums repeated tokens)
        gemb = np.zeros_like(P["embedding.weight"])
        np.add.at(gemb, x, ge)
        grads["embedding.weight"] = gemb
        return {k: grads[k] for k in P}

    def torch_module(self):
        """The equivalent ``nn.Module`` (``nn.Embedding``, ``nn.LSTM(batch_first=True)``,
        ``nn.Linear``) returning (B * T, vocab) logits, this network's weights copied in, in this
        network's dtype."""
        import torch
        from torch import nn

        class _TorchLSTMLM(nn.Module):
            def __init__(self, net):
                super().__init__()
                self.embedding = nn.Embedding(net.vocab, net.embed)
                self.lstm = nn.LSTM(net.embed, net.hidden, num_layers=net.num_layers, batch_first=True)
                self.decoder = nn.Linear(net.hidden, net.vocab)

            def forward(self, tokens):
                out, _ = self.lstm(self.embedding(tokens))
                return self.decoder(out.reshape(-1, out.shape[-1]))

        module = _TorchLSTMLM(self).to(getattr(torch, self.dtype.name))
        return self.load_into_torch(module)
