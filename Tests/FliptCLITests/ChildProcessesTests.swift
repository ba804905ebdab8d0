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
        try #require(await eventually { !process.isRunning })
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(process.terminationStatus == SIGKILL)
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
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGKILL)
        try #require(await eventually { !process.isRunning })
        #expect(process.terminationStatus == SIGKILL)
    }
}
