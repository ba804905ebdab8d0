#!/usr/bin/env bash
# Instructions per evaluation of `flipt-bench engine` shapes, counted by callgrind (`callgrind-shape.sh`), against a
# budget for each: a regression of the evaluation's hot path fails here, where a timed benchmark on a shared
# machine could not tell it from noise.
#
#   Tests/Scripts/instruction-budget.sh [--evaluations N]
#
# Counts are exact for a build, and move by about 1 % between runs (the evaluation clock's slow path and the
# lock-free reads' fence mode depend on timing). Each budget is the count measured when it was set, plus 6 %.
# When a change lowers a count for good, lower its budget with it, so that the guard stays tight; when a change
# must raise one, say why in the commit and raise it here.
#
# Needs valgrind and a release build of flipt-bench (`swift build -c release --product flipt-bench`; set
# FLIPT_BENCH=PATH for another build). Exits non-zero when a count is over its budget.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
evaluations=20000
while [ $# -gt 0 ]; do
    case "$1" in
    --evaluations)
        [ $# -ge 2 ] || { echo "instruction-budget.sh: --evaluations needs a number" >&2; exit 2; }
        evaluations="$2"
        shift 2
        ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "instruction-budget.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$evaluations" in '' | *[!0-9]* | 0) echo "instruction-budget.sh: --evaluations takes a positive number" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "instruction-budget.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

# shape, form, budget (instructions per evaluation). Set on 2026-12-07, measured: issue18-40 1,352-1,368 /
# 1,904-1,927 (dictionary); issue18-10000 1,347-1,350; attributes-20 1,366-1,379 / 2,210; only-datetime 1,567;
# segments-3-any-or 1,693-1,704; rollouts-only 1,177; all-kinds-10000 1,760-1,765 / 3,338.
budgets=(
    "issue18-40 context 1450"
    "issue18-40 dictionary 2020"
    "issue18-10000 context 1430"
    "attributes-20 context 1460"
    "attributes-20 dictionary 2350"
    "only-datetime context 1660"
    "segments-3-any-or context 1810"
    "rollouts-only context 1250"
    "all-kinds-10000 context 1870"
    "all-kinds-10000 dictionary 3540"
)

failed=0
printf '%-20s %-11s %12s %8s  %s\n' shape form instructions budget result
for row in "${budgets[@]}"; do
    read -r shape form budget <<<"$row"
    line="$("$here/callgrind-shape.sh" "$shape" "$form" "$evaluations")"
    count="$(echo "$line" | sed -n 's/.* = \([0-9][0-9]*\) per evaluation$/\1/p')"
    if [ -z "$count" ]; then
        echo "instruction-budget.sh: no count for $shape $form; callgrind-shape.sh printed: $line" >&2
        exit 1
    fi
    if [ "$count" -gt "$budget" ]; then
        result="OVER by $(((count - budget) * 100 / budget)) %: find what added instructions to the evaluation"
        failed=1
    elif [ $((count * 100)) -lt $((budget * 85)) ]; then
        result="ok, well under: lower the budget to $((count * 106 / 100)) to keep the guard tight"
    else
        result="ok"
    fi
    printf '%-20s %-11s %12s %8s  %s\n' "$shape" "$form" "$count" "$budget" "$result"
done
exit "$failed"
