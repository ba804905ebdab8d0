import Foundation
import Testing

@testable import FliptTestSupport

/// Programs started by tests die with the test process (the kernel's parent-death signal), not before.
@Suite("Children of the tests", .enabled(if: ChildProcesses.deathSignalTool != nil, "needs setpriv (Linux)"))
struct ChildProcessesTests {
    private func sleeper() -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["60"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    @Test("a child started as ChildProcesses starts it dies when its parent process is killed with SIGKILL")
    func diesWithItsParent() async throws {
        // The parent is a shell, killed as a crashed test process would be; its child is started with the very
        // command ChildProcesses.run uses.
        let (wrapper, arguments) = ChildProcesses.command(
            executable: URL(fileURLWithPath: "/bin/sleep"),
            arguments: ["60"]
        )
        let child = ([wrapper.path] + arguments).joined(separator: " ")
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        parent.arguments = ["-c", "\(child) & echo $!; exec sleep 60"]
        let output = Pipe()
        parent.standardOutput = output
        try parent.run()
        let line = output.fileHandleForReading.availableData
        let pid = try #require(
            Int32(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        try await Task.sleep(for: .milliseconds(300))  // setpriv has set the signal and become sleep
        #expect(!Self.isDead(pid))
        kill(parent.processIdentifier, SIGKILL)
        #expect(await eventually { Self.isDead(pid) }, "child \(pid) outlived its killed parent")
        kill(pid, SIGKILL)  // in case it did not die
        parent.waitUntilExit()
    }

    /// Whether the process `pid` has ended (no longer listed, or a zombie).
    static func isDead(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return true }
        return status.split(separator: "\n").contains { $0.hasPrefix("State:") && $0.contains("Z") }
    }

    @Test("a child outlives the short-lived thread that asked for it")
    func outlivesTheAskingThread() async throws {
        let process = sleeper()
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            #expect(throws: Never.self) { try ChildProcesses.run(process) }
            started.signal()
        }
        thread.start()
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                started.wait()
                continuation.resume()
            }
        }
        try await Task.sleep(for: .milliseconds(500))  // the asking thread has ended by now
        #expect(!Self.isDead(process.processIdentifier))
        kill(process.processIdentifier, SIGKILL)
        #expect(await eventually { Self.isDead(process.processIdentifier) })
    }
}
