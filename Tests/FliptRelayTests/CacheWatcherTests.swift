import FliptStore
import FliptTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import FliptRelay

/// Which cache entries the relay serves, and when the catalog changes.
@Suite("Cache watcher")
struct CacheWatcherTests {
    static func key(
        _ url: String,
        environment: String = "default",
        namespace: String = "default",
        reference: String? = nil
    )
        -> SnapshotKey
    {
        SnapshotKey(url: URL(string: url)!, environment: environment, namespace: namespace, reference: reference)
    }

    static func flagKey(_ snapshot: ServedSnapshot?) -> String? {
        guard let snapshot,
            let object = try? JSONSerialization.jsonObject(with: Data(snapshot.document)) as? [String: Any]
        else { return nil }
        return (object["flags"] as? [[String: Any]])?.first?["key"] as? String
    }

    @Test("the watcher's phases only move forward: idle, checking, stopping, stopped")
    func phases() {
        typealias Phase = CacheWatcher.Phase
        #expect(Phase.idle.starting() == (.checking, true))
        #expect(Phase.checking.starting() == (.checking, false))
        #expect(Phase.stopping.starting() == (.stopping, false))
        #expect(Phase.stopped.starting() == (.stopped, false))  // a stopped watcher never starts again
        #expect(Phase.idle.stopping() == (.stopped, false))
        #expect(Phase.checking.stopping() == (.stopping, true))
        #expect(Phase.stopping.stopping() == (.stopping, false))
        #expect(Phase.stopped.stopping() == (.stopped, false))
    }

    @Test("as a service, the watcher serves a write by another process and stops on a graceful shutdown")
    func service() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("c.sqlite3").path
            let writer = try await SnapshotStore(path: path)
            let key = Self.key("http://up")
            try await writer.save(NewSnapshot(document: Data(RelayFixtures.document(flag: "one")), etag: "1"), for: key)
            let catalog = SnapshotCatalog()
            let watcher = await CacheWatcher(store: try SnapshotStore(path: path), catalog: catalog)
            try watcher.refresh()
            let group = ServiceGroup(services: [watcher], logger: Logger(label: "test"))
            async let running: Void = group.run()
            try await writer.save(NewSnapshot(document: Data(RelayFixtures.document(flag: "two")), etag: "2"), for: key)
            #expect(
                await eventually(timeout: .seconds(30)) {
                    Self.flagKey(catalog.snapshot(namespace: "default", environments: [])) == "two"
                }
            )
            await group.triggerGracefulShutdown()
            try await running
            // Stopped: a later write is not served.
            try await writer.save(
                NewSnapshot(document: Data(RelayFixtures.document(flag: "three")), etag: "3"),
                for: key
            )
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.flagKey(catalog.snapshot(namespace: "default", environments: [])) == "two")
            watcher.stop()  // idempotent after the service ended
        }
    }

    @Test("every namespace and environment of the cache is served; the ETag is the stored one, else the hash")
    func servesEveryEntry() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("c.sqlite3").path)
            let withETag = Data(RelayFixtures.document(namespace: "a", flag: "fa"))
            try store.save(NewSnapshot(document: withETag, etag: "etag-a"), for: Self.key("http://up", namespace: "a"))
            let withoutETag = Data(RelayFixtures.document(namespace: "b", flag: "fb"))
            try store.save(
                NewSnapshot(document: withoutETag),
                for: Self.key("http://up", environment: "prod", namespace: "b")
            )
            let catalog = SnapshotCatalog()
            let watcher = CacheWatcher(store: store, catalog: catalog)
            #expect(try watcher.refresh())
            let a = catalog.snapshot(namespace: "a", environments: [])
            #expect(a?.etag == "etag-a")
            #expect(Self.flagKey(a) == "fa")
            let b = catalog.snapshot(namespace: "b", environments: [])
            #expect(b?.environment == "prod")
            #expect(b?.etag == SHA256.hex(withoutETag))
            #expect(catalog.snapshot(namespace: "c", environments: []) == nil)
            // Nothing changed: no new generation of the catalog.
            let generation = catalog.generation
            #expect(try !watcher.refresh())
            #expect(catalog.generation == generation)
        }
    }

    @Test("a 304 recorded by another writer changes the Age, not the catalog generation")
    func confirmationIsNotAChange() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("c.sqlite3").path
            let writer = try SnapshotStore(path: path)
            let key = Self.key("http://up")
            let fetched = Date(timeIntervalSinceNow: -3600)
            try writer.save(
                NewSnapshot(document: Data(RelayFixtures.document()), etag: "x", fetchedAt: fetched),
                for: key
            )
            let catalog = SnapshotCatalog()
            let watcher = CacheWatcher(store: try SnapshotStore(path: path), catalog: catalog)
            try watcher.refresh()
            let generation = catalog.generation
            #expect(
                catalog.snapshot(namespace: "default", environments: [])?.lastConfirmedAt.map {
                    abs($0.timeIntervalSince(fetched)) < 1
                } == true
            )
            try writer.recordNotModified(for: key, at: Date())
            #expect(try !watcher.refresh())
            #expect(catalog.generation == generation)
            #expect(
                catalog.snapshot(namespace: "default", environments: [])?.lastConfirmedAt.map {
                    abs($0.timeIntervalSinceNow) < 5
                } == true
            )
        }
    }

    @Test("several servers for one namespace: --url chooses; without it the most recently confirmed wins")
    func selection() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("c.sqlite3").path)
            try store.save(
                NewSnapshot(
                    document: Data(RelayFixtures.document(flag: "old")),
                    fetchedAt: Date(timeIntervalSinceNow: -60)
                ),
                for: Self.key("http://one")
            )
            try store.save(
                NewSnapshot(document: Data(RelayFixtures.document(flag: "new"))),
                for: Self.key("http://two")
            )
            try store.save(
                NewSnapshot(document: Data(RelayFixtures.document(flag: "branch"))),
                for: Self.key("http://one", reference: "feature")
            )
            func served(_ selection: CacheWatcher.Selection) throws -> String? {
                let catalog = SnapshotCatalog()
                try CacheWatcher(store: store, catalog: catalog, selection: selection).refresh()
                return Self.flagKey(catalog.snapshot(namespace: "default", environments: []))
            }
            #expect(try served(.init()) == "new")
            #expect(try served(.init(serverURL: "http://one")) == "old")
            #expect(try served(.init(serverURL: "HTTP://ONE/")) == "old")
            #expect(try served(.init(serverURL: "http://one", reference: "feature")) == "branch")
            #expect(try served(.init(reference: "feature")) == "branch")
            #expect(try served(.init(serverURL: "http://three")) == nil)
        }
    }

    @Test("fixed documents fill in what the cache lacks; the cache wins for the same namespace")
    func fixedDocuments() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("c.sqlite3").path)
            let catalog = SnapshotCatalog()
            let watcher = CacheWatcher(
                store: store,
                catalog: catalog,
                fixedSnapshots: [
                    RelayFixtures.served(namespace: "default", flag: "from-file"),
                    RelayFixtures.served(namespace: "other", flag: "other-file"),
                ]
            )
            try watcher.refresh()
            #expect(Self.flagKey(catalog.snapshot(namespace: "default", environments: [])) == "from-file")
            try store.save(
                NewSnapshot(document: Data(RelayFixtures.document(flag: "from-cache"))),
                for: Self.key("http://up")
            )
            #expect(try watcher.refresh())
            #expect(Self.flagKey(catalog.snapshot(namespace: "default", environments: [])) == "from-cache")
            #expect(Self.flagKey(catalog.snapshot(namespace: "other", environments: [])) == "other-file")
        }
    }
}
