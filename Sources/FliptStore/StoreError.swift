import Foundation

/// An error from the snapshot store: what happened, what to do, and SQLite's extended result code if any.
///
/// Descriptions name the file and the SQL statement text, never a bound value: documents, ETags and keys
/// are always bound as parameters, so personal data in them cannot leak into logs through an error.
package struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, stable across releases so that callers can branch on it.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case sqliteTooOld = "sqlite_too_old"
            case cannotOpen = "cannot_open"
            case corrupt
            case foreignDatabase = "foreign_database"
            case newerSchema = "newer_schema"
            case migrationModified = "migration_modified"
            case readOnly = "read_only"
            case full
            case busy
            case io
            case notFound = "not_found"
            case invalidInput = "invalid_input"
            case sqlite
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The system SQLite library is older than the schema needs.
        package static let sqliteTooOld = Code(.sqliteTooOld)
        /// The file cannot be opened at all (a directory, a missing parent, no permission).
        package static let cannotOpen = Code(.cannotOpen)
        /// The file is damaged or is not an SQLite database.
        package static let corrupt = Code(.corrupt)
        /// The file is a valid SQLite database that belongs to some other program.
        package static let foreignDatabase = Code(.foreignDatabase)
        /// The file was written by a newer version of this package, with migrations this one does not know.
        package static let newerSchema = Code(.newerSchema)
        /// A migration already applied to the file differs from the one shipped in this binary.
        package static let migrationModified = Code(.migrationModified)
        /// The store is read-only (the file or its directory cannot be written).
        package static let readOnly = Code(.readOnly)
        /// The disk, or the configured size limit, is full.
        package static let full = Code(.full)
        /// Another connection held the lock for longer than the busy timeout.
        package static let busy = Code(.busy)
        /// The operating system reported an I/O error.
        package static let io = Code(.io)
        /// The requested entry or generation does not exist.
        package static let notFound = Code(.notFound)
        /// An argument was rejected before it reached SQLite (for example a document that is not UTF-8).
        package static let invalidInput = Code(.invalidInput)
        /// Any other SQLite failure.
        package static let sqlite = Code(.sqlite)

        /// The snake_case name of the code, as written to logs.
        package var description: String { base.rawValue }
    }

    /// The kind of failure.
    package var code: Code
    /// What happened and what to do, in one or two sentences.
    package var message: String
    /// SQLite's extended result code, when SQLite reported the failure.
    package var resultCode: ResultCode?
    /// The SQL text of the failing statement (parameters appear as `?`, never as values).
    package var sql: String?
    /// The database file concerned.
    package var path: String?

    /// Creates an error.
    package init(
        code: Code,
        message: String,
        resultCode: ResultCode? = nil,
        sql: String? = nil,
        path: String? = nil
    ) {
        self.code = code
        self.message = message
        self.resultCode = resultCode
        self.sql = sql
        self.path = path
    }

    /// A one-line description for logs: code, message, file, SQLite code and statement.
    package var description: String {
        var text = "\(code): \(message)"
        if let path { text += " [file: \(path)]" }
        if let resultCode { text += " [sqlite: \(resultCode)]" }
        if let sql {
            let oneLine = sql.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .joined(separator: " ")
            text += " [sql: \(oneLine.count > 300 ? oneLine.prefix(300) + "…" : oneLine)]"
        }
        return text
    }
}

extension StoreError.Code {
    /// The store code that describes an SQLite result code.
    init(_ resultCode: ResultCode) {
        switch resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: self = .busy
        case .SQLITE_READONLY, .SQLITE_PERM: self = .readOnly
        case .SQLITE_FULL: self = .full
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: self = .corrupt
        case .SQLITE_IOERR: self = .io
        case .SQLITE_CANTOPEN: self = .cannotOpen
        default: self = .sqlite
        }
    }
}

extension StoreError {
    /// Advice for a caller that meets an SQLite failure of this kind.
    static func advice(for code: Code) -> String {
        switch code {
        case .busy: "another process held the database lock past the busy timeout; retry later"
        case .readOnly: "the cache file or its directory is not writable; fix the permissions or choose another path"
        case .full: "the disk or the configured size limit is full; free space or raise the limit"
        case .corrupt: "the cache file is damaged; reopen the store to move it aside and start a fresh one"
        case .io: "the operating system reported an I/O error; check the disk"
        case .cannotOpen: "check that the path names a file in an existing, accessible directory"
        default: "this is likely a bug in FliptStore; please report it with this message"
        }
    }
}

extension StoreError {
    /// Runs `body`, passing a ``StoreError`` through and wrapping any other error as ``Code/sqlite``.
    static func catching<T>(path: String? = nil, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(code: .sqlite, message: "\(error)", path: path)
        }
    }
}
