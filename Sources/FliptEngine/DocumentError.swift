/// Why a snapshot document was rejected, and where in the document the problem is.
///
/// The engine accepts exactly the documents the official Flipt engine accepts, so a document that fails here
/// would also fail there. `description` reads like `flags[3]: missing required field "name"`.
package struct DocumentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The location of the problem as a path from the document root, such as `flags[3].rules[0]`; empty for the
    /// root itself.
    package let path: String
    /// What is wrong at `path`, such as `missing required field "name"`.
    package let reason: String
    /// The byte offset in the document where the problem was detected.
    package let byteOffset: Int

    /// Creates an error for a problem found at `path`.
    package init(path: String, reason: String, byteOffset: Int) {
        self.path = path
        self.reason = reason
        self.byteOffset = byteOffset
    }

    /// A one-line explanation naming the location, for example `flags[3]: missing required field "name"`.
    package var description: String {
        let location = path.isEmpty ? "document" : path
        return "\(location): \(reason) (at byte \(byteOffset))"
    }
}
