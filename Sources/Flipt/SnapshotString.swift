import FliptEngine
import Foundation

/// The portable snapshot string: standard base64 (with padding) of a snapshot document in Flipt's wire format.
///
/// Decoding also accepts the document itself as JSON text, so a file fetched from a Flipt server can be used as a
/// seed directly.
enum SnapshotString {
    static func encode(_ document: [UInt8]) -> String {
        Data(document).base64EncodedString()
    }

    static func decode(_ string: String) throws(FliptError) -> [UInt8] {
        let trimmed = string.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") { return Array(trimmed.utf8) }
        guard let data = Data(base64Encoded: trimmed, options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw FliptError(
                .invalidSnapshot,
                "The snapshot string is neither base64 nor a JSON document. Pass a string from getSnapshot() or "
                    + "`flipt-offline cache export`, or a snapshot document as JSON."
            )
        }
        return Array(data)
    }
}
