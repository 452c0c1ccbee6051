"""docs/ops.md, the op contract: its family lists name exactly the registered ops, and it points
nowhere outside the repository."""
import os
import re

import fastops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _doc():
    with open(os.path.join(ROOT, "docs", "ops.md"), encoding="utf-8") as fh:
        return fh.read()


def test_family_lists_name_every_op_once():
    families = _doc().split("## The ops, by family")[1]
    listed = [n for sect in families.split("### ")[1:] for n in re.findall(r"`([a-z0-9_]+)`", sect)
              if n in fastops.ops()]
    assert sorted(set(listed)) == fastops.ops()
    assert len(listed) == len(set(listed)), "an op is listed in two families"


def test_no_reference_outside_the_repository():
    paths = [os.path.join(ROOT, "docs", "ops.md"), os.path.join(ROOT, "README.md")]
    for root, _, files in os.walk(os.path.join(ROOT, "fastops")):
        paths += [os.path.join(root, f) for f in files if f.endswith(".py")]
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            text = fh.read()
        rel = os.path.relpath(p, ROOT)
        assert "OPS.md" not in text, f"{rel} cites OPS.md (outside the repository): cite docs/ops.md"
        assert "NUMBA_NOTES" not in text, f"{rel} cites NUMBA_NOTES (outside the repository)"
        assert "../shared" not in text, f"{rel} points at ../shared (outside the repository)"
