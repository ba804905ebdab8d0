import ArgumentParser
import FliptStore
import Foundation

/// The exit statuses of `flipt-offline`, the same for every command; each command's `--help` lists its own.
enum ExitStatus {
    /// The command did what was asked.
    static let success: Int32 = 0
    /// An evaluation failed, or the arguments are inconsistent.
    static let failed: Int32 = 1
    /// A snapshot document or string is invalid.
    static let invalidDocument: Int32 = 2
    /// A file (other than the cache) could not be read or written.
    static let unreadable: Int32 = 3
    /// The cache has no such file, entry or generation.
    static let noEntry: Int32 = 4
    /// `cache verify` found problems.
    static let unhealthy: Int32 = 5
    /// `sync --detailed-exit-codes`: the server answered `304 Not Modified`; the cached snapshot is current.
    static let notModified: Int32 = 10
    /// `sync`: the server could not be reached, or did not answer in time.
    static let network: Int32 = 20
    /// `sync`: the server answered an HTTP error (other than 401/403) or something the protocol does not allow.
    static let httpError: Int32 = 21
    /// `sync`: the server rejected the credential (401 or 403).
    static let authentication: Int32 = 22
    /// `sync`: the server sent a document that is not a valid snapshot of the namespace.
    static let badDocument: Int32 = 23
    /// The cache file cannot be opened, read or written (damaged, read-only, locked, disk full).
    static let cache: Int32 = 30
    /// `serve`: a TLS file (--tls-cert, --tls-key, --client-ca) or the --client-tokens file cannot be used.
    static let securityFiles: Int32 = 40
    /// The command line is invalid (ArgumentParser's own status, also used for unusable options).
    static let usage: Int32 = 64
}

/// A failure a command reports as one line on standard error, with the exit status that classifies it.
struct CommandFailure: Error, CustomStringConvertible {
    /// The exit status.
    var status: Int32
    /// What happened and what to do, in one line.
    var message: String

    init(_ status: Int32, _ message: String) {
        self.status = status
        self.message = message
    }

    var description: String { message }

    /// A failure for a cache error: the store's message, the file, and the advice for its kind.
    static func cache(_ error: StoreError, doing what: String) -> CommandFailure {
        let advice: String
        if error.code == .readOnly {
            advice = "fix the permissions or choose another --cache"
        } else if error.code == .busy {
            advice = "another process holds the lock; retry in a moment"
        } else if error.code == .corrupt {
            advice = "check it with `flipt-offline cache verify`"
        } else if error.code == .full {
            advice = "free disk space"
        } else {
            advice = "check the --cache path"
        }
        let file = error.path.map { " \($0)" } ?? ""
        return CommandFailure(
            ExitStatus.cache,
            "cannot \(what): the cache file\(file) failed (\(error.code): \(error.message)); \(advice)"
        )
    }

    /// Runs a command body; any error is printed as one line on standard error and becomes an exit status.
    static func reporting(_ command: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            throw report(error, command: command)
        }
    }

    /// Runs an async command body; any error is printed as one line on standard error and becomes an exit status.
    static func reporting(_ command: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            throw report(error, command: command)
        }
    }

    private static func report(_ error: any Error, command: String) -> any Error {
        let status: Int32
        let message: String
        switch error {
        case let error as ExitCode:
            return error
        case let error as CleanExit:
            return error
        case let error as CommandFailure:
            (status, message) = (error.status, error.message)
        case let error as ValidationError:
            (status, message) = (ExitStatus.usage, error.message)
        case let error as StoreError:
            let failure = cache(error, doing: "use the cache")
            (status, message) = (failure.status, failure.message)
        default:
            (status, message) = (ExitStatus.failed, "\(error)")
        }
        Terminal.error(message, command: command)
        return ExitCode(status)
    }
}

/// Writes to standard output and standard error without buffering, so lines reach a pipe as they are written.
enum Terminal {
    /// Writes `text` and a line feed to standard output.
    static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes `text` as is to standard output.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `flipt-offline COMMAND: message` to standard error, on one line.
    static func error(_ message: String, command: String) {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("flipt-offline \(command): \(oneLine)\n".utf8))
    }

    /// Writes a note for people to standard error (provenance, warnings); never data for scripts.
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
