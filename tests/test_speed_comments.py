"""Every speed figure in a comment or docstring of ``fastops/`` names where it comes from.

What is scanned: every ``.py`` under ``fastops/`` except ``fastops/testing/`` (the op table), its
comments (``tokenize``; comments on consecutive lines form one block) and its module, class and
function docstrings (``ast``). String literals that are not docstrings (prints, f-strings, error
messages) are output, not comments, and are not scanned; nor is code (a variable called ``ms``).

What is a speed figure (the rule, kept simple so that it does not match other text):

* a number, or a range such as ``0.3-0.55``, directly followed by a time or throughput unit:
  ``ns``, ``us``, ``µs``, ``ms``, ``GFLOP/s``, ``GB/s``, ``MB/s``, or ``s`` / ``sec`` / ``seconds``
  after a space (so that "leading 1s" is not one); e.g. "14 ms", "48 GB/s", "~490 s";
* or a ratio such as ``1.3x`` (a number then ``x``, not followed by a letter or digit, so shapes
  like ``3x3`` are not ratios) or a percentage such as ``10%``, in a block that also says
  measured, faster, slower, ran, took, cost(s), speed, timed, vs, against or torch.

Tolerances such as ``1e-3`` or ``4 ulp`` carry no such unit and are not speed figures.

What it must name: a command that reproduces the figure for the current code, ``python -m
<module> ...`` or ``asv run|continuous|compare|dev ...``, or, for a figure no command reproduces
(a kernel timed alone, an alternative no longer in the repository), the commit it was measured in:
``commit <7-40 hex digits>``. The named ``python -m`` modules must exist in the repository, and
the cited commits must exist where the checkout has the history.
"""
import ast
import io
import os
import re
import shutil
import subprocess
import tokenize

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_NUM = r"(?<![\w.])~?\d+(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?"
UNIT = re.compile(_NUM + r"(?:\s?(?:ns|us|µs|ms|GFLOP/s|GB/s|MB/s)|\s(?:s|sec|seconds))(?![\w/])")
RATIO = re.compile(_NUM + r"(?:x(?![\w])|\s?%)")
WORD = re.compile(r"\b(?:measured|faster|slower|ran|took|costs?|speed|timed|vs|against|torch)\b", re.I)
COMMAND = re.compile(r"python -m ([\w.]+)|\basv (?:run|continuous|compare|dev)\b|\bcommit ([0-9a-f]{7,40})\b")


def _sources():
    top = os.path.join(ROOT, "fastops")
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        if rel == "testing" or rel.startswith("testing" + os.sep):
            dirs[:] = []
            continue
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.join(root, f)


def blocks(src):
    """(first line, text) of each comment block and docstring of the source ``src``."""
    out = []
    cur = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type != tokenize.COMMENT:
            continue
        if cur and tok.start[0] == cur[-1][0] + 1:
            cur.append((tok.start[0], tok.string))
        else:
            if cur:
                out.append(cur)
            cur = [(tok.start[0], tok.string)]
    if cur:
        out.append(cur)
    res = [(b[0][0], " ".join(s.lstrip("#").strip() for _, s in b)) for b in out]
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                res.append((first.lineno, first.value.value))
    return [(line, " ".join(text.split())) for line, text in res]


def is_speed_claim(text):
    return bool(UNIT.search(text)) or bool(RATIO.search(text) and WORD.search(text))


def _claims():
    for path in _sources():
        with open(path, encoding="utf-8") as fh:
            src = fh.read()
        rel = os.path.relpath(path, ROOT)
        for line, text in blocks(src):
            if is_speed_claim(text):
                yield f"{rel}:{line}", text


def test_rule():
    assert is_speed_claim("relu on 16M float32: 24.5 ms with slices")
    assert is_speed_claim("a 64-lane accumulator array 48 GB/s")
    assert is_speed_claim("the attention kernels ~80 s of ~490 s in all")
    assert is_speed_claim("unpack serial 0.3-0.55 ms")
    assert is_speed_claim("the gather measured 1.3-1.5x faster than with int32 offsets")
    assert is_speed_claim("a separate row and column select cost ~10% more")
    assert is_speed_claim("56x56 -> 7x7 on (8, 64) planes: 0.41x torch")
    assert not is_speed_claim("padded with leading 1s")
    assert not is_speed_claim("a 3x3 kernel on 8x64x56x56, measured")
    assert not is_speed_claim("tolerance 1e-3; measured <= 4 ulp against libm")
    assert not is_speed_claim("4x less often")  # a ratio without a word about speed
    assert COMMAND.search("(commit ad08449)") and COMMAND.search("``python -m fastops bench --ops relu``")


def test_every_speed_figure_names_its_command_or_commit():
    bad = [f"{where}: {text[:160]}" for where, text in _claims() if not COMMAND.search(text)]
    assert not bad, ("speed figures without a command (python -m ..., asv ...) or a (commit <hex>):\n"
                     + "\n".join(bad))


def test_named_modules_exist():
    bad = []
    for where, text in _claims():
        for m in COMMAND.finditer(text):
            mod = m.group(1)
            if not mod:
                continue
            base = os.path.join(ROOT, *mod.split("."))
            if not (os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__main__.py"))):
                bad.append(f"{where}: python -m {mod}")
    assert not bad, "commands naming a module that is not in the repository:\n" + "\n".join(bad)


def _git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)


def test_cited_commits_exist():
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode:
        pytest.skip("not a git checkout")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("shallow clone: old commits are missing")
    cited = {}
    for where, text in _claims():
        for m in COMMAND.finditer(text):
            if m.group(2):
                cited.setdefault(m.group(2), where)
    bad = [f"{where}: commit {h}" for h, where in sorted(cited.items())
           if _git("cat-file", "-e", f"{h}^{{commit}}").returncode]
    assert not bad, "cited commits not in the history:\n" + "\n".join(bad)
