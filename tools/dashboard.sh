#!/usr/bin/env bash
# Build the asv performance dashboard over the last N commits, in one command (README
# "Performance dashboard"):
#
#   tools/dashboard.sh [-n N] [--all] [--build] [--preview] [--check]
#
#   -n N       the last N commits of HEAD, first-parent (default 3)
#   --all      every benchmark and every op (default: a small grid, see below)
#   --build    asv's own environments: `asv run --quick HEAD~N..HEAD` builds a wheel and a virtualenv
#              per commit (pip must reach numba/numpy); default: the current environment
#              (--python=same) with each commit's fastops sources (git archive) on ASV_PYTHONPATH,
#              results recorded under that commit (--set-commit-hash), no build, offline
#   --preview  `asv preview` afterwards (serves the dashboard on http://127.0.0.1:8080)
#   --check    tools/check_dashboard.py afterwards: renders it in headless Chromium, fails when no
#              benchmark graph is drawn, screenshot in .asv/dashboard.png
#
# Small grid (default): FASTOPS_BENCH_OPS (default relu,softmax,conv2d) and the benchmarks matching
# DASHBOARD_BENCH (default "bench_ops.Forward.time_forward|bench_startup.Config"), each run once
# (--quick: one sample per commit, enough to draw the graphs, not to compare small differences).
# Results go to .asv/results, the HTML to .asv/html (asv.conf.json); both are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

n=3 all=0 build=0 preview=0 check=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n="$2"; shift ;;
        --all) all=1 ;;
        --build) build=1 ;;
        --preview) preview=1 ;;
        --check) check=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "dashboard.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
ASV="${ASV:-asv}"
PY="${PYTHON:-python}"
command -v "$ASV" >/dev/null || { echo "dashboard.sh: asv not installed (pip install -e \".[bench]\")" >&2; exit 3; }
bench=()
if [ "$all" = 0 ]; then
    export FASTOPS_BENCH_OPS="${FASTOPS_BENCH_OPS:-relu,softmax,conv2d}"
    bench=(-b "${DASHBOARD_BENCH:-bench_ops.Forward.time_forward|bench_startup.Config}")
fi
[ -f "$HOME/.asv-machine.json" ] || "$ASV" machine --yes >/dev/null

commits=$(git rev-list --first-parent -n "$n" HEAD | tac)
if [ "$build" = 1 ]; then
    first=$(echo "$commits" | head -1)
    "$ASV" run --quick --show-stderr "${bench[@]}" "$first^..HEAD"
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for c in $commits; do
        echo "== $(git log -1 --format='%h %s' "$c")"
        mkdir -p "$tmp/$c/src" "$tmp/$c/cache"
        git archive "$c" fastops | tar -x -C "$tmp/$c/src"
        # a failed benchmark must not stop the other commits; the check below sees missing graphs
        ASV_PYTHONPATH="$tmp/$c/src" FASTOPS_CACHE_DIR="$tmp/$c/cache" \
            "$ASV" run --python=same --quick --show-stderr --set-commit-hash "$c" "${bench[@]}" \
            || echo "dashboard.sh: some benchmarks failed at $c" >&2
    done
fi
"$ASV" publish
echo "dashboard: $(pwd)/.asv/html/index.html (serve it: asv preview)"
if [ "$check" = 1 ]; then
    "$PY" tools/check_dashboard.py --html .asv/html --screenshot .asv/dashboard.png
fi
if [ "$preview" = 1 ]; then
    "$ASV" preview
fi
