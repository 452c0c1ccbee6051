"""fastops._dispatch: the one serial/parallel rule, the named paths of the plans and ``force``."""
import json
import threading

import numpy as np
import pytest

import fastops
from fastops import _dispatch
from fastops._dispatch import AttentionPath, ConvPath, Direction, force, parallel_backend

F32 = np.float32


@pytest.mark.parametrize("cost", sorted(_dispatch.PARALLEL_MIN_WORK))
def test_one_rule_for_every_cost_class(cost):
    n = _dispatch.PARALLEL_MIN_WORK[cost]
    assert parallel_backend(F32, n - 1, 2, cost) == "serial"
    assert parallel_backend(F32, n, 2, cost) == "parallel"
    assert parallel_backend(F32, n, 1, cost) == "serial"  # one thread: always serial
    assert parallel_backend(F32, n, 2, cost, units=1) == "serial"  # one work unit: nothing to split
    assert parallel_backend(F32, 10 * n, 16, cost, units=2) == "parallel"


def test_unknown_cost_class():
    with pytest.raises(KeyError):
        parallel_backend(F32, 10, 2, "expensive")


def test_named_paths_are_their_strings():
    assert ConvPath.DIRECT == "direct" and str(ConvPath.DIRECT) == "direct" and f"{ConvPath.DIRECT}" == "direct"
    assert json.dumps({"path": AttentionPath.TILED}) == '{"path": "tiled"}'
    assert Direction("backward_weight") is Direction.BACKWARD_WEIGHT


def test_attention_plan_and_force():
    args = (8, 1024, 1024, 64, 64, 2)
    assert _dispatch.attention_plan(F32, *args) == (AttentionPath.TILED, "parallel")
    assert _dispatch.attention_plan(np.float64, *args)[0] is AttentionPath.ROWS
    assert _dispatch.attention_plan(F32, 1, 8, 4, 4, 4, 2) == (AttentionPath.BLOCKED, "serial")
    with force(attention_path="blocked"):
        assert _dispatch.attention_plan(F32, *args) == (AttentionPath.BLOCKED, "parallel")
    with force(attention_path="rows"):
        assert _dispatch.attention_plan(F32, *args) == (AttentionPath.ROWS, "parallel")
    with force(attention_path="tiled"), pytest.raises(ValueError, match="float32"):
        _dispatch.attention_plan(np.float64, *args)
    # the block size: forced, and never more rows than the problem has
    assert _dispatch.attention_block_rows(1024, 1024, 4) == 256  # 1 MiB of float32 scores
    with force(attention_block_rows=16):
        assert _dispatch.attention_block_rows(1024, 1024, 4) == 16
        assert _dispatch.attention_block_rows(5, 1024, 4) == 5
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="attention_block_rows"), force(attention_block_rows=bad):
            pass


def test_explain_reports_the_forced_path():
    f = fastops.scaled_dot_product_attention
    shape = (1, 8, 1024, 64)
    assert f.explain(shape, "float32")["path"] == "tiled"
    with force(attention_path="blocked"):
        d = f.explain(shape, "float32")
        assert d["path"] == "blocked" and d["kernel"].startswith("sdpa_fwd_f32")
    with force(conv_path="im2col_gemm"):
        assert fastops.conv2d.explain((8, 64, 56, 56), "float32", weight_shape=(64, 64, 3, 3), padding=1)["path"] == "im2col_gemm"


def test_force_is_per_thread():
    """A forced choice holds in the thread that set it only (a context variable): another thread
    running ops meanwhile sees the default plan."""
    args = (8, 64, 64, 1, (1, 3, 3), (1, 1, 1), True, (1, 56, 56), 2)
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait()
        seen["other"] = _dispatch.conv_plan(F32, *args)[0]
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with force(conv_path="direct"):
        inside.set()
        done.wait()
        seen["self"] = _dispatch.conv_plan(F32, *args)[0]
    t.join()
    assert seen == {"self": ConvPath.DIRECT, "other": ConvPath.DIRECT_BLOCKED}
    assert _dispatch.forced("conv_path") is None


def test_force_ends_on_error():
    with pytest.raises(RuntimeError):
        with force(conv_path="direct"):
            raise RuntimeError
    assert _dispatch.forced("conv_path") is None
