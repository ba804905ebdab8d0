#!/usr/bin/env python3
"""Hostile and idle connections against `flipt-offline serve`, on loopback, while a normal client polls: does the
normal client still get its snapshot promptly?

    python3 Tests/Load/slow.py --flipt-offline PATH [--silent 2000] [--trickle 2000] [--unknown-streams 2000]
                               [--seconds 20] [--document FILE] [--bound 5]

It opens --silent connections that send nothing, --trickle connections that send a request one byte a second
(reconnecting when the server gives up on them, as a patient attacker would), and --unknown-streams v2 streams
for a namespace the cache does not hold; then, for --seconds, a normal client on its own thread polls the
snapshot every 100 ms (a new connection each time, then the same on a kept-alive one) and times each answer.
Prints one `SLOW key=value ...` line: the normal client's latencies, how many hostile connections were open, and
the server's memory, threads and CPU. Exits 1 when a normal request fails or takes longer than --bound seconds
(far above the goal of 1 s, so that a busy machine cannot fail it by chance), or a phase does not finish.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import sys
import tempfile
import threading
import time

from serve_process import ServeProcess


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flipt-offline", required=True)
    parser.add_argument("--silent", type=int, default=2000)
    parser.add_argument("--trickle", type=int, default=2000)
    parser.add_argument("--unknown-streams", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--document", default="Tests/Differential/Fixtures/seed-44.document.json")
    parser.add_argument("--bound", type=float, default=5.0)
    args = parser.parse_args()

    hostile = args.silent + args.trickle + args.unknown_streams
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < hostile + 256:
        print(f"slow.py: the open-file hard limit ({hard}) is too low for {hostile} connections", file=sys.stderr)
        return 2

    namespace = json.load(open(args.document))["namespace"]["key"]
    workdir = tempfile.mkdtemp()
    serve = ServeProcess(args.flipt_offline, ["--document", args.document, "--max-connections", str(hostile + 200)], os.path.join(workdir, "serve.log"))
    try:
        port = serve.port
        if port is None:
            print("slow.py: serve did not start:\n" + serve.log(), file=sys.stderr)
            return 1
        return asyncio.run(run(args, port, namespace, serve.pid))
    finally:
        serve.stop()


async def run(args, port: int, namespace: str, pid: int) -> int:
    poll_path = f"/internal/v1/evaluation/snapshot/namespace/{namespace}"
    stop = asyncio.Event()
    open_now = {"silent": 0, "trickle": 0, "unknown": 0}
    ended = {"trickle": 0}
    hostile_tasks = []

    async def held_open(reader) -> None:
        """Returns when the server sends something or closes the connection, or when the run ends."""
        done = asyncio.ensure_future(reader.read(1 << 16))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        stopped.cancel()

    async def silent() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            open_now["silent"] += 1
            try:
                # Sends nothing; waits until the server closes it (idle timeout) or the run ends.
                await held_open(reader)
            finally:
                open_now["silent"] -= 1
                writer.close()

    async def trickle() -> None:
        request = f"GET {poll_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {'x' * 64}\r\n\r\n".encode()
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            open_now["trickle"] += 1
            try:
                for index in range(len(request)):
                    if stop.is_set():
                        break
                    writer.write(request[index:index + 1])
                    await writer.drain()
                    await asyncio.sleep(1)
            except OSError:
                pass  # the server gave up on it (408, then closed): reconnect
            finally:
                open_now["trickle"] -= 1
                ended["trickle"] += 1
                writer.close()

    async def unknown_stream(index: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.write(f"GET /client/v2/environments/default/namespaces/absent-{index % 7}/stream HTTP/1.1\r\n"
                     f"Host: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        open_now["unknown"] += 1
        try:
            await held_open(reader)
        finally:
            open_now["unknown"] -= 1
            writer.close()

    started = time.monotonic()
    for _ in range(args.silent):
        hostile_tasks.append(asyncio.ensure_future(silent()))
    for _ in range(args.trickle):
        hostile_tasks.append(asyncio.ensure_future(trickle()))
    for index in range(args.unknown_streams):
        hostile_tasks.append(asyncio.ensure_future(unknown_stream(index)))
    target = args.silent + args.trickle + args.unknown_streams
    while sum(open_now.values()) < target and time.monotonic() - started < 60:
        await asyncio.sleep(0.1)
    opened_seconds = time.monotonic() - started
    opened = dict(open_now)
    if sum(opened.values()) < target:
        print(f"slow.py: only {opened} of {target} hostile connections opened in 60 s", file=sys.stderr)

    # The normal client: its own thread and blocking sockets, so that the attackers' event loop cannot delay it.
    latencies = {"new": [], "kept": []}
    failures = []

    def answer_of(connection: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(1 << 16)
            if not chunk:
                raise OSError("closed before the head")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            chunk = connection.recv(1 << 16)
            if not chunk:
                raise OSError("closed in the body")
            body += chunk
        return head

    def normal_client() -> None:
        kept = None
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            for kind in ("new", "kept"):
                begun = time.monotonic()
                try:
                    if kind == "new" or kept is None:
                        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
                        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        if kind == "kept":
                            kept = connection
                    else:
                        connection = kept
                    connection.sendall(f"GET {poll_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    head = answer_of(connection)
                    if not head.startswith(b"HTTP/1.1 200"):
                        failures.append(head.split(b"\r\n", 1)[0].decode())
                    latencies[kind].append(time.monotonic() - begun)
                    if kind == "new":
                        connection.close()
                except OSError as error:
                    failures.append(f"{kind}: {error}")
                    if kind == "kept" and kept is not None:
                        kept.close()
                        kept = None
            time.sleep(0.1)
        if kept is not None:
            kept.close()

    cpu_before = sum(int(x) for x in open(f"/proc/{pid}/stat").read().split()[13:15])
    client = threading.Thread(target=normal_client)
    client.start()
    samples = []
    while client.is_alive():
        await asyncio.sleep(1)
        samples.append(sum(open_now.values()))
    status = open(f"/proc/{pid}/status").read()
    cpu = sum(int(x) for x in open(f"/proc/{pid}/stat").read().split()[13:15]) - cpu_before
    stop.set()
    await asyncio.gather(*hostile_tasks, return_exceptions=True)

    every = sorted(latencies["new"] + latencies["kept"])

    def percentile(values, share):
        return values[min(len(values) - 1, int(share * len(values)))] * 1000 if values else float("nan")

    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    print(
        f"SLOW silent={opened['silent']} trickle={opened['trickle']} unknown_streams={opened['unknown']} "
        f"open_seconds={opened_seconds:.1f} hostile_open_min={min(samples) if samples else 0} "
        f"trickle_connections_ended={ended['trickle']} requests={len(every)} failures={len(failures)} "
        f"new_p50_ms={percentile(sorted(latencies['new']), 0.5):.1f} "
        f"new_p99_ms={percentile(sorted(latencies['new']), 0.99):.1f} "
        f"kept_p50_ms={percentile(sorted(latencies['kept']), 0.5):.1f} "
        f"kept_p99_ms={percentile(sorted(latencies['kept']), 0.99):.1f} max_ms={percentile(every, 1.0):.1f} "
        f"rss_mib={rss_kib / 1024:.1f} threads={threads} cpu_ticks={cpu} seconds={args.seconds:g}"
    )
    if failures:
        print(f"slow.py: FAILED: {len(failures)} normal requests failed, e.g. {failures[:3]}", file=sys.stderr)
        return 1
    if not every or every[-1] > args.bound:
        print(f"slow.py: FAILED: a normal request took {every[-1] if every else 'forever'} s "
              f"(bound {args.bound} s)", file=sys.stderr)
        return 1
    if sum(opened.values()) < target:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
