#!/usr/bin/env bash
# Load test of `flipt-offline serve`: N concurrent polling clients (wrk connections, back to back, keep-alive)
# on loopback for S seconds. Most requests carry the current ETag and get 304; the rest poll unconditionally
# and get the document with 200. Prints requests/s, latency percentiles, errors and the share of 304s, and the
# server's memory and threads; exits 1 on any error or unexpected status.
#
#   Tests/Load/run.sh [--clients 200] [--seconds 60] [--threads 2] [--conditional 0.8]
#                     [--document FILE] [--flipt-offline PATH] [--metrics]
#   Tests/Load/run.sh --clients 50 --seconds 5        # the short version, for CI
#
# --metrics serves with --metrics-listen (the Prometheus backend bootstrapped), to compare the cost of the metrics.
# Without --flipt-offline it builds a release binary (scratch path $SCRATCH, default .build). Needs wrk
# (Debian: apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."

clients=200
seconds=60
threads=2
conditional=0.8
document=Tests/Differential/Fixtures/seed-11.document.json
binary=""
metrics=()
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --conditional) conditional="$2"; shift 2 ;;
        --document) document="$2"; shift 2 ;;
        --flipt-offline) binary="$2"; shift 2 ;;
        --metrics) metrics=(--metrics-listen 127.0.0.1:0); shift ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
command -v wrk >/dev/null || { echo "run.sh: wrk is not installed (Debian: apt-get install -y wrk)" >&2; exit 2; }
if [ -z "$binary" ]; then
    scratch="${SCRATCH:-.build}"
    swift build -c release --scratch-path "$scratch" --product flipt-offline >&2
    binary="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/flipt-offline"
fi

workdir="$(mktemp -d)"
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then kill -KILL "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT

"$binary" serve --document "$document" --listen 127.0.0.1:0 --max-connections $((clients + 64)) \
    ${metrics[@]+"${metrics[@]}"} 2>"$workdir/serve.log" &
serve_pid=$!
port=""
for _ in $(seq 1 200); do
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$workdir/serve.log" | head -1)"
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "run.sh: serve did not start:" >&2; cat "$workdir/serve.log" >&2; exit 1; }
url="http://127.0.0.1:$port"
namespace="$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(open(sys.argv[1]))["namespace"]["key"]))' "$document")"
path="/internal/v1/evaluation/snapshot/namespace/$namespace"
etag="$(curl -fsS -D - -o /dev/null "$url$path" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')"
size="$(curl -fsS "$url$path" | wc -c)"

echo "serve: $url, document $document ($size bytes), ETag $etag"
echo "load: $clients clients (wrk connections, $threads threads), ${seconds}s, $(awk "BEGIN{print $conditional*100}")% conditional"
# Sample the server's memory and threads half-way through.
( sleep "$(awk "BEGIN{print $seconds/2}")"; ps -o rss=,nlwp= -p "$serve_pid" > "$workdir/ps" 2>/dev/null || true ) &
sampler=$!
cpu_before="$(awk '{print $14+$15}' "/proc/$serve_pid/stat")"
ETAG="$etag" CONDITIONAL_SHARE="$conditional" POLL_PATH="$path" \
    wrk -t "$threads" -c "$clients" -d "${seconds}s" --timeout 10s -s Tests/Load/poll.lua "$url" >"$workdir/wrk.txt"
cpu_after="$(awk '{print $14+$15}' "/proc/$serve_pid/stat")"
wait "$sampler" || true
line="$(grep '^LOAD ' "$workdir/wrk.txt")"
value() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
ticks="$(getconf CLK_TCK)"

if [ ${#metrics[@]} -gt 0 ]; then
    metrics_url="$(sed -n 's/.*metrics on \(http:[^ ]*\/metrics\).*/\1/p' "$workdir/serve.log" | head -1)"
    curl -fsS "$metrics_url" | grep '^flipt_relay_requests_total' | sed 's/^/metrics:    /'
fi
kill -TERM "$serve_pid"
status=0
wait "$serve_pid" || status=$?
serve_pid=""

requests="$(value requests)"
statuses="$(value statuses)"
count_of() { echo "$statuses" | tr ',' '\n' | sed -n "s/^$1=//p"; }
ok="$(count_of 200)"; ok="${ok:-0}"
not_modified="$(count_of 304)"; not_modified="${not_modified:-0}"
errors=$(( $(value connect_errors) + $(value read_errors) + $(value write_errors) + $(value timeouts) + $(value non_2xx_3xx) ))
unexpected=$(( requests - ok - not_modified ))
read -r rss nlwp < "$workdir/ps" || { rss=0; nlwp=0; }
cpu_seconds="$(awk "BEGIN{printf \"%.1f\", ($cpu_after-$cpu_before)/$ticks}")"

printf 'requests:   %s in %ss = %s requests/s\n' "$requests" "$(value seconds)" "$(value rps)"
printf 'latency:    p50 %s ms, p90 %s ms, p99 %s ms, max %s ms\n' \
    "$(value p50_ms)" "$(value p90_ms)" "$(value p99_ms)" "$(value max_ms)"
printf 'statuses:   %s (304: %s%%)\n' "$statuses" "$(awk "BEGIN{printf \"%.1f\", 100*$not_modified/$requests}")"
printf 'errors:     %s (connect %s, read %s, write %s, timeouts %s, 4xx/5xx %s); other statuses: %s\n' \
    "$errors" "$(value connect_errors)" "$(value read_errors)" "$(value write_errors)" "$(value timeouts)" \
    "$(value non_2xx_3xx)" "$unexpected"
printf 'server:     RSS %s MiB, %s threads (mid-run), %s s CPU; exit status %s on SIGTERM\n' \
    "$(awk "BEGIN{printf \"%.1f\", $rss/1024}")" "$nlwp" "$cpu_seconds" "$status"
grep -o 'stopped after.*' "$workdir/serve.log" | sed 's/^/server log: /' || true

if [ "$errors" -ne 0 ] || [ "$unexpected" -ne 0 ] || [ "$status" -ne 0 ] || [ "$requests" -eq 0 ]; then
    echo "run.sh: FAILED" >&2
    exit 1
fi
