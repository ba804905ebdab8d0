import Foundation

/// Another process holding the write lock of a SQLite file, as an operator's `sqlite3` session or a second app
/// would: the `sqlite3` shell inside `BEGIN IMMEDIATE`, until ``release()`` or until `maximumHold` has passed.
///
/// The hold ends by itself after `maximumHold` even when the test process cannot act (its threads all blocked),
/// so that a test of waiting on the lock fails instead of hanging; ``isHeld`` then turns false.
package struct HeldWriteLock {
    private let process: Process
    private let input: Pipe
    private let output: PipeOutput
    private let errors: PipeOutput

    /// Starts the `sqlite3` shell on `path` and returns once it holds the write lock.
    ///
    /// - Throws: when `sqlite3` cannot start or cannot take the lock within 30 seconds (another connection holds
    ///   it); the message has what `sqlite3` wrote.
    package static func acquire(path: String, maximumHold: Duration = .seconds(60)) async throws -> HeldWriteLock {
        let lock = try HeldWriteLock(path: path, maximumHold: maximumHold)
        let deadline = ContinuousClock.now + .seconds(30)
        while !lock.isHeld {
            guard lock.process.isRunning, ContinuousClock.now < deadline else {
                lock.process.terminate()
                throw CocoaError(
                    .fileLocking,
                    userInfo: [NSLocalizedDescriptionKey: "sqlite3 did not take the write lock: \(lock.errors.text)"]
                )
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return lock
    }

    private init(path: String, maximumHold: Duration) throws {
        let seconds = max(1, maximumHold.components.seconds)
        // `-bail` stops at a failed BEGIN, so "locked" is printed only once the lock is held; `read -t` ends the
        // hold when the test writes a line, or after `seconds` whatever the test process does.
        let script = """
            { printf 'BEGIN IMMEDIATE;\\nSELECT %s;\\n' "'locked'"; read -r -t "$2" _; printf 'COMMIT;\\n'; } \
            | sqlite3 -bail -batch "$1"
            """
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, "bash", path, String(seconds)]
        input = Pipe()
        let standardOutput = Pipe()
        let standardError = Pipe()
        process.standardInput = input
        process.standardOutput = standardOutput
        process.standardError = standardError
        output = PipeOutput(reading: standardOutput)
        errors = PipeOutput(reading: standardError)
        try ChildProcesses.run(process)
    }

    /// Whether the other process still holds the lock.
    package var isHeld: Bool {
        process.isRunning && output.text.contains("locked")
    }

    /// Commits the other process's empty transaction, which releases the lock, and waits until it has exited.
    package func release() async {
        try? input.fileHandleForWriting.write(contentsOf: Data("\n".utf8))
        try? input.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
