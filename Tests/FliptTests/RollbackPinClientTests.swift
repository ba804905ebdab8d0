import Flipt
import FliptStore
import FliptTestSupport
import Foundation
import Testing

/// A running or restarted client honours an operator's rollback: the document rolled back from is not served
/// again until the server sends other content.
@Suite("FliptClient and rollback pins")
struct RollbackPinClientTests {
    private func key(_ url: URL) -> SnapshotKey {
        SnapshotKey(url: url, environment: "default", namespace: "default")
    }

    /// Flag counts of the documents: 2 gives a document held raw, 400 one held compressed (HeldDocumentTests).
    static let flagCounts = [2, 400]

    @Test(
        "a restarted client keeps the pinned generation while the server sends the bad one, then takes new content",
        arguments: flagCounts
    )
    func restartedClient(flagCount: Int) async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(flagCount: flagCount, revision: 1))
                let first = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await first.waitUntilReady(timeout: .seconds(30))
                server.setDocument(FixtureDocument.bytes(flagCount: flagCount, revision: 2))
                #expect(await eventually { (try? servedRevision(first)) == "revision 2" })
                await first.shutdown()

                // The operator rolls back (as `flipt-offline cache rollback` does) while the server still sends 2.
                try await SnapshotStore(path: cache).rollback(for: key(server.baseURL), to: 1)
                server.resetLog()
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                #expect(try servedRevision(client) == "revision 1")
                #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .snapshot).count >= 3 })
                if flagCount > 2 {
                    // Held compressed now: the next fetches compare the pinned generation with it by its hash.
                    #expect(await eventually { client.holdsCompactDocument })
                    server.resetLog()
                    #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .snapshot).count >= 2 })
                }
                #expect(try servedRevision(client) == "revision 1")
                #expect(client.status.isPinnedByRollback)
                #expect(client.status.lastError == nil)
                let store = try await SnapshotStore(path: cache, options: .init(readOnly: true))
                await #expect(try store.lastGood(for: key(server.baseURL))?.generation == 1)
                await #expect(
                    try store.attempts(for: key(server.baseURL)).contains {
                        $0.outcome == .rejected && $0.errorClass == SnapshotStore.pinnedErrorClass
                    }
                )

                // Other content from the server lifts the pin.
                server.setDocument(FixtureDocument.bytes(flagCount: flagCount, revision: 3))
                #expect(await eventually { (try? servedRevision(client)) == "revision 3" })
                #expect(await eventually { !client.status.isPinnedByRollback })
                await #expect(try store.pin(for: key(server.baseURL)) == nil)
                await client.shutdown()
            }
        }
    }

    @Test(
        "a running client that serves the document rolled back from switches to the pinned one at its next fetch",
        arguments: flagCounts
    )
    func runningClient(flagCount: Int) async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(flagCount: flagCount, revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await client.waitUntilReady(timeout: .seconds(30))
                server.setDocument(FixtureDocument.bytes(flagCount: flagCount, revision: 2))
                #expect(await eventually { (try? servedRevision(client)) == "revision 2" })
                // The document rolled back from is recognised by its hash, whether it is held raw or compressed.
                if flagCount > 2 { #expect(await eventually { client.holdsCompactDocument }) }
                let events = client.events()

                // The server answers 304 to the client's ETag of revision 2; the pin still takes effect.
                try await SnapshotStore(path: cache).rollback(for: key(server.baseURL), to: 1)
                #expect(await eventually { (try? servedRevision(client)) == "revision 1" })
                #expect(client.status.isPinnedByRollback)
                #expect(client.status.source == .cache)
                var replaced = false
                for await event in events {
                    if case .snapshotReplaced = event {
                        replaced = true
                        break
                    }
                }
                #expect(replaced)
                await client.shutdown()
            }
        }
    }
}
