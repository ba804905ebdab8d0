import CFliptSQLite
import FliptTestSupport
import Foundation
import Testing

@testable import FliptStore

/// Documents are read with SQLite's incremental I/O, straight into their own storage (`Connection.value`): the
/// bytes must come back exactly as saved, whatever their size, from the last good row and from older generations.
@Suite("Reading documents")
struct DocumentReadTests {
    /// Sizes around SQLite's page boundaries (16 KiB pages: a value stays in its row's page, spills into one
    /// overflow page, or into a chain of hundreds) and documents of several megabytes, below and above
    /// `ValueStorage.hugePageThreshold` (3 and 5 MB).
    @Test(
        "the last good document and older generations read back byte for byte",
        arguments: [0, 40, 350, 9_000, 16_000]
    )
    func byteForByte(padding: Int) async throws {
        try await withTemporaryDirectory { directory in
            let store = try SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
            var saved: [Data] = []
            for seed in 0..<3 {
                let document = snapshotDocument(flags: 300, seed: seed, padding: padding)
                try store.save(validatedSnapshot(document), for: testKey)
                saved.append(document)
            }
            let lastGood = try #require(try store.lastGood(for: testKey))
            #expect(lastGood.document == saved[2])
            #expect(lastGood.size == saved[2].count)
            for (index, document) in saved.enumerated() {
                let stored = try #require(try store.snapshot(for: testKey, generation: index + 1))
                #expect(stored.document == document, "generation \(index + 1)")
            }
        }
    }

    @Test("a read gives storage of its own that outlives the store")
    func outlivesTheStore() async throws {
        try await withTemporaryDirectory { directory in
            let document = snapshotDocument(flags: 2_000, seed: 7, padding: 200)
            var read: Data?
            do {
                let store = try SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
                try store.save(validatedSnapshot(document), for: testKey)
                read = try store.lastGood(for: testKey)?.document
            }
            // The store and its connection are gone; the bytes are still the document.
            #expect(read == document)
        }
    }

    @Test("a saved document reaches the database file while the store stays open, not only its write-ahead log")
    func checkpointedAfterSave() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let store = try await SnapshotStore(path: path)
            /// The newest document as a reader that ignores the `-wal` file sees it (a copy on read-only media).
            func inDatabaseFile() -> Data? {
                guard let reader = try? Connection(path: path, mode: .immutable, busyTimeout: .zero) else { return nil }
                return try? reader.statement("SELECT document FROM snapshots ORDER BY id DESC LIMIT 1").first {
                    $0.bytes(0)
                } ?? nil
            }
            for seed in 1...2 {
                let document = snapshotDocument(flags: 800, seed: seed, padding: 100)
                try await store.save(validatedSnapshot(document), for: testKey)
                #expect(await eventually { inDatabaseFile() == document }, "save \(seed)")
            }
            // Still open, still serving from the same file.
            let served = try await store.lastGood(for: testKey)?.document
            #expect(served == snapshotDocument(flags: 800, seed: 2, padding: 100))
        }
    }

    @Test("TEXT, BLOB and empty values, and a missing row, through Connection.value")
    func connectionValues() async throws {
        try await withTemporaryDirectory { directory in
            let connection = try Connection(
                path: directory.appendingPathComponent("values.sqlite").path,
                mode: .readWrite,
                busyTimeout: .seconds(5)
            )
            try connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT, blob BLOB)")
            // Every byte value, in a fixed scrambled order (no NUL-terminated or UTF-8 assumption can pass), large
            // enough for the storage of huge pages.
            let large = Data(
                (0..<(ValueStorage.hugePageThreshold + 123_457)).map {
                    UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11)
                }
            )
            try connection.statement("INSERT INTO t (id, text, blob) VALUES (1, ?1, ?2)").run([
                .utf8(Data("héllo, wörld".utf8)), .utf8(Data()),
            ])
            let insert = try connection.statement("INSERT INTO t (id, text, blob) VALUES (2, 'x', ?1)")
            try insert.bind([.null])
            sqlite3_bind_blob(insert.handle, 1, [UInt8](large), Int32(large.count), cflipt_sqlite_transient())
            #expect(try insert.step() == false)
            insert.reset()

            #expect(try connection.value(in: "t", column: "text", row: 1) == Data("héllo, wörld".utf8))
            #expect(try connection.value(in: "t", column: "blob", row: 1) == Data())
            #expect(try connection.value(in: "t", column: "blob", row: 2) == large)
            let missing = #expect(throws: StoreError.self) { try connection.value(in: "t", column: "text", row: 9) }
            #expect(missing?.sql?.contains("row 9 of t") == true, "\(String(describing: missing))")
        }
    }
}
