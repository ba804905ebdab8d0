import FliptTestSupport
import Foundation
import Synchronization
import Testing

/// What one run of the built `flipt-offline` printed and how it exited.
struct ToolResult: Sendable, CustomStringConvertible {
    /// The exit status (for a process killed by a signal: the signal number, and `killedBySignal` is true).
    var status: Int32
    /// Whether the process ended by an uncaught signal.
    var killedBySignal: Bool
    var stdout: String
    var stderr: String
    /// Whether the run overran its time limit and was killed.
    var timedOut: Bool

    /// Standard output parsed as one JSON object.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw ToolError("standard output is not a JSON object: \(stdout)")
        }
        return object
    }

    var description: String {
        "status \(status)\(killedBySignal ? " (signal)" : "")\(timedOut ? " (timed out)" : "")\n"
            + "stdout: \(stdout)\nstderr: \(stderr)"
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the `flipt-offline` executable that `swift build` put next to this test bundle, as a user would.
enum CommandLineTool {
    /// The executable, found next to the test bundle (or at `$FLIPT_OFFLINE_BINARY`).
    static let executable: Result<URL, ToolError> = locate()

    private static func locate() -> Result<URL, ToolError> {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["FLIPT_OFFLINE_BINARY"], !override.isEmpty {
            guard fileManager.isExecutableFile(atPath: override) else {
                return .failure(ToolError("FLIPT_OFFLINE_BINARY=\(override) is not an executable file"))
            }
            return .success(URL(fileURLWithPath: override))
        }
        var directories: [URL] = []
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        if let first = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for directory in directories {
            let candidate = directory.appendingPathComponent("flipt-offline")
            if fileManager.isExecutableFile(atPath: candidate.path) { return .success(candidate) }
        }
        return .failure(
            ToolError(
                "the flipt-offline executable was not found next to the test bundle (looked in "
                    + directories.map(\.path).joined(separator: ", ")
                    + "). Build it with the same scratch path first: `swift build --product flipt-offline`, or set "
                    + "FLIPT_OFFLINE_BINARY to its path."
            )
        )
    }

    /// The environment for a run: this process's, without any `FLIPT_*` variable, plus `extra`.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLIPT_") }
        environment["FLIPT_OFFLINE_CACHE"] = "/nonexistent/flipt-offline-tests/cache.sqlite3"
        for (name, value) in extra { environment[name] = value }
        return environment
    }

    /// Runs the tool to completion and captures its output; kills it after `timeout`.
    static func run(
        _ arguments: [String],
        environment extra: [String: String] = [:],
        input: Data? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> ToolResult {
        let executable = try executable.get()
        return try await withCheckedThrowingContinuation { continuation in
            // Blocking reads and waits happen on a thread of their own, never on the cooperative pool.
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try runBlocking(
                            executable: executable,
                            arguments: arguments,
                            environment: environment(extra),
                            input: input,
                            timeout: timeout
                        )
                    }
                )
            }
            thread.start()
        }
    }

    private static func runBlocking(
        executable: URL,
        arguments: [String],
        environment: [String: String],
        input: Data?,
        timeout: Duration
    ) throws -> ToolResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try ChildProcesses.run(process)
        if let input {
            DispatchQueue.global().async {
                stdin.fileHandleForWriting.write(input)
                try? stdin.fileHandleForWriting.close()
            }
        }
        let timedOut = Mutex(false)
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            if process.isRunning {
                timedOut.withLock { $0 = true }
                kill(process.processIdentifier, SIGKILL)
            }
        }
        let errorBytes = Mutex(Data())
        let readers = DispatchGroup()
        readers.enter()
        DispatchQueue.global().async {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorBytes.withLock { $0 = data }
            readers.leave()
        }
        let outputBytes = stdout.fileHandleForReading.readDataToEndOfFile()
        readers.wait()
        process.waitUntilExit()
        return ToolResult(
            status: process.terminationStatus,
            killedBySignal: process.terminationReason == .uncaughtSignal,
            stdout: String(decoding: outputBytes, as: UTF8.self),
            stderr: errorBytes.withLock { String(decoding: $0, as: UTF8.self) },
            timedOut: timedOut.withLock { $0 }
        )
    }
}

/// A `flipt-offline` process left running (for `run`), whose output is collected as it arrives.
final class RunningTool: Sendable {
    /// A value the pipe and termination handlers write and the test reads.
    private final class Shared<Value: Sendable>: Sendable {
        let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
    }

    private let process: Process
    private let output: PipeOutput
    private let errors: PipeOutput
    private let exited = Shared<ContinuousClock.Instant?>(nil)

    init(_ arguments: [String], environment extra: [String: String] = [:]) throws {
        let executable = try CommandLineTool.executable.get()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = CommandLineTool.environment(extra)
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        self.process = process
        process.terminationHandler = { [exited] _ in exited.value.withLock { $0 = .now } }
        try ChildProcesses.run(process)
        output = PipeOutput(reading: stdout)
        errors = PipeOutput(reading: stderr)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var stdout: String { output.text }
    var stderr: String { errors.text }
    var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }

    /// Waits until a line of standard output satisfies `predicate`; returns it, or nil after `timeout`.
    func waitForLine(timeout: Duration = .seconds(10), where predicate: (String) -> Bool) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = stdoutLines.first(where: predicate) { return line }
            if exitTime != nil { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return stdoutLines.first(where: predicate)
    }

    /// When the process exited, if it has.
    var exitTime: ContinuousClock.Instant? { exited.value.withLock { $0 } }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit; returns its status and whether a signal ended it, or nil after `timeout`
    /// (the process is then killed).
    func waitForExit(timeout: Duration) async -> (status: Int32, bySignal: Bool)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if exitTime != nil { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        guard exitTime != nil else {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        await PipeOutput.waitUntilComplete(output, errors)
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
}
