#!/usr/bin/env bash
# Regression check: time a small benchmark set at the previous commit and at HEAD and report (never
# fail on) the benchmarks that changed by more than a factor (README "Performance dashboard").
#
#   tools/asv_regressions.sh [--factor F] [--base REV] [--head REV] [--full]
#
#   --factor F  report changes beyond this ratio (default 1.5: the machine is shared and noisy)
#   --base REV  default HEAD^;  --head REV  default HEAD
#   --full      `asv continuous --factor F BASE HEAD`: asv builds a wheel and a virtualenv for each
#               commit (minutes, and pip must reach numba/numpy). asv continuous has no
#               --python=same (asv issue #338), so the default mode does what it does by hand:
#               for each commit, its fastops sources (git archive) on ASV_PYTHONPATH,
#               `asv run --python=same --set-commit-hash REV`, then `asv compare --factor F`.
#
# Set: FASTOPS_BENCH_OPS (default relu,softmax,conv2d) x REGRESSION_BENCH (default
# "bench_ops.Forward.time_forward"), float32, representative shapes, repeat 5. The whole script is
# bounded by REGRESSION_TIMEOUT seconds (default 600) and exits 0 in every case but bad usage; it
# prints "asv not installed: regression check skipped" without asv.
set -uo pipefail
cd "$(dirname "$0")/.."

factor=1.5 base=HEAD^ head=HEAD full=0
while [ $# -gt 0 ]; do
    case "$1" in
        --factor) factor="$2"; shift ;;
        --base) base="$2"; shift ;;
        --head) head="$2"; shift ;;
        --full) full=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "asv_regressions.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
ASV="${ASV:-asv}"
if ! command -v "$ASV" >/dev/null; then
    echo "asv not installed: regression check skipped"
    exit 0
fi
export FASTOPS_BENCH_OPS="${FASTOPS_BENCH_OPS:-relu,softmax,conv2d}"
bench="${REGRESSION_BENCH:-bench_ops.Forward.time_forward}"
limit="${REGRESSION_TIMEOUT:-600}"
[ -f "$HOME/.asv-machine.json" ] || "$ASV" machine --yes >/dev/null
b=$(git rev-parse -q --verify "$base^{commit}") || { echo "no commit $base (shallow clone?): regression check skipped"; exit 0; }
h=$(git rev-parse -q --verify "$head^{commit}") || { echo "no commit $head: regression check skipped"; exit 0; }
echo "regression check: $(git log -1 --format='%h %s' "$b") -> $(git log -1 --format='%h %s' "$h"), factor $factor, ops $FASTOPS_BENCH_OPS, benchmarks /$bench/"

if [ "$full" = 1 ]; then
    timeout "$limit" "$ASV" continuous --factor "$factor" --split -b "$bench" "$b" "$h"
    rc=$?
    case $rc in
        0) echo "regression check: no change beyond ${factor}x" ;;
        124) echo "regression check: stopped after ${limit} s (REGRESSION_TIMEOUT)" ;;
        *) echo "regression check: asv continuous exit $rc (1: regressions beyond ${factor}x listed above; reported, not failed)" ;;
    esac
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
end=$(( $(date +%s) + limit ))
for c in "$b" "$h"; do
    left=$(( end - $(date +%s) ))
    if [ "$left" -le 0 ]; then echo "regression check: out of time (REGRESSION_TIMEOUT=$limit)"; exit 0; fi
    mkdir -p "$tmp/$c/src" "$tmp/$c/cache"
    git archive "$c" fastops | tar -x -C "$tmp/$c/src"
    ASV_PYTHONPATH="$tmp/$c/src" FASTOPS_CACHE_DIR="$tmp/$c/cache" timeout "$left" \
        "$ASV" run --python=same --set-commit-hash "$c" -b "$bench" -a repeat=5 -a warmup_time=0.1 >"$tmp/run-$c.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        tail -20 "$tmp/run-$c.log"
        echo "regression check: asv run at ${c:0:8} exit $rc (124: out of time); reported, not failed"
        [ $rc -eq 124 ] && exit 0
    fi
done
# asv compare: "+" marks a slowdown beyond the factor, "-" a speed-up; ratio = HEAD / base
"$ASV" compare --factor "$factor" --split "$b" "$h" | tee "$tmp/compare.txt"
if grep -q '^+' "$tmp/compare.txt"; then
    echo "regression check: REGRESSIONS beyond ${factor}x above (lines starting with +); reported, not failed"
else
    echo "regression check: no regression beyond ${factor}x"
fi
exit 0
