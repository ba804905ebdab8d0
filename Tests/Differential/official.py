#!/usr/bin/env python3
"""Answer request lines with the official Flipt engine (the oracle of the differential tests).

Usage:
    official.py DOCUMENT REQUESTS OUTPUT [--namespace NS]
    official.py --pairs DOC1 REQ1 OUT1 [DOC2 REQ2 OUT2 ...] [--namespace NS]
    official.py --check-rejected DOC...        # exit 0 iff the engine rejects every DOC

The configured namespace is --namespace if given, else the content of `X.namespace` next to a
document named `X.document.json`, else `default`.

The official engine (libfliptengine.so from PyPI `flipt-client`, located through the installed
`flipt_client` package of the running interpreter, or through FLIPT_ENGINE_LIB) only loads its
document from a Flipt server, so each document is served from a loopback HTTP responder on
127.0.0.1 and the engine is pointed at it (polling, error strategy `fail`).

Request lines (one JSON object per line):
    {"type":"variant","flag_key":…,"entity_id":…,"context":{…}}
    {"type":"boolean",…}
    {"type":"batch","requests":[{"flag_key":…,"entity_id":…,"context":{…}},…]}
    {"type":"list"}
Output: the engine's answer envelope, verbatim, one line per request.
"""

import ctypes
import http.server
import json
import os
import socket
import sys
import threading

# The musl build of the engine aborts the process when RUST_BACKTRACE is set and an error is
# formatted. Re-executing is the only sure way: the Rust runtime may read the variable early.
if os.environ.get("RUST_BACKTRACE") is not None:
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def engine_library_path():
    """The path of the official engine's shared library."""
    explicit = os.environ.get("FLIPT_ENGINE_LIB")
    if explicit:
        return explicit
    import importlib.util

    spec = importlib.util.find_spec("flipt_client")
    if spec is None or spec.origin is None:
        sys.exit("official.py: the `flipt_client` package is not installed in this Python "
                 "(use the venv that has PyPI flipt-client==1.4.5, or set FLIPT_ENGINE_LIB)")
    package_dir = os.path.dirname(spec.origin)
    path = os.path.normpath(os.path.join(package_dir, "..", "ext", "linux_x86_64", "libfliptengine.so"))
    if not os.path.exists(path):
        sys.exit(f"official.py: no engine library at {path}; set FLIPT_ENGINE_LIB")
    return path


class DocumentServer:
    """Serves the current document body to every GET, with an ETag, on 127.0.0.1 and a random port."""

    def __init__(self):
        self.body = b""
        self.etag = '"0"'
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):  # noqa: N802 (http.server naming)
                etag = outer.etag
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("Etag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Etag", etag)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, body):
        """Serve `body` from now on, under a new ETag."""
        self.body = body
        self.etag = '"%d"' % (int(self.etag.strip('"')) + 1)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class OfficialEngine:
    """A thin ctypes binding of the engine's C ABI: JSON string in, JSON string out."""

    def __init__(self, library):
        lib = ctypes.CDLL(library)
        lib.initialize_engine.argtypes = [ctypes.c_char_p]
        lib.initialize_engine.restype = ctypes.c_void_p
        lib.destroy_engine.argtypes = [ctypes.c_void_p]
        lib.destroy_engine.restype = None
        for name in ("evaluate_variant", "evaluate_boolean", "evaluate_batch"):
            function = getattr(lib, name)
            function.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            function.restype = ctypes.c_void_p
        lib.list_flags.argtypes = [ctypes.c_void_p]
        lib.list_flags.restype = ctypes.c_void_p
        lib.destroy_string.argtypes = [ctypes.c_void_p]
        lib.destroy_string.restype = None
        self.lib = lib

    def start(self, url, namespace):
        options = {"url": url, "namespace": namespace, "fetch_mode": "polling", "error_strategy": "fail"}
        handle = self.lib.initialize_engine(json.dumps(options).encode())
        if not handle:
            sys.exit("official.py: initialize_engine returned a null engine")
        return handle

    def stop(self, handle):
        self.lib.destroy_engine(handle)

    def _take(self, pointer):
        text = ctypes.string_at(pointer).decode("utf-8")
        self.lib.destroy_string(pointer)
        return text

    def call(self, handle, name, payload=None):
        function = getattr(self.lib, name)
        if payload is None:
            return self._take(function(handle))
        return self._take(function(handle, payload.encode("utf-8")))


def ffi_request(namespace, item):
    """One evaluation request in the engine's own request shape."""
    return {
        "namespace_key": namespace,
        "flag_key": item["flag_key"],
        "entity_id": item["entity_id"],
        "context": item.get("context", {}),
    }


def answer(engine, handle, namespace, line):
    request = json.loads(line)
    kind = request["type"]
    if kind == "list":
        return engine.call(handle, "list_flags")
    if kind == "batch":
        payload = [ffi_request(namespace, item) for item in request["requests"]]
        return engine.call(handle, "evaluate_batch", json.dumps(payload, ensure_ascii=False))
    if kind in ("variant", "boolean"):
        payload = ffi_request(namespace, request)
        return engine.call(handle, "evaluate_" + kind, json.dumps(payload, ensure_ascii=False))
    raise ValueError(f"unknown request type {kind!r}")


def configured_namespace(document_path, explicit):
    """The namespace to configure: --namespace, else the `X.namespace` file beside `X.document.json`."""
    if explicit is not None:
        return explicit
    if document_path.endswith(".document.json"):
        sidecar = document_path[: -len(".document.json")] + ".namespace"
        if os.path.exists(sidecar):
            with open(sidecar, encoding="utf-8") as f:
                return f.read().strip()
    return "default"


def run_pair(engine, server, document_path, requests_path, output_path, namespace):
    namespace = configured_namespace(document_path, namespace)
    with open(document_path, "rb") as f:
        server.serve(f.read())
    handle = engine.start(server.url, namespace)
    try:
        with open(requests_path, encoding="utf-8") as requests, \
                open(output_path, "w", encoding="utf-8") as output:
            for line in requests:
                if not line.strip():
                    continue
                text = answer(engine, handle, namespace, line)
                if "\n" in text:
                    text = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
                output.write(text + "\n")
    finally:
        engine.stop(handle)


def is_rejected(engine, server, document_path, namespace):
    """True when the engine refuses the document (it then fails every call with a JSON error)."""
    namespace = configured_namespace(document_path, namespace)
    with open(document_path, "rb") as f:
        server.serve(f.read())
    handle = engine.start(server.url, namespace)
    try:
        answer_text = engine.call(handle, "list_flags")
    finally:
        engine.stop(handle)
    envelope = json.loads(answer_text)
    return envelope["status"] == "failure" and envelope["error_message"].startswith("error parsing json"), answer_text


def main(argv):
    namespace = None
    if "--namespace" in argv:
        index = argv.index("--namespace")
        namespace = argv[index + 1]
        del argv[index:index + 2]
    engine = OfficialEngine(engine_library_path())
    server = DocumentServer()
    try:
        return run_command(engine, server, argv, namespace)
    finally:
        server.close()


def run_command(engine, server, argv, namespace):
    if argv and argv[0] == "--check-rejected":
        failures = 0
        for path in argv[1:]:
            rejected, text = is_rejected(engine, server, path, namespace)
            print(f"{'rejected' if rejected else 'ACCEPTED'} {path}: {text}")
            failures += 0 if rejected else 1
        return 1 if failures else 0
    if argv and argv[0] == "--pairs":
        triples = argv[1:]
    else:
        triples = argv
    if not triples or len(triples) % 3 != 0:
        print(__doc__, file=sys.stderr)
        return 2
    for i in range(0, len(triples), 3):
        run_pair(engine, server, triples[i], triples[i + 1], triples[i + 2], namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
