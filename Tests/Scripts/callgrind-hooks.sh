#!/usr/bin/env bash
# Instructions per evaluation of one `flipt-bench hooks` form, counted by callgrind: the benchmark runs a warm-up
# pass, then N evaluations inside `callgrindLoop`; only that function is collected, and its Ir divided by N.
#
#   Tests/Scripts/callgrind-hooks.sh none|hook|metrics|default [N] [extra flipt-bench arguments...]
#
# none: no hook; hook: one no-op hook in ClientOptions.hooks; metrics: the opt-in evaluation counter (Prometheus);
# default: booleanValue/variantKey(default:) with no hook. Needs valgrind and a release build
# (`swift build -c release --product flipt-bench`). `FLIPT_BENCH=PATH` runs another build of flipt-bench.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
form="${1:?usage: callgrind-hooks.sh none|hook|metrics|default [N] [flipt-bench arguments...]}"
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
