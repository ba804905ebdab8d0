import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// Answers written as bytes by the relay (no HTTPResponseEncoder), flushed once per read: whole and exact on many
/// connections, pipelined, HEAD without a body, small bodies in the head's buffer, after a change.
@Suite("Relay answer bytes", .serialized, .timeLimit(.minutes(2)))
struct AnswerBytesTests {
    static let v1 = "/internal/v1/evaluation/snapshot/namespace/default"

    static func served(revision: Int) -> ServedSnapshot {
        RelayFixtures.served(flagCount: 200, revision: revision)
    }

    @Test("a large document goes out whole on many connections, pipelined, and the new one after a change")
    func largeDocuments() async throws {
        let firstDocument = FixtureDocument.bytes(flagCount: 200, revision: 1)
        let secondDocument = FixtureDocument.bytes(flagCount: 200, revision: 2)
        let catalog = SnapshotCatalog(snapshots: [Self.served(revision: 1)])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            // Eight connections, spread over the event loops, three pipelined requests each.
            let clients = try (0..<8).map { _ in try RawHTTPClient(port: port) }
            for client in clients {
                try client.send(String(repeating: "GET \(Self.v1) HTTP/1.1\r\nHost: test\r\n\r\n", count: 3))
            }
            for client in clients {
                for _ in 0..<3 {
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    #expect(response.header("Content-Length") == String(firstDocument.count))
                    #expect(response.body == firstDocument)
                }
            }
            // HEAD: the length, no body (the next response on the connection must parse).
            try clients[0].send("HEAD \(Self.v1) HTTP/1.1\r\nHost: test\r\n\r\n")
            let head = try clients[0].readResponse(isHead: true)
            #expect(head.header("Content-Length") == String(firstDocument.count))

            catalog.replace(with: [Self.served(revision: 2)])
            for client in clients {
                try client.get(Self.v1)
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == secondDocument)
            }
        }
    }

    @Test("a small document goes out in the head's buffer, whole, with its ETag; a 304 has no body")
    func smallDocument() async throws {
        let document = FixtureDocument.bytes(flagCount: 2)
        let served = ServedSnapshot(namespace: "default", environment: "default", document: document, origin: "test")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.v1)
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.body == document)
            let etag = try #require(response.header("Etag"))
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.header("Cache-Control") == "no-cache")
            try client.get(Self.v1, headers: ["If-None-Match: \(etag)"])
            let notModified = try client.readResponse()
            #expect(notModified.status == 304)
            #expect(notModified.header("Etag") == etag)
            #expect(notModified.header("Content-Length") == nil)
            #expect(notModified.body.isEmpty)
            try client.send("GET \(Self.v1) HTTP/1.0\r\n\r\n")
            let closing = try client.readResponse()
            #expect(closing.body == document)
            #expect(closing.header("Connection") == "close")
            #expect(client.isClosedByPeer())
        }
    }
}
