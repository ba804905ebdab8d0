import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct SoakError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One run of `flipt-bench soak-client`, started with posix_spawn and ended with SIGKILL.
struct ClientProcess {
    /// The `flipt-bench` executable next to the test bundle, or at `$FLIPT_BENCH_BINARY`.
    static let executable: Result<String, SoakError> = locate()

    let pid: pid_t
    let logPath: String
    let startedAt: ContinuousClock.Instant

    /// Starts the soak client; its standard output and error go to `<logPath>.out`.
    static func start(arguments: [String], logPath: String) throws -> ClientProcess {
        let path = try executable.get()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path, "soak-client"] + arguments).map { strdup($0) }
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let started = ContinuousClock.now
        // A hung client is stopped with SIGABRT, and the Swift runtime then prints every thread's stack.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=yes,threads=all,interactive=no,color=no"
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { for pointer in envp { free(pointer) } }
        let result = (argv + [nil]).withUnsafeBufferPointer { arguments in
            (envp + [nil]).withUnsafeBufferPointer { variables in
                posix_spawn(
                    &pid,
                    path,
                    &actions,
                    nil,
                    UnsafeMutablePointer(mutating: arguments.baseAddress!),
                    UnsafeMutablePointer(mutating: variables.baseAddress!)
                )
            }
        }
        guard result == 0 else { throw SoakError("posix_spawn \(path) failed: \(String(cString: strerror(result)))") }
        return ClientProcess(pid: pid, logPath: logPath, startedAt: started)
    }

    /// Sends SIGKILL and reaps the process; returns when it is gone.
    func killNow() -> ContinuousClock.Instant {
        _ = kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return .now
    }

    /// Sends SIGABRT so that the runtime prints every thread's stack to the `.out` file, waits up to 20 s for the
    /// process to end, then kills it for sure.
    func abortForStacks() -> ContinuousClock.Instant {
        _ = kill(pid, SIGABRT)
        let limit = ContinuousClock.now + .seconds(20)
        var status: Int32 = 0
        while ContinuousClock.now < limit {
            if waitpid(pid, &status, WNOHANG) == pid { return .now }
            usleep(50_000)
        }
        return killNow()
    }

    /// Whether the process has exited by itself (it should run until killed).
    func hasExited() -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    /// The whole lines of the log so far (a last line without its newline is left out).
    func lines() -> [Substring] {
        guard let data = FileManager.default.contents(atPath: logPath) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()  // after the final newline: empty, or a line cut short
        return lines
    }

    /// What the process printed on standard output and error (errors before the log opened, crashes).
    func output() -> String {
        FileManager.default.contents(atPath: logPath + ".out").map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    private static func locate() -> Result<String, SoakError> {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["FLIPT_BENCH_BINARY"], !override.isEmpty {
            guard fileManager.isExecutableFile(atPath: override) else {
                return .failure(SoakError("FLIPT_BENCH_BINARY=\(override) is not an executable file"))
            }
            return .success(override)
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
            let candidate = directory.appendingPathComponent("flipt-bench").path
            if fileManager.isExecutableFile(atPath: candidate) { return .success(candidate) }
        }
        return .failure(
            SoakError(
                "the flipt-bench executable was not found next to the test bundle (looked in "
                    + directories.map(\.path).joined(separator: ", ")
                    + "). Build it with the same scratch path first: `swift build --product flipt-bench`, or set "
                    + "FLIPT_BENCH_BINARY to its path."
            )
        )
    }
}
