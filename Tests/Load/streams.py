#!/usr/bin/env python3
"""Many open streams against `flipt-offline serve`, on loopback: the server's memory and threads while they are
open, the time a new polling client waits for a snapshot, and the time from a write to the cache by another
process (`flipt-offline cache import`) until every stream has received the new message (from the end of the
import, when its commit is done; and from its start, which adds the import process's own run time).

    python3 Tests/Load/streams.py --flipt-offline PATH [--streams 2000] [--document FILE] [--timeout 120]

Bounded: it opens --streams connections to 127.0.0.1 only, waits at most --timeout seconds for each phase, and
stops the server it started. Prints one `STREAMS key=value ...` line at the end; exits 1 when a phase does not
finish in time.
"""

import argparse
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

from serve_process import ServeProcess


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flipt-offline", required=True)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--document", default="Tests/Differential/Fixtures/seed-11.document.json")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.streams + 64:
        print(f"streams.py: the open-file hard limit ({hard}) is too low for {args.streams} streams", file=sys.stderr)
        return 2

    document = json.load(open(args.document))
    namespace = document["namespace"]["key"]
    upstream = "http://upstream.test"
    workdir = tempfile.mkdtemp()
    cache = os.path.join(workdir, "cache.sqlite3")

    def write_cache(revision: str) -> None:
        changed = json.loads(json.dumps(document))
        changed["flags"][0]["name"] = f"revision {revision}"
        path = os.path.join(workdir, f"doc-{revision}.json")
        with open(path, "w") as out:
            json.dump(changed, out)
        subprocess.run(
            [args.flipt_offline, "cache", "import", path, "--cache", cache, "--url", upstream,
             "--namespace", namespace],
            check=True, stdout=subprocess.DEVNULL,
        )

    write_cache("1")
    serve = ServeProcess(args.flipt_offline, ["--cache", cache, "--max-connections", str(args.streams + 100)], os.path.join(workdir, "serve.log"))
    try:
        port = serve.port
        if port is None:
            print("streams.py: serve did not start:\n" + serve.log(), file=sys.stderr)
            return 1

        path = f"/client/v2/environments/default/namespaces/{namespace}/stream"
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        selector = selectors.DefaultSelector()
        received = {}
        messages = {}
        arrival = {}
        started = time.monotonic()
        for _ in range(args.streams):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(request)
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
            received[connection] = bytearray()
            messages[connection] = 0

        marker = b'{"result":'

        def pump(until_messages: int, deadline: float) -> bool:
            """Reads until every stream has seen `until_messages` messages (markers counted, bodies dropped)."""
            pending = sum(1 for count in messages.values() if count < until_messages)
            while pending and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.5):
                    connection = key.fileobj
                    try:
                        data = connection.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        selector.unregister(connection)
                        continue
                    # The kept tail is shorter than the marker, so no marker is counted twice.
                    text = bytes(received[connection]) + data
                    before = messages[connection]
                    messages[connection] = before + text.count(marker)
                    received[connection] = bytearray(text[-(len(marker) - 1):])
                    if before < until_messages <= messages[connection]:
                        pending -= 1
                        arrival[connection] = time.monotonic()
            return pending == 0

        if not pump(1, time.monotonic() + args.timeout):
            print("streams.py: not every stream got its first message in time", file=sys.stderr)
            return 1
        opened = time.monotonic() - started
        time.sleep(1)
        status = open(f"/proc/{serve.pid}/status").read()
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        cpu_before = sum(int(x) for x in open(f"/proc/{serve.pid}/stat").read().split()[13:15])
        time.sleep(3)
        cpu_idle = sum(int(x) for x in open(f"/proc/{serve.pid}/stat").read().split()[13:15]) - cpu_before

        poll_started = time.monotonic()
        poll = socket.create_connection(("127.0.0.1", port), timeout=30)
        poll.sendall(f"GET /internal/v1/evaluation/snapshot/namespace/{namespace} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = bytearray()
        while True:
            chunk = poll.recv(1 << 20)
            if not chunk:
                break
            answer += chunk
        poll_seconds = time.monotonic() - poll_started
        poll.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            print("streams.py: the polling client got no snapshot", file=sys.stderr)
            return 1

        arrival.clear()
        cpu_before_change = sum(int(x) for x in open(f"/proc/{serve.pid}/stat").read().split()[13:15])
        write_started = time.monotonic()
        write_cache("2")
        written = time.monotonic()
        if not pump(2, written + args.timeout):
            print("streams.py: not every stream got the change in time", file=sys.stderr)
            return 1
        change_cpu = sum(int(x) for x in open(f"/proc/{serve.pid}/stat").read().split()[13:15]) - cpu_before_change
        delays = sorted(arrival[c] - written for c in arrival)
        from_start = sorted(arrival[c] - write_started for c in arrival)
        def percentile(share: float) -> float:
            return delays[min(len(delays) - 1, int(share * len(delays)))]
        print(
            f"STREAMS streams={args.streams} document_bytes={os.path.getsize(args.document)} "
            f"open_seconds={opened:.2f} rss_mib={rss_kib / 1024:.1f} threads={threads} "
            f"idle_cpu_ticks_3s={cpu_idle} new_poll_ms={poll_seconds * 1000:.1f} "
            f"import_ms={(written - write_started) * 1000:.0f} "
            f"change_min_ms={delays[0] * 1000:.0f} change_p50_ms={percentile(0.5) * 1000:.0f} change_p99_ms={percentile(0.99) * 1000:.0f} "
            f"change_max_ms={delays[-1] * 1000:.0f} "
            f"server_cpu_ms_during_change={change_cpu * 1000 // os.sysconf('SC_CLK_TCK')} "
            f"change_from_import_start_p99_ms={from_start[min(len(from_start) - 1, int(0.99 * len(from_start)))] * 1000:.0f}"
        )
        return 0
    finally:
        serve.stop()


if __name__ == "__main__":
    sys.exit(main())
