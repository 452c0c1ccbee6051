"""``python -m fastops bench --networks`` and ``fastops.networks.bench`` (figures themselves are
benchmarks, not tests: here only that the commands run and report what they say)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastops.networks import NETWORKS, bench

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_registry_names_every_network_module():
    assert NETWORKS.names() == ["lenet5", "resnet18", "mobilenet_v2", "transformer", "lstm_lm"]
    with pytest.raises(KeyError, match="unknown network"):
        NETWORKS["alexnet"]
    assert set(bench.BATCH) == set(NETWORKS.names())


def test_profile_times_each_op_of_the_step():
    """The profile of LeNet-5's training step (its issue size is small): every op that the step
    calls appears, forward and backward, and the op times add up to at most the step's time."""
    rows, step = bench.profile("lenet5", rounds=1, threads=1)
    ops = {(o, k) for o, k, _ in rows}
    assert {("conv2d", "forward"), ("conv2d", "backward"), ("linear", "forward"), ("cross_entropy", "forward")} <= ops
    assert all(s >= 0 for _, _, s in rows) and sum(s for _, _, s in rows) <= step * 1.05
    # the timing wrappers are gone afterwards
    from fastops._op import Op

    assert Op.__call__.__qualname__ == "Op.__call__" and Op.backward.__qualname__ == "Op.backward"


def test_cli_one_process_figures():
    pytest.importorskip("torch")
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "fastops", "bench", "--networks", "lenet5", "--processes", "0",
                        "--rounds", "1", "--threads", "1", "--json"], capture_output=True, text=True, env=e, timeout=900)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["solo"] is None
    times = res["interleaved"]["lenet5"]
    for lib in ("fastops", "torch"):  # inference, train step; LeNet-5 has no batch norm to fold
        assert len(times[lib]) == len(bench.MODES) and times[lib][2] is None
        assert all(np.isfinite(v) and v > 0 for v in times[lib][:2])


def test_interleaved_leaves_torch_thread_count_as_it_was():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    res = bench.interleaved(["lenet5"], rounds=1, threads=1)
    assert torch.get_num_threads() == before
    assert all(v > 0 for lib in ("fastops", "torch") for v in res["lenet5"][lib][:2])


def test_folded_inference_mode_runs_in_both_libraries():
    """The "folded inf" callables: fastops' fold_batch_norm() copy and torch's fx-fused module
    (small ResNet); the network itself keeps its batch norms; none for LeNet-5."""
    pytest.importorskip("torch")
    sizes = dict(width=8, num_classes=10, image_size=32)
    for lib in ("fastops", "torch"):
        fns = bench.callables("resnet18", lib, 1, sizes=sizes, batch=2)
        assert len(fns) == len(bench.MODES) and all(callable(f) for f in fns)
        fns[2]()
        fns[0]()
        assert bench.callables("lenet5", lib, 1, batch=2)[2] is None
    table = bench.format_table(None, {"resnet18": {"fastops": [1.0, 2.0, 0.5], "torch": [1.0, 1.0, 1.0]},
                                      "lenet5": {"fastops": [1.0, 2.0, None], "torch": [1.0, 1.0, None]}})
    assert "folded inf" in table and table.count("folded inf") == 1 and "2.00x" in table
