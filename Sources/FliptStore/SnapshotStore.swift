import CFliptSQLite
import Foundation
import Logging
import Synchronization

/// The persistent snapshot cache: a SQLite file that keeps, per key, the last good snapshot, a few earlier
/// generations, and a bounded log of sync attempts.
///
/// The store knows bytes and metadata, not flags. Call ``save(_:for:attempt:)`` only with a document the
/// engine has decoded and indexed without error: saving is what makes a document the last good one, in a
/// single `BEGIN IMMEDIATE … COMMIT` that also prunes old generations and records the attempt.
///
/// The store is safe to use from several threads. It holds one connection behind a `Mutex`: reads take
/// microseconds to a few milliseconds and writes happen once per sync, so a pool would add file handles and
/// WAL readers without removing any measurable wait. Other processes (the CLI while an app runs) share the
/// file through WAL journaling, a busy timeout and immediate write transactions.
///
/// Every method that reads or writes the file has an `async` form of the same name, which async code uses: it
/// runs the work on the store's own thread, so that a write waiting for another process's lock suspends the
/// task instead of blocking one of the few threads of Swift's cooperative pool. The synchronous forms run on
/// the calling thread, for code that is not async (the command-line tool, the client's initialiser).
package final class SnapshotStore: Sendable {
    /// The file path.
    package let path: String
    /// Whether the store can only read (a write-protected file or directory, or ``Options/readOnly``).
    package var isReadOnly: Bool { readOnlyReason != nil }
    /// Why the store is read-only, or `nil` when it can write.
    package let readOnlyReason: String?
    /// What the store had to do to a damaged file (at open, or later when SQLite reported damage), or `nil`.
    package var recovery: StoreRecovery? { state.withLock { $0.recovery } }
    /// The options the store was opened with.
    package let options: Options
    private let state: Mutex<State>
    /// Where the async forms of the methods run their SQLite work (see `SnapshotStore+Async.swift`).
    let thread: StoreThread

    /// The connection and what happened to the file, guarded together.
    private struct State: ~Copyable {
        /// `nil` only after a failed attempt to replace a damaged file.
        var connection: Connection?
        var recovery: StoreRecovery?
        var unusable: StoreError?
    }

    /// The version of the system SQLite library in use ("3.40.1").
    package static var sqliteVersion: String { Connection.libraryVersion }

    /// Opens the cache at `path`, creating it (mode 0600) and its schema if needed.
    ///
    /// A damaged file, or one that is not SQLite, is moved aside to `<path>.corrupt-<time>` (never deleted),
    /// its readable snapshots are copied into a fresh file, and ``recovery`` says so. A write-protected file
    /// or directory opens read-only. A newer schema, an edited migration or another program's database is an
    /// error that leaves the file untouched.
    ///
    /// This form blocks the calling thread while SQLite waits for another connection (up to the busy timeout) or
    /// migrates the file; in async code the `async` form of this initialiser does that on the store's thread.
    package convenience init(path: String, options: Options = Options()) throws(StoreError) {
        self.init(
            path: path,
            options: options,
            opened: try SnapshotStore.openFile(path: path, options: options),
            thread: StoreThread(name: SnapshotStore.threadName)
        )
    }

    init(path: String, options: Options, opened: OpenedFile, thread: StoreThread) {
        self.path = path
        self.options = options
        self.readOnlyReason = opened.readOnlyReason
        self.state = Mutex(State(connection: opened.connection, recovery: opened.recovery))
        self.thread = thread
    }

    deinit {
        thread.finish()
    }

    // MARK: Reading

    /// The last good snapshot for `key`, or `nil` if none was ever saved.
    ///
    /// With ``Options/verifiesDocumentsOnRead``, the document is checked against its SHA-256 first. If it no
    /// longer matches (the file was damaged or edited in place), the error is logged and the newest older
    /// generation that still matches is returned instead, with `metadata.isLastGood == false`; the file is not
    /// changed.
    package func lastGood(for key: SnapshotKey) throws(StoreError) -> StoredSnapshot? {
        let stored = try read { connection in
            try connection.statement(
                """
                SELECT \(Self.metadataColumns), 1, s.id
                FROM cache_entries e JOIN snapshots s ON s.id = e.last_good_snapshot_id
                WHERE e.server_url = ?1 AND e.environment = ?2 AND e.namespace = ?3 AND e.reference = ?4
                """
            )
            .first(Self.keyValues(key)) { row in
                StoredSnapshot(
                    key: key,
                    metadata: try Self.metadata(row),
                    document: try Self.document(of: row.int64(10), in: connection)
                )
            }
        }
        guard let stored, options.verifiesDocumentsOnRead, SHA256.hex(stored.document) != stored.contentHash else {
            return stored
        }
        options.logger.error(
            "the last good snapshot does not match its content hash; serving an older generation if one matches",
            metadata: ["path": "\(path)", "key": "\(key)", "generation": "\(stored.generation)"]
        )
        for older in try history(for: key) where older.generation != stored.generation {
            if let candidate = try snapshot(for: key, generation: older.generation),
                SHA256.hex(candidate.document) == candidate.contentHash
            {
                return candidate
            }
        }
        return nil
    }

    /// One stored generation of `key` with its document, or `nil` if it is not (or no longer) stored.
    package func snapshot(for key: SnapshotKey, generation: Int) throws(StoreError) -> StoredSnapshot? {
        try read { connection in
            try connection.statement(
                """
                SELECT \(Self.metadataColumns), s.id = e.last_good_snapshot_id, s.id
                FROM cache_entries e JOIN snapshots s ON s.entry_id = e.id
                WHERE e.server_url = ?1 AND e.environment = ?2 AND e.namespace = ?3 AND e.reference = ?4
                  AND s.generation = ?5
                """
            )
            .first(Self.keyValues(key) + [.integer(Int64(generation))]) { row in
                StoredSnapshot(
                    key: key,
                    metadata: try Self.metadata(row),
                    document: try Self.document(of: row.int64(10), in: connection)
                )
            }
        }
    }

    /// The stored generations of `key`, newest first, without their documents.
    package func history(for key: SnapshotKey) throws(StoreError) -> [SnapshotMetadata] {
        try read { connection in
            try connection.statement(
                """
                SELECT \(Self.metadataColumns), s.id = e.last_good_snapshot_id
                FROM cache_entries e JOIN snapshots s ON s.entry_id = e.id
                WHERE e.server_url = ?1 AND e.environment = ?2 AND e.namespace = ?3 AND e.reference = ?4
                ORDER BY s.generation DESC
                """
            )
            .rows(Self.keyValues(key)) { try Self.metadata($0) }
        }
    }

    /// The most recent sync attempts for `key`, newest first.
    package func attempts(for key: SnapshotKey, limit: Int = 20) throws(StoreError) -> [SyncAttempt] {
        try read { connection in
            try connection.statement(
                """
                SELECT a.started_at, a.outcome, a.http_status, a.error_class, a.duration_ms
                FROM cache_entries e JOIN sync_attempts a ON a.entry_id = e.id
                WHERE e.server_url = ?1 AND e.environment = ?2 AND e.namespace = ?3 AND e.reference = ?4
                ORDER BY a.id DESC LIMIT ?5
                """
            )
            .rows(Self.keyValues(key) + [.integer(Int64(limit))]) { try Self.attempt($0) }
        }
    }

    /// Every key in the file with its last good snapshot, generation count and latest attempt.
    package func entries() throws(StoreError) -> [CacheEntry] {
        try read { connection in
            let rows = try connection.statement(
                """
                SELECT e.id, e.server_url, e.environment, e.namespace, e.reference,
                       (SELECT count(*) FROM snapshots g WHERE g.entry_id = e.id), s.id IS NOT NULL,
                       \(Self.metadataColumns)
                FROM cache_entries e LEFT JOIN snapshots s ON s.id = e.last_good_snapshot_id
                ORDER BY e.server_url, e.environment, e.namespace, e.reference
                """
            )
            .rows { row -> (Int64, CacheEntry) in
                let key = SnapshotKey(
                    normalizedServerURL: row.text(1) ?? "",
                    environment: row.text(2) ?? "",
                    namespace: row.text(3) ?? "",
                    reference: row.text(4) ?? ""
                )
                let lastGood = row.int64(6) == 1 ? try Self.metadata(row, offset: 7, isLastGood: true) : nil
                return (
                    row.int64(0),
                    CacheEntry(key: key, lastGood: lastGood, generationCount: Int(row.int64(5)), lastAttempt: nil)
                )
            }
            return try rows.map { entryID, entry in
                var entry = entry
                entry.lastAttempt = try connection.statement(
                    """
                    SELECT started_at, outcome, http_status, error_class, duration_ms
                    FROM sync_attempts WHERE entry_id = ?1 ORDER BY id DESC LIMIT 1
                    """
                )
                .first([.integer(entryID)]) { try Self.attempt($0) }
                entry.pin = try Self.pin(entryID: entryID, in: connection)?.pin
                return entry
            }
        }
    }

    /// A number that changes when another connection to the file (another process, or another store on the
    /// same path) commits a change, read without touching any table (`PRAGMA data_version`): a watcher reads it
    /// often and re-reads ``entries()`` only when it moved. Changes made through this store do not move it.
    package func changeCounter() throws(StoreError) -> Int64 {
        try read { connection in try connection.integer("PRAGMA data_version") ?? 0 }
    }

    /// The keys that have an entry in the file.
    package func keys() throws(StoreError) -> [SnapshotKey] {
        try entries().map(\.key)
    }

    // MARK: Writing

    /// Moves the pages of the write-ahead log into the database file (a passive checkpoint: it copies what no
    /// reader of another process still needs, and never waits). Failures are ignored: the pages stay in the log,
    /// and SQLite retries at the next checkpoint.
    ///
    /// SQLite checkpoints by itself only past 1,000 pages of log (16 MB here) and when the last connection closes,
    /// so an app that stops without closing the store (killed, crashed) leaves its newest document in the `-wal`
    /// file. The next start then rebuilds the log's index by reading the whole log before its first query: opening
    /// such a file took 1.9 ms instead of 1.1 ms at 1,000 flags and 6.3 ms instead of 1.2 ms at 10,000 (medians of
    /// 9 cold boots, probes, chrt). The `async` ``save(_:for:attempt:)``, which the client's sync uses, runs one
    /// after each save on the store's thread.
    func checkpoint() {
        try? read { connection in try connection.checkpoint() }
    }

    /// Stores a validated document as the key's new last good snapshot, in one transaction.
    ///
    /// The transaction inserts the generation, marks it last good, prunes the key to
    /// ``Options/generationsKept`` generations and records `attempt` if given. A document identical to the
    /// current last good one (same SHA-256) creates no new generation: its ETag, fetch time, server date and
    /// confirmation time are updated instead. On any error nothing changes and the previous last good stays.
    /// The `async` form also checkpoints the write-ahead log afterwards (see ``checkpoint()``).
    @discardableResult
    package func save(
        _ snapshot: NewSnapshot,
        for key: SnapshotKey,
        attempt: SyncAttempt? = nil
    ) throws(StoreError) -> SnapshotMetadata {
        let contentHash = SHA256.hex(snapshot.document)
        let fetchedAt = Timestamp.string(from: snapshot.fetchedAt)
        let serverDate = snapshot.serverDate.map { Timestamp.string(from: $0) }
        let generationsKept = Int64(max(1, options.generationsKept))
        return try write { connection in
            let entryID = try Self.entryID(for: key, in: connection)
            let current = try connection.statement(
                """
                SELECT s.id, s.content_hash FROM cache_entries e JOIN snapshots s ON s.id = e.last_good_snapshot_id
                WHERE e.id = ?1
                """
            )
            .first([.integer(entryID)]) { ($0.int64(0), $0.text(1)) }
            if let pin = try Self.pin(entryID: entryID, in: connection) {
                if pin.snapshotID == current?.0, snapshot.source == .network, pin.rolledBackFromHash == contentHash {
                    // The server still sends the document an operator rolled back from: keep the pinned one.
                    if let attempt {
                        var held = attempt
                        held.outcome = .rejected
                        held.errorClass = Self.pinnedErrorClass
                        try Self.insertAttempt(held, entryID: entryID, keeping: options.attemptsKept, in: connection)
                    }
                    return try connection.statement(
                        "SELECT \(Self.metadataColumns), 1 FROM snapshots s WHERE s.id = ?1"
                    )
                    .first([.integer(pin.snapshotID)]) { try Self.metadata($0) }!
                }
                // Other content, an import or a seed: the pin is lifted.
                try connection.statement("DELETE FROM rollback_pins WHERE entry_id = ?1").run([.integer(entryID)])
            }
            let snapshotID: Int64
            if let current, current.1 == contentHash {
                snapshotID = current.0
                try connection.statement(
                    """
                    UPDATE snapshots SET etag = ?2, fetched_at = ?3, server_date = ?4,
                        last_confirmed_at = max(last_confirmed_at, ?3)
                    WHERE id = ?1
                    """
                )
                .run([.integer(snapshotID), .optional(snapshot.etag), .text(fetchedAt), .optional(serverDate)])
            } else {
                let generation =
                    try connection.statement(
                        "SELECT coalesce(max(generation), 0) + 1 FROM snapshots WHERE entry_id = ?1"
                    )
                    .first([.integer(entryID)]) { $0.int64(0) } ?? 1
                snapshotID = try Self.insertSnapshot(
                    [
                        .integer(entryID), .integer(generation), .text(snapshot.source.rawValue),
                        .optional(snapshot.etag), .text(fetchedAt), .optional(serverDate), .text(fetchedAt),
                        .text(contentHash), .integer(Int64(snapshot.document.count)), .utf8(snapshot.document),
                    ],
                    in: connection
                )
                try connection.statement("UPDATE cache_entries SET last_good_snapshot_id = ?2 WHERE id = ?1")
                    .run([.integer(entryID), .integer(snapshotID)])
                try Self.prune(entryID: entryID, keeping: generationsKept, in: connection)
            }
            if let attempt {
                try Self.insertAttempt(attempt, entryID: entryID, keeping: options.attemptsKept, in: connection)
            }
            return try connection.statement(
                "SELECT \(Self.metadataColumns), 1 FROM snapshots s WHERE s.id = ?1"
            )
            .first([.integer(snapshotID)]) { try Self.metadata($0) }!
        }
    }

    /// Records a `304 Not Modified`: the last good snapshot was confirmed current at `date`.
    ///
    /// Returns the updated metadata, or `nil` when the key has no last good snapshot (nothing to confirm).
    @discardableResult
    package func recordNotModified(
        for key: SnapshotKey,
        at date: Date,
        attempt: SyncAttempt? = nil
    ) throws(StoreError) -> SnapshotMetadata? {
        let confirmedAt = Timestamp.string(from: date)
        return try write { connection in
            let entryID = try Self.entryID(for: key, in: connection)
            if let attempt {
                try Self.insertAttempt(attempt, entryID: entryID, keeping: options.attemptsKept, in: connection)
            }
            try connection.statement(
                """
                UPDATE snapshots SET last_confirmed_at = max(last_confirmed_at, ?2)
                WHERE id = (SELECT last_good_snapshot_id FROM cache_entries WHERE id = ?1)
                """
            )
            .run([.integer(entryID), .text(confirmedAt)])
            return try connection.statement(
                """
                SELECT \(Self.metadataColumns), 1 FROM cache_entries e JOIN snapshots s
                ON s.id = e.last_good_snapshot_id WHERE e.id = ?1
                """
            )
            .first([.integer(entryID)]) { try Self.metadata($0) }
        }
    }

    /// Appends `attempt` to the key's log, dropping the oldest beyond ``Options/attemptsKept``.
    package func recordAttempt(_ attempt: SyncAttempt, for key: SnapshotKey) throws(StoreError) {
        try write { connection in
            let entryID = try Self.entryID(for: key, in: connection)
            try Self.insertAttempt(attempt, entryID: entryID, keeping: options.attemptsKept, in: connection)
        }
    }

    /// Makes a stored earlier (or later) generation the key's last good snapshot.
    ///
    /// With `pinning` (the default), the rollback holds: ``save(_:for:attempt:)`` of a fetched document with the
    /// content rolled back from keeps the chosen generation last good (see ``RollbackPin``), until a document with
    /// other content arrives or ``unpin(for:)`` is called. A rollback of a pinned key keeps the content first
    /// rolled back from; a rollback to that very content lifts the pin. Fails with ``StoreError/Code/notFound``
    /// when the generation is not stored. No generation is deleted.
    @discardableResult
    package func rollback(
        for key: SnapshotKey,
        to generation: Int,
        pinning: Bool = true
    ) throws(StoreError) -> SnapshotMetadata {
        try write { connection in
            let target = try connection.statement(
                """
                SELECT e.id, s.id FROM cache_entries e JOIN snapshots s ON s.entry_id = e.id
                WHERE e.server_url = ?1 AND e.environment = ?2 AND e.namespace = ?3 AND e.reference = ?4
                  AND s.generation = ?5
                """
            )
            .first(Self.keyValues(key) + [.integer(Int64(generation))]) { ($0.int64(0), $0.int64(1)) }
            guard let (entryID, snapshotID) = target else {
                throw StoreError(
                    code: .notFound,
                    message: "generation \(generation) of \(key) is not stored; list the stored generations with "
                        + "history(for:) and pick one of them",
                    path: path
                )
            }
            let current = try connection.statement(
                """
                SELECT s.id, s.generation, s.content_hash
                FROM cache_entries e JOIN snapshots s ON s.id = e.last_good_snapshot_id WHERE e.id = ?1
                """
            )
            .first([.integer(entryID)]) { (id: $0.int64(0), generation: $0.int64(1), hash: $0.text(2) ?? "") }
            let targetHash = try connection.statement("SELECT content_hash FROM snapshots WHERE id = ?1")
                .first([.integer(snapshotID)]) { $0.text(0) ?? "" }
            let existing = try Self.pin(entryID: entryID, in: connection)
            try connection.statement("UPDATE cache_entries SET last_good_snapshot_id = ?2 WHERE id = ?1")
                .run([.integer(entryID), .integer(snapshotID)])
            try connection.statement("DELETE FROM rollback_pins WHERE entry_id = ?1").run([.integer(entryID)])
            // Rolled back from: what the pin already holds off, else the snapshot that was last good.
            let from =
                existing.flatMap { pin in
                    pin.snapshotID == current?.id ? (pin.rolledBackFromGeneration, pin.rolledBackFromHash) : nil
                } ?? current.map { (Int($0.generation), $0.hash) }
            if pinning, let from, from.1 != targetHash {
                try connection.statement(
                    """
                    INSERT INTO rollback_pins (entry_id, snapshot_id, rolled_back_from_hash,
                                               rolled_back_from_generation, pinned_at)
                    VALUES (?1, ?2, ?3, ?4, ?5)
                    """
                )
                .run([
                    .integer(entryID), .integer(snapshotID), .text(from.1), .integer(Int64(from.0)),
                    .text(Timestamp.string(from: Date())),
                ])
            }
            return try connection.statement("SELECT \(Self.metadataColumns), 1 FROM snapshots s WHERE s.id = ?1")
                .first([.integer(snapshotID)]) { try Self.metadata($0) }!
        }
    }

    /// The rollback that pins `key`'s last good snapshot, or `nil` when it is not pinned.
    package func pin(for key: SnapshotKey) throws(StoreError) -> RollbackPin? {
        try read { connection in
            guard
                let entryID = try connection.statement(
                    """
                    SELECT id FROM cache_entries
                    WHERE server_url = ?1 AND environment = ?2 AND namespace = ?3 AND reference = ?4
                    """
                )
                .first(Self.keyValues(key), { $0.int64(0) })
            else { return nil }
            return try Self.pin(entryID: entryID, in: connection)?.pin
        }
    }

    /// Lifts the rollback pin of `key`, so that the next fetched document is stored whatever its content.
    ///
    /// Returns the pin that was lifted, or `nil` when the key was not pinned. The last good snapshot stays.
    @discardableResult
    package func unpin(for key: SnapshotKey) throws(StoreError) -> RollbackPin? {
        try write { connection in
            let entryID = try Self.entryID(for: key, in: connection)
            let pin = try Self.pin(entryID: entryID, in: connection)
            try connection.statement("DELETE FROM rollback_pins WHERE entry_id = ?1").run([.integer(entryID)])
            return pin?.pin
        }
    }

    /// Drops, for every key, the generations beyond the newest `generationsKept` (the last good always stays).
    ///
    /// Returns how many generations were deleted.
    @discardableResult
    package func prune(keeping generationsKept: Int? = nil) throws(StoreError) -> Int {
        let kept = Int64(max(1, generationsKept ?? options.generationsKept))
        return try write { connection in
            let entryIDs = try connection.statement("SELECT id FROM cache_entries").rows { $0.int64(0) }
            var deleted = 0
            for entryID in entryIDs {
                deleted += try Self.prune(entryID: entryID, keeping: kept, in: connection)
            }
            return deleted
        }
    }

    /// Deletes a key with all its generations and attempts. Returns whether the key existed.
    @discardableResult
    package func removeEntry(for key: SnapshotKey) throws(StoreError) -> Bool {
        try write { connection in
            try connection.statement(
                """
                DELETE FROM cache_entries
                WHERE server_url = ?1 AND environment = ?2 AND namespace = ?3 AND reference = ?4
                """
            )
            .run(Self.keyValues(key))
            return sqlite3_changes(connection.handle) > 0
        }
    }

    // MARK: Checking

    /// Runs `PRAGMA integrity_check` and re-hashes every stored document.
    package func verify() throws(StoreError) -> VerificationReport {
        try read { connection in
            let lines = try connection.statement("PRAGMA integrity_check").rows { $0.text(0) ?? "" }
            var mismatches: [VerificationReport.Mismatch] = []
            var checked = 0
            let rows = try connection.statement(
                """
                SELECT e.server_url, e.environment, e.namespace, e.reference, s.generation, s.content_hash,
                       s.document
                FROM snapshots s JOIN cache_entries e ON e.id = s.entry_id ORDER BY e.id, s.generation
                """
            )
            .rows { row in
                (
                    SnapshotKey(
                        normalizedServerURL: row.text(0) ?? "",
                        environment: row.text(1) ?? "",
                        namespace: row.text(2) ?? "",
                        reference: row.text(3) ?? ""
                    ),
                    Int(row.int64(4)),
                    (row.text(5) ?? "") == SHA256.hex(row.bytes(6) ?? Data())
                )
            }
            for (key, generation, matches) in rows {
                checked += 1
                if !matches { mismatches.append(.init(key: key, generation: generation)) }
            }
            return VerificationReport(
                integrityProblems: lines.filter { $0 != "ok" },
                hashMismatches: mismatches,
                snapshotsChecked: checked
            )
        }
    }

    /// The schema migrations applied to the file, oldest first, as `(name, applied_at)`.
    package func appliedMigrations() throws(StoreError) -> [(name: String, appliedAt: Date?)] {
        try read { connection in
            try connection.statement("SELECT name, applied_at FROM schema_migrations ORDER BY id").rows {
                ($0.text(0) ?? "", $0.text(1).flatMap(Timestamp.date(from:)))
            }
        }
    }

    /// The connection's `PRAGMA synchronous` level (1 NORMAL, 2 FULL), for tests.
    func synchronousLevel() throws(StoreError) -> Int64? {
        try read { connection in try connection.integer("PRAGMA synchronous") }
    }

    // MARK: Plumbing

    /// Runs `body` with the connection, under the lock.
    ///
    /// When SQLite reports the file damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) and the store can write, the file
    /// is moved aside, what still reads is salvaged into a fresh file (see ``recovery``), and `body` runs once
    /// more on the fresh file.
    private func read<T: Sendable>(_ body: (Connection) throws -> T) throws(StoreError) -> T {
        try state.withLock { (state: inout State) throws(StoreError) -> T in
            guard let connection = state.connection else {
                throw state.unusable ?? StoreError(code: .cannotOpen, message: "the store is closed", path: path)
            }
            // Whole documents pass through the page cache, each read once: free its pages after each call (up to
            // SQLite's 2 MB default stays allocated otherwise, for a process's lifetime).
            defer { connection.releaseMemory() }
            do throws(StoreError) {
                return try StoreError.catching(path: path) { try body(connection) }
            } catch let error where error.code == .corrupt && readOnlyReason == nil && error.resultCode != nil {
                state.connection = nil  // closes the damaged file before it is moved
                do throws(StoreError) {
                    let reopened = try Self.quarantine(path: path, options: options, reason: error)
                    state.connection = reopened.connection
                    state.recovery = reopened.recovery
                } catch let failure {
                    state.unusable = failure
                    throw failure
                }
                return try StoreError.catching(path: path) { try body(state.connection!) }
            }
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE … COMMIT` transaction, under the lock; read-only stores refuse.
    private func write<T: Sendable>(_ body: (Connection) throws -> T) throws(StoreError) -> T {
        if let readOnlyReason {
            throw StoreError(
                code: .readOnly,
                message: "the snapshot cache is read-only (\(readOnlyReason)); the last good snapshot is still "
                    + "served, but nothing new is saved until the file and its directory are writable",
                path: path
            )
        }
        return try read { connection in try connection.transaction { try body(connection) } }
    }

    /// The metadata of snapshot `s`: nine columns, the last whether a rollback pins it.
    static let metadataColumns =
        "s.generation, s.source, s.etag, s.fetched_at, s.server_date, s.last_confirmed_at, s.content_hash, s.size, "
        + "EXISTS (SELECT 1 FROM rollback_pins p WHERE p.snapshot_id = s.id)"

    /// The document of snapshot row `id`, read while the statement that found the row still has it open (so in the
    /// same read transaction), straight into its own storage (see ``Connection/value(in:column:row:)``).
    static func document(of id: Int64, in connection: Connection) throws(StoreError) -> Data {
        try connection.value(in: "snapshots", column: "document", row: id)
    }

    static func keyValues(_ key: SnapshotKey) -> [SQLValue] {
        [.text(key.serverURL), .text(key.environment), .text(key.namespace), .text(key.reference)]
    }

    /// Decodes ``metadataColumns`` starting at `offset`, then the last-good flag (unless given).
    static func metadata(
        _ row: Statement,
        offset: Int32 = 0,
        isLastGood: Bool? = nil
    ) throws(StoreError) -> SnapshotMetadata {
        func date(_ index: Int32) throws(StoreError) -> Date {
            guard let text = row.text(offset + index), let date = Timestamp.date(from: text) else {
                throw StoreError(
                    code: .corrupt,
                    message: "a stored time is not ISO-8601 UTC text; the row was edited by hand",
                    sql: row.sql
                )
            }
            return date
        }
        guard let source = SnapshotSource(rawValue: row.text(offset + 1) ?? "") else {
            throw StoreError(code: .corrupt, message: "a stored snapshot has an unknown source", sql: row.sql)
        }
        return SnapshotMetadata(
            generation: Int(row.int64(offset)),
            source: source,
            etag: row.text(offset + 2),
            fetchedAt: try date(3),
            serverDate: row.isNull(offset + 4) ? nil : try date(4),
            lastConfirmedAt: try date(5),
            contentHash: row.text(offset + 6) ?? "",
            size: Int(row.int64(offset + 7)),
            isLastGood: isLastGood ?? (row.int64(offset + 9) == 1),
            isPinned: row.int64(offset + 8) == 1
        )
    }

    static func attempt(_ row: Statement) throws(StoreError) -> SyncAttempt {
        guard let startedAt = row.text(0).flatMap(Timestamp.date(from:)),
            let outcome = SyncAttempt.Outcome(rawValue: row.text(1) ?? "")
        else {
            throw StoreError(code: .corrupt, message: "a stored sync attempt is malformed", sql: row.sql)
        }
        return SyncAttempt(
            startedAt: startedAt,
            outcome: outcome,
            httpStatus: row.isNull(2) ? nil : Int(row.int64(2)),
            errorClass: row.text(3),
            duration: .milliseconds(row.int64(4))
        )
    }

    /// The id of the key's entry, created if missing.
    static func entryID(for key: SnapshotKey, in connection: Connection) throws -> Int64 {
        try connection.statement(
            """
            INSERT INTO cache_entries (server_url, environment, namespace, reference, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT (server_url, environment, namespace, reference) DO NOTHING
            """
        )
        .run(keyValues(key) + [.text(Timestamp.string(from: Date()))])
        return try connection.statement(
            """
            SELECT id FROM cache_entries
            WHERE server_url = ?1 AND environment = ?2 AND namespace = ?3 AND reference = ?4
            """
        )
        .first(keyValues(key)) { $0.int64(0) }!
    }

    /// The error class of an attempt whose document a rollback pin held off (outcome `rejected`).
    package static let pinnedErrorClass = "pinned"

    /// The entry's pin when it still pins the last good snapshot (a pin left on another generation, which only
    /// an edit by hand makes, does not hold).
    static func pin(
        entryID: Int64,
        in connection: Connection
    ) throws -> (snapshotID: Int64, rolledBackFromHash: String, rolledBackFromGeneration: Int, pin: RollbackPin)? {
        try connection.statement(
            """
            SELECT p.snapshot_id, p.rolled_back_from_hash, p.rolled_back_from_generation, p.pinned_at, s.generation
            FROM rollback_pins p JOIN cache_entries e ON e.id = p.entry_id
            JOIN snapshots s ON s.id = p.snapshot_id AND s.id = e.last_good_snapshot_id
            WHERE p.entry_id = ?1
            """
        )
        .first([.integer(entryID)]) { row in
            let hash = row.text(1) ?? ""
            let from = Int(row.int64(2))
            let pin = RollbackPin(
                generation: Int(row.int64(4)),
                rolledBackFromGeneration: from,
                rolledBackFromHash: hash,
                pinnedAt: row.text(3).flatMap(Timestamp.date(from:)) ?? Date(timeIntervalSince1970: 0)
            )
            return (row.int64(0), hash, from, pin)
        }
    }

    /// Inserts a snapshot row from its ten column values and returns its id.
    static func insertSnapshot(_ values: [SQLValue], in connection: Connection) throws -> Int64 {
        try connection.statement(
            """
            INSERT INTO snapshots (entry_id, generation, source, etag, fetched_at, server_date, last_confirmed_at,
                                   content_hash, size, document)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
            """
        )
        .run(values)
        return sqlite3_last_insert_rowid(connection.handle)
    }

    /// Deletes the entry's generations older than the newest `kept`, except its last good one.
    @discardableResult
    static func prune(entryID: Int64, keeping kept: Int64, in connection: Connection) throws -> Int {
        try connection.statement(
            """
            DELETE FROM snapshots
            WHERE entry_id = ?1
              AND id IS NOT (SELECT last_good_snapshot_id FROM cache_entries WHERE id = ?1)
              AND generation < (SELECT generation FROM snapshots WHERE entry_id = ?1
                                ORDER BY generation DESC LIMIT 1 OFFSET ?2 - 1)
            """
        )
        .run([.integer(entryID), .integer(kept)])
        return Int(sqlite3_changes(connection.handle))
    }

    static func insertAttempt(
        _ attempt: SyncAttempt,
        entryID: Int64,
        keeping kept: Int,
        in connection: Connection
    ) throws {
        // Whole milliseconds, rounded up: an attempt that took any time at all (a 304 on loopback can take
        // 0.4 ms) reads as at least 1 ms, never as 0 ms, which would say it took no time.
        let components = attempt.duration.components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let milliseconds = max(
            0,
            components.seconds * 1000 + (components.attoseconds + perMillisecond - 1) / perMillisecond
        )
        try connection.statement(
            """
            INSERT INTO sync_attempts (entry_id, started_at, outcome, http_status, error_class, duration_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            """
        )
        .run([
            .integer(entryID), .text(Timestamp.string(from: attempt.startedAt)), .text(attempt.outcome.rawValue),
            attempt.httpStatus.map { .integer(Int64($0)) } ?? .null, .optional(attempt.errorClass),
            .integer(milliseconds),
        ])
        try connection.statement(
            """
            DELETE FROM sync_attempts
            WHERE entry_id = ?1 AND id <= (SELECT id FROM sync_attempts WHERE entry_id = ?1
                                           ORDER BY id DESC LIMIT 1 OFFSET ?2)
            """
        )
        .run([.integer(entryID), .integer(Int64(max(1, kept)))])
    }
}
