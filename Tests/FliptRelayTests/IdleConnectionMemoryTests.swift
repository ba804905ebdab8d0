import CFliptHeap
import Foundation
import Testing

@testable import FliptRelay

/// An idle kept-alive connection holds no snapshot: once a document is replaced, the bytes of the old one are
/// freed even though connections that received it stay open.
@Suite("Relay memory of idle connections", .serialized, .timeLimit(.minutes(1)))
struct IdleConnectionMemoryTests {
    /// A document of about `size` bytes whose flag name is one letter, chosen by `revision`, repeated.
    static func document(revision: Int, size: Int) -> [UInt8] {
        var bytes = Array("{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"f\",\"name\":\"".utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "a") + UInt8(revision % 26), count: size))
        bytes.append(contentsOf: Array("\"}]}".utf8))
        return bytes
    }

    /// The served snapshot of `document`, with an ETag and content identity given (no hashing of 2 MiB).
    static func served(_ document: [UInt8], revision: Int) -> ServedSnapshot {
        ServedSnapshot(
            namespace: "default",
            environment: "default",
            document: document,
            etag: "revision-\(revision)",
            origin: "test",
            contentHash: "revision-\(revision)"
        )
    }

    static var heapInUse: Int { Int(flipt_heap_current().in_use) }

    @Test("8 connections, each left idle after receiving another revision of a 2 MiB document, hold none of them")
    func idleConnectionsHoldNoSnapshot() async throws {
        try #require(flipt_heap_current().available != 0, "the allocator reports no figures on this platform")
        let size = 2 << 20
        let revisions = 8
        let catalog = SnapshotCatalog()
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            var connections: [RawHTTPClient] = []
            catalog.replace(with: [Self.served(Self.document(revision: 0, size: size), revision: 0)])
            let before = Self.heapInUse
            for revision in 0..<revisions {
                let document = Self.document(revision: revision, size: size)
                if revision > 0 {
                    catalog.replace(with: [Self.served(document, revision: revision)])
                }
                let client = try RawHTTPClient(port: port)
                try client.get("/internal/v1/evaluation/snapshot/namespace/default")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == document)
                connections.append(client)  // kept open, idle, after it received revision `revision`
            }
            // The last revision is held by the catalog; the seven before it must be gone. Held, they would add
            // 14 MiB; allow 6 MiB for the allocator's own keeping and the test's buffers.
            let grown = Self.heapInUse - before
            #expect(
                grown < 6 << 20,
                "heap in use grew by \(grown >> 10) KiB with \(connections.count) idle connections open"
            )
            // The connections are still usable: nothing was closed to free the memory.
            let last = try #require(connections.first)
            try last.get("/internal/v1/evaluation/snapshot/namespace/default")
            #expect(try last.readResponse().status == 200)
        }
    }
}
