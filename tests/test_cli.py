"""The command line as the README shows it: warmup progress, bench table and JSON, explain, errors.
(info, explain --json and bench --json of two ops: tests/test_infra.py.)"""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=600):
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "fastops", *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_warmup_shows_progress_and_covers_recurrent_ops():
    r = _cli("warmup", "--ops", "relu", "rnn_cell")
    assert r.returncode == 0, r.stderr
    assert "2 ops" in r.stdout
    # the kernel sets' registry: relu's forward and backward, both dtypes, and the recurrent kernels
    m = re.search(r"(\d+) kernels of (\d+) kernel sets are ready", r.stdout)
    assert m and int(m.group(1)) >= 4 and int(m.group(2)) >= 2, r.stdout
    try:
        import tqdm  # noqa: F401

        assert "warmup" in r.stderr and "2/2" in r.stderr  # the tqdm bar
    except ImportError:
        assert "[2/2]" in r.stdout


def _cached_files(d):
    return sorted(f for _, _, fs in os.walk(d) for f in fs if f.endswith((".nbi", ".nbc")))


def test_parallel_warmup_fills_the_cache_like_a_serial_one(tmp_path, monkeypatch):
    """``warmup --jobs 2`` compiles in worker processes into the shared cache: afterwards the cache
    holds the same kernel files as after a one-process warmup, and the first line says where."""
    ops = ("relu", "add", "rnn_cell")
    got = {}
    for jobs in (2, 1):
        d = tmp_path / f"jobs{jobs}"
        monkeypatch.setenv("FASTOPS_CACHE_DIR", str(d))
        r = _cli("warmup", "--jobs", str(jobs), "--ops", *ops)
        assert r.returncode == 0, r.stderr
        first = r.stdout.splitlines()[0]
        assert f"{len(ops)} ops" in first and f"in {jobs} process" in first and str(d) in first and "empty" in first
        got[jobs] = _cached_files(d)
    assert got[2] and got[2] == got[1]


def test_bench_table():
    r = _cli("bench", "--quick", "--size", "small", "--ops", "relu", "--no-backward", "--threads", "1")
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]  # what a cold first run spends its time on, and where the cache is
    assert first.startswith("bench: 1 ops") and "compile" in first and "cache" in first
    lines = r.stdout.splitlines()
    assert "vs numpy" in lines[0] and "vs torch" in lines[0]
    assert any(line.startswith("relu [") for line in lines)


def test_bench_solo_processes_headline():
    """``--processes N``: fastops and torch each timed alone in fresh processes (the headline),
    next to the one-process figures; without torch only fastops' solo time."""
    r = _cli("bench", "--quick", "--size", "small", "--ops", "relu", "--threads", "1", "--processes", "1", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["solo_fastops_s"] > 0 and row["solo_fwdbwd_fastops_s"] > 0
    if row["torch_s"] is not None:  # torch installed
        assert row["solo_torch_s"] > 0 and row["solo_torch_ratio"] == row["solo_torch_s"] / row["solo_fastops_s"]
    assert "solo: fastops process 1/1" in r.stderr


def test_bench_worker_never_runs_the_other_library():
    """A solo worker process loads only its own library's compute (the torch worker never calls a
    fastops kernel: nothing of Numba's thread pool starts in it)."""
    import subprocess
    import sys

    code = ("import json, fastops.bench as b, fastops._threads as t; "
            "r = b._worker('torch', ['relu'], 'small', 1, 1, True); "
            "print(json.dumps([r, t._parallel_used]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    res, used = json.loads(out.strip().splitlines()[-1])
    assert used is False
    try:
        import torch  # noqa: F401
    except ImportError:
        assert res == {}
    else:
        assert res["relu"][0] > 0 and res["relu"][1] > 0


@pytest.mark.parametrize("cmd", ["bench", "warmup"])
def test_unknown_op_is_an_error(cmd):
    r = _cli(cmd, "--ops", "relu", "nosuchop")
    assert r.returncode == 2 and "unknown op(s) nosuchop" in r.stderr


def test_explain_text_and_multi_shape():
    r = _cli("explain", "relu", "--shape", "4194304", "--threads", "2")
    assert r.returncode == 0, r.stderr
    assert "kernel" in r.stdout and "relu_fwd_f32" in r.stdout
    r = _cli("explain", "add", "--shape", "64x64", "64", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)
