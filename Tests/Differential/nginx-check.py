#!/usr/bin/env python3
"""Check `flipt-offline serve` behind a caching nginx, with the official Flipt engine as the client.

Usage:
    nginx-check.py --flipt-offline PATH [--nginx /usr/sbin/nginx] [--fixtures DIR] [--quiet-seconds 4]
                   [--verbose]

Starts, on loopback, a plain upstream server, `flipt-offline serve` over a cache filled by `flipt-offline sync`,
and nginx in front of it with the proxy configuration of Tests/Differential/nginx.conf (the README's, with this
run's ports and folders), then checks:

  1. answers: the official Python client (PyPI flipt-client 1.4.5) through nginx gives, for every request line
     of every differential fixture, the answers it gives against the upstream itself;
  2. revalidation: once a cached snapshot is older than its validity nginx asks serve again with
     If-None-Match, serve answers 304 and nginx serves the stored body (`$upstream_cache_status` REVALIDATED);
  3. environments: one namespace held for two environments, asked alternately through nginx (by header and by
     path, across validity windows, plain and gzip): every answer is its own environment's document;
  4. tokens (when serve has --client-tokens): an answer nginx stored for one token is never handed to a
     request with another token (403), with an unknown token or none (401);
  5. streams: the official engine streaming through nginx receives a cache change promptly (nginx must not
     buffer the message), and a raw stream quiet for longer than nginx's general read timeout is not cut
     (the stream location's own timeout), while the same stream through a location without it is (control).

Prints `nginx-check: N passed, M failed` and exits 1 if anything failed, 2 if nginx is missing.
"""

import argparse
import gzip
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The musl build of the engine aborts the process when RUST_BACKTRACE is set and an error is formatted.
if os.environ.get("RUST_BACKTRACE") is not None:
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

# The upstream server, the fixtures and the answer comparison are serve-check.py's.
_spec = importlib.util.spec_from_file_location("serve_check", os.path.join(HERE, "serve-check.py"))
serve_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_check)

from flipt_client import FliptClient  # noqa: E402  (after serve-check's own import check)
from flipt_client.models import ClientOptions, ErrorStrategy, FetchMode  # noqa: E402

E1 = serve_check.E1
SHARED_NAMESPACE = "shared"
ENVIRONMENTS = ("alpha", "beta")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shared_document(environment, flags=1):
    """A small document whose flag keys name its environment."""
    return json.dumps({
        "namespace": {"key": SHARED_NAMESPACE},
        "flags": [{"key": f"{environment}-{n}", "name": "", "enabled": True, "type": "BOOLEAN_FLAG_TYPE"}
                  for n in range(flags)],
    }).encode("utf-8")


class Process:
    """A child process whose standard error goes to a file; `wait_for` reads that file for a pattern."""

    def __init__(self, arguments, log_path, environment=None):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=log, env=environment)

    def log(self):
        return serve_check.read_text(self.log_path)

    def wait_for(self, pattern, seconds=20):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        sys.exit(f"nginx-check: {pattern!r} not seen in {self.log_path}:\n{self.log()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def get(port, path, headers=None, timeout=10):
    """One GET on a new connection: (status, headers as a lower-cased dict, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def decoded(headers, body):
    return gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body


def nginx_config(template_path, replacements):
    with open(template_path, encoding="utf-8") as handle:
        text = handle.read()
    for name, value in replacements.items():
        text = text.replace("@" + name + "@", str(value))
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        sys.exit(f"nginx-check: unreplaced placeholders in {template_path}: {leftover}")
    return text


class Checks:
    def __init__(self, verbose):
        self.verbose = verbose
        self.passed = 0
        self.failures = []

    def record(self, name, problems):
        if problems:
            self.failures.extend(f"{name}: {problem}" for problem in problems)
        else:
            self.passed += 1
        if self.verbose:
            print(f"{name}: {'ok' if not problems else 'FAILED'}")


def answers_check(fixtures, upstream_url, nginx_url):
    """The official engine through nginx answers every request line as against the upstream itself."""
    problems = []
    compared = 0
    for environment, _, requests, namespace in fixtures:
        oracle = serve_check.start_client(upstream_url, environment, namespace)
        relayed = serve_check.start_client(nginx_url, environment, namespace)
        try:
            listing = serve_check.answer(relayed, {"type": "list"})
            if listing.get("status") != "success":
                problems.append(f"{environment}: no usable snapshot through nginx: {listing.get('error_message')}")
                continue
            with open(requests, encoding="utf-8") as handle:
                lines = [line for line in handle.read().split("\n") if line.strip()]
            different = 0
            for number, line in enumerate(lines, 1):
                request = json.loads(line)
                expected = serve_check.normalized(serve_check.answer(oracle, request))
                actual = serve_check.normalized(serve_check.answer(relayed, request))
                compared += 1
                if expected != actual:
                    different += 1
                    if different <= 2:
                        problems.append(f"{environment} line {number}: {line}\n  upstream: {json.dumps(expected)}"
                                        f"\n  nginx:    {json.dumps(actual)}")
        finally:
            relayed.close()
            oracle.close()
    return problems, compared


def revalidation_check(nginx_port, serve, access_log, validity):
    """A stored snapshot past its validity is revalidated with If-None-Match and a 304 from serve."""
    problems = []
    path = E1 + SHARED_NAMESPACE
    headers = {"X-Flipt-Environment": "alpha"}
    first = get(nginx_port, path, headers)
    if first[0] != 200:
        return [f"first GET through nginx: {first[0]}"]
    etag = first[1].get("etag")
    served_304 = len(re.findall(r" 304 0 B .* alpha/shared etag ", serve.log()))
    time.sleep(validity + 1.2)  # nginx counts validity in whole seconds
    second = get(nginx_port, path, headers)
    if second[0] != 200 or second[2] != first[2] or second[1].get("etag") != etag:
        problems.append(f"GET after the validity: {second[0]} etag {second[1].get('etag')!r}, expected the stored "
                        f"200 etag {etag!r}")
    if second[1].get("x-cache-status") != "REVALIDATED":
        problems.append(f"nginx says {second[1].get('x-cache-status')!r} for the second GET, expected REVALIDATED")
    deadline = time.monotonic() + 5
    while len(re.findall(r" 304 0 B .* alpha/shared etag ", serve.log())) <= served_304:
        if time.monotonic() > deadline:
            problems.append("serve answered no 304 to nginx's revalidation")
            break
        time.sleep(0.02)
    # A client's own conditional request is answered 304 (by nginx from its store, or passed on).
    third = get(nginx_port, path, dict(headers, **{"If-None-Match": etag}))
    if third[0] != 304 or third[2]:
        problems.append(f"conditional GET through nginx: {third[0]} with {len(third[2])} bytes, expected 304")
    log = serve_check.read_text(access_log)
    if "REVALIDATED" not in log:
        problems.append("nginx's access log shows no REVALIDATED request")
    return problems


def environments_check(nginx_port, upstream_url, nginx_url, validity):
    """Alternating environments, by header and by path, plain and gzip: each gets its own document."""
    problems = []
    expected = {environment: shared_document(environment) for environment in ENVIRONMENTS}
    rounds = 0
    deadline = time.monotonic() + 2 * validity + 2  # crosses at least two validity windows
    while time.monotonic() < deadline or rounds < 8:
        rounds += 1
        for environment in ENVIRONMENTS if rounds % 2 else reversed(ENVIRONMENTS):
            encoding = {"Accept-Encoding": "gzip"} if rounds % 3 == 0 else {}
            asks = [
                (E1 + SHARED_NAMESPACE, dict(encoding, **{"X-Flipt-Environment": environment})),
                (f"/client/v2/environments/{environment}/namespaces/{SHARED_NAMESPACE}/snapshot", encoding),
            ]
            for path, headers in asks:
                status, answer_headers, body = get(nginx_port, path, headers)
                if status != 200:
                    problems.append(f"{path} {headers}: status {status}")
                elif decoded(answer_headers, body) != expected[environment]:
                    other = [e for e in ENVIRONMENTS if decoded(answer_headers, body) == expected[e]]
                    problems.append(f"{path} {headers}: got {other or 'an unknown document'}'s snapshot "
                                    f"(nginx {answer_headers.get('x-cache-status')})")
        time.sleep(0.15)
        if len(problems) > 5:
            break
    for environment in ENVIRONMENTS:
        client = serve_check.start_client(nginx_url, environment, SHARED_NAMESPACE)
        try:
            keys = serve_check.flag_keys(client)
            if keys != [f"{environment}-0"]:
                problems.append(f"the official client of {environment} through nginx holds {keys}")
        finally:
            client.close()
    return problems


def tokens_check(nginx_port):
    """Through nginx in front of a serve with client tokens: a stored answer never reaches another token."""
    problems = []
    path = E1 + SHARED_NAMESPACE
    base = {"X-Flipt-Environment": "alpha"}
    asks = [
        ("reader of shared", "Bearer token-shared", 200),
        ("reader of shared again (may be served from nginx's store)", "Bearer token-shared", 200),
        ("reader of another namespace", "Bearer token-other", 403),
        ("unknown token", "Bearer token-unknown", 401),
        ("no token", None, 401),
        ("reader of every namespace", "Bearer token-all", 200),
        ("reader of another namespace, again", "Bearer token-other", 403),
    ]
    for name, authorization, status in asks:
        headers = dict(base, **({"Authorization": authorization} if authorization else {}))
        got, answer_headers, body = get(nginx_port, path, headers)
        if got != status:
            problems.append(f"{name}: status {got} (nginx {answer_headers.get('x-cache-status')}), expected {status}")
        if status != 200 and b"alpha-0" in body:
            problems.append(f"{name}: the body holds the snapshot")
    return problems


def read_stream_until(sock, needle, seconds):
    """Reads from a raw stream socket until `needle` was received; True if it was, False on end or time-out."""
    received = b""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return False, received
        received += chunk
        if needle in received:
            return True, received
    return False, received


def open_raw_stream(port, environment):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    path = f"/client/v2/environments/{environment}/namespaces/{SHARED_NAMESPACE}/stream"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def is_closed(sock, seconds):
    """True if the peer closes the connection within `seconds` (data received meanwhile is discarded)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def streams_check(tool, upstream, cache, environment_vars, nginx_port, control_port, quiet_seconds):
    """Streams through nginx: pushed at once (not buffered), and not cut while quiet; the control location is."""
    problems = []

    def publish(environment, flags):
        upstream.documents[(environment, SHARED_NAMESPACE)] = shared_document(environment, flags)
        sync = subprocess.run([tool, "sync", "--cache", cache, "--url", upstream.url, "--environment", environment,
                               "--namespace", SHARED_NAMESPACE],
                              capture_output=True, text=True, env=environment_vars, timeout=60)
        if sync.returncode != 0:
            problems.append(f"sync of {environment} exited {sync.returncode}: {sync.stderr.strip()}")

    # The official engine streaming through nginx follows a change.
    client = FliptClient(opts=ClientOptions(url=f"http://127.0.0.1:{nginx_port}", environment="beta",
                                            namespace=SHARED_NAMESPACE, fetch_mode=FetchMode.STREAMING,
                                            error_strategy=ErrorStrategy.FAIL))
    try:
        deadline = time.monotonic() + 15
        while serve_check.flag_keys(client) != ["beta-0"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if serve_check.flag_keys(client) != ["beta-0"]:
            problems.append(f"streaming official client through nginx: has {serve_check.flag_keys(client)}")
        else:
            publish("beta", 2)
            started = time.monotonic()
            expected = ["beta-0", "beta-1"]
            while serve_check.flag_keys(client) != expected and time.monotonic() - started < 15:
                time.sleep(0.05)
            if serve_check.flag_keys(client) != expected:
                problems.append("the streaming official client did not receive a change through nginx within 15 s "
                                f"(buffered?): has {serve_check.flag_keys(client)}")
    finally:
        client.close()

    # A raw stream through the stream location stays open while quiet, and still gets the next change; the same
    # through the control server (general read timeout only) is cut.
    kept = open_raw_stream(nginx_port, "alpha")
    control = open_raw_stream(control_port, "alpha")
    try:
        for name, sock in (("stream", kept), ("control stream", control)):
            ok, received = read_stream_until(sock, b"alpha-0", 10)
            if not ok:
                problems.append(f"{name}: the first message did not arrive: {received[:300]!r}")
        if problems:
            return problems
        control_cut = is_closed(control, quiet_seconds)
        if not control_cut:
            problems.append(f"control: nginx did not cut a stream quiet for {quiet_seconds} s through the location "
                            "without a stream timeout: the check cannot tell a cut stream from a kept one")
        publish("alpha", 2)
        ok, received = read_stream_until(kept, b"alpha-1", 15)
        if not ok:
            problems.append(f"a stream quiet for {quiet_seconds} s was cut or did not receive the change: "
                            f"{received[-300:]!r}")
    finally:
        kept.close()
        control.close()
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flipt-offline", required=True, help="the built flipt-offline executable")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--fixtures", default=os.path.join(HERE, "Fixtures"))
    parser.add_argument("--quiet-seconds", type=float, default=4.0,
                        help="how long streams stay quiet; nginx's general read timeout is half of it")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args()
    if not os.access(arguments.nginx, os.X_OK):
        print(f"nginx-check: nginx not found at {arguments.nginx} (Debian: apt-get install -y nginx)")
        sys.exit(2)
    tool = arguments.flipt_offline
    checks = Checks(arguments.verbose)
    validity = 1  # proxy_cache_valid in nginx.conf

    upstream = serve_check.Upstream()
    environment_vars = {k: v for k, v in os.environ.items() if not k.startswith("FLIPT_")}
    has_tokens = "--client-tokens" in subprocess.run([tool, "serve", "--help"], capture_output=True,
                                                     text=True).stdout
    processes = []
    with tempfile.TemporaryDirectory(prefix="nginx-check-") as directory:
        cache = os.path.join(directory, "cache.sqlite3")
        synced = []
        for environment, document, requests, namespace in serve_check.fixtures(arguments.fixtures):
            with open(document, "rb") as handle:
                upstream.documents[(environment, namespace)] = handle.read()
            sync = subprocess.run([tool, "sync", "--cache", cache, "--url", upstream.url, "--environment",
                                   environment, "--namespace", namespace],
                                  capture_output=True, text=True, env=environment_vars, timeout=60)
            if sync.returncode == 0:
                synced.append((environment, document, requests, namespace))
        for environment in ENVIRONMENTS:
            upstream.documents[(environment, SHARED_NAMESPACE)] = shared_document(environment)
            sync = subprocess.run([tool, "sync", "--cache", cache, "--url", upstream.url, "--environment",
                                   environment, "--namespace", SHARED_NAMESPACE],
                                  capture_output=True, text=True, env=environment_vars, timeout=60)
            if sync.returncode != 0:
                sys.exit(f"nginx-check: sync of {environment}/{SHARED_NAMESPACE} failed: {sync.stderr}")

        try:
            serve = Process([tool, "serve", "--cache", cache, "--listen", "127.0.0.1:0", "--log-level", "debug"],
                            os.path.join(directory, "serve.log"), environment_vars)
            processes.append(serve)
            serve_port = int(serve.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
            tokens_port = serve_port
            if has_tokens:
                tokens_file = os.path.join(directory, "tokens")
                with open(tokens_file, "w", encoding="utf-8") as handle:
                    handle.write(f"token-shared {SHARED_NAMESPACE}\ntoken-other default\ntoken-all\n")
                guarded = Process([tool, "serve", "--cache", cache, "--listen", "127.0.0.1:0", "--client-tokens",
                                   tokens_file], os.path.join(directory, "serve-tokens.log"), environment_vars)
                processes.append(guarded)
                tokens_port = int(guarded.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))

            nginx_port, control_port, tokens_front_port = free_port(), free_port(), free_port()
            access_log = os.path.join(directory, "access.log")
            config_path = os.path.join(directory, "nginx.conf")
            with open(config_path, "w", encoding="utf-8") as handle:
                handle.write(nginx_config(os.path.join(HERE, "nginx.conf"), {
                    "PREFIX": directory, "ACCESS_LOG": access_log, "SERVE_PORT": serve_port,
                    "TOKENS_SERVE_PORT": tokens_port, "NGINX_PORT": nginx_port, "CONTROL_PORT": control_port,
                    "TOKENS_PORT": tokens_front_port, "GENERAL_READ_TIMEOUT": f"{arguments.quiet_seconds / 2:g}s",
                }))
            nginx = Process([arguments.nginx, "-p", directory, "-c", config_path, "-e",
                             os.path.join(directory, "nginx-error.log")], os.path.join(directory, "nginx.out"))
            processes.append(nginx)
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", nginx_port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or nginx.process.poll() is not None:
                        sys.exit("nginx-check: nginx did not start:\n" + nginx.log()
                                 + serve_check.read_text(os.path.join(directory, "nginx-error.log")))
                    time.sleep(0.05)
            nginx_url = f"http://127.0.0.1:{nginx_port}"

            problems, compared = answers_check(synced, upstream.url, nginx_url)
            checks.record(f"answers ({len(synced)} fixtures, {compared} requests)", problems)
            checks.record("revalidation", revalidation_check(nginx_port, serve, access_log, validity))
            checks.record("environments", environments_check(nginx_port, upstream.url, nginx_url, validity))
            if has_tokens:
                checks.record("tokens", tokens_check(tokens_front_port))
            else:
                checks.failures.append("tokens: this flipt-offline serve has no --client-tokens")
            checks.record("streams", streams_check(tool, upstream, cache, environment_vars, nginx_port, control_port,
                                                   arguments.quiet_seconds))
        finally:
            for process in reversed(processes):
                process.stop()
            upstream.stop()
        if arguments.verbose:
            statuses = re.findall(r" cache=(\S+)", serve_check.read_text(access_log))
            counts = {status: statuses.count(status) for status in sorted(set(statuses))}
            print(f"nginx cache statuses: {counts}")

    for failure in checks.failures:
        print(failure)
    print(f"nginx-check: {checks.passed} passed, {len(checks.failures)} failed")
    sys.exit(1 if checks.failures else 0)


if __name__ == "__main__":
    main()
