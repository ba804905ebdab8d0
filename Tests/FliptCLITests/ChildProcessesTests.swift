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

    private func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test("a child is killed when the thread that started it ends, as when the test process dies")
    func diesWithItsParent() async throws {
        let launcher = ChildProcesses.Launcher(name: "test launcher")
        let process = sleeper()
        try ChildProcesses.run(process, on: launcher)
        #expect(process.isRunning)
        launcher.stop()
        // Dead: gone, or a zombie until it is reaped (whichever thread of this process reaps it).
        let pid = process.processIdentifier
        #expect(await eventually { Self.isDead(pid) }, "child \(pid) still runs after its parent thread ended")
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
