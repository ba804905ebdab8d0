import FliptTestSupport
import Foundation
import Testing

@testable import FliptStore

/// A rollback that holds: the pinned generation stays last good against the document rolled back from.
@Suite("Rollback pins")
struct RollbackPinTests {
    private func withPinnedStore<T>(
        _ body: (SnapshotStore, _ good: Data, _ bad: Data) throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
            let good = snapshotDocument(seed: 1)
            let bad = snapshotDocument(seed: 2)
            try store.save(validatedSnapshot(good, etag: "\"good\""), for: testKey)
            try store.save(validatedSnapshot(bad, etag: "\"bad\""), for: testKey)
            let rolledBack = try store.rollback(for: testKey, to: 1)
            #expect(rolledBack.isPinned)
            return try body(store, good, bad)
        }
    }

    private func attempt() -> SyncAttempt {
        SyncAttempt(startedAt: Date(), outcome: .updated, httpStatus: 200, duration: .milliseconds(3))
    }

    @Test("the document rolled back from, fetched again, keeps the pinned generation and logs a held attempt")
    func holdsOffTheBadDocument() async throws {
        try await withPinnedStore { store, good, bad in
            let pin = try #require(try store.pin(for: testKey))
            #expect(pin.generation == 1)
            #expect(pin.rolledBackFromGeneration == 2)
            #expect(pin.rolledBackFromHash == SHA256.hex(bad))

            let held = try store.save(validatedSnapshot(bad, etag: "\"bad\""), for: testKey, attempt: attempt())
            #expect(held.generation == 1)
            #expect(held.isPinned)
            #expect(try store.lastGood(for: testKey)?.document == good)
            #expect(try store.history(for: testKey).map(\.generation) == [2, 1])
            let logged = try #require(try store.attempts(for: testKey).first)
            #expect(logged.outcome == .rejected)
            #expect(logged.errorClass == SnapshotStore.pinnedErrorClass)
            #expect(logged.httpStatus == 200)
            #expect(try store.entries().first?.pin == pin)
            #expect(try store.history(for: testKey).filter(\.isPinned).map(\.generation) == [1])
        }
    }

    @Test("a document with other content lifts the pin and is stored as usual")
    func otherContentLiftsThePin() async throws {
        try await withPinnedStore { store, _, _ in
            let fixed = snapshotDocument(seed: 3)
            let saved = try store.save(validatedSnapshot(fixed, etag: "\"fixed\""), for: testKey)
            #expect(saved.generation == 3)
            #expect(!saved.isPinned)
            #expect(try store.pin(for: testKey) == nil)
            #expect(try store.lastGood(for: testKey)?.document == fixed)
        }
    }

    @Test("the server sending the pinned content itself lifts the pin (the server was fixed)")
    func pinnedContentLiftsThePin() async throws {
        try await withPinnedStore { store, good, _ in
            let saved = try store.save(validatedSnapshot(good, etag: "\"good-again\""), for: testKey)
            #expect(saved.generation == 1)
            #expect(!saved.isPinned)
            #expect(saved.etag == "\"good-again\"")
            #expect(try store.pin(for: testKey) == nil)
        }
    }

    @Test("an import of the document rolled back from is the operator's choice: it lifts the pin")
    func importLiftsThePin() async throws {
        try await withPinnedStore { store, _, bad in
            let saved = try store.save(validatedSnapshot(bad, source: .imported), for: testKey)
            #expect(saved.generation == 3)
            #expect(try store.pin(for: testKey) == nil)
            #expect(try store.lastGood(for: testKey)?.document == bad)
        }
    }

    @Test("unpin lifts the pin and keeps the last good; the next fetch of the bad document is stored")
    func unpin() async throws {
        try await withPinnedStore { store, good, bad in
            let lifted = try #require(try store.unpin(for: testKey))
            #expect(lifted.generation == 1)
            #expect(try store.unpin(for: testKey) == nil)
            #expect(try store.lastGood(for: testKey)?.document == good)
            let saved = try store.save(validatedSnapshot(bad), for: testKey)
            #expect(!saved.isPinned)
            #expect(try store.lastGood(for: testKey)?.document == bad)
        }
    }

    @Test("a second rollback keeps holding off the content first rolled back from; rolling to it lifts the pin")
    func secondRollback() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
            let bad = snapshotDocument(seed: 3)
            for document in [snapshotDocument(seed: 1), snapshotDocument(seed: 2), bad] {
                try store.save(validatedSnapshot(document), for: testKey)
            }
            try store.rollback(for: testKey, to: 2)
            try store.rollback(for: testKey, to: 1)
            let pin = try #require(try store.pin(for: testKey))
            #expect(pin.generation == 1)
            #expect(pin.rolledBackFromGeneration == 3)
            #expect(pin.rolledBackFromHash == SHA256.hex(bad))
            #expect(try store.save(validatedSnapshot(bad), for: testKey).generation == 1)

            let forward = try store.rollback(for: testKey, to: 3)
            #expect(!forward.isPinned)
            #expect(try store.pin(for: testKey) == nil)
        }
    }

    @Test("rollback without pinning leaves the next fetch free to replace it")
    func withoutPin() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
            let bad = snapshotDocument(seed: 2)
            try store.save(validatedSnapshot(snapshotDocument(seed: 1)), for: testKey)
            try store.save(validatedSnapshot(bad), for: testKey)
            #expect(try !store.rollback(for: testKey, to: 1, pinning: false).isPinned)
            #expect(try store.pin(for: testKey) == nil)
            #expect(try store.save(validatedSnapshot(bad), for: testKey).generation == 3)
        }
    }

    @Test("the readable view shows the pin to the sqlite3 command-line tool's SQL")
    func viewShowsThePin() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let store = try SnapshotStore(path: path)
            try store.save(validatedSnapshot(snapshotDocument(seed: 1)), for: testKey)
            try store.save(validatedSnapshot(snapshotDocument(seed: 2)), for: testKey)
            try store.rollback(for: testKey, to: 1)
            let connection = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
            let row = try connection.statement(
                "SELECT generation, rolled_back_from_generation, pinned_at IS NOT NULL FROM cached_snapshots"
            )
            .first { ($0.int64(0), $0.int64(1), $0.int64(2)) }
            #expect(row?.0 == 1)
            #expect(row?.1 == 2)
            #expect(row?.2 == 1)
        }
    }
}
