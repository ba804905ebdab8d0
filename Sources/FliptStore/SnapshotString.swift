import Foundation

/// The portable snapshot string: standard base64 (with padding) of a snapshot document in Flipt's wire format.
///
/// `FliptClient.getSnapshot()` and `flipt-offline cache export` write it; a client's `snapshot` seed and
/// `flipt-offline cache import` read it. Reading also accepts the document itself as JSON text, so a file fetched
/// from a Flipt server can be used directly. This is the one reader of the format, so every place that takes a
/// snapshot string accepts exactly the same inputs.
package enum SnapshotString {
    /// Why a text is not a snapshot string.
    package enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The text is empty or white space only.
        case empty
        /// The text is neither a JSON document (starting with `{`) nor base64 that decodes to some bytes.
        case notBase64

        /// What went wrong, for messages.
        package var description: String {
            switch self {
            case .empty: "the snapshot string is empty"
            case .notBase64: "the snapshot string is neither base64 nor a JSON document"
            }
        }
    }

    /// The snapshot string of `document`: its standard base64, with padding and no line breaks.
    package static func encode(_ document: some Sequence<UInt8>) -> String {
        Data(document).base64EncodedString()
    }

    /// The document inside a snapshot string: the text's bytes when, after leading and trailing ASCII white space,
    /// it starts with `{` (a JSON document), else the bytes its base64 decodes to (characters outside the base64
    /// alphabet, such as line breaks, are skipped).
    ///
    /// The result is not checked as a snapshot document: decode it with `Snapshot(document:)`.
    ///
    /// - Throws: ``Failure`` when the text is empty or decodes to nothing.
    package static func document(from text: some Sequence<UInt8>) throws(Failure) -> [UInt8] {
        // White space is trimmed on the bytes: Foundation's trimming of a multi-megabyte String is far slower.
        let bytes = Array(text)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
        else { throw .empty }
        let trimmed = bytes[first...last]
        if trimmed.first == UInt8(ascii: "{") { return Array(trimmed) }
        guard let decoded = Data(base64Encoded: Data(trimmed), options: .ignoreUnknownCharacters), !decoded.isEmpty
        else { throw .notBase64 }
        return Array(decoded)
    }
}
