#!/usr/bin/env bash
# `flipt-offline serve --run` keeping N namespaces fresh from one upstream: the relay's memory and the number of TCP
# connections the upstream server sees. The upstream is another `flipt-offline serve` answering N documents (copies
# of one fixture under N namespace keys) on loopback; the relay polls it every --interval for --seconds.
#
#   Tests/Load/namespaces.sh --flipt-offline PATH [--namespaces 10] [--seconds 10] [--interval 200ms]
#
# Prints one `NAMESPACES key=value ...` line: relay RSS (KiB), upstream connections established at the end, the
# upstream's requests and its open connections as its /metrics counts them. Bounded: loopback only, stops both
# servers; exits 1 if a namespace is not served by the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

namespaces=10
seconds=10
interval=200ms
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --namespaces) namespaces="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --interval) interval="$2"; shift 2 ;;
        --flipt-offline) binary="$2"; shift 2 ;;
        *) echo "namespaces.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
[ -n "$binary" ] || { echo "namespaces.sh: give --flipt-offline PATH" >&2; exit 64; }

workdir="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT

# Waits for `pattern` (one sed capture) in a log file; prints the capture.
wait_for() {
    local value=""
    for _ in $(seq 1 400); do
        value="$(sed -n "s/$2/\\1/p" "$1" | head -1)"
        [ -n "$value" ] && { echo "$value"; return 0; }
        sleep 0.05
    done
    echo "namespaces.sh: no match for $2 in $1:" >&2
    cat "$1" >&2
    return 1
}

documents=()
names=()
for i in $(seq 1 "$namespaces"); do
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["namespace"]["key"]=sys.argv[2]; json.dump(d, open(sys.argv[3], "w"))' \
        Tests/Differential/Fixtures/seed-11.document.json "ns$i" "$workdir/ns$i.json"
    documents+=(--document "$workdir/ns$i.json")
    names+=("ns$i")
done
"$binary" serve "${documents[@]}" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 2>"$workdir/upstream.log" &
pids+=($!)
upstream_port="$(wait_for "$workdir/upstream.log" '.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')"
upstream_metrics="$(wait_for "$workdir/upstream.log" '.*metrics on \(http:[^ ]*\/metrics\).*')"

list="$(IFS=,; echo "${names[*]}")"
"$binary" serve --cache "$workdir/cache.sqlite3" --listen 127.0.0.1:0 --run --url "http://127.0.0.1:$upstream_port" \
    --update-interval "$interval" --namespace "$list" 2>"$workdir/relay.log" &
relay_pid=$!
pids+=($relay_pid)
relay_port="$(wait_for "$workdir/relay.log" '.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*')"
sleep "$seconds"

served=0
for name in "${names[@]}"; do
    status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$relay_port/internal/v1/evaluation/snapshot/namespace/$name")"
    [ "$status" = 200 ] && served=$((served + 1))
done
rss="$(ps -o rss= -p "$relay_pid" | tr -d ' ')"
threads="$(ps -o nlwp= -p "$relay_pid" | tr -d ' ')"
# Connections from the relay to the upstream port, as the kernel sees them.
established="n/a"
if command -v ss >/dev/null; then
    established="$(ss -Htn state established "( dport = :$upstream_port )" | wc -l)"
fi
scrape="$(curl -fsS "$upstream_metrics")"
requests="$(echo "$scrape" | awk '/^flipt_relay_requests_total/ {sum += $2} END {print sum + 0}')"
open="$(echo "$scrape" | awk '/^flipt_relay_open_connections / {print $2}')"
echo "NAMESPACES namespaces=$namespaces served=$served relay_rss_kib=$rss relay_threads=$threads" \
    "upstream_connections_established=$established upstream_open_connections=$open upstream_requests=$requests" \
    "seconds=$seconds interval=$interval"
[ "$served" -eq "$namespaces" ] || { echo "namespaces.sh: only $served of $namespaces served" >&2; exit 1; }
