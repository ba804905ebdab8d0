import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts the programs a test runs (the `flipt-offline` under test, servers, writers) so that they die with the test
/// process, even when it crashes or is killed: a `serve` left listening would hold its port and its cache file, and
/// the next run would trip over it.
///
/// On Linux the program runs under `setpriv --pdeathsig KILL`, which asks the kernel to kill it when its parent
/// dies. The kernel means the parent *thread*, so every child is started from one thread that lives as long as the
/// process: children outlive the threads that asked for them, never the process. Elsewhere (no `setpriv`), the
/// program starts as it is.
package enum ChildProcesses {
    /// `setpriv`, when the system has it.
    static let deathSignalTool: URL? = {
        #if os(Linux)
        let path = "/usr/bin/setpriv"
        return FileManager.default.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        #else
        return nil
        #endif
    }()

    /// The process-long thread that starts every child.
    static let launcher = Launcher(name: "ChildProcesses.launcher")

    /// Starts `process` (configured, not yet run) so that it is killed when the test process ends.
    ///
    /// `process.processIdentifier`, signals, pipes and the termination handler work as after `run()`: `setpriv`
    /// replaces itself with the program, keeping its process id.
    package static func run(_ process: Process) throws {
        try run(process, on: launcher)
    }

    static func run(_ process: Process, on launcher: Launcher) throws {
        if let executable = process.executableURL {
            let (wrapper, arguments) = command(executable: executable, arguments: process.arguments ?? [])
            process.executableURL = wrapper
            process.arguments = arguments
        }
        try launcher.perform { try process.run() }
    }

    /// The program and arguments that run `executable` with `arguments` under the parent-death signal (as they
    /// are when the system has no `setpriv`).
    static func command(executable: URL, arguments: [String]) -> (URL, [String]) {
        guard let tool = deathSignalTool else { return (executable, arguments) }
        return (tool, ["--pdeathsig", "KILL", "--", executable.path] + arguments)
    }

    /// A thread that runs the jobs given to ``perform(_:)`` one at a time, for as long as the process lives.
    final class Launcher: @unchecked Sendable {
        // @unchecked: `jobs` is only touched under `condition`.
        private let condition = NSCondition()
        private var jobs: [() -> Void] = []

        init(name: String) {
            Thread.detachNewThread { [self] in
                Thread.current.name = name
                // Block what a Dispatch worker thread blocks (every signal but the synchronous ones), whichever
                // thread created this one: SIGCHLD must reach Foundation's child watcher, not this thread, and a
                // child inherits the mask, as children started from Dispatch threads always did (`flipt-offline`
                // reads its signals through Dispatch sources, which work with them blocked).
                var mask = sigset_t()
                sigfillset(&mask)
                for synchronous in [SIGILL, SIGFPE, SIGBUS, SIGSEGV, SIGTRAP] { sigdelset(&mask, synchronous) }
                pthread_sigmask(SIG_SETMASK, &mask, nil)
                while true { next()() }
            }
        }

        /// The next job, waiting for one.
        private func next() -> () -> Void {
            condition.lock()
            defer { condition.unlock() }
            while jobs.isEmpty { condition.wait() }
            return jobs.removeFirst()
        }

        /// Runs `job` on the launcher's thread and returns what it returned or threw.
        func perform(_ job: @escaping @Sendable () throws -> Void) throws {
            let done = DispatchSemaphore(value: 0)
            let outcome = LockedResult()
            condition.lock()
            jobs.append {
                outcome.set(Result { try job() })
                done.signal()
            }
            condition.signal()
            condition.unlock()
            done.wait()
            try outcome.get()
        }
    }

    private final class LockedResult: @unchecked Sendable {
        // @unchecked: written once before a semaphore signal, read after the wait.
        private var result: Result<Void, any Error> = .success(())
        func set(_ result: Result<Void, any Error>) { self.result = result }
        func get() throws { try result.get() }
    }
}
