"""The published asv dashboard renders benchmark graphs in headless Chromium (tools/check_dashboard.py),
and the check fails on a broken or empty one. Skipped without Chromium or without a published
dashboard (build one with ``tools/dashboard.sh``; .ci/run does, before the tests)."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTML = os.path.join(ROOT, ".asv", "html")
RESULTS = os.path.join(ROOT, ".asv", "results")

_spec = importlib.util.spec_from_file_location("check_dashboard", os.path.join(ROOT, "tools", "check_dashboard.py"))
check_dashboard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_dashboard)

pytestmark = pytest.mark.skipif(check_dashboard.find_chromium() is None,
                                reason="Chromium not installed (Debian: apt-get install -y chromium)")


@pytest.fixture
def published():
    if check_dashboard.first_benchmark(HTML) is None:
        pytest.skip("no published asv dashboard with results in .asv/html: run tools/dashboard.sh")
    return HTML


def test_published_dashboard_draws_graphs(published, tmp_path):
    shot = tmp_path / "dashboard.png"
    ok, msg = check_dashboard.check(published, screenshot=str(shot))
    assert ok, msg
    assert shot.stat().st_size > 10_000 and (tmp_path / "dashboard-benchmark.png").stat().st_size > 10_000


def test_check_fails_without_graph_data(published, tmp_path):
    broken = tmp_path / "html"
    shutil.copytree(published, broken)
    shutil.rmtree(broken / "graphs")
    ok, msg = check_dashboard.check(str(broken))
    assert ok is False and "0 of" in msg, msg
    assert check_dashboard.check(str(tmp_path / "missing"))[0] is False


def test_check_fails_on_empty_results(tmp_path):
    """asv publish over a results directory with the benchmark list but no result: pages without graphs."""
    if not os.path.isfile(os.path.join(RESULTS, "benchmarks.json")):
        pytest.skip("no .asv/results/benchmarks.json: run tools/dashboard.sh")
    pytest.importorskip("asv")
    with open(os.path.join(ROOT, "asv.conf.json")) as f:
        conf = json.load(f)
    conf.update(repo=ROOT, benchmark_dir=os.path.join(ROOT, "asv_benches"), results_dir=str(tmp_path / "results"),
                html_dir=str(tmp_path / "html"))
    (tmp_path / "results").mkdir()
    shutil.copy(os.path.join(RESULTS, "benchmarks.json"), tmp_path / "results")
    (tmp_path / "asv.conf.json").write_text(json.dumps(conf))
    r = subprocess.run([sys.executable, "-m", "asv", "--config", str(tmp_path / "asv.conf.json"), "publish"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    ok, msg = check_dashboard.check(str(tmp_path / "html"))
    assert ok is False, msg
