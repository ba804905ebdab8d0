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
        // Trim ASCII white space on the UTF-8 bytes: Foundation's trimming is quadratic-looking on multi-MB text.
        var bytes = Array(string.utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        let end = (bytes.lastIndex { !isSpace($0) } ?? -1) + 1
        let start = bytes.firstIndex { !isSpace($0) } ?? end
        if start > 0 || end < bytes.count { bytes = Array(bytes[start..<end]) }
        if bytes.first == UInt8(ascii: "{") { return bytes }
        guard let data = Data(base64Encoded: Data(bytes), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw FliptError(
                .invalidSnapshot,
                "The snapshot string is neither base64 nor a JSON document. Pass a string from getSnapshot() or "
                    + "`flipt-offline cache export`, or a snapshot document as JSON."
            )
        }
        return Array(data)
    }
}
