#!/usr/bin/env bash
# Instructions per evaluation of one `flipt-bench engine` shape, counted by callgrind: the benchmark runs a warm-up
# pass, then N evaluations inside `callgrindLoop`; only that function is collected, and its Ir divided by N.
# The evaluation clock's slow path (`flipt_clock_read_slow`, `flipt_clock_system_nanos`) is left out: under
# valgrind its two clock reads are never within the microsecond it needs to anchor the CPU counter, so it runs on
# a varying share of evaluations (up to ~110 instructions an evaluation, more on a busy machine), where natively
# it runs once a millisecond.
#
#   Tests/Scripts/callgrind-shape.sh SHAPE [context|dictionary|official] [N] [extra flipt-bench arguments...]
#
# Needs valgrind and a release build (`swift build -c release --product flipt-bench`); the official form also
# needs `--official-lib PATH` among the extra arguments.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
shape="${1:?usage: callgrind-shape.sh SHAPE [context|dictionary|official] [N] [flipt-bench arguments...]}"
form="${2:-context}"
count="${3:-100000}"
shift $(($# < 3 ? $# : 3))
bench="${FLIPT_BENCH:-$(cd "$root" && swift build -c release --product flipt-bench --show-bin-path)/flipt-bench}"
out="$(mktemp)"
copy="$(mktemp)"
trap 'rm -f "$out" "$copy"' EXIT
# valgrind 3.19 cannot read the DWARF the Swift toolchain writes; the symbol table is all callgrind needs here.
cp "$bench" "$copy"
strip --strip-debug "$copy"
chmod +x "$copy"
valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*callgrindLoop*' \
    --toggle-collect='flipt_clock_read_slow' --toggle-collect='flipt_clock_system_nanos' \
    "$copy" engine --callgrind "$shape" --form "$form" --evaluations "$count" "$@" >/dev/null 2>&1
total="$(grep '^summary:' "$out" | awk '{print $2}')"
echo "$shape $form: $total instructions in $count evaluations = $((total / count)) per evaluation"
