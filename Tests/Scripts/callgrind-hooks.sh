#!/usr/bin/env bash
# Instructions and reference-count calls per evaluation of one `flipt-bench hooks` form, counted by callgrind: the
# benchmark runs a warm-up pass, then N evaluations inside `callgrindLoop`; only that function is collected, and
# its Ir and its calls to swift_retain/swift_release (and the bridge-object forms) are divided by N.
#
#   Tests/Scripts/callgrind-hooks.sh none|hook|callhook|metrics|default|exporter [N] [extra flipt-bench arguments...]
#
# none: no hook; hook: one no-op hook in ClientOptions.hooks; callhook: one no-op hook passed per call; metrics: the opt-in evaluation counter (Prometheus);
# default: booleanValue/variantKey(default:) with no hook; exporter: a JSONLinesEvaluationExporter (buffering
# only). Needs valgrind and a release build (`swift build -c release --product flipt-bench`).
# `FLIPT_BENCH=PATH` runs another build of flipt-bench; `CALLGRIND_FUNCTIONS=1` also prints the 25 costliest
# functions (self cost per evaluation).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
form="${1:?usage: callgrind-hooks.sh none|hook|callhook|metrics|default|exporter [N] [flipt-bench arguments...]}"
count="${2:-100000}"
shift $(($# < 2 ? $# : 2))
bench="${FLIPT_BENCH:-$(cd "$root" && swift build -c release --product flipt-bench --show-bin-path)/flipt-bench}"
out="$(mktemp)"
copy="$(mktemp)"
trap 'rm -f "$out" "$copy"' EXIT
# valgrind 3.19 cannot read the DWARF the Swift toolchain writes; the symbol table is all callgrind needs here.
cp "$bench" "$copy"
strip --strip-debug "$copy"
chmod +x "$copy"
valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*callgrindLoop*' \
    "$copy" hooks --callgrind "$form" --evaluations "$count" "$@" >/dev/null 2>&1
total="$(grep '^summary:' "$out" | awk '{print $2}')"
echo "hooks $form: $total instructions in $count evaluations = $((total / count)) per evaluation"
# Calls by callee name: callgrind names a function once as "cfn=(id) name" and later by "(id)" alone.
awk -v count="$count" '
    /^c?fn=\(/ {
        match($0, /\([0-9]+\)/)
        id = substr($0, RSTART, RLENGTH)
        name = substr($0, RSTART + RLENGTH + 1)
        if (name != "") names[id] = name
        if ($0 ~ /^cfn=/) callee = names[id]
        next
    }
    /^calls=/ {
        split(substr($0, 7), parts, " ")
        if (callee ~ /^swift_(retain|release|bridgeObjectRetain|bridgeObjectRelease)$/) calls[callee] += parts[1]
    }
    END {
        line = "  per evaluation:"
        split("swift_retain swift_release swift_bridgeObjectRetain swift_bridgeObjectRelease", order, " ")
        for (i = 1; i <= 4; i++) line = line sprintf(" %s %.2f", order[i], calls[order[i]] / count)
        print line
    }' "$out"
if [[ -n "${CALLGRIND_FUNCTIONS:-}" ]]; then
    callgrind_annotate --threshold=100 "$out" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -26 | tail -25 |
        awk -v count="$count" '{ gsub(",", "", $1); printf "  %8.1f  %s\n", $1 / count, substr($0, index($0, $3)) }'
fi
