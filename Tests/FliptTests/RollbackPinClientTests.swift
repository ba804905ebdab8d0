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

    @Test("a restarted client keeps the pinned generation while the server sends the bad one, then takes new content")
    func restartedClient() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let first = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await first.waitUntilReady(timeout: .seconds(30))
                server.setDocument(FixtureDocument.bytes(revision: 2))
                #expect(await eventually { (try? servedRevision(first)) == "revision 2" })
                await first.shutdown()

                // The operator rolls back (as `flipt-offline cache rollback` does) while the server still sends 2.
                try await SnapshotStore(path: cache).rollback(for: key(server.baseURL), to: 1)
                server.resetLog()
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                #expect(try servedRevision(client) == "revision 1")
                #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .snapshot).count >= 3 })
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
                server.setDocument(FixtureDocument.bytes(revision: 3))
                #expect(await eventually { (try? servedRevision(client)) == "revision 3" })
                #expect(await eventually { !client.status.isPinnedByRollback })
                await #expect(try store.pin(for: key(server.baseURL)) == nil)
                await client.shutdown()
            }
        }
    }

    @Test("a running client that serves the document rolled back from switches to the pinned one at its next fetch")
    func runningClient() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await client.waitUntilReady(timeout: .seconds(30))
                server.setDocument(FixtureDocument.bytes(revision: 2))
                #expect(await eventually { (try? servedRevision(client)) == "revision 2" })
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
