import FliptStore
import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// The v2 stream: framing, first message, pushes on change, digest, unknown namespaces, shutdown.
@Suite("Relay stream", .timeLimit(.minutes(1)))
struct StreamTests {
    static let path = "/client/v2/environments/default/namespaces/default/stream"

    static func message(_ served: ServedSnapshot) -> [UInt8] {
        Array("{\"result\":".utf8) + served.document + Array("}\n".utf8)
    }

    @Test("headers come with the first message, chunked; each change is one more line; stop ends the body")
    func pushes() async throws {
        let first = RelayFixtures.served(flag: "one", etag: "e1")
        let catalog = SnapshotCatalog(snapshots: [first])
        let server = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: catalog
        )
        let port = try await server.start().port
        let client = try RawHTTPClient(port: port)
        try client.get(Self.path, headers: ["If-None-Match: e1", "Accept: application/json"])
        let head = try client.readHead()
        #expect(head.status == 200)
        #expect(head.header("Content-Type") == "application/json")
        #expect(head.header("Transfer-Encoding") == "chunked")
        #expect(head.header("Content-Length") == nil)
        #expect(try client.readChunk() == Self.message(first))
        #expect(await eventually { server.statistics.openStreams == 1 })

        let second = RelayFixtures.served(flag: "two", etag: "e2")
        catalog.replace(with: [second])
        #expect(try client.readChunk() == Self.message(second))

        // The same content again is not sent; the next change is.
        catalog.replace(with: [RelayFixtures.served(flag: "two", etag: "e2")])
        let third = RelayFixtures.served(flag: "three", etag: "e3")
        try await Task.sleep(for: .milliseconds(300))
        catalog.replace(with: [third])
        #expect(try client.readChunk() == Self.message(third))

        await server.shutdown()
        #expect(try client.readChunk().isEmpty)
        #expect(client.isClosedByPeer())
        #expect(server.statistics.openStreams == 0)
    }

    @Test("a pretty-printed document is sent on one line")
    func oneLine() async throws {
        let served = ServedSnapshot(
            namespace: "default",
            environment: "default",
            document: RelayFixtures.document(pretty: true) + Array("\r\n".utf8),
            origin: "test"
        )
        #expect(served.document.contains(10))
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.path)
            #expect(try client.readHead().status == 200)
            let line = try client.readChunk()
            #expect(line.last == 10)
            #expect(!line.dropLast().contains(10) && !line.contains(13))
            let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            let result = object?["result"] as? [String: Any]
            #expect((result?["namespace"] as? [String: Any])?["key"] as? String == "default")
        }
    }

    @Test("digest equal to the current ETag skips it: no headers until the snapshot changes")
    func digest() async throws {
        let catalog = SnapshotCatalog(snapshots: [RelayFixtures.served(etag: "known")])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let client = try RawHTTPClient(port: port, timeout: .milliseconds(600))
            try client.get(Self.path + "?digest=known")
            #expect(throws: RawHTTPClient.Failure.self) { try client.readHead() }
            client.setTimeout(.seconds(15))
            let next = RelayFixtures.served(flag: "next", etag: "newer")
            catalog.replace(with: [next])
            #expect(try client.readHead().status == 200)
            #expect(try client.readChunk() == Self.message(next))
        }
    }

    @Test("an unknown namespace is accepted and waits, silent, until the namespace appears")
    func unknownNamespaceWaits() async throws {
        let catalog = SnapshotCatalog()
        try await RelayFixtures.withServer(catalog: catalog) { server, port in
            let client = try RawHTTPClient(port: port, timeout: .milliseconds(600))
            try client.get(Self.path)
            #expect(throws: RawHTTPClient.Failure.self) { try client.readHead() }
            client.setTimeout(.seconds(15))
            #expect(server.statistics.openStreams == 1)
            let served = RelayFixtures.served(etag: "arrived")
            catalog.replace(with: [served])
            #expect(try client.readHead().status == 200)
            #expect(try client.readChunk() == Self.message(served))
        }
    }

    @Test("the stream ends when the client leaves")
    func clientLeaves() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [RelayFixtures.served()])) {
            server,
            port in
            do {
                let client = try RawHTTPClient(port: port)
                try client.get(Self.path)
                _ = try client.readHead()
                _ = try client.readChunk()
            }
            #expect(await eventually { server.statistics.openStreams == 0 })
            #expect(await eventually { server.statistics.openConnections == 0 })
        }
    }

    @Test("HTTP/1.0 streams are sent raw and closed at stop")
    func http10() async throws {
        let served = RelayFixtures.served()
        let server = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog(snapshots: [served])
        )
        let port = try await server.start().port
        let client = try RawHTTPClient(port: port)
        try client.send("GET \(Self.path) HTTP/1.0\r\n\r\n")
        let head = try client.readHead()
        #expect(head.header("Transfer-Encoding") == nil)
        #expect(head.header("Connection") == "close")
        #expect(await eventually { server.statistics.openStreams == 1 })
        await server.shutdown()
        #expect(client.readToEnd() == Self.message(served))
        #expect(client.isClosedByPeer())
    }

    @Test("a stream follows a cache file written through another connection (as another process would)")
    func followsTheCache() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite3").path
            let key = SnapshotKey(
                url: URL(string: "http://upstream:8080")!,
                environment: "default",
                namespace: "default"
            )
            let writer = try await SnapshotStore(path: path)
            try await writer.save(
                NewSnapshot(document: Data(RelayFixtures.document(flag: "first")), etag: "up-1"),
                for: key
            )
            let catalog = SnapshotCatalog()
            let watcher = await CacheWatcher(
                store: try SnapshotStore(path: path),
                catalog: catalog,
                interval: .milliseconds(50)
            )
            try watcher.refresh()
            watcher.start()
            defer { watcher.stop() }
            try await RelayFixtures.withServer(catalog: catalog) { _, port in
                let client = try RawHTTPClient(port: port)
                try client.get(Self.path)
                #expect(try client.readHead().status == 200)
                let first = try client.readChunk()
                #expect(String(decoding: first, as: UTF8.self).contains("\"first\""))

                let started = ContinuousClock.now
                try writer.save(
                    NewSnapshot(document: Data(RelayFixtures.document(flag: "second")), etag: "up-2"),
                    for: key
                )
                let second = try client.readChunk()
                #expect(String(decoding: second, as: UTF8.self).contains("\"second\""))
                #expect(ContinuousClock.now - started < .seconds(10))

                let poll = try RawHTTPClient(port: port)
                try poll.get("/internal/v1/evaluation/snapshot/namespace/default", headers: ["If-None-Match: up-1"])
                let response = try poll.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Etag") == "up-2")
                #expect(response.header("Age").flatMap(Int.init).map { $0 >= 0 && $0 < 60 } == true)
            }
        }
    }
}
