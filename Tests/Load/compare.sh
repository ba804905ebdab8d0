#!/usr/bin/env bash
# `flipt-offline serve` against nginx serving the same document bytes as a static file with an ETag, side by side
# in one run: the same wrk connections, threads and duration against each, on the 200 path (unconditional
# polls, the document every time) and on the 304 path (every poll carries the current ETag). Prints one table
# row per document, connection count and path with requests/s, p99, the server's CPU time per request and the
# serve/nginx ratios. Then, for each row, both servers again at one fixed offered load (--equal-load times the lower
# of the two requests/s just measured; each connection waits between requests, see THINK_MS in poll.lua), with the
# p99 of each: latency compared at the same load. At saturation the load generator shares the machine's cores with
# the server, and its own waits for a core enter the latency it measures: there p99 depends on how the cores are
# split between wrk and the server as much as on the server.
#
#   Tests/Load/compare.sh [--seconds 10] [--clients 50,200] [--flags 40,1000] [--threads 2] [--rounds 1]
#                         [--equal-load 0.5] [--gzip] [--min-ratio 0] [--flipt-offline PATH]
#   Tests/Load/compare.sh --seconds 2 --clients 50 --flags 40 --min-ratio 0.3   # the short version, for CI
#
# Documents: 40 flags is Tests/Differential/Fixtures/seed-44.document.json; other counts repeat its flags under
# new keys. With --rounds N each row is measured N times, serve and nginx alternating, and the medians are shown.
# --gzip asks both servers for gzip (nginx compresses per request at gzip_comp_level 1; serve sends the copy it
# compressed once).
# Exits 1 on any error or unexpected status from either server, or when a requests/s ratio is below
# --min-ratio (default 0: never; CI uses a bound far below the measured ratios, so that chance cannot fail it).
# Needs wrk and nginx (Debian: apt-get install -y wrk nginx); nginx runs on loopback with its own temporary
# configuration. Without --flipt-offline it builds a release binary (scratch path $SCRATCH, default .build).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=10
clients_list=50,200
flags_list=40,1000
threads=2
rounds=1
min_ratio=0
equal_load=0.5
gzip=0
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --clients) clients_list="$2"; shift 2 ;;
        --flags) flags_list="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --min-ratio) min_ratio="$2"; shift 2 ;;
        --equal-load) equal_load="$2"; shift 2 ;;
        --gzip) gzip=1; shift ;;
        --flipt-offline) binary="$2"; shift 2 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin"
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is not installed (Debian: apt-get install -y wrk nginx curl)" >&2; exit 2; }
done
if [ -z "$binary" ]; then
    scratch="${SCRATCH:-.build}"
    swift build -c release --scratch-path "$scratch" --product flipt-offline >&2
    binary="$(swift build -c release --scratch-path "$scratch" --show-bin-path)/flipt-offline"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

workdir="$(mktemp -d)"
chmod 755 "$workdir"
serve_pid=""
nginx_pid=""
stop_servers() {
    if [ -n "$serve_pid" ]; then kill -TERM "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    serve_pid=""
    nginx_pid=""
}
trap 'stop_servers; rm -rf "$workdir"' EXIT

# The document with N flags: seed-44's 40 flags, repeated under new keys as often as needed.
make_document() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
count, out = int(sys.argv[1]), sys.argv[2]
source = json.load(open("Tests/Differential/Fixtures/seed-44.document.json"))
flags = []
for index in range(count):
    flag = json.loads(json.dumps(source["flags"][index % len(source["flags"])]))
    if index >= len(source["flags"]):
        flag["key"] = f'{flag["key"]}-copy{index // len(source["flags"])}'
    flags.append(flag)
source["flags"] = flags
source.pop("digest", None)
with open(out, "w") as output:
    json.dump(source, output, separators=(",", ":"), ensure_ascii=False)
EOF
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_servers() {
    local document="$1" path="$2"
    "$binary" serve --document "$document" --listen 127.0.0.1:0 --max-connections 4096 2>"$workdir/serve.log" &
    serve_pid=$!
    serve_port=""
    for _ in $(seq 1 200); do
        serve_port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$workdir/serve.log" | head -1)"
        [ -n "$serve_port" ] && break
        sleep 0.05
    done
    [ -n "$serve_port" ] || { echo "compare.sh: serve did not start:" >&2; cat "$workdir/serve.log" >&2; exit 1; }

    nginx_port="$(free_port)"
    mkdir -p "$workdir/nginx"
    # Debian's default static-file settings (sendfile, tcp_nopush, tcp_nodelay), one worker per core as serve
    # has one event loop per core, no access log (serve logs no requests at its default level either).
    local gzip_settings="gzip off;"
    [ "$gzip" = 1 ] && gzip_settings="gzip on; gzip_comp_level 1; gzip_types application/json; gzip_vary on; gzip_min_length 0;"
    cat >"$workdir/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
user root;
pid $workdir/nginx/nginx.pid;
error_log $workdir/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    $gzip_settings
    client_body_temp_path $workdir/nginx/body;
    proxy_temp_path $workdir/nginx/proxy;
    fastcgi_temp_path $workdir/nginx/fastcgi;
    uwsgi_temp_path $workdir/nginx/uwsgi;
    scgi_temp_path $workdir/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location = $path {
            default_type application/json;
            alias $document;
        }
    }
}
EOF
    nginx -c "$workdir/nginx/nginx.conf" -e "$workdir/nginx/error.log" &
    nginx_pid=$!
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "http://127.0.0.1:$nginx_port$path" 2>/dev/null && break
        sleep 0.05
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$nginx_port$path" || { echo "compare.sh: nginx did not start:" >&2; cat "$workdir/nginx/error.log" >&2; exit 1; }
}

encoding_header=""
[ "$gzip" = 1 ] && encoding_header="gzip"

etag_of() {
    curl -fsS -D - -o /dev/null ${encoding_header:+-H "Accept-Encoding: gzip"} "$1" | tr -d '\r' \
        | sed -n 's/^[Ee][Tt]ag: //p'
}

# CPU time (user + system, in clock ticks) of the given processes and all their threads, so far.
cpu_ticks() {
    local total=0 pid stat ticks
    for pid in "$@"; do
        for stat in /proc/"$pid"/task/*/stat; do
            # Fields 14 and 15 (utime, stime), counted after the command name, which may hold spaces. A thread
            # may end between the listing and the read: it is skipped.
            ticks="$(sed 's/.*) //' "$stat" 2>/dev/null | awk '{print $12 + $13}' || true)"
            [ -n "$ticks" ] && total=$((total + ticks))
        done
    done
    echo "$total"
}

# Checks, with a short wrk run that counts every status, that a server answers the path's requests with the
# expected status only ($1 URL, $2 ETag, $3 share of conditional requests). A failure adds a line to
# $workdir/failures.
verify() {
    local url="$1" etag="$2" share="$3"
    local expected=200
    [ "$share" = 1 ] && expected=304
    ETAG="$etag" CONDITIONAL_SHARE="$share" POLL_PATH="$path" ACCEPT_ENCODING="$encoding_header" COUNT_STATUSES=1 \
        wrk -t 2 -c 8 -d 1s --timeout 10s -s Tests/Load/poll.lua "$url" >"$workdir/verify.txt"
    local line good requests
    line="$(grep '^LOAD ' "$workdir/verify.txt")"
    requests="$(echo "$line" | tr ' ' '\n' | sed -n 's/^requests=//p')"
    good="$(echo "$line" | tr ' ' '\n' | sed -n 's/^statuses=//p' | tr ',' '\n' | sed -n "s/^$expected=//p")"
    if [ "${requests:-0}" -eq 0 ] || [ "${good:-0}" != "$requests" ]; then
        echo "compare.sh: $url (expecting only $expected): $line" >&2
        echo x >>"$workdir/failures"
    fi
}

# Runs wrk once (each connection waiting $think_ms milliseconds between requests when it is set); prints "rps
# p99_ms cpu_us_per_request" (the server's CPU time, every thread, per answered request: what a request costs the
# server, which the machine's other load affects less than requests/s do). wrk does not count statuses here (see
# COUNT_STATUSES in poll.lua; `verify` did): a run with errors, or whose bytes per request do not fit the expected
# status (the whole body each time for 200, less than half of it for 304), adds a line to $workdir/failures.
# $5 is the size of the body the server sends; the server's processes are $6 and on.
measure() {
    local url="$1" etag="$2" share="$3" clients="$4" body_size="$5"
    shift 5
    local before after
    before="$(cpu_ticks "$@")"
    ETAG="$etag" CONDITIONAL_SHARE="$share" POLL_PATH="$path" ACCEPT_ENCODING="$encoding_header" COUNT_STATUSES=0 \
        THINK_MS="${think_ms:-}" wrk -t "$threads" -c "$clients" -d "${seconds}s" --timeout 10s -s Tests/Load/poll.lua \
        "$url" >"$workdir/wrk.txt"
    after="$(cpu_ticks "$@")"
    local line
    line="$(grep '^LOAD ' "$workdir/wrk.txt")"
    value() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    local expected=200
    [ "$share" = 1 ] && expected=304
    local errors=$(( $(value connect_errors) + $(value read_errors) + $(value write_errors) + $(value timeouts) + $(value non_2xx_3xx) ))
    local fits
    if [ "$expected" = 200 ]; then
        fits="$(awk "BEGIN{r=$(value requests); print (r > 0 && $(value bytes) >= r * $body_size) ? 1 : 0}")"
    else
        fits="$(awk "BEGIN{r=$(value requests); print (r > 0 && $(value bytes) < r * $body_size / 2) ? 1 : 0}")"
    fi
    if [ "$errors" -ne 0 ] || [ "$fits" != 1 ]; then
        echo "compare.sh: $url ($clients connections, expecting $expected, body $body_size bytes): $line" >&2
        echo x >>"$workdir/failures"
    fi
    local ticks_per_second
    ticks_per_second="$(getconf CLK_TCK)"
    echo "$(value rps) $(value p99_ms) $(awk "BEGIN{r=$(value requests); printf \"%.2f\", (r > 0) ? ($after - $before) * 1e6 / $ticks_per_second / r : 0}")"
}

# Runs --rounds alternated measurements of both servers for the current document, $clients and $share (with
# each connection's wait $think_ms when set); leaves the results in serve_rps, serve_p99, serve_cpu, nginx_rps,
# nginx_p99 and nginx_cpu.
alternated_rounds() {
    serve_rps=(); serve_p99=(); nginx_rps=(); nginx_p99=(); serve_cpu=(); nginx_cpu=()
    local round order server rps p99 cpu
    for round in $(seq 1 "$rounds"); do
        # Alternate which server goes first, so that a slow phase of the machine hits both alike.
        if [ $((round % 2)) = 1 ]; then order="serve nginx"; else order="nginx serve"; fi
        for server in $order; do
            if [ "$server" = serve ]; then
                read -r rps p99 cpu < <(measure "$serve_url" "$serve_etag" "$share" "$clients" "$serve_size" "$serve_pid")
                serve_rps+=("$rps"); serve_p99+=("$p99"); serve_cpu+=("$cpu")
            else
                # shellcheck disable=SC2046
                read -r rps p99 cpu < <(measure "$nginx_url" "$nginx_etag" "$share" "$clients" "$nginx_size" \
                    "$nginx_pid" $(pgrep -P "$nginx_pid"))
                nginx_rps+=("$rps"); nginx_p99+=("$p99"); nginx_cpu+=("$cpu")
            fi
        done
    done
}

median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "serve: $binary; nginx: $(nginx -v 2>&1 | sed 's/.*: //'); $(nproc) cores; wrk -t $threads, ${seconds}s per run, $rounds round(s)${encoding_header:+, Accept-Encoding: gzip}"
rows=()
below=0
IFS=, read -r -a flag_counts <<<"$flags_list"
IFS=, read -r -a client_counts <<<"$clients_list"
for flags in "${flag_counts[@]}"; do
    document="$workdir/document-$flags.json"
    make_document "$flags" "$document"
    path="/internal/v1/evaluation/snapshot/namespace/$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(open(sys.argv[1]))["namespace"]["key"]))' "$document")"
    start_servers "$document" "$path"
    serve_url="http://127.0.0.1:$serve_port"
    nginx_url="http://127.0.0.1:$nginx_port"
    serve_etag="$(etag_of "$serve_url$path")"
    nginx_etag="$(etag_of "$nginx_url$path")"
    serve_size="$(curl -fsS ${encoding_header:+-H "Accept-Encoding: gzip"} "$serve_url$path" | wc -c)"
    nginx_size="$(curl -fsS ${encoding_header:+-H "Accept-Encoding: gzip"} "$nginx_url$path" | wc -c)"
    echo "document: $flags flags, $(wc -c <"$document") bytes; body sent: serve $serve_size B (ETag $serve_etag), nginx $nginx_size B (ETag $nginx_etag)"
    for clients in "${client_counts[@]}"; do
        for share in 0 1; do
            verify "$serve_url" "$serve_etag" "$share"
            verify "$nginx_url" "$nginx_etag" "$share"
            alternated_rounds
            s_rps="$(echo "${serve_rps[*]}" | median)"; n_rps="$(echo "${nginx_rps[*]}" | median)"
            s_p99="$(echo "${serve_p99[*]}" | median)"; n_p99="$(echo "${nginx_p99[*]}" | median)"
            s_cpu="$(echo "${serve_cpu[*]}" | median)"; n_cpu="$(echo "${nginx_cpu[*]}" | median)"
            # The same offered load for both: a share of the lower requests/s, through each connection's wait.
            eq_load="-"; s_eq_p99=0; n_eq_p99=0; eq_ratio="-"
            if awk "BEGIN{exit !($equal_load > 0)}"; then
                eq_load="$(awk "BEGIN{l = ($s_rps < $n_rps ? $s_rps : $n_rps) * $equal_load; printf \"%.0f\", l}")"
                think_ms="$(awk "BEGIN{printf \"%.3f\", $clients * 1000 / $eq_load}")"
                alternated_rounds
                think_ms=""
                s_eq_p99="$(echo "${serve_p99[*]}" | median)"; n_eq_p99="$(echo "${nginx_p99[*]}" | median)"
                # The load actually served (what the waits gave), the lower of the two medians.
                eq_load="$(awk "BEGIN{a=$(echo "${serve_rps[*]}" | median); b=$(echo "${nginx_rps[*]}" | median); printf \"%.0f\", (a < b ? a : b)}")"
                eq_ratio="$(awk "BEGIN{printf \"%.2f\", ($n_eq_p99 > 0) ? $s_eq_p99/$n_eq_p99 : 0}")x"
            fi
            status=200; [ "$share" = 1 ] && status=304
            ratio="$(awk "BEGIN{printf \"%.2f\", $s_rps/$n_rps}")"
            p99_ratio="$(awk "BEGIN{printf \"%.2f\", ($n_p99 > 0) ? $s_p99/$n_p99 : 0}")"
            cpu_ratio="$(awk "BEGIN{printf \"%.2f\", ($s_cpu > 0) ? $n_cpu/$s_cpu : 0}")"
            awk "BEGIN{exit !($ratio < $min_ratio)}" && below=$((below + 1))
            rows+=("$(printf '%6s %7s %4s %10.0f %10.0f %6sx %9.2f %9.2f %6sx %9.2f %9.2f %6sx %9s %9.2f %9.2f %7s' \
                "$flags" "$clients" "$status" "$s_rps" "$n_rps" "$ratio" "$s_p99" "$n_p99" "$p99_ratio" "$s_cpu" "$n_cpu" \
                "$cpu_ratio" "$eq_load" "$s_eq_p99" "$n_eq_p99" "$eq_ratio")")
            echo "${rows[-1]}"
        done
    done
    stop_servers
done

echo
printf '%6s %7s %4s %10s %10s %7s %9s %9s %7s %9s %9s %7s %9s %9s %9s %7s\n' flags conns path "serve r/s" "nginx r/s" \
    ratio "serve p99" "nginx p99" "p99 x" "serve cpu" "nginx cpu" "cpu x" "eq. r/s" "serve p99" "nginx p99" "p99 x"
printf '%s\n' "${rows[@]}"
echo "(requests/s, p99 in ms and CPU in µs per request (every thread of the server) are medians of $rounds run(s)"
echo " each; ratio = serve / nginx requests/s; cpu x = nginx / serve CPU per request: above 1, serve spends less;"
echo " eq. r/s: both servers offered the same load, $equal_load of the lower requests/s (the lower of the two served"
echo " is shown), with each one's p99 at that load; p99 x = serve / nginx: below 1, serve answers faster)"
failures=0
if [ -f "$workdir/failures" ]; then failures="$(wc -l <"$workdir/failures")"; fi
if [ "$failures" -ne 0 ]; then
    echo "compare.sh: FAILED: $failures run(s) had errors or unexpected statuses" >&2
    exit 1
fi
if [ "$below" -ne 0 ]; then
    echo "compare.sh: FAILED: $below row(s) below the requests/s ratio $min_ratio" >&2
    exit 1
fi
