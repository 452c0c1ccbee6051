"""Forward and forward+backward time of every op in the table (the grid follows the table; sizes,
dtypes and op selection: see ``_common``)."""
import numpy as np

from ._common import DTYPES, SIZES, as_list, nonempty, pin_threads, sample, skip_placeholder, table_ops


class Forward:
    params = (nonempty(table_ops()), SIZES, DTYPES)
    param_names = ["op", "size", "dtype"]
    timeout = 300

    def setup(self, name, size, dtype):
        skip_placeholder(name)
        pin_threads()
        self.info, self.s = sample(name, size, dtype)
        self.info.op(*self.s.args, **self.s.kwargs)  # compile / load from cache outside the timing

    def time_forward(self, name, size, dtype):
        self.info.op(*self.s.args, **self.s.kwargs)


class ForwardBackward:
    params = (nonempty(table_ops()), SIZES, DTYPES)
    param_names = ["op", "size", "dtype"]
    timeout = 300

    def setup(self, name, size, dtype):
        skip_placeholder(name)
        pin_threads()
        self.info, self.s = sample(name, size, dtype)
        if not self.info.grad_args:
            raise NotImplementedError("no differentiable argument")
        out = as_list(self.info.op(*self.s.args, **self.s.kwargs))
        g = [np.ones_like(o) for o in out]
        self.g = g if len(g) > 1 else g[0]
        self.time_forward_backward(name, size, dtype)

    def time_forward_backward(self, name, size, dtype):
        self.info.op(*self.s.args, **self.s.kwargs)
        self.info.op.backward(self.g, *self.s.args, **self.s.kwargs)
