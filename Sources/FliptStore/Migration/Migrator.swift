import Foundation

/// Brings a cache file's schema up to date, one migration per transaction, and refuses files it must not touch.
///
/// Each applied migration leaves a row in `schema_migrations` (id, name, checksum, applied_at). On open the
/// migrator compares those rows with the migrations built into the binary:
/// - a row this binary does not know means a newer version wrote the file: ``StoreError/Code/newerSchema``;
/// - a row whose checksum differs means a shipped migration was edited: ``StoreError/Code/migrationModified``;
/// - a non-empty file without our `application_id` is some other program's: ``StoreError/Code/foreignDatabase``.
/// All three are detected by reading only, so the file is left exactly as it was.
package struct Migrator: Sendable {
    /// The `PRAGMA application_id` of a cache file: the ASCII bytes "FLPT".
    package static let applicationID: Int64 = 0x464C_5054

    /// The migrations this binary applies, in order.
    package let migrations: [Migration]

    /// Creates a migrator for `migrations` (by default the ones shipped in `Migrations/`).
    package init(migrations: [Migration] = Migration.embedded) {
        self.migrations = migrations.sorted { $0.id < $1.id }
    }

    /// The migrations that `connection` still needs, after checking that the file is ours and consistent.
    package func pendingMigrations(_ connection: Connection) throws(StoreError) -> [Migration] {
        // One statement, so one read snapshot: read apart, another connection's first migration (which creates
        // the tables and sets the application_id in one transaction) could commit in between, and a file being
        // set up would look like another program's.
        let (applicationID, objectCount) =
            try StoreError.catching {
                try connection.statement(
                    """
                    SELECT (SELECT application_id FROM pragma_application_id()),
                           (SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%')
                    """
                )
                .first { ($0.int64(0), $0.int64(1)) }
            } ?? (0, 0)
        if applicationID == 0 && objectCount == 0 { return migrations }
        guard applicationID == Self.applicationID else {
            throw StoreError(
                code: .foreignDatabase,
                message: "the file is an SQLite database of another program (application_id "
                    + "\(String(applicationID, radix: 16)), \(objectCount) schema objects), not a Flipt snapshot "
                    + "cache; point the cache at another path. The file was not changed.",
                path: connection.path
            )
        }
        let applied: [(id: Int, name: String, checksum: String)]
        do {
            applied = try StoreError.catching {
                try connection.statement("SELECT id, name, checksum FROM schema_migrations ORDER BY id")
                    .rows { (Int($0.int64(0)), $0.text(1) ?? "", $0.text(2) ?? "") }
            }
        } catch let error where error.code == .sqlite {
            throw StoreError(
                code: .corrupt,
                message: "the file has the snapshot cache's application_id but no readable schema_migrations "
                    + "table (\(error.message))",
                resultCode: error.resultCode,
                path: connection.path
            )
        }
        // Arrays searched in order rather than a dictionary and a set: a handful of entries, and no runtime
        // conformance lookup at a cold start (~0.1 ms here).
        let newest = migrations.last.map { "\($0.name)" } ?? "none"
        for row in applied {
            guard let migration = migrations.first(where: { $0.id == row.id }) else {
                throw StoreError(
                    code: .newerSchema,
                    message: "the cache file was written by a newer version (it has migration \(row.name); this "
                        + "build knows up to \(newest)); upgrade the app, or point the cache at another file. "
                        + "The file was not changed.",
                    path: connection.path
                )
            }
            guard migration.checksum == row.checksum else {
                throw StoreError(
                    code: .migrationModified,
                    message: "migration \(row.name) was applied to this file with checksum \(row.checksum), but "
                        + "this build ships checksum \(migration.checksum): a shipped migration was edited. "
                        + "Restore the original file and add a new migration instead. The file was not changed.",
                    path: connection.path
                )
            }
        }
        let pending = migrations.filter { migration in !applied.contains { $0.id == migration.id } }
        if let firstPending = pending.first, let lastApplied = applied.last, firstPending.id < lastApplied.id {
            throw StoreError(
                code: .newerSchema,
                message: "migration \(firstPending.name) is missing from a file that already has "
                    + "\(lastApplied.name); the file was written by a different build. The file was not changed.",
                path: connection.path
            )
        }
        return pending
    }

    /// Applies every pending migration, each in its own `BEGIN IMMEDIATE` transaction, and returns them.
    ///
    /// The check is repeated inside each transaction, so two processes opening a fresh file at once apply
    /// each migration exactly once.
    @discardableResult
    package func migrate(_ connection: Connection, now: () -> Date = Date.init) throws(StoreError) -> [Migration] {
        guard !(try pendingMigrations(connection)).isEmpty else { return [] }
        var applied: [Migration] = []
        for migration in migrations {
            do {
                try connection.transaction {
                    let pending = try pendingMigrations(connection)
                    guard pending.contains(migration) else { return }
                    if pending.count == migrations.count {
                        try connection.execute(
                            """
                            CREATE TABLE schema_migrations (
                                id INTEGER PRIMARY KEY,
                                name TEXT NOT NULL,
                                checksum TEXT NOT NULL,
                                applied_at TEXT NOT NULL
                            ) STRICT;
                            PRAGMA application_id = \(Self.applicationID);
                            """
                        )
                    }
                    try connection.execute(migration.sql)
                    try connection.statement(
                        "INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)"
                    )
                    .run([
                        .integer(Int64(migration.id)), .text(migration.name), .text(migration.checksum),
                        .text(Timestamp.string(from: now())),
                    ])
                    try connection.execute("PRAGMA user_version = \(migration.id)")
                    applied.append(migration)
                }
            } catch let error as StoreError {
                throw StoreError(
                    code: error.code,
                    message: "migration \(migration.name) failed and was rolled back: \(error.message)",
                    resultCode: error.resultCode,
                    sql: error.sql,
                    path: connection.path
                )
            } catch {
                throw StoreError(code: .sqlite, message: "\(error)", path: connection.path)
            }
        }
        return applied
    }
}
