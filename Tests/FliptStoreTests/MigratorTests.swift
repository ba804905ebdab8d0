import FliptTestSupport
import Foundation
import Testing

@testable import FliptStore

@Suite("Migrator")
struct MigratorTests {
    /// The file's main bytes and its -wal, for "the file was not changed" checks (an empty or missing -wal
    /// holds nothing: SQLite creates an empty one while a connection is open).
    private func fileState(_ path: String) -> [Data?] {
        [contents(of: path), contents(of: path + "-wal") ?? Data()]
    }

    private func appliedRows(_ path: String) throws -> [String] {
        let connection = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
        return try connection.statement("SELECT name FROM schema_migrations ORDER BY id").rows { $0.text(0) ?? "" }
    }

    @Test("a fresh file gets every migration, the application id, user_version and WAL")
    func fresh() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let store = try SnapshotStore(path: path)
            #expect(try store.appliedMigrations().map(\.name) == Migration.embedded.map(\.name))
            #expect(try store.appliedMigrations().allSatisfy { $0.appliedAt != nil })
            let connection = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
            #expect(try connection.integer("PRAGMA application_id") == Migrator.applicationID)
            #expect(try connection.integer("PRAGMA user_version") == Int64(Migration.embedded.last!.id))
            #expect(try connection.statement("PRAGMA journal_mode").first { $0.text(0) } == "wal")
            let tables = try connection.statement(
                "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') ORDER BY name"
            )
            .rows { $0.text(0) ?? "" }
            #expect(
                tables == [
                    "cache_entries", "cached_snapshots", "rollback_pins", "schema_migrations", "snapshots",
                    "sync_attempts",
                ]
            )
            // Each commit is synced (a power cut keeps every saved snapshot), unless the options say otherwise.
            #expect(try store.synchronousLevel() == 2)
            let unsynced = try SnapshotStore(path: path, options: .init(syncsEachCommit: false))
            #expect(try unsynced.synchronousLevel() == 1)
        }
    }

    /// Data written at an earlier schema, by raw SQL that schema accepts, must survive the upgrade.
    @Test("upgrades a file from every earlier schema, keeping its snapshots", arguments: 1..<Migration.embedded.count)
    func upgrade(from schema: Int) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let document = snapshotDocument(flags: 4, seed: schema)
            do {
                let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
                let applied = try Migrator(migrations: Array(Migration.embedded.prefix(schema))).migrate(connection)
                #expect(applied.count == schema)
                try connection.execute(
                    """
                    INSERT INTO cache_entries (id, server_url, environment, namespace, reference, created_at)
                    VALUES (1, 'http://127.0.0.1:8080', 'default', 'default', '', '2026-01-01T00:00:00.000Z');
                    """
                )
                try connection.statement(
                    """
                    INSERT INTO snapshots (id, entry_id, generation, source, etag, fetched_at, server_date,
                                           last_confirmed_at, content_hash, size, document)
                    VALUES (7, 1, 5, 'network', '"e5"', '2026-01-01T00:00:01.000Z', NULL,
                            '2026-01-01T00:00:02.000Z', ?1, ?2, ?3)
                    """
                )
                .run([.text(SHA256.hex(document)), .integer(Int64(document.count)), .utf8(document)])
                try connection.execute("UPDATE cache_entries SET last_good_snapshot_id = 7")
            }
            #expect(try appliedRows(path).count == schema)

            let store = try SnapshotStore(path: path)
            #expect(try store.appliedMigrations().map(\.name) == Migration.embedded.map(\.name))
            let lastGood = try #require(try store.lastGood(for: testKey))
            #expect(lastGood.document == document)
            #expect(lastGood.generation == 5)
            #expect(lastGood.etag == "\"e5\"")
            #expect(lastGood.lastConfirmedAt == Timestamp.date(from: "2026-01-01T00:00:02.000Z"))
            // Everything added by later schemas works on the upgraded file.
            try store.recordAttempt(
                SyncAttempt(startedAt: Date(), outcome: .failed, duration: .seconds(1)),
                for: testKey
            )
            #expect(try store.attempts(for: testKey).count == 1)
            #expect(try store.save(validatedSnapshot(snapshotDocument(seed: 99)), for: testKey).generation == 6)
        }
    }

    @Test("a file whose applied migration was edited is refused and left untouched")
    func editedMigration() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            do {
                let store = try SnapshotStore(path: path)
                try store.save(validatedSnapshot(snapshotDocument()), for: testKey)
            }
            let before = fileState(path)
            // This build ships a different 0001 than the one recorded in the file.
            var edited = Migration.embedded
            let original = edited[0]
            let sql = original.sql + "-- a comment added later\n"
            edited[0] = Migration(id: original.id, name: original.name, checksum: SHA256.hex(sql), sql: sql)
            let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
            let error = try #require(throws: StoreError.self) { try Migrator(migrations: edited).migrate(connection) }
            #expect(error.code == .migrationModified)
            #expect(error.message.contains(original.name))
            #expect(error.message.contains("add a new migration"))
            #expect(fileState(path) == before)
        }
    }

    @Test("a drifted checksum in the file makes the store refuse to open, leaving the file untouched")
    func driftedChecksumInFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            do {
                let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
                try Migrator().migrate(connection)
                try connection.execute("UPDATE schema_migrations SET checksum = '0000' WHERE id = 1")
            }
            let before = fileState(path)
            let error = try #require(throws: StoreError.self) { try SnapshotStore(path: path) }
            #expect(error.code == .migrationModified)
            #expect(fileState(path) == before)
        }
    }

    @Test("a file written by a newer schema is refused and left untouched")
    func newerSchema() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let future = Migration(
                id: Migration.embedded.count + 1,
                name: String(format: "%04d_add_future_column", Migration.embedded.count + 1),
                checksum: SHA256.hex("ALTER TABLE snapshots ADD COLUMN future TEXT;\n"),
                sql: "ALTER TABLE snapshots ADD COLUMN future TEXT;\n"
            )
            do {
                let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
                try Migrator(migrations: Migration.embedded + [future]).migrate(connection)
            }
            let before = fileState(path)
            let error = try #require(throws: StoreError.self) { try SnapshotStore(path: path) }
            #expect(error.code == .newerSchema)
            #expect(error.message.contains(future.name))
            #expect(error.message.contains("not changed"))
            #expect(fileState(path) == before)
        }
    }

    @Test("another program's SQLite database is refused and left untouched")
    func foreignDatabase() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("other.sqlite").path
            do {
                let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
                try connection.execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
            }
            let before = fileState(path)
            let error = try #require(throws: StoreError.self) { try SnapshotStore(path: path) }
            #expect(error.code == .foreignDatabase)
            #expect(fileState(path) == before)
            #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    @Test("a failing migration rolls back entirely and reports which one failed")
    func failingMigrationRollsBack() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let broken = Migration(
                id: Migration.embedded.count + 1,
                name: "0099_create_broken",
                checksum: "x",
                sql: "CREATE TABLE half_done (a INTEGER) STRICT;\nINSERT INTO missing_table VALUES (1);\n"
            )
            let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
            let error = try #require(throws: StoreError.self) {
                try Migrator(migrations: Migration.embedded + [broken]).migrate(connection)
            }
            #expect(error.message.contains("0099_create_broken"))
            #expect(error.message.contains("rolled back"))
            #expect(try appliedRows(path) == Migration.embedded.map(\.name))
            #expect(try connection.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'") == 0)
        }
    }

    /// Repeated on fresh files: the race (SQLite answering the switch to WAL with SQLITE_BUSY at once while
    /// another connection migrates) showed up about once in six runs of a single round.
    @Test("several connections opening one fresh file at once apply each migration exactly once")
    func concurrentFirstOpen() async throws {
        try await withTemporaryDirectory { directory in
            for round in 0..<25 {
                let path = directory.appendingPathComponent("cache-\(round).sqlite").path
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<6 {
                        group.addTask { _ = try SnapshotStore(path: path) }
                    }
                    try await group.waitForAll()
                }
                #expect(try appliedRows(path) == Migration.embedded.map(\.name), "round \(round)")
            }
        }
    }

    @Test("the minimum SQLite version is enforced with a clear error")
    func minimumVersion() throws {
        let error = try #require(throws: StoreError.self) { try Connection.checkVersion(3_037_002) }
        #expect(error.code == .sqliteTooOld)
        #expect(error.message.contains("3.37.2"))
        #expect(error.message.contains("3.38.0"))
        try Connection.checkVersion(Connection.minimumVersionNumber)
        try Connection.checkVersion()
    }
}
