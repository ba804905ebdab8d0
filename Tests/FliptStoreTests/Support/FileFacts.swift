import Foundation

/// The bytes of a file, or `nil` if it does not exist.
func contents(of path: String) -> Data? {
    FileManager.default.contents(atPath: path)
}

/// The permission bits of a file.
func permissions(of path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}
