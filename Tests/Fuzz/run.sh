#!/usr/bin/env bash
# Builds the libFuzzer harnesses (with AddressSanitizer) and fuzzes each for a while on a copy of its seed corpus.
#
#   Tests/Fuzz/run.sh [--seconds N] [--leaks] [harness ...]
#
# Harnesses: document (snapshot decoder and evaluation), stream (NDJSON splitter and stream lines), request
# (request lines of `flipt-offline eval`), import (the `cache import` path). Default: all, 60 s each.
# --leaks also runs LeakSanitizer after inputs (2 to 10 times slower). Exits non-zero when a harness finds a crash,
# a broken invariant, a leak or an input that is slow again on replay, and prints the saved input and the command
# that replays it. Work folders (corpus copies, crash inputs, logs) go under .build-fuzz/runs/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="$root/.build-fuzz"
seconds=60
leaks=0
harnesses=()

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --seconds)
        [ $# -ge 2 ] || { echo "run.sh: --seconds needs a number" >&2; exit 2; }
        seconds="$2"
        shift 2
        ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --leaks) leaks=1; shift ;;
    -h | --help) usage; exit 0 ;;
    document | stream | request | import) harnesses+=("$1"); shift ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$seconds" in '' | *[!0-9]*) echo "run.sh: --seconds takes whole seconds, not '$seconds'" >&2; exit 2 ;; esac
[ ${#harnesses[@]} -gt 0 ] || harnesses=(document stream request import)

# Harness name -> executable, longest input (bytes), seed corpus folder.
executable() {
    case "$1" in
    document) echo DocumentFuzzer ;;
    stream) echo StreamFuzzer ;;
    request) echo RequestLineFuzzer ;;
    import) echo CacheImportFuzzer ;;
    esac
}
max_len() {
    case "$1" in
    document) echo 12288 ;;
    stream) echo 8192 ;;
    request) echo 1024 ;;
    import) echo 16384 ;;
    esac
}

echo "==> building the fuzz harnesses (release, -sanitize=fuzzer,address)"
# The harnesses are targets of the main package (they use its package API), declared only with FLIPT_FUZZ=1.
export FLIPT_FUZZ=1
build=(swift build -c release -Xswiftc -sanitize=fuzzer,address --scratch-path "$scratch")
mkdir -p "$scratch"
: >"$scratch/fuzz-build.log"
for harness in "${harnesses[@]}"; do
    if ! (cd "$root" && "${build[@]}" --product "$(executable "$harness")") >>"$scratch/fuzz-build.log" 2>&1; then
        cat "$scratch/fuzz-build.log"
        echo "run.sh: the build of $(executable "$harness") failed" >&2
        exit 1
    fi
done
# The linker warns about one AddressSanitizer symbol on every executable; the rest is worth showing.
grep -v "Cannot export local symbol '__asan_extra_spill_area'" "$scratch/fuzz-build.log" | tail -3 || true
bin="$(cd "$root" && "${build[@]}" --show-bin-path)"

# Crashes are reported by libFuzzer and AddressSanitizer; the Swift runtime's own backtracer would only slow
# them down.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=$leaks}"

# libFuzzer exits with 70 on a slow input (-timeout). Replays each one alone: true when one is slow again.
replay_is_slow() {
    local input found=0
    for input in "$2"/timeout-*; do
        [ -e "$input" ] || continue
        found=1
        if ! "$bin/$(executable "$1")" -timeout=10 "$input" >/dev/null 2>&1; then
            return 0
        fi
    done
    [ "$found" -eq 0 ]
}

stamp="$(date +%Y%m%d-%H%M%S)"
failed=()
for harness in "${harnesses[@]}"; do
    work="$scratch/runs/$harness-$stamp"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp "$here/Corpus/$harness/"* "$work/corpus/"
    log="$work/fuzz.log"
    echo "==> fuzzing $harness for ${seconds}s (work folder $work)"
    status=0
    "$bin/$(executable "$harness")" "$work/corpus" \
        -max_total_time="$seconds" -max_len="$(max_len "$harness")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    corpus="$(find "$work/corpus" -type f | wc -l | tr -d ' ')"
    if [ "$status" -eq 0 ]; then
        echo "    ok: ${runs:-?} inputs run, corpus now $corpus files"
        continue
    fi
    if [ "$status" -eq 70 ] && ! replay_is_slow "$harness" "$work/artifacts"; then
        echo "    warning: libFuzzer reported a slow input after ${runs:-?} inputs, but it runs in time on replay"
        echo "    (a stall of this machine, not of the code); it is kept in $work/artifacts"
        continue
    fi
    failed+=("$harness")
    echo "    FAILED (libFuzzer exit status $status) after ${runs:-?} inputs; the end of its log:"
    grep -E "fuzz invariant broken|ERROR: |Fatal error|SUMMARY|Test unit written" "$log" | head -20 | sed 's/^/    | /'
    for input in "$work/artifacts/"*; do
        [ -e "$input" ] || continue
        echo "    saved input: $input"
        echo "    replay it:   $bin/$(executable "$harness") $input"
    done
    echo "    full log:    $log"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "==> fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "==> fuzzing found nothing in ${harnesses[*]} (${seconds}s each)"
