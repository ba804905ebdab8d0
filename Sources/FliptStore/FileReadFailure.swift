import Foundation

/// Why a file could not be read, in a few words, for messages such as `cannot read PATH: REASON`: missing, a
/// directory, not readable, or else the error's own description. Shared by the relay's TLS and tokens files and
/// the CLI's inputs.
package enum FileReadFailure {
    /// The reason `path` could not be read; `error` is what the read threw, if anything.
    package static func reason(path: String, error: (any Error)? = nil) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "no such file" }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return error.map { ($0 as NSError).localizedDescription } ?? "reading it failed"
    }
}
