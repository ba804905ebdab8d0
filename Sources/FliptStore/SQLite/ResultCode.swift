import CFliptSQLite

/// An SQLite result code, primary or extended.
///
/// Connections are opened with `SQLITE_OPEN_EXRESCODE`, so errors carry extended codes such as
/// ``SQLITE_IOERR_WRITE`` or ``SQLITE_CORRUPT_INDEX``. Match them with `~=` in a `switch`: a primary
/// pattern matches every extended code in its family, an extended pattern matches only itself.
///
/// ```swift
/// switch error.resultCode {
/// case .SQLITE_BUSY_SNAPSHOT: …   // this extended code only
/// case .SQLITE_BUSY: …            // any other busy code
/// default: …
/// }
/// ```
package struct ResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw SQLite result code.
    package let rawValue: Int32

    /// Creates a result code from SQLite's raw integer.
    package init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// The primary code: the least significant 8 bits of an extended code.
    package var primary: ResultCode {
        ResultCode(rawValue: rawValue & 0xFF)
    }

    /// Whether this code is a primary code rather than an extended one.
    package var isPrimary: Bool {
        rawValue == rawValue & 0xFF
    }

    /// SQLite's English description of the code (for example "database is locked").
    package var description: String {
        let text = sqlite3_errstr(rawValue).map { String(cString: $0) } ?? "unknown result code"
        return "\(text) (\(name ?? "code \(rawValue)"))"
    }

    /// Matches a primary pattern against any code of its family and an extended pattern exactly.
    package static func ~= (pattern: ResultCode, code: ResultCode) -> Bool {
        pattern.isPrimary ? pattern == code.primary : pattern == code
    }

    /// Matches an optional code (as found on ``StoreError/resultCode``).
    package static func ~= (pattern: ResultCode, code: ResultCode?) -> Bool {
        code.map { pattern ~= $0 } ?? false
    }

    private static func extended(_ primary: ResultCode, _ index: Int32) -> ResultCode {
        ResultCode(rawValue: primary.rawValue | (index << 8))
    }

    // Primary codes (https://www.sqlite.org/rescode.html).

    /// Successful result.
    package static let SQLITE_OK = ResultCode(rawValue: 0)
    /// Generic error.
    package static let SQLITE_ERROR = ResultCode(rawValue: 1)
    /// Internal logic error in SQLite.
    package static let SQLITE_INTERNAL = ResultCode(rawValue: 2)
    /// Access permission denied.
    package static let SQLITE_PERM = ResultCode(rawValue: 3)
    /// Callback routine requested an abort.
    package static let SQLITE_ABORT = ResultCode(rawValue: 4)
    /// The database file is locked by another connection.
    package static let SQLITE_BUSY = ResultCode(rawValue: 5)
    /// A table in the database is locked.
    package static let SQLITE_LOCKED = ResultCode(rawValue: 6)
    /// A memory allocation failed.
    package static let SQLITE_NOMEM = ResultCode(rawValue: 7)
    /// Attempt to write a read-only database.
    package static let SQLITE_READONLY = ResultCode(rawValue: 8)
    /// Operation interrupted.
    package static let SQLITE_INTERRUPT = ResultCode(rawValue: 9)
    /// Disk I/O error.
    package static let SQLITE_IOERR = ResultCode(rawValue: 10)
    /// The database disk image is malformed.
    package static let SQLITE_CORRUPT = ResultCode(rawValue: 11)
    /// Unknown opcode in a file control.
    package static let SQLITE_NOTFOUND = ResultCode(rawValue: 12)
    /// Insertion failed because the database (or the disk) is full.
    package static let SQLITE_FULL = ResultCode(rawValue: 13)
    /// Unable to open the database file.
    package static let SQLITE_CANTOPEN = ResultCode(rawValue: 14)
    /// Database lock protocol error.
    package static let SQLITE_PROTOCOL = ResultCode(rawValue: 15)
    /// The database schema changed.
    package static let SQLITE_SCHEMA = ResultCode(rawValue: 17)
    /// String or blob exceeds the size limit.
    package static let SQLITE_TOOBIG = ResultCode(rawValue: 18)
    /// Constraint violation.
    package static let SQLITE_CONSTRAINT = ResultCode(rawValue: 19)
    /// Data type mismatch.
    package static let SQLITE_MISMATCH = ResultCode(rawValue: 20)
    /// Library used incorrectly.
    package static let SQLITE_MISUSE = ResultCode(rawValue: 21)
    /// Authorization denied.
    package static let SQLITE_AUTH = ResultCode(rawValue: 23)
    /// Bind parameter index out of range.
    package static let SQLITE_RANGE = ResultCode(rawValue: 25)
    /// The file is not a database.
    package static let SQLITE_NOTADB = ResultCode(rawValue: 26)
    /// A row is ready (from `sqlite3_step`).
    package static let SQLITE_ROW = ResultCode(rawValue: 100)
    /// The statement finished (from `sqlite3_step`).
    package static let SQLITE_DONE = ResultCode(rawValue: 101)

    // Extended codes this package meets or reports.

    /// A read failed at the operating-system level.
    package static let SQLITE_IOERR_READ = extended(SQLITE_IOERR, 1)
    /// A read returned fewer bytes than requested (often a truncated file).
    package static let SQLITE_IOERR_SHORT_READ = extended(SQLITE_IOERR, 2)
    /// A write failed at the operating-system level.
    package static let SQLITE_IOERR_WRITE = extended(SQLITE_IOERR, 3)
    /// An fsync failed.
    package static let SQLITE_IOERR_FSYNC = extended(SQLITE_IOERR, 4)
    /// A truncate failed.
    package static let SQLITE_IOERR_TRUNCATE = extended(SQLITE_IOERR, 6)
    /// Opening the shared-memory (-shm) file failed.
    package static let SQLITE_IOERR_SHMOPEN = extended(SQLITE_IOERR, 18)
    /// Locking in the shared-memory file failed.
    package static let SQLITE_IOERR_SHMLOCK = extended(SQLITE_IOERR, 20)
    /// A busy error during WAL recovery.
    package static let SQLITE_BUSY_RECOVERY = extended(SQLITE_BUSY, 1)
    /// A WAL reader's snapshot went stale while it tried to write.
    package static let SQLITE_BUSY_SNAPSHOT = extended(SQLITE_BUSY, 2)
    /// A busy error on a timeout-less lock.
    package static let SQLITE_BUSY_TIMEOUT = extended(SQLITE_BUSY, 3)
    /// The -shm file cannot be opened and the WAL cannot be recovered read-only.
    package static let SQLITE_READONLY_RECOVERY = extended(SQLITE_READONLY, 1)
    /// Attempt to write a database opened read-only that cannot take a lock.
    package static let SQLITE_READONLY_CANTLOCK = extended(SQLITE_READONLY, 2)
    /// A rollback journal is hot but the database is read-only.
    package static let SQLITE_READONLY_ROLLBACK = extended(SQLITE_READONLY, 3)
    /// The database file was moved or unlinked while open.
    package static let SQLITE_READONLY_DBMOVED = extended(SQLITE_READONLY, 4)
    /// A read-only WAL database cannot initialise its shared memory.
    package static let SQLITE_READONLY_CANTINIT = extended(SQLITE_READONLY, 5)
    /// The directory holding the database is read-only.
    package static let SQLITE_READONLY_DIRECTORY = extended(SQLITE_READONLY, 6)
    /// The corrupt virtual table.
    package static let SQLITE_CORRUPT_VTAB = extended(SQLITE_CORRUPT, 1)
    /// A sequence table is corrupt.
    package static let SQLITE_CORRUPT_SEQUENCE = extended(SQLITE_CORRUPT, 2)
    /// An index is corrupt.
    package static let SQLITE_CORRUPT_INDEX = extended(SQLITE_CORRUPT, 3)
    /// The path names a directory.
    package static let SQLITE_CANTOPEN_ISDIR = extended(SQLITE_CANTOPEN, 2)
    /// A path could not be converted to a full path.
    package static let SQLITE_CANTOPEN_FULLPATH = extended(SQLITE_CANTOPEN, 3)
    /// A CHECK constraint failed.
    package static let SQLITE_CONSTRAINT_CHECK = extended(SQLITE_CONSTRAINT, 1)
    /// A foreign key constraint failed.
    package static let SQLITE_CONSTRAINT_FOREIGNKEY = extended(SQLITE_CONSTRAINT, 3)
    /// A NOT NULL constraint failed.
    package static let SQLITE_CONSTRAINT_NOTNULL = extended(SQLITE_CONSTRAINT, 5)
    /// A PRIMARY KEY constraint failed.
    package static let SQLITE_CONSTRAINT_PRIMARYKEY = extended(SQLITE_CONSTRAINT, 6)
    /// A UNIQUE constraint failed.
    package static let SQLITE_CONSTRAINT_UNIQUE = extended(SQLITE_CONSTRAINT, 8)
    /// A value does not fit the declared type of a STRICT table column.
    package static let SQLITE_CONSTRAINT_DATATYPE = extended(SQLITE_CONSTRAINT, 12)

    private static let names: [Int32: String] = {
        let all: [(ResultCode, String)] = [
            (SQLITE_OK, "SQLITE_OK"), (SQLITE_ERROR, "SQLITE_ERROR"), (SQLITE_INTERNAL, "SQLITE_INTERNAL"),
            (SQLITE_PERM, "SQLITE_PERM"), (SQLITE_ABORT, "SQLITE_ABORT"), (SQLITE_BUSY, "SQLITE_BUSY"),
            (SQLITE_LOCKED, "SQLITE_LOCKED"), (SQLITE_NOMEM, "SQLITE_NOMEM"), (SQLITE_READONLY, "SQLITE_READONLY"),
            (SQLITE_INTERRUPT, "SQLITE_INTERRUPT"), (SQLITE_IOERR, "SQLITE_IOERR"), (SQLITE_CORRUPT, "SQLITE_CORRUPT"),
            (SQLITE_NOTFOUND, "SQLITE_NOTFOUND"), (SQLITE_FULL, "SQLITE_FULL"), (SQLITE_CANTOPEN, "SQLITE_CANTOPEN"),
            (SQLITE_PROTOCOL, "SQLITE_PROTOCOL"), (SQLITE_SCHEMA, "SQLITE_SCHEMA"), (SQLITE_TOOBIG, "SQLITE_TOOBIG"),
            (SQLITE_CONSTRAINT, "SQLITE_CONSTRAINT"), (SQLITE_MISMATCH, "SQLITE_MISMATCH"),
            (SQLITE_MISUSE, "SQLITE_MISUSE"), (SQLITE_AUTH, "SQLITE_AUTH"), (SQLITE_RANGE, "SQLITE_RANGE"),
            (SQLITE_NOTADB, "SQLITE_NOTADB"), (SQLITE_ROW, "SQLITE_ROW"), (SQLITE_DONE, "SQLITE_DONE"),
            (SQLITE_IOERR_READ, "SQLITE_IOERR_READ"), (SQLITE_IOERR_SHORT_READ, "SQLITE_IOERR_SHORT_READ"),
            (SQLITE_IOERR_WRITE, "SQLITE_IOERR_WRITE"), (SQLITE_IOERR_FSYNC, "SQLITE_IOERR_FSYNC"),
            (SQLITE_IOERR_TRUNCATE, "SQLITE_IOERR_TRUNCATE"), (SQLITE_IOERR_SHMOPEN, "SQLITE_IOERR_SHMOPEN"),
            (SQLITE_IOERR_SHMLOCK, "SQLITE_IOERR_SHMLOCK"), (SQLITE_BUSY_RECOVERY, "SQLITE_BUSY_RECOVERY"),
            (SQLITE_BUSY_SNAPSHOT, "SQLITE_BUSY_SNAPSHOT"), (SQLITE_BUSY_TIMEOUT, "SQLITE_BUSY_TIMEOUT"),
            (SQLITE_READONLY_RECOVERY, "SQLITE_READONLY_RECOVERY"),
            (SQLITE_READONLY_CANTLOCK, "SQLITE_READONLY_CANTLOCK"),
            (SQLITE_READONLY_ROLLBACK, "SQLITE_READONLY_ROLLBACK"),
            (SQLITE_READONLY_DBMOVED, "SQLITE_READONLY_DBMOVED"),
            (SQLITE_READONLY_CANTINIT, "SQLITE_READONLY_CANTINIT"),
            (SQLITE_READONLY_DIRECTORY, "SQLITE_READONLY_DIRECTORY"), (SQLITE_CORRUPT_VTAB, "SQLITE_CORRUPT_VTAB"),
            (SQLITE_CORRUPT_SEQUENCE, "SQLITE_CORRUPT_SEQUENCE"), (SQLITE_CORRUPT_INDEX, "SQLITE_CORRUPT_INDEX"),
            (SQLITE_CANTOPEN_ISDIR, "SQLITE_CANTOPEN_ISDIR"), (SQLITE_CANTOPEN_FULLPATH, "SQLITE_CANTOPEN_FULLPATH"),
            (SQLITE_CONSTRAINT_CHECK, "SQLITE_CONSTRAINT_CHECK"),
            (SQLITE_CONSTRAINT_FOREIGNKEY, "SQLITE_CONSTRAINT_FOREIGNKEY"),
            (SQLITE_CONSTRAINT_NOTNULL, "SQLITE_CONSTRAINT_NOTNULL"),
            (SQLITE_CONSTRAINT_PRIMARYKEY, "SQLITE_CONSTRAINT_PRIMARYKEY"),
            (SQLITE_CONSTRAINT_UNIQUE, "SQLITE_CONSTRAINT_UNIQUE"),
            (SQLITE_CONSTRAINT_DATATYPE, "SQLITE_CONSTRAINT_DATATYPE"),
        ]
        return Dictionary(uniqueKeysWithValues: all.map { ($0.0.rawValue, $0.1) })
    }()

    /// The symbolic name (`SQLITE_BUSY_SNAPSHOT`) when this package knows it.
    package var name: String? {
        Self.names[rawValue]
    }
}
