"""Whole networks (``fastops.networks``): inference and one training step (forward, cross-entropy,
backward, SGD momentum) per network at the issue's input sizes, float32, and their ratios against
torch, each library alone in its own fresh process (``fastops.networks.bench.solo``; > 1 means
fastops is faster). ``python -m fastops bench --networks`` prints the same with the one-process
figure beside it."""
from fastops import get_num_threads
from fastops.networks import NETWORKS
from fastops.networks import bench

from ._common import nonempty, pin_threads, selected, skip_placeholder, torch_or_none

NAMES = [n for n in NETWORKS.names() if selected(n)]


MODES = {"inference": 0, "train_step": 1, "folded_inference": 2}  # folded: batch norms folded into the convs


class Networks:
    params = (nonempty(NAMES), list(MODES))
    param_names = ["network", "mode"]
    timeout = 1200

    def setup(self, name, mode):
        skip_placeholder(name)
        pin_threads()
        self.fn = bench.callables(name, "fastops", get_num_threads())[MODES[mode]]
        if self.fn is None:
            raise NotImplementedError(f"{name} has no batch norm to fold")
        self.fn()

    def time_fastops(self, name, mode):
        self.fn()


class NetworkRatios:
    params = (nonempty(NAMES),)
    param_names = ["network"]
    timeout = 3600
    setup_cache_timeout = 7200
    unit = "ratio"

    def setup_cache(self):
        if torch_or_none() is None:
            return {}
        pin_threads()
        return bench.solo(NAMES, rounds=3, threads=get_num_threads(), processes=3, progress=False)

    def setup(self, res, name):
        skip_placeholder(name)
        if name not in res or "torch" not in res[name]:
            raise NotImplementedError("torch not installed")
        self.r = res[name]

    def track_inference_vs_torch(self, res, name):
        return self.r["torch"][0] / self.r["fastops"][0]

    def track_train_step_vs_torch(self, res, name):
        return self.r["torch"][1] / self.r["fastops"][1]

    def track_folded_inference_vs_torch(self, res, name):
        if self.r["fastops"][2] is None:
            raise NotImplementedError(f"{name} has no batch norm to fold")
        return self.r["torch"][2] / self.r["fastops"][2]

    track_inference_vs_torch.unit = track_train_step_vs_torch.unit = "ratio"
    track_folded_inference_vs_torch.unit = "ratio"
