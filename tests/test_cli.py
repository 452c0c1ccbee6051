"""The command line as the README shows it: warmup progress, bench table and JSON, explain, errors.
(info, explain --json and bench --json of two ops: tests/test_infra.py.)"""
import json
import os
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
    try:
        import tqdm  # noqa: F401

        assert "warmup" in r.stderr and "2/2" in r.stderr  # the tqdm bar
    except ImportError:
        assert "[2/2]" in r.stdout


def test_bench_table():
    r = _cli("bench", "--quick", "--size", "small", "--ops", "relu", "--no-backward", "--threads", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "vs numpy" in lines[0] and "vs torch" in lines[0]
    assert any(line.startswith("relu [") for line in lines)


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
