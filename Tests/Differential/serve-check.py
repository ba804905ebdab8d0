#!/usr/bin/env python3
"""Check `flipt-offline serve` with the official Flipt engine as the client.

Usage:
    serve-check.py --flipt-offline PATH [--fixtures DIR] [--tls-and-tokens] [--max-fixtures N] [--verbose]

For every differential fixture (X.document.json with X.requests.jsonl, namespace from X.namespace or
`default`), under Tests/Differential/Fixtures and its schema/ folder:

  1. a plain Python HTTP server (the "upstream") serves the document, picked by X-Flipt-Environment;
  2. `flipt-offline sync` stores it in a fresh cache, under environment X;
  3. one `flipt-offline serve` process serves that cache (all fixtures at once, by environment);
  4. the official Python client (PyPI flipt-client 1.4.5, `flipt_client.FliptClient`) is started twice per
     fixture: against the upstream and against `serve`; every request line is answered by both engines and
     the answers must be equal, ignoring `timestamp` and `request_duration_millis`, with `segment_keys` and
     the flag list compared as sets;
  5. streaming: the official engine in streaming mode, pointed at `serve`, receives a new document that
     another `flipt-offline sync` process wrote into the cache;
  6. on the wire: the official engine's own second poll (it polls again at once after its initial fetch,
     with If-None-Match) was answered 304 by `serve`; a GET to `serve` gets 200 with the upstream's Etag;
     the same GET with If-None-Match gets 304 with that Etag and no body.

With --tls-and-tokens, `serve` runs with --tls-cert, --tls-key (the test certificates of
Sources/FliptTestSupport/TestCertificates.swift) and --client-tokens, and every client reaches it as an operator's
devices would: the official client with `tls_config` (the test CA) and `ClientTokenAuthentication`, the wire
check over HTTPS with `Authorization: Bearer`. It then checks refusals: with no token, an unknown token, or a
token for another namespace, the official client (polling and streaming) gets an error naming 401 or 403 and
never a flag value, while the right token gets the flags.

--max-fixtures N serves only the first N fixtures (a short form for CI).

Prints `serve-check: N passed, M failed` and exits 1 if anything failed. Fixtures whose document the
official engine rejects too are skipped (the cache only stores documents the engine accepts).
"""

import argparse
import ctypes
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# The musl build of the engine aborts the process when RUST_BACKTRACE is set and an error is formatted.
if os.environ.get("RUST_BACKTRACE") is not None:
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

try:
    from flipt_client import FliptClient
    from flipt_client.errors import FliptError
    from flipt_client.models import ClientOptions, ClientTokenAuthentication, ErrorStrategy, FetchMode, TlsConfig
except ImportError:
    sys.exit("serve-check.py: run with the Python that has PyPI flipt-client==1.4.5 (e.g. /tmp/fvenv/bin/python)")

E1 = "/internal/v1/evaluation/snapshot/namespace/"


class Upstream:
    """A plain HTTP server standing in for Flipt: one document per (environment, namespace), SHA-1 ETags."""

    def __init__(self):
        self.documents = {}
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path.rstrip("/")
                environment = self.headers.get("X-Flipt-Environment", "default")
                namespace = urllib.parse.unquote(path[len(E1):]) if path.startswith(E1) else None
                body = upstream.documents.get((environment, namespace))
                if body is None:
                    payload = b'{"code":5,"message":"not found","details":[]}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                etag = hashlib.sha1(body).hexdigest()
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("Etag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Etag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RelayAccess:
    """How clients reach `serve`: plain HTTP, or (secure) HTTPS with the test CA and a client token."""

    # One token that may read every namespace, listed by its SHA-256; one that may read `elsewhere` only.
    TOKEN = "serve-check-token-3vQ9"
    SCOPED_TOKEN = "serve-check-scoped-7Lp2"
    WRONG_TOKEN = "serve-check-unknown-0Zz1"

    def __init__(self, directory, secure):
        self.secure = secure
        if not secure:
            return
        certificates = test_certificates()
        self.ca = os.path.join(directory, "ca.pem")
        self.chain = os.path.join(directory, "chain.pem")
        self.key = os.path.join(directory, "key.pem")
        self.tokens = os.path.join(directory, "tokens.txt")
        for path, name in ((self.ca, "caCertificate"), (self.chain, "serverCertificate"),
                           (self.key, "serverPrivateKey")):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(certificates[name])
        digest = hashlib.sha256(self.TOKEN.encode("utf-8")).hexdigest()
        with open(self.tokens, "w", encoding="utf-8") as handle:
            handle.write(f"# serve-check\nsha256:{digest}\n{self.SCOPED_TOKEN} elsewhere\n")

    def serve_arguments(self):
        if not self.secure:
            return []
        return ["--tls-cert", self.chain, "--tls-key", self.key, "--client-tokens", self.tokens]

    @property
    def scheme(self):
        return "https" if self.secure else "http"

    def options(self, token=TOKEN):
        """ClientOptions arguments for the official client: TLS and the token, when secure."""
        if not self.secure:
            return {}
        options = {"tls_config": TlsConfig(ca_cert_file=self.ca)}
        if token is not None:
            options["authentication"] = ClientTokenAuthentication(client_token=token)
        return options

    def connection(self, port):
        if not self.secure:
            return http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        context = ssl.create_default_context(cafile=self.ca)
        return http.client.HTTPSConnection("localhost", port, timeout=10, context=context)

    def headers(self):
        return {"Authorization": f"Bearer {self.TOKEN}"} if self.secure else {}


def test_certificates():
    """The PEM constants of Sources/FliptTestSupport/TestCertificates.swift, by Swift name."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = read_text(os.path.join(root, "Sources", "FliptTestSupport", "TestCertificates.swift"))
    found = {}
    for name, body in re.findall(r'(?:public|package) static let (\w+) = """\n(.*?)\n\s*"""', text, re.S):
        found[name] = "\n".join(line.strip() for line in body.split("\n")) + "\n"
    return found


def fixtures(directory):
    """(environment, document path, requests path, namespace) for every fixture with requests."""
    found = []
    for folder, prefix in ((directory, ""), (os.path.join(directory, "schema"), "schema-")):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".document.json"):
                continue
            stem = name[: -len(".document.json")]
            requests = os.path.join(folder, stem + ".requests.jsonl")
            if not os.path.exists(requests):
                continue
            namespace_file = os.path.join(folder, stem + ".namespace")
            namespace = "default"
            if os.path.exists(namespace_file):
                with open(namespace_file, encoding="utf-8") as handle:
                    namespace = handle.read().strip()
            environment = re.sub(r"[^-_a-zA-Z0-9]", "_", prefix + stem)
            found.append((environment, os.path.join(folder, name), requests, namespace))
    return found


def answer(client, request):
    """The engine's raw answer envelope (a dict) for one request line, through the client's own engine."""
    ffi, engine, namespace = client.ffi_core, client.engine, client.namespace_key

    def item(r):
        return {"namespace_key": namespace, "flag_key": r.get("flag_key", ""),
                "entity_id": r.get("entity_id", ""), "context": r.get("context", {})}

    kind = request.get("type")
    if kind in ("variant", "boolean"):
        payload = json.dumps(item(request), ensure_ascii=False).encode("utf-8")
        function = ffi.evaluate_variant if kind == "variant" else ffi.evaluate_boolean
        pointer = function(engine, payload)
    elif kind == "batch":
        payload = json.dumps([item(r) for r in request.get("requests", [])], ensure_ascii=False).encode("utf-8")
        pointer = ffi.evaluate_batch(engine, payload)
    elif kind == "list":
        pointer = ffi.list_flags(engine)
    else:
        raise ValueError(f"unknown request type {kind!r}")
    text = ctypes.cast(pointer, ctypes.c_char_p).value
    ffi.destroy_string(pointer)
    return json.loads(text)


def normalized(value, key=None):
    """Drops timings, and orders segment keys and flag lists, so equal answers compare equal."""
    if isinstance(value, dict):
        return {k: normalized(v, k) for k, v in value.items() if k not in ("timestamp", "request_duration_millis")}
    if isinstance(value, list):
        items = [normalized(v) for v in value]
        if key == "segment_keys":
            return sorted(items)
        if key == "result" and all(isinstance(v, dict) and "key" in v for v in items):
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def start_client(url, environment, namespace, **options):
    return FliptClient(opts=ClientOptions(url=url, environment=environment, namespace=namespace,
                                          error_strategy=ErrorStrategy.FAIL, **options))


def wire_check(port, environment, namespace, etag, access):
    """200 with the upstream's Etag, then 304 with it and no body. Returns a list of problems."""
    problems = []
    connection = access.connection(port)
    path = E1 + urllib.parse.quote(namespace)
    headers = {"X-Flipt-Environment": environment, **access.headers()}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200 or response.getheader("Etag") != etag:
        problems.append(f"GET: {response.status} Etag {response.getheader('Etag')!r}, expected 200 Etag {etag!r}")
    connection.request("GET", path, headers={**headers, "If-None-Match": etag})
    response = connection.getresponse()
    body = response.read()
    if response.status != 304 or response.getheader("Etag") != etag or body:
        problems.append(f"conditional GET: {response.status} Etag {response.getheader('Etag')!r} "
                        f"body {len(body)} bytes, expected 304 Etag {etag!r} and no body")
    connection.close()
    return problems


def flag_keys(client):
    listing = answer(client, {"type": "list"})
    if listing.get("status") != "success":
        return None
    return sorted(flag["key"] for flag in listing["result"])


def stream_check(tool, upstream, cache, relay_url, environment_vars, verbose, access):
    """The official engine in streaming mode against serve: it must follow a cache change written by another
    process (`flipt-offline sync`) through the v2 stream. Returns a list of problems."""
    environment = "stream-check"

    def publish(flag):
        document = {"namespace": {"key": "default"},
                    "flags": [{"key": flag, "name": "", "enabled": True, "type": "BOOLEAN_FLAG_TYPE"}]}
        upstream.documents[(environment, "default")] = json.dumps(document).encode("utf-8")
        sync = subprocess.run([tool, "sync", "--cache", cache, "--url", upstream.url, "--environment", environment],
                              capture_output=True, text=True, env=environment_vars, timeout=60)
        return sync.returncode

    def wait_for(client, keys, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if flag_keys(client) == keys:
                return True
            time.sleep(0.05)
        return False

    problems = []
    if publish("streamed-one") != 0:
        return ["sync of the stream check's first document failed"]
    time.sleep(0.5)  # serve notices the new cache entry within milliseconds (250 ms at worst)
    client = FliptClient(opts=ClientOptions(url=relay_url, environment=environment, namespace="default",
                                            fetch_mode=FetchMode.STREAMING, error_strategy=ErrorStrategy.FAIL,
                                            **access.options()))
    try:
        if not wait_for(client, ["streamed-one"]):
            problems.append(f"streaming client: expected [streamed-one], has {flag_keys(client)}")
        elif publish("streamed-two") != 0:
            problems.append("sync of the stream check's second document failed")
        else:
            started = time.monotonic()
            if not wait_for(client, ["streamed-two"]):
                problems.append(f"streaming client did not receive the change: has {flag_keys(client)}")
            elif verbose:
                print(f"stream: the official engine in streaming mode received the change "
                      f"{time.monotonic() - started:.2f} s after the cache was written")
    finally:
        client.close()
    return problems


def refusal_check(tool, upstream, cache, relay_url, environment_vars, verbose, access):
    """With no token, an unknown one, or one for another namespace, the official client (polling and streaming)
    gets an error that names 401 or 403, and no flag value; the right token gets the flags (the control).
    Returns a list of problems."""
    environment = "refusal-check"
    document = {"namespace": {"key": "default"},
                "flags": [{"key": "guarded", "name": "", "enabled": True, "type": "BOOLEAN_FLAG_TYPE"}]}
    upstream.documents[(environment, "default")] = json.dumps(document).encode("utf-8")
    sync = subprocess.run([tool, "sync", "--cache", cache, "--url", upstream.url, "--environment", environment],
                          capture_output=True, text=True, env=environment_vars, timeout=60)
    if sync.returncode != 0:
        return [f"sync of the refusal check's document failed: {sync.stderr.strip()}"]
    time.sleep(0.5)  # serve notices the new cache entry within about 250 ms
    problems = []
    cases = [("the right token", access.TOKEN, None), ("no token", None, "401"),
             ("an unknown token", access.WRONG_TOKEN, "401"),
             ("a token for another namespace", access.SCOPED_TOKEN, "403")]
    for mode in (FetchMode.POLLING, FetchMode.STREAMING):
        for label, token, status in cases:
            try:
                client = FliptClient(opts=ClientOptions(url=relay_url, environment=environment, namespace="default",
                                                        fetch_mode=mode, error_strategy=ErrorStrategy.FAIL,
                                                        **access.options(token)))
            except FliptError as error:
                if status is None:
                    problems.append(f"{mode.value}, {label}: the client could not be created: {error}")
                elif verbose:
                    print(f"refusal: {mode.value}, {label}: refused at construction: {error}")
                continue
            try:
                # A streaming client has no snapshot until its first message: ask until the answer settles.
                deadline = time.monotonic() + 10
                while True:
                    try:
                        outcome = ("value", client.evaluate_boolean("guarded", "entity", {}).enabled)
                    except FliptError as error:
                        outcome = ("error", str(error))
                    settled = outcome[0] == "value" or (status is not None and status in outcome[1])
                    if settled or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                if status is None:
                    if outcome != ("value", True):
                        problems.append(f"{mode.value}, {label}: expected guarded = true, got {outcome}")
                elif outcome[0] == "value":
                    problems.append(f"{mode.value}, {label}: a flag value was returned: {outcome}")
                elif status not in outcome[1]:
                    problems.append(f"{mode.value}, {label}: the error does not name {status}: {outcome[1]}")
                elif verbose:
                    print(f"refusal: {mode.value}, {label}: {outcome[1]}")
                if status is not None:
                    try:
                        listed = [flag.key for flag in client.list_flags()]
                        problems.append(f"{mode.value}, {label}: list_flags returned {listed}")
                    except FliptError:
                        pass
            finally:
                client.close()
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flipt-offline", required=True, help="the built flipt-offline executable")
    parser.add_argument("--fixtures", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures"))
    parser.add_argument("--tls-and-tokens", action="store_true",
                        help="serve over HTTPS with client tokens; clients use tls_config and a client token")
    parser.add_argument("--max-fixtures", type=int, default=None, help="serve only the first N fixtures")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args()
    tool = arguments.flipt_offline
    passed = failed = skipped = 0
    failures = []

    upstream = Upstream()
    cases = fixtures(arguments.fixtures)[:arguments.max_fixtures]
    with tempfile.TemporaryDirectory(prefix="serve-check-") as directory:
        access = RelayAccess(directory, arguments.tls_and_tokens)
        cache = os.path.join(directory, "cache.sqlite3")
        log_path = os.path.join(directory, "serve.log")
        environment_vars = {k: v for k, v in os.environ.items() if not k.startswith("FLIPT_")}
        synced = []
        for environment, document, requests, namespace in cases:
            with open(document, "rb") as handle:
                upstream.documents[(environment, namespace)] = handle.read()
            sync = subprocess.run(
                [tool, "sync", "--cache", cache, "--url", upstream.url, "--environment", environment,
                 "--namespace", namespace],
                capture_output=True, text=True, env=environment_vars, timeout=60)
            if sync.returncode == 0:
                synced.append((environment, document, requests, namespace))
                continue
            # Only documents the official engine rejects as well may be refused by the cache.
            oracle = start_client(upstream.url, environment, namespace)
            listing = answer(oracle, {"type": "list"})
            oracle.close()
            if listing.get("status") != "success":
                skipped += 1
                if arguments.verbose:
                    print(f"{environment}: skipped, the official engine rejects it too: {listing.get('error_message')}")
            else:
                failed += 1
                failures.append(f"{environment}: sync exited {sync.returncode} ({sync.stderr.strip()}), "
                                "but the official engine accepts the document")

        with open(log_path, "w") as log:
            serve = subprocess.Popen(
                [tool, "serve", "--cache", cache, "--listen", "127.0.0.1:0", "--log-level", "debug"]
                + access.serve_arguments(),
                stdout=subprocess.DEVNULL, stderr=log, env=environment_vars)
        try:
            port = None
            deadline = time.monotonic() + 20
            while port is None and time.monotonic() < deadline and serve.poll() is None:
                match = re.search(rf"listening on {access.scheme}://127\.0\.0\.1:(\d+)", read_text(log_path))
                port = int(match.group(1)) if match else None
                time.sleep(0.02)
            if port is None:
                sys.exit(f"serve-check: flipt-offline serve did not start:\n{read_text(log_path)}")
            # The test certificate names 127.0.0.1 and localhost.
            relay_url = f"{access.scheme}://{'localhost' if access.secure else '127.0.0.1'}:{port}"

            for environment, document, requests, namespace in synced:
                oracle = start_client(upstream.url, environment, namespace)
                relay = start_client(relay_url, environment, namespace, **access.options())
                with open(requests, encoding="utf-8") as handle:
                    lines = [line for line in handle.read().split("\n") if line.strip()]
                fixture_failures = 0
                for number, line in enumerate(lines, 1):
                    request = json.loads(line)
                    expected = normalized(answer(oracle, request))
                    actual = normalized(answer(relay, request))
                    if expected == actual:
                        passed += 1
                    else:
                        failed += 1
                        fixture_failures += 1
                        if fixture_failures <= 3:
                            failures.append(f"{environment} line {number}: {line}\n  official via upstream: "
                                            f"{json.dumps(expected)}\n  official via serve:    {json.dumps(actual)}")
                # The engine polls again at once after its initial fetch, with If-None-Match: serve must
                # answer it 304 (the debug log line names the environment and namespace served).
                problems = []
                engine_poll = re.compile(r" 304 0 B .* " + re.escape(f"{environment}/{namespace}") + " etag ")
                deadline = time.monotonic() + 5
                while not engine_poll.search(read_text(log_path)):
                    if time.monotonic() > deadline:
                        problems.append("the official engine's second poll was not answered 304")
                        break
                    time.sleep(0.01)
                # Guard against equal failures: the relay's engine must hold the document.
                listing = answer(relay, {"type": "list"})
                if listing.get("status") != "success":
                    problems.append(f"the engine behind serve has no usable snapshot: {listing.get('error_message')}")
                relay.close()
                oracle.close()
                etag = hashlib.sha1(upstream.documents[(environment, namespace)]).hexdigest()
                problems += wire_check(port, environment, namespace, etag, access)
                if problems:
                    failed += 1
                    failures.extend(f"{environment}: {problem}" for problem in problems)
                else:
                    passed += 1
                if arguments.verbose:
                    print(f"{environment}: {len(lines)} requests, {fixture_failures} different, "
                          f"wire {'ok' if not problems else 'FAILED'}")
            problems = stream_check(tool, upstream, cache, relay_url, environment_vars, arguments.verbose, access)
            if problems:
                failed += 1
                failures.extend(f"stream: {problem}" for problem in problems)
            else:
                passed += 1
            if access.secure:
                problems = refusal_check(tool, upstream, cache, relay_url, environment_vars, arguments.verbose,
                                         access)
                if problems:
                    failed += 1
                    failures.extend(f"refusal: {problem}" for problem in problems)
                else:
                    passed += 1
                log = read_text(log_path)
                if any(token in log for token in (access.TOKEN, access.SCOPED_TOKEN, access.WRONG_TOKEN)):
                    failed += 1
                    failures.append("a client token appears in serve's log")
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                status = serve.wait(timeout=10)
            except subprocess.TimeoutExpired:
                serve.kill()
                status = "killed after 10 s"
        if status != 0:
            failed += 1
            failures.append(f"serve did not exit 0 on SIGTERM: {status}")
    upstream.stop()

    for failure in failures:
        print(failure)
    mode = " over https with client tokens" if arguments.tls_and_tokens else ""
    print(f"serve-check: {passed} passed, {failed} failed ({len(synced)} fixtures served{mode}, "
          f"{skipped} rejected by both engines and skipped)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
