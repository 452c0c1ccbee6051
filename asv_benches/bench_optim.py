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
    setup_cache_timeout = 900
    unit = "ratio"

    def setup_cache(self):
        """Measured once per asv run (shared by the three track_ methods)."""
        from fastops.optim import bench

        if not selected("adam"):
            return None
        pin_threads()
        return bench.run(size=10_000_000, rounds=7)["ratios"]

    def setup(self, r):
        _skip_unless_selected()
        self.r = r

    def track_vs_numpy(self, r):
        return self.r["numpy"]

    def track_vs_torch_foreach_false(self, r):
        if "torch" not in self.r:
            raise NotImplementedError("torch not installed")
        return self.r["torch"]

    def track_vs_torch_fused(self, r):
        if "torch_fused" not in self.r:
            raise NotImplementedError("torch not installed")
        return self.r["torch_fused"]

    track_vs_numpy.unit = track_vs_torch_foreach_false.unit = track_vs_torch_fused.unit = "ratio"
