"""The README's commands are what CI runs, and its op table lists exactly the registered ops."""
import os
import re

import fastops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def test_ci_runs_the_readme_commands():
    readme, ci = _read("README.md"), _read(".ci", "run")
    block = re.search(r"## Set up and test\s+```bash\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    install, test = block
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert install in ci_lines, f"README install command {install!r} not in .ci/run"
    assert test in ci_lines, f"README test command {test!r} not in .ci/run"


def test_op_table_matches_registry():
    readme = _read("README.md")
    table = readme.split("<!-- op-table-start -->")[1].split("<!-- op-table-end -->")[0]
    rows = re.findall(r"^\| [a-z]+ \| `([a-z0-9_.]+)` \| yes \| yes \| yes \|$", table, re.M)
    assert sorted(rows) == fastops.ops()


def test_layout_table_is_current():
    """The README's layout table is what the registries say now (regenerate it with
    ``python -m fastops.tools.layout`` after adding, moving or testing an op elsewhere)."""
    from fastops.tools import layout

    readme = _read("README.md")
    assert layout.BEGIN in readme and layout.END in readme
    got = readme[readme.index(layout.BEGIN):readme.index(layout.END) + len(layout.END)]
    want = layout.table_markdown()
    assert got == want, "README layout table is stale: run python -m fastops.tools.layout"
    names = [line.split("`")[1] for line in want.splitlines() if line.startswith("| `")]
    assert names == fastops.ops()
