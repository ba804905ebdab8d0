import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a fresh directory under the system temporary directory, removed afterwards (even if
/// a test made files in it read-only or immutable).
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { removeTemporaryDirectory(directory) }
    return try await body(directory)
}

private func makeTemporaryDirectory() throws -> URL {
    var template = Array(
        FileManager.default.temporaryDirectory.appendingPathComponent("flipt-store-test-XXXXXX").path.utf8CString
    )
    guard let created = mkdtemp(&template) else {
        throw POSIXError(.init(rawValue: errno) ?? .EIO)
    }
    return URL(fileURLWithPath: String(cString: created), isDirectory: true)
}

private func removeTemporaryDirectory(_ directory: URL) {
    ReadOnlyFiles.restoreWritable(directory)
    try? FileManager.default.removeItem(at: directory)
}

/// The bytes of a file, or `nil` if it does not exist.
func contents(of path: String) -> Data? {
    FileManager.default.contents(atPath: path)
}

/// The permission bits of a file.
func permissions(of path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// Makes files and directories truly read-only, for root too.
///
/// Tests here usually run as root, which ignores permission bits; the immutable attribute (`chattr +i`) binds
/// root as well, so as root it is used, and plain `chmod` otherwise. Callers check with ``isWritable(_:)``
/// that the setup really denies writes, so that a test cannot pass by accident.
enum ReadOnlyFiles {
    static func make(_ paths: [String]) throws {
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

    static func restoreWritable(_ directory: URL) {
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
    static func isWritable(_ path: String) -> Bool {
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
