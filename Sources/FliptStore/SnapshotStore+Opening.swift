import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening a cache file: creating it with mode 0600, falling back to read-only, moving a damaged file aside.
extension SnapshotStore {
    /// An opened file, handed once from the thread that opened it to the store, which then guards the connection
    /// with its lock (hence `@unchecked`: the connection is never used by two threads at once).
    struct OpenedFile: @unchecked Sendable {
        var connection: Connection
        var recovery: StoreRecovery?
        var readOnlyReason: String?
    }

    static func openFile(path: String, options: Options) throws(StoreError) -> OpenedFile {
        try Connection.checkVersion()
        let existing = kind(of: path)
        if existing == .directory {
            throw StoreError(
                code: .cannotOpen,
                message: "the cache path is a directory, not a file; remove it or choose another path",
                path: path
            )
        }
        guard kind(of: directory(of: path)) == .directory else {
            // Named in full here only: `URL.path` costs ~0.56 M instructions the first time (a cold boot's).
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            throw StoreError(
                code: .cannotOpen,
                message: "the directory \(directory) does not exist; create it or choose another path",
                path: path
            )
        }
        if options.readOnly {
            return try openReadOnly(path: path, options: options, reason: "opened read-only as requested")
        }
        if existing == .missing {
            try createFile(path: path)
        }
        // The connection lives only inside `openWritable`, so that on failure it is closed before the file is
        // moved aside or reopened read-only.
        switch openWritable(path: path, options: options) {
        case .success(let connection):
            return OpenedFile(connection: connection, recovery: nil, readOnlyReason: nil)
        case .failure(let error) where error.code == .corrupt:
            return try quarantine(path: path, options: options, reason: error)
        case .failure(let error) where error.code == .readOnly || error.code == .cannotOpen:
            // A write-protected file, or a writable file in a read-only directory (no -wal file can be made).
            return try openReadOnly(path: path, options: options, reason: "the file or its directory is read-only")
        case .failure(let error):
            throw error
        }
    }

    /// What a path names.
    package enum PathKind: Sendable {
        /// Nothing (or nothing this process may look at).
        case missing
        /// A directory.
        case directory
        /// A file, or anything else that is not a directory.
        case other
    }

    /// What is at `path`, following symbolic links as `FileManager.fileExists(atPath:isDirectory:)` does, with one
    /// `stat(2)`: the first use of `FileManager.default` in a process costs a cold boot ~40 µs of runtime type
    /// lookups (perf, 40 boots).
    package static func kind(of path: String) -> PathKind {
        var status = stat()
        guard stat(path, &status) == 0 else { return .missing }
        return status.st_mode & S_IFMT == S_IFDIR ? .directory : .other
    }

    /// The directory that holds the file at `path`, as the file system resolves it: `.` for a bare name, `/` for a
    /// file at the root; trailing slashes are not a component.
    package static func directory(of path: String) -> String {
        var name = Substring(path)
        while name.utf8.count > 1, name.utf8.last == UInt8(ascii: "/") { name = name.dropLast() }
        guard let slash = name.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == name.startIndex { return "/" }
        return String(name[..<slash])
    }

    private static func openWritable(path: String, options: Options) -> Result<Connection, StoreError> {
        do throws(StoreError) {
            let connection = try Connection(path: path, mode: .readWrite, busyTimeout: options.busyTimeout)
            if connection.isReadOnly {
                throw StoreError(code: .readOnly, message: "the file is write-protected", path: path)
            }
            try prepare(connection, options: options, writable: true)
            return .success(connection)
        } catch {
            return .failure(error)
        }
    }

    /// Creates an empty file with mode 0600 (SQLite gives its -wal and -shm files the same mode).
    private static func createFile(path: String) throws(StoreError) {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            close(descriptor)
            return
        }
        let number = errno
        if number == EEXIST { return }  // another process created it first
        let reason = String(cString: strerror(number))
        if number == EACCES || number == EPERM || number == EROFS {
            throw StoreError(
                code: .readOnly,
                message: "cannot create the cache file (\(reason)): its directory is read-only and there is no "
                    + "cached snapshot to serve; fix the permissions or choose another path",
                path: path
            )
        }
        throw StoreError(code: .cannotOpen, message: "cannot create the cache file (\(reason))", path: path)
    }

    /// Opens read-only, first with normal locking, then (for WAL files whose -shm cannot be created) immutable.
    private static func openReadOnly(path: String, options: Options, reason: String) throws(StoreError) -> OpenedFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(
                code: .cannotOpen,
                message: "the cache file does not exist and cannot be created (\(reason))",
                path: path
            )
        }
        do {
            let connection = try Connection(path: path, mode: .readOnly, busyTimeout: options.busyTimeout)
            try prepare(connection, options: options, writable: false)
            options.logger.warning(
                "snapshot cache opened read-only; snapshots are served but not saved",
                metadata: ["path": "\(path)", "reason": "\(reason)"]
            )
            return OpenedFile(connection: connection, recovery: nil, readOnlyReason: reason)
        } catch let error where error.code == .readOnly || error.code == .cannotOpen || error.code == .io {
            let connection = try Connection(path: path, mode: .immutable, busyTimeout: options.busyTimeout)
            try prepare(connection, options: options, writable: false)
            let fullReason = reason + "; opened immutable because the WAL index cannot be created"
            options.logger.warning(
                "snapshot cache opened immutable; changes still in the -wal file are not visible",
                metadata: ["path": "\(path)", "reason": "\(fullReason)", "error": "\(error)"]
            )
            return OpenedFile(connection: connection, recovery: nil, readOnlyReason: fullReason)
        }
    }

    /// Checks that the file is a healthy cache of a schema this build knows, then configures and migrates it.
    private static func prepare(_ connection: Connection, options: Options, writable: Bool) throws(StoreError) {
        _ = try connection.integer("SELECT count(*) FROM sqlite_schema")
        // By default only the small bookkeeping tables are checked; the snapshot table holds megabytes of
        // documents, and reading them all would cost as much as decoding one. Damage there is found when a
        // page is read (and healed then), by the content hash, or by verify().
        let tables = try StoreError.catching {
            try connection.statement(
                """
                SELECT name FROM sqlite_schema
                WHERE type = 'table' AND name IN ('schema_migrations', 'cache_entries', 'sync_attempts')
                """
            )
            .rows { $0.text(0) ?? "" }
        }
        let checks = options.checksIntegrityOnOpen ? ["PRAGMA quick_check"] : tables.map { "PRAGMA quick_check(\($0))" }
        for check in checks {
            let lines = try StoreError.catching { try connection.statement(check).rows { $0.text(0) ?? "" } }
            guard lines == ["ok"] else {
                throw StoreError(
                    code: .corrupt,
                    message: "quick_check failed: " + lines.prefix(3).joined(separator: "; "),
                    path: connection.path
                )
            }
        }
        let migrator = Migrator()
        let pending = try migrator.pendingMigrations(connection)
        // A page cache of 256 KiB (16 pages) rather than SQLite's 2 MB: documents are read once each, page by page
        // through the cache into their own storage (Debian's SQLite reads no overflow page past it), and each page
        // of cache a read fills is memory the process touches for the first time. Measured here
        // (`sqlite3_blob_read` of the document, C, chrt): 1 MB 1.2 -> 0.8 ms, 10 MB 9.1 -> 7.7 ms. A larger write
        // spills its dirty pages to the write-ahead log before it commits, as any large transaction does.
        try connection.execute("PRAGMA foreign_keys = ON; PRAGMA cache_size = -256")
        guard writable else {
            if pending.count == migrator.migrations.count {
                throw StoreError(
                    code: .readOnly,
                    message: "the cache file is read-only and holds no snapshot cache yet; nothing can be served "
                        + "or saved; fix the permissions or choose another path",
                    path: connection.path
                )
            }
            return
        }
        if pending.count == migrator.migrations.count {
            // A fresh file: 16 KiB pages hold a megabyte document in a quarter as many pages as the default
            // 4 KiB, which makes reading and writing it cheaper. Only takes effect before the first write.
            try connection.execute("PRAGMA page_size = 16384")
        }
        let journalMode = try retryingWhileBusy(for: options.busyTimeout) { () throws(StoreError) in
            try StoreError.catching { try connection.statement("PRAGMA journal_mode = WAL").first { $0.text(0) } }
        }
        if journalMode??.lowercased() != "wal" {
            options.logger.warning(
                "snapshot cache could not switch to WAL journaling; concurrent readers may wait",
                metadata: ["path": "\(connection.path)", "journal_mode": "\(journalMode.flatMap { $0 } ?? "?")"]
            )
        }
        try connection.execute("PRAGMA synchronous = \(options.syncsEachCommit ? "FULL" : "NORMAL")")
        // Keep the -wal and -shm files when the last connection closes: creating and deleting them made up
        // most of the cost of opening the store. The WAL is still checkpointed at close, and truncated to
        // this limit after a checkpoint. (Memory-mapped I/O would be faster still, but it turns a file
        // truncated under us into SIGBUS instead of an error, so it stays off.)
        connection.persistsWAL = true
        try connection.execute("PRAGMA journal_size_limit = 4194304")
        if let sizeLimit = options.sizeLimit {
            let pageSize = try connection.integer("PRAGMA page_size") ?? 4096
            try connection.execute("PRAGMA max_page_count = \(max(1, Int64(sizeLimit) / pageSize))")
        }
        if !pending.isEmpty {
            let applied = try migrator.migrate(connection)
            if !applied.isEmpty {
                options.logger.info(
                    "snapshot cache schema migrated",
                    metadata: ["path": "\(connection.path)", "applied": "\(applied.map(\.name))"]
                )
            }
        }
    }

    /// Runs `body` again while it fails with ``StoreError/Code/busy``, for up to `limit`, pausing 1 ms at first and
    /// up to 50 ms between attempts.
    ///
    /// SQLite answers some lock upgrades with SQLITE_BUSY at once instead of waiting in the busy handler, because
    /// waiting could deadlock: switching a fresh file to WAL while other connections open it at the same moment is
    /// one (seen in `MigratorTests`' concurrent first open). Retrying after the other connection is done succeeds.
    private static func retryingWhileBusy<Result>(
        for limit: Duration,
        _ body: () throws(StoreError) -> Result
    ) throws(StoreError) -> Result {
        let deadline = ContinuousClock.now + limit
        var pause = Duration.milliseconds(1)
        while true {
            do {
                return try body()
            } catch let error where error.code == .busy && ContinuousClock.now + pause < deadline {
                let components = pause.components
                usleep(UInt32(components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000))
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    /// Moves a damaged file (with its -wal and -shm) aside, never deleting it, salvages what still reads and
    /// verifies, and starts a fresh file with it.
    static func quarantine(path: String, options: Options, reason: StoreError) throws(StoreError) -> OpenedFile {
        let stamp = Timestamp.string(from: Date()).filter { $0 != "-" && $0 != ":" }
        let target = "\(path).corrupt-\(stamp)"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            guard rename(path + suffix, target + suffix) == 0 else {
                let failure = String(cString: strerror(errno))
                throw StoreError(
                    code: .corrupt,
                    message: "the cache file is damaged (\(reason.message)) and could not be moved aside "
                        + "(\(failure)); move or remove it by hand",
                    resultCode: reason.resultCode,
                    path: path
                )
            }
        }
        let salvaged = salvage(from: target, options: options)
        options.logger.error(
            "snapshot cache file was damaged; moved it aside and started a fresh one",
            metadata: [
                "path": "\(path)", "moved_to": "\(target)", "reason": "\(reason)",
                "salvaged_snapshots": "\(salvaged.count)",
            ]
        )
        try createFile(path: path)
        let connection = try Connection(path: path, mode: .readWrite, busyTimeout: options.busyTimeout)
        try prepare(connection, options: options, writable: true)
        do {
            try connection.transaction { try restore(salvaged, into: connection) }
        } catch {
            options.logger.error(
                "could not copy salvaged snapshots into the fresh cache file",
                metadata: ["path": "\(path)", "error": "\(error)"]
            )
        }
        let recovery = StoreRecovery(reason: reason, movedAsideTo: target, salvagedSnapshots: salvaged.count)
        return OpenedFile(connection: connection, recovery: recovery, readOnlyReason: nil)
    }

    private struct SalvagedSnapshot {
        var key: SnapshotKey
        var generation: Int64
        var source: String
        var etag: String?
        var fetchedAt: String
        var serverDate: String?
        var lastConfirmedAt: String
        var contentHash: String
        var document: Data
        var isLastGood: Bool
    }

    /// Reads every snapshot that still reads and matches its hash from a damaged file; stops at the first error.
    /// Indexes are not used (`NOT INDEXED`): a damaged index must not hide intact rows.
    private static func salvage(from path: String, options: Options) -> [SalvagedSnapshot] {
        guard let connection = try? Connection(path: path, mode: .readOnly, busyTimeout: .zero) else { return [] }
        var salvaged: [SalvagedSnapshot] = []
        do {
            let statement = try connection.statement(
                """
                SELECT e.server_url, e.environment, e.namespace, e.reference, s.generation, s.source, s.etag,
                       s.fetched_at, s.server_date, s.last_confirmed_at, s.content_hash, s.document,
                       s.id = e.last_good_snapshot_id
                FROM snapshots s NOT INDEXED JOIN cache_entries e NOT INDEXED ON e.id = s.entry_id
                ORDER BY e.id, s.generation
                """
            )
            defer { statement.reset() }
            while try statement.step() {
                guard let serverURL = statement.text(0), let environment = statement.text(1),
                    let namespace = statement.text(2), let reference = statement.text(3),
                    let source = statement.text(5), let fetchedAt = statement.text(7),
                    let lastConfirmedAt = statement.text(9), let contentHash = statement.text(10),
                    let document = statement.bytes(11), SHA256.hex(document) == contentHash
                else { continue }
                salvaged.append(
                    SalvagedSnapshot(
                        key: SnapshotKey(
                            normalizedServerURL: serverURL,
                            environment: environment,
                            namespace: namespace,
                            reference: reference
                        ),
                        generation: statement.int64(4),
                        source: source,
                        etag: statement.text(6),
                        fetchedAt: fetchedAt,
                        serverDate: statement.text(8),
                        lastConfirmedAt: lastConfirmedAt,
                        contentHash: contentHash,
                        document: document,
                        isLastGood: statement.int64(12) == 1
                    )
                )
            }
        } catch {
            options.logger.warning(
                "stopped salvaging a damaged cache file",
                metadata: ["path": "\(path)", "error": "\(error)", "salvaged_so_far": "\(salvaged.count)"]
            )
        }
        return salvaged
    }

    private static func restore(_ salvaged: [SalvagedSnapshot], into connection: Connection) throws {
        var lastGood: [Int64: Int64] = [:]
        var newest: [Int64: Int64] = [:]
        for snapshot in salvaged {
            let entryID = try entryID(for: snapshot.key, in: connection)
            let snapshotID = try insertSnapshot(
                [
                    .integer(entryID), .integer(snapshot.generation), .text(snapshot.source),
                    .optional(snapshot.etag), .text(snapshot.fetchedAt), .optional(snapshot.serverDate),
                    .text(snapshot.lastConfirmedAt), .text(snapshot.contentHash),
                    .integer(Int64(snapshot.document.count)), .utf8(snapshot.document),
                ],
                in: connection
            )
            newest[entryID] = snapshotID  // rows arrive in generation order
            if snapshot.isLastGood { lastGood[entryID] = snapshotID }
        }
        // The last good generation wins; when it did not survive, the newest salvaged one stands in for it.
        for (entryID, snapshotID) in newest.merging(lastGood, uniquingKeysWith: { _, good in good }) {
            try connection.statement("UPDATE cache_entries SET last_good_snapshot_id = ?2 WHERE id = ?1")
                .run([.integer(entryID), .integer(snapshotID)])
        }
    }
}
