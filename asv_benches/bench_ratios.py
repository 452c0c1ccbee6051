"""Speed ratios measured in one process, interleaved (robust to machine noise): > 1 means fastops
is faster. ``track_vs_torch`` needs torch installed (else the benchmark is skipped)."""
from fastops import bench

from ._common import nonempty, pin_threads, skip_placeholder, table_ops

FLAGSHIP_ALL = ("relu", "sigmoid", "tanh", "gelu", "add", "softmax", "cross_entropy", "roi_align", "interpolate", "grid_sample", "deform_conv2d", "correlation", "linear", "conv2d", "dropout", "batch_norm", "layer_norm", "group_norm", "max_pool2d", "avg_pool2d", "scaled_dot_product_attention")
FLAGSHIP = [op for op in FLAGSHIP_ALL if op in table_ops()]


class Ratios:
    params = (nonempty(FLAGSHIP),)
    param_names = ["op"]
    timeout = 600
    setup_cache_timeout = 3600
    unit = "ratio"

    def setup_cache(self):
        """Every flagship op measured once per asv run (shared by the three track_ methods)."""
        pin_threads()
        return {r["op"]: r for r in bench.run(ops=FLAGSHIP, size="large", rounds=7, progress=False)}

    def setup(self, rows, name):
        skip_placeholder(name)
        self.row = rows[name]

    def track_vs_numpy(self, rows, name):
        return self.row["numpy_ratio"]

    def track_vs_torch(self, rows, name):
        if self.row["torch_ratio"] is None:
            raise NotImplementedError("torch not installed")
        return self.row["torch_ratio"]

    def track_fwdbwd_vs_torch(self, rows, name):
        if self.row.get("fwdbwd_torch_ratio") is None:
            raise NotImplementedError("torch not installed")
        return self.row["fwdbwd_torch_ratio"]

    track_vs_numpy.unit = track_vs_torch.unit = track_fwdbwd_vs_torch.unit = "ratio"
