import FliptTestSupport
import Foundation
import Testing

@testable import Flipt
@testable import FliptStore

/// Clients whose cache file another process has locked wait for it on the store's thread: their sync tasks
/// suspend, the rest of the program keeps running, and the snapshots are saved once the lock is released.
@Suite("FliptClient while another process holds the cache file's write lock")
struct CacheLockClientTests {
    /// More clients than the cooperative pool has threads (one per core): had each blocked the thread its sync
    /// ran on while waiting for the lock, no other task could run.
    private static let clientCount = ProcessInfo.processInfo.activeProcessorCount * 2 + 2

    @Test("syncs wait for the lock without holding the cooperative pool, then save what they fetched")
    func syncsWaitOffThePool() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            // The clients share the store of their file; this one waits longer for the lock than it is ever held,
            // so that the saves wait and never fail.
            let store = try SharedResources.store(
                path: cache,
                options: SnapshotStore.Options(generationsKept: 3, busyTimeout: .seconds(300))
            )
            try await withTestServer { server in
                let namespaces = (0..<Self.clientCount).map { "ns\($0)" }
                for namespace in namespaces {
                    server.setDocument(FixtureDocument.bytes(namespace: namespace, revision: 1), namespace: namespace)
                }
                let clients = try namespaces.map {
                    try FliptClient(namespace: $0, options: testOptions(url: server.baseURL, cache: cache))
                }
                func savedRevisions(_ revision: Int) -> Bool {
                    namespaces.allSatisfy { namespace in
                        let saved = try? lastGoodInFile(path: cache, url: server.baseURL, namespace: namespace)
                        return saved?.document == Data(FixtureDocument.bytes(namespace: namespace, revision: revision))
                    }
                }
                #expect(await eventually { savedRevisions(1) })

                let lock = try await HeldWriteLock.acquire(path: cache, maximumHold: .seconds(120))
                for namespace in namespaces {
                    server.setDocument(FixtureDocument.bytes(namespace: namespace, revision: 2), namespace: namespace)
                }
                // Each client's sync has reached the store and waits there: one job in SQLite on the store's
                // thread, the others queued behind it, while this task keeps running.
                #expect(await eventually { store.thread.queuedJobCount == Self.clientCount - 1 })
                #expect(clients.contains { (try? servedRevision($0)) == "revision 2" })
                #expect(
                    try clients.allSatisfy {
                        try $0.evaluateBoolean(flagKey: "flag1", entityID: "u").flagKey == "flag1"
                    }
                )
                // Had the syncs blocked the pool, this task would run again only once the other process had given
                // the lock up by itself (after 120 s).
                #expect(lock.isHeld, "the other process gave the lock up before this task could run again")
                #expect(savedRevisions(1))

                await lock.release()
                #expect(await eventually { savedRevisions(2) })
                #expect(await eventually { clients.allSatisfy { (try? servedRevision($0)) == "revision 2" } })
                #expect(clients.allSatisfy { $0.status.cacheProblem == nil })
                for client in clients { await client.shutdown() }
            }
            withExtendedLifetime(store) {}
        }
    }
}
