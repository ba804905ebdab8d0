import CFliptSQLite
import Foundation

/// One SQLite connection with a cache of prepared statements.
///
/// A `Connection` is not thread-safe on its own: it is opened with `SQLITE_OPEN_NOMUTEX` and the owner
/// serialises every use (``SnapshotStore`` keeps it inside a `Mutex`). Errors are ``StoreError``s built from
/// SQLite's extended result codes; they name statements by their SQL text, never by bound values.
package final class Connection {
    /// How the file is opened.
    package enum Mode: Sendable, Equatable {
        /// Read and write, creating the file if it is missing.
        case readWrite
        /// Read only, with normal locking (needs a readable or creatable `-shm` file in WAL mode).
        case readOnly
        /// Read only without any locking, for files on read-only media (`?immutable=1`).
        ///
        /// Changes still sitting in a `-wal` file are not seen in this mode.
        case immutable
    }

    /// The oldest SQLite the schema supports: 3.38.0 (STRICT tables from 3.37, JSON functions built in from 3.38).
    package static let minimumVersionNumber: Int32 = 3_038_000

    /// The SQLite library version in use, as text ("3.40.1").
    package static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    /// The database file.
    package let path: String
    /// The mode the file was opened in.
    package let mode: Mode
    /// The raw `sqlite3 *` handle.
    package let handle: OpaquePointer
    private var statements: [String: Statement] = [:]

    /// Fails with ``StoreError/Code/sqliteTooOld`` when `versionNumber` is below ``minimumVersionNumber``.
    package static func checkVersion(_ versionNumber: Int32 = sqlite3_libversion_number()) throws(StoreError) {
        guard versionNumber < minimumVersionNumber else { return }
        func text(_ number: Int32) -> String { "\(number / 1_000_000).\(number / 1000 % 1000).\(number % 1000)" }
        throw StoreError(
            code: .sqliteTooOld,
            message: "the system SQLite is \(text(versionNumber)), but the snapshot cache needs "
                + "\(text(minimumVersionNumber)) or newer (STRICT tables and built-in JSON functions); "
                + "upgrade libsqlite3"
        )
    }

    /// Opens (or, in ``Mode/readWrite``, creates) the database at `path`.
    package init(path: String, mode: Mode, busyTimeout: Duration) throws(StoreError) {
        try Self.checkVersion()
        var flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX
        var filename = path
        switch mode {
        case .readWrite:
            flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly:
            flags |= SQLITE_OPEN_READONLY
        case .immutable:
            flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI
            filename = "file:" + Self.uriEscaped(path) + "?immutable=1"
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(filename, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let code = ResultCode(rawValue: rc)
            let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? code.description
            sqlite3_close_v2(db)
            throw StoreError(
                code: StoreError.Code(code),
                message: "cannot open the cache file (\(detail)); " + StoreError.advice(for: StoreError.Code(code)),
                resultCode: code,
                path: path
            )
        }
        self.handle = db
        self.path = path
        self.mode = mode
        let milliseconds =
            busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(db, Int32(clamping: milliseconds))
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement.handle) }
        sqlite3_close_v2(handle)
    }

    /// Whether the `-wal` and `-shm` files stay when the last connection closes (`SQLITE_FCNTL_PERSIST_WAL`).
    package var persistsWAL: Bool {
        get {
            var value: Int32 = -1
            sqlite3_file_control(handle, "main", SQLITE_FCNTL_PERSIST_WAL, &value)
            return value == 1
        }
        set {
            var value: Int32 = newValue ? 1 : 0
            sqlite3_file_control(handle, "main", SQLITE_FCNTL_PERSIST_WAL, &value)
        }
    }

    /// Whether SQLite treats the main database as read-only (for example a write-protected file).
    package var isReadOnly: Bool {
        sqlite3_db_readonly(handle, "main") == 1
    }

    /// Runs one or more SQL statements that take no parameters and return no rows of interest.
    package func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        if rc != SQLITE_OK {
            throw error(rc, sql: sql, detail: message.map { String(cString: $0) })
        }
    }

    /// Returns the cached prepared statement for `sql`, preparing it on first use.
    package func statement(_ sql: String) throws(StoreError) -> Statement {
        if let cached = statements[sql] { return cached }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else {
            sqlite3_finalize(raw)
            throw error(rc, sql: sql)
        }
        let statement = Statement(handle: raw, sql: sql, connection: self)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT` (a write transaction) or a deferred read transaction,
    /// rolling back if it throws.
    package func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if sqlite3_get_autocommit(handle) == 0 {
                sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// Frees the pages the connection's page cache holds and no statement uses (`sqlite3_db_release_memory`).
    package func releaseMemory() {
        sqlite3_db_release_memory(handle)
    }

    /// The bytes of the TEXT or BLOB value in `column` of the row with rowid `row` of `table`, as stored, read with
    /// SQLite's incremental I/O (`sqlite3_blob_read`) into storage of exactly their size.
    ///
    /// ``Statement/bytes(_:)`` makes SQLite read a value into a buffer of its own (`sqlite3_column_blob`), which
    /// is then copied; this copies it once, from SQLite's page cache into the returned storage (``ValueStorage``).
    /// For the 10 MB document of a 10,000-flag snapshot a cold boot's read took 14.6 ms before, 8.1 ms so with
    /// `malloc`'d storage (probes on `flipt-bench load boot`, chrt). Called while a statement of the same
    /// connection has the row open, it reads in that statement's transaction.
    ///
    /// - Throws: a ``StoreError`` when the row is gone or the value is not TEXT or BLOB.
    package func value(in table: String, column: String, row: Int64) throws(StoreError) -> Data {
        let what = "the \(column) of row \(row) of \(table)"
        var blob: OpaquePointer?
        let rc = sqlite3_blob_open(handle, "main", table, column, row, 0, &blob)
        guard rc == SQLITE_OK, let blob else {
            let failure = error(rc, sql: what)
            sqlite3_blob_close(blob)
            throw failure
        }
        defer { sqlite3_blob_close(blob) }
        let count = Int(sqlite3_blob_bytes(blob))
        guard count > 0 else { return Data() }
        guard let (storage, deallocator) = ValueStorage.allocate(count) else {
            throw StoreError(code: .sqlite, message: "cannot allocate \(count) bytes to read \(what)", path: path)
        }
        let read = sqlite3_blob_read(blob, storage, Int32(count), 0)
        // Made after the read (a value of a few bytes is copied into the Data at once); it frees the storage, on
        // an error too.
        let value = Data(bytesNoCopy: storage, count: count, deallocator: deallocator)
        guard read == SQLITE_OK else { throw error(read, sql: what) }
        return value
    }

    /// Copies the pages the write-ahead log holds into the database file, as far as no other connection's reader
    /// still needs them (`sqlite3_wal_checkpoint_v2`, passive: it neither waits for nor blocks anyone).
    package func checkpoint() throws(StoreError) {
        let rc = sqlite3_wal_checkpoint_v2(handle, "main", SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        if rc != SQLITE_OK { throw error(rc, sql: "PRAGMA wal_checkpoint(PASSIVE)") }
    }

    /// Reads one integer from a statement with no parameters (for `PRAGMA` reads and counts).
    package func integer(_ sql: String) throws(StoreError) -> Int64? {
        let statement = try statement(sql)
        defer { statement.reset() }
        return try statement.step() ? statement.int64(0) : nil
    }

    /// Builds a ``StoreError`` from a failing result code and the connection's current message.
    package func error(_ rc: Int32, sql: String?, detail: String? = nil) -> StoreError {
        let extended = ResultCode(rawValue: sqlite3_extended_errcode(handle))
        let resultCode = extended.primary.rawValue == rc & 0xFF ? extended : ResultCode(rawValue: rc)
        let code = StoreError.Code(resultCode)
        let sqliteMessage = detail ?? String(cString: sqlite3_errmsg(handle))
        return StoreError(
            code: code,
            message: "\(sqliteMessage); \(StoreError.advice(for: code))",
            resultCode: resultCode,
            sql: sql,
            path: path
        )
    }

    private static func uriEscaped(_ path: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "/-._~")
        return path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
    }
}

/// A value bound to a statement parameter.
package enum SQLValue {
    /// SQL `NULL`.
    case null
    /// A 64-bit integer.
    case integer(Int64)
    /// A double.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// UTF-8 text given as bytes (stored as TEXT, so that `json_extract` works on it).
    case utf8(Data)
}

extension SQLValue {
    /// `NULL` for `nil`, text otherwise.
    static func optional(_ text: String?) -> SQLValue { text.map { .text($0) } ?? .null }
}

/// A prepared statement owned by a ``Connection``'s cache.
package final class Statement {
    let handle: OpaquePointer
    /// The statement's SQL text.
    package let sql: String
    private unowned let connection: Connection

    init(handle: OpaquePointer, sql: String, connection: Connection) {
        self.handle = handle
        self.sql = sql
        self.connection = connection
    }

    /// Resets the statement and clears its bindings, ending any read it holds open.
    package func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Binds `values` to the parameters `?1`, `?2`, ….
    package func bind(_ values: [SQLValue]) throws(StoreError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null:
                rc = sqlite3_bind_null(handle, index)
            case .integer(let number):
                rc = sqlite3_bind_int64(handle, index, number)
            case .real(let number):
                rc = sqlite3_bind_double(handle, index, number)
            case .text(let text):
                rc = sqlite3_bind_text(handle, index, text, -1, cflipt_sqlite_transient())
            case .utf8(let bytes):
                rc = bytes.withUnsafeBytes { buffer in
                    guard let base = buffer.baseAddress, !buffer.isEmpty else {
                        return sqlite3_bind_text(handle, index, "", 0, cflipt_sqlite_transient())
                    }
                    return sqlite3_bind_text64(
                        handle,
                        index,
                        base.assumingMemoryBound(to: CChar.self),
                        UInt64(buffer.count),
                        cflipt_sqlite_transient(),
                        UInt8(SQLITE_UTF8)
                    )
                }
            }
            if rc != SQLITE_OK { throw connection.error(rc, sql: sql) }
        }
    }

    /// Advances to the next row; `false` when the statement is done.
    package func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql: sql)
        }
    }

    /// Binds `values`, runs the statement to completion and resets it.
    package func run(_ values: [SQLValue] = []) throws(StoreError) {
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    /// Binds `values`, maps every row with `row` and resets the statement.
    package func rows<T>(
        _ values: [SQLValue] = [],
        _ row: (Statement) throws -> T
    ) throws -> [T] {
        defer { reset() }
        try bind(values)
        var result: [T] = []
        while try step() { result.append(try row(self)) }
        return result
    }

    /// Binds `values`, maps the first row (if any) and resets the statement.
    package func first<T>(
        _ values: [SQLValue] = [],
        _ row: (Statement) throws -> T
    ) throws -> T? {
        defer { reset() }
        try bind(values)
        guard try step() else { return nil }
        return try row(self)
    }

    /// Whether column `index` of the current row is `NULL`.
    package func isNull(_ index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// Column `index` of the current row as an integer.
    package func int64(_ index: Int32) -> Int64 {
        sqlite3_column_int64(handle, index)
    }

    /// Column `index` of the current row as a double.
    package func double(_ index: Int32) -> Double {
        sqlite3_column_double(handle, index)
    }

    /// Column `index` of the current row as text, or `nil` for `NULL`.
    package func text(_ index: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// Column `index` of the current row as raw bytes (the UTF-8 of a TEXT value), or `nil` for `NULL`.
    package func bytes(_ index: Int32) -> Data? {
        if isNull(index) { return nil }
        let pointer = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let pointer else { return Data() }
        return Data(bytes: pointer, count: count)
    }
}
