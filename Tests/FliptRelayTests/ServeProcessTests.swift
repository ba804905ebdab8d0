import FliptRelay
import FliptStore
import FliptTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built `flipt-offline serve` and `demo`, run as a user would, with other processes writing the cache.
@Suite("flipt-offline serve and demo", .serialized, .timeLimit(.minutes(1)))
struct ServeProcessTests {
    static let e1 = "/internal/v1/evaluation/snapshot/namespace/default"

    static func document(flag: String) -> String {
        "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"\(flag)\",\"name\":\"\",\"enabled\":true}]}"
    }

    /// Starts `serve` with `arguments` on a free port; returns the process and the port it printed.
    static func startServe(_ arguments: [String]) async throws -> (ToolProcess, UInt16) {
        let serve = try ToolProcess(["serve", "--listen", "127.0.0.1:0"] + arguments)
        let port = try await serve.waitForStandardError(matching: "listening on http://127\\.0\\.0\\.1:([0-9]+)")
        return (serve, try #require(UInt16(port)))
    }

    @Test("demo: exit 0, answers from the network then from the cache, temporary files removed")
    func demo() async throws {
        let demo = try ToolProcess(["demo"])
        #expect(await demo.waitForExit(timeout: .seconds(30)) == 0)
        let output = demo.stdout
        #expect(output.contains("[network]"))
        #expect(output.contains("[cache]"))
        #expect(output.contains("source: network"))
        #expect(output.contains("source cache"))
        #expect(output.contains("Same answers"))
        let cachePath = try #require(
            output.split(whereSeparator: \.isWhitespace).first { $0.hasSuffix("cache.sqlite3.") }.map {
                String($0.dropLast())
            }
        )
        #expect(!FileManager.default.fileExists(atPath: cachePath))
        #expect(!FileManager.default.fileExists(atPath: (cachePath as NSString).deletingLastPathComponent))
    }

    @Test("serve answers from a cache that another process writes, streams each change, stops on SIGTERM")
    func followsAnotherWriter() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite3").path
            let key = SnapshotKey(
                url: URL(string: "http://upstream.test")!,
                environment: "default",
                namespace: "default"
            )
            let writer = try await SnapshotStore(path: path)
            try await writer.save(
                NewSnapshot(document: Data(Self.document(flag: "first").utf8), etag: "etag-1"),
                for: key
            )
            let (serve, port) = try await Self.startServe(["--cache", path, "--log-level", "debug"])

            let poll = try RawHTTPClient(port: port)
            try poll.get(Self.e1)
            let first = try poll.readResponse()
            #expect(first.status == 200)
            #expect(first.header("Etag") == "etag-1")
            #expect(first.text == Self.document(flag: "first"))
            try poll.get(Self.e1, headers: ["If-None-Match: etag-1"])
            #expect(try poll.readResponse().status == 304)

            let stream = try RawHTTPClient(port: port)
            try stream.get("/client/v2/environments/default/namespaces/default/stream")
            #expect(try stream.readHead().status == 200)
            #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("\"first\""))

            try await writer.save(
                NewSnapshot(document: Data(Self.document(flag: "second").utf8), etag: "etag-2"),
                for: key
            )
            #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("\"second\""))
            try poll.get(Self.e1, headers: ["If-None-Match: etag-1"])
            #expect(try poll.readResponse().header("Etag") == "etag-2")

            serve.send(SIGTERM)
            #expect(try stream.readChunk().isEmpty)
            #expect(await serve.waitForExit() == 0)
            #expect(serve.stderr.contains("GET \(Self.e1) 304"))
            #expect(serve.stderr.contains("SIGTERM: stopping"))
        }
    }

    @Test("the relay chain: upstream Flipt -> `flipt-offline run` (one process) -> cache -> `serve` (another)")
    func runAlongside() async throws {
        try await withTestServer { upstream in
            upstream.setDocument(json: Self.document(flag: "upstream-1"))
            try await withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("cache.sqlite3").path
                let run = try ToolProcess([
                    "run", "--cache", path, "--url", upstream.baseURL.absoluteString, "--update-interval", "200ms",
                ])
                defer { run.send(SIGKILL) }
                let (serve, port) = try await Self.startServe(["--cache", path])
                defer { serve.send(SIGKILL) }
                let etag = try #require(upstream.digest())
                let arrived = try await eventually(timeout: .seconds(15)) {
                    let client = try RawHTTPClient(port: port)
                    try client.get(Self.e1)
                    return try client.readResponse().header("Etag") == etag
                }
                #expect(arrived, "run: \(run.stdout) \(run.stderr)\nserve: \(serve.stderr)")
                let stream = try RawHTTPClient(port: port, timeout: .seconds(15))
                try stream.get("/client/v2/environments/default/namespaces/default/stream")
                #expect(try stream.readHead().status == 200)
                #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("upstream-1"))
                upstream.setDocument(json: Self.document(flag: "upstream-2"))
                #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("upstream-2"))
                serve.send(SIGINT)
                #expect(await serve.waitForExit() == 0)
                run.send(SIGTERM)
                #expect(await run.waitForExit() == 0)
            }
        }
    }

    @Test("serve --run keeps the cache fresh from --url in the same process")
    func runFlag() async throws {
        try await withTestServer { upstream in
            upstream.setDocument(json: Self.document(flag: "via-run"))
            try await withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("cache.sqlite3").path
                let (serve, port) = try await Self.startServe([
                    "--cache", path, "--run", "--url", upstream.baseURL.absoluteString, "--update-interval", "200ms",
                ])
                defer { serve.send(SIGKILL) }
                let arrived = try await eventually(timeout: .seconds(15)) {
                    let client = try RawHTTPClient(port: port)
                    try client.get(Self.e1)
                    return try client.readResponse().text.contains("via-run")
                }
                #expect(arrived)
                serve.send(SIGTERM)
                #expect(await serve.waitForExit() == 0)
            }
        }
    }

    @Test(
        "serve refuses unusable arguments with the documented exit statuses",
        arguments: [
            (["--listen", "nonsense"], 64),
            (["--run", "--document", "/dev/null"], 64),
            (["--document", "/nonexistent/doc.json"], 3),
            (["--document", "/etc/hostname"], 2),
            (["--document", "/dev/null", "--threads", "0"], 64),
        ] as [([String], Int32)]
    )
    func refusals(arguments: [String], status: Int32) async throws {
        let serve = try ToolProcess(["serve"] + arguments)
        #expect(await serve.waitForExit() == status)
        #expect(!serve.stderr.isEmpty)
    }

    @Test("serve on an address in use exits 1 with a message that names it")
    func addressInUse() async throws {
        try await withTemporaryDirectory { directory in
            let document = directory.appendingPathComponent("doc.json")
            try Data(Self.document(flag: "f").utf8).write(to: document)
            try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { _, port in
                let serve = try ToolProcess(["serve", "--document", document.path, "--listen", "127.0.0.1:\(port)"])
                #expect(await serve.waitForExit() == 1)
                #expect(serve.stderr.contains("127.0.0.1:\(port)"))
            }
        }
    }
}
