import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a fresh directory under the system temporary directory (made by `mkdtemp`, so owner-only),
/// removed with everything in it afterwards, even files a test made read-only or immutable with
/// ``ReadOnlyFiles/make(_:)``.
package func withTemporaryDirectory<Result>(_ body: (URL) async throws -> Result) async throws -> Result {
    var template = Array(
        FileManager.default.temporaryDirectory.appendingPathComponent("flipt-test-XXXXXX").path.utf8CString
    )
    guard let created = mkdtemp(&template) else {
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    let directory = URL(fileURLWithPath: String(cString: created), isDirectory: true)
    defer {
        if (try? FileManager.default.removeItem(at: directory)) == nil {
            ReadOnlyFiles.restoreWritable(directory)
            try? FileManager.default.removeItem(at: directory)
        }
    }
    return try await body(directory)
}

/// Checks `condition` every 10 ms until it holds or `timeout` has passed, and once more at the end; returns
/// whether it held. The timeout is a generous upper bound for a busy machine: a passing check returns at once.
package func eventually(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// Makes files and directories truly read-only, for root too.
///
/// Tests here usually run as root, which ignores permission bits; the immutable attribute (`chattr +i`) binds
/// root as well, so as root it is used, and plain `chmod` otherwise. Callers check with ``isWritable(_:)``
/// that the setup really denies writes, so that a test cannot pass by accident.
package enum ReadOnlyFiles {
    /// Makes `paths` (files or directories) read-only.
    package static func make(_ paths: [String]) throws {
        if geteuid() == 0 {
            try run("/usr/bin/chattr", ["+i"] + paths)
        } else {
            for path in paths {
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                chmod(path, isDirectory.boolValue ? 0o555 : 0o444)
            }
        }
    }

    /// Makes `directory` and the files directly in it writable again.
    package static func restoreWritable(_ directory: URL) {
        let paths =
            [directory.path]
            + ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).map {
                directory.appendingPathComponent($0).path
            }
        if geteuid() == 0 {
            try? run("/usr/bin/chattr", ["-i"] + paths)
        }
        for path in paths { chmod(path, 0o755) }
    }

    /// Whether a file can be opened for writing, or a new file created in a directory.
    package static func isWritable(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            let probe = path + "/.write-probe"
            let descriptor = open(probe, O_CREAT | O_WRONLY, 0o600)
            guard descriptor >= 0 else { return false }
            close(descriptor)
            unlink(probe)
            return true
        }
        let descriptor = open(path, O_WRONLY)
        guard descriptor >= 0 else { return false }
        close(descriptor)
        return true
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: "\(tool) failed"])
        }
    }
}
