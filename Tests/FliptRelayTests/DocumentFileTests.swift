import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// Documents sent with sendfile(2) from their file on plain connections: whole and exact on every event loop,
/// pipelined, after a change, and the replaced document's file closed.
@Suite("Relay document files", .serialized, .timeLimit(.minutes(2)))
struct DocumentFileTests {
    static let v1 = "/internal/v1/evaluation/snapshot/namespace/default"

    static func served(revision: Int) -> ServedSnapshot {
        ServedSnapshot(
            namespace: "default",
            environment: "default",
            document: FixtureDocument.bytes(flagCount: 200, revision: revision),
            origin: "test"
        )
    }

    /// The names of the documents' files this process holds descriptors of (Linux: `/proc/self/fd`).
    static func openDocumentFiles() -> Set<String> {
        let manager = FileManager.default
        let descriptors = (try? manager.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(
            descriptors.compactMap { try? manager.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
                .filter { $0.contains("flipt-relay-document-") }
        )
    }

    @Test("a large document goes out whole from its file on many connections, pipelined; a replaced one is closed")
    func largeDocuments() async throws {
        let firstDocument = FixtureDocument.bytes(flagCount: 200, revision: 1)
        let secondDocument = FixtureDocument.bytes(flagCount: 200, revision: 2)
        #expect(firstDocument.count >= DocumentFile.minimumSize)
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
            #if os(Linux)
            let firstFiles = Self.openDocumentFiles()
            #expect(!firstFiles.isEmpty)
            #endif

            catalog.replace(with: [Self.served(revision: 2)])
            for client in clients {
                try client.get(Self.v1)
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == secondDocument)
            }
            #if os(Linux)
            // The first document's file is closed once no write needs it; the second one's is open.
            var files = Self.openDocumentFiles()
            let deadline = ContinuousClock.now + .seconds(20)
            while !files.isDisjoint(with: firstFiles) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                files = Self.openDocumentFiles()
            }
            #expect(files.isDisjoint(with: firstFiles), "still open: \(files.intersection(firstFiles))")
            #expect(!files.isEmpty)
            #endif
        }
    }

    @Test("a document too small for a file is sent from memory, whole")
    func smallDocument() async throws {
        let document = FixtureDocument.bytes(flagCount: 2)
        #expect(document.count < DocumentFile.minimumSize)
        let served = ServedSnapshot(namespace: "default", environment: "default", document: document, origin: "test")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            #if os(Linux)
            let before = Self.openDocumentFiles()
            #endif
            let client = try RawHTTPClient(port: port)
            try client.get(Self.v1)
            let response = try client.readResponse()
            #expect(response.body == document)
            #if os(Linux)
            #expect(Self.openDocumentFiles() == before)
            #endif
        }
    }
}
