import FliptTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built `flipt-offline` run as a child process, with its output collected as it arrives.
final class ToolProcess: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let process: Process
    private let output: PipeOutput
    private let errors: PipeOutput
    private let exitFlag = ExitFlag()

    /// Set by the termination handler.
    private final class ExitFlag: Sendable {
        let value = Mutex(false)
    }

    /// The executable next to the test bundle (the build's bin directory), or `$FLIPT_OFFLINE_BINARY`.
    static func executable() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["FLIPT_OFFLINE_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        var directories = Bundle.allBundles.filter { $0.bundlePath.hasSuffix(".xctest") }.map {
            $0.bundleURL.deletingLastPathComponent()
        }
        if let first = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        for directory in directories {
            let candidate = directory.appendingPathComponent("flipt-offline")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw Failure(
            description: "flipt-offline was not found next to the tests (\(directories.map(\.path))); build it "
                + "with the same scratch path: swift build --product flipt-offline"
        )
    }

    /// Starts `flipt-offline` with `arguments` and no `FLIPT_*` variables from the test's environment.
    convenience init(_ arguments: [String]) throws {
        try self.init(executable: try Self.executable(), arguments: arguments)
    }

    /// Starts another program found on `PATH` (`python3`, `curl`), the same way.
    convenience init(program: String, _ arguments: [String]) throws {
        try self.init(executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: [program] + arguments)
    }

    private init(executable: URL, arguments: [String]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLIPT_") }
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.terminationHandler = { [exitFlag] _ in exitFlag.value.withLock { $0 = true } }
        self.process = process
        try ChildProcesses.run(process)
        output = PipeOutput(reading: stdout)
        errors = PipeOutput(reading: stderr)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var stdout: String { output.text }
    var stderr: String { errors.text }

    /// Sends a signal.
    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits until standard error contains a match of `pattern`; returns the first capture group (or the match).
    func waitForStandardError(matching pattern: String, timeout: Duration = .seconds(10)) async throws -> String {
        try await waitFor(pattern, in: \.stderr, timeout: timeout)
    }

    /// Waits until standard output contains a match of `pattern`; returns the first capture group (or the match).
    func waitForStandardOutput(matching pattern: String, timeout: Duration = .seconds(10)) async throws -> String {
        try await waitFor(pattern, in: \.stdout, timeout: timeout)
    }

    private func waitFor(
        _ pattern: String,
        in output: KeyPath<ToolProcess, String>,
        timeout: Duration
    ) async throws -> String {
        let expression = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = self[keyPath: output]
            if let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                let group = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                return Range(group, in: text).map { String(text[$0]) } ?? ""
            }
            if ContinuousClock.now > deadline || exitFlag.value.withLock({ $0 }) {
                throw Failure(description: "no match for \(pattern) in: \(text) (standard error: \(stderr))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to end; its exit status, or nil after `timeout` (it is then killed).
    func waitForExit(timeout: Duration = .seconds(10)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while !exitFlag.value.withLock({ $0 }) {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                return nil
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        await PipeOutput.waitUntilComplete(output, errors)
        return process.terminationStatus
    }
}
