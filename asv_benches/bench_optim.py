"""Optimizer step over 10M float32 parameters (Adam), and its speed ratios vs torch and NumPy."""
import numpy as np

from ._common import pin_threads, selected


def _skip_unless_selected():
    if not selected("adam"):
        raise NotImplementedError("FASTOPS_BENCH_OPS does not select adam")


class AdamStep:
    timeout = 300

    def setup(self):
        from fastops import optim

        _skip_unless_selected()
        pin_threads()
        rng = np.random.default_rng(0)
        self.p = rng.standard_normal(10_000_000).astype(np.float32)
        self.g = rng.standard_normal(self.p.shape).astype(np.float32)
        self.opt = optim.Adam([self.p], lr=1e-3)
        self.opt.step([self.g])  # compile outside the timed body

    def time_adam_step_10M(self):
        self.opt.step([self.g])


class AdamRatios:
    timeout = 600
    unit = "ratio"

    def setup(self):
        from fastops.optim import bench

        _skip_unless_selected()
        pin_threads()
        self.r = bench.run(size=10_000_000, rounds=7)["ratios"]

    def track_vs_numpy(self):
        return self.r["numpy"]

    def track_vs_torch_foreach_false(self):
        if "torch" not in self.r:
            raise NotImplementedError("torch not installed")
        return self.r["torch"]

    def track_vs_torch_fused(self):
        if "torch_fused" not in self.r:
            raise NotImplementedError("torch not installed")
        return self.r["torch_fused"]

    track_vs_numpy.unit = track_vs_torch_foreach_false.unit = track_vs_torch_fused.unit = "ratio"
