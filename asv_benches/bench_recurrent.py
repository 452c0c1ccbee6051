"""Recurrent ops (in the op table without a ``bench`` sample: their shapes are here): forward and
forward+backward of every recurrent op at the recurrent issue's shape (batch 32, input 256, hidden
512; sequences of 50 steps, one layer), float32, and the LSTM/GRU layers' ratios against torch
(``fastops.recurrent.bench``, interleaved; > 1 means fastops is faster)."""
import numpy as np

from fastops.testing import recurrent

from ._common import DTYPES, nonempty, pin_threads, selected, skip_placeholder, torch_or_none

OPS = [op for op in recurrent.OPS if selected(op)]


def _case(name, dtype):
    """(args, grad_output) of one recurrent op at the benchmark shape."""
    return recurrent.case(name, dtype, "bench")


class RecurrentForward:
    params = (nonempty(OPS), DTYPES)
    param_names = ["op", "dtype"]
    timeout = 300

    def setup(self, name, dtype):
        import fastops

        skip_placeholder(name)
        pin_threads()
        self.f = getattr(fastops, name)
        self.args, self.g = _case(name, np.dtype(dtype))
        self.f(*self.args)  # compile / load from the cache outside the timing

    def time_forward(self, name, dtype):
        self.f(*self.args)


class RecurrentForwardBackward:
    params = (nonempty(OPS), DTYPES)
    param_names = ["op", "dtype"]
    timeout = 300

    def setup(self, name, dtype):
        RecurrentForward.setup(self, name, dtype)
        self.f.backward(self.g, *self.args)

    def time_forward_backward(self, name, dtype):
        self.f(*self.args)
        self.f.backward(self.g, *self.args)


class RecurrentRatios:
    """``fastops.recurrent.bench.run``: the issue's LSTM/GRU case against torch.nn.LSTM/GRU."""

    params = (nonempty(k for k in ("lstm", "gru") if selected(k)),)
    param_names = ["kind"]
    timeout = 600
    setup_cache_timeout = 1800
    unit = "ratio"

    def setup_cache(self):
        """Both layers measured once per asv run (shared by the two track_ methods)."""
        if torch_or_none() is None:
            return None
        from fastops import get_num_threads
        from fastops.recurrent import bench

        pin_threads()
        return {k: bench.run(kind=k, rounds=5, threads=get_num_threads()) for k in self.params[0] if k in recurrent.GATES}

    def setup(self, rows, kind):
        skip_placeholder(kind)
        if rows is None:
            raise NotImplementedError("torch not installed")
        self.r = rows[kind]

    def track_fwd_vs_torch(self, rows, kind):
        return self.r["fwd_ratio"]

    def track_fwdbwd_vs_torch(self, rows, kind):
        return self.r["fwdbwd_ratio"]

    track_fwd_vs_torch.unit = track_fwdbwd_vs_torch.unit = "ratio"
