import Crypto
import Foundation

/// SHA-256, for the content hash of stored documents and the checksums of migrations: swift-crypto's (BoringSSL's
/// assembly on Linux, CryptoKit on Apple platforms) behind the small interface the store uses, with lowercase hex.
package struct SHA256 {
    private var hash = Crypto.SHA256()

    /// Creates an empty hash state.
    package init() {}

    /// The lowercase hex SHA-256 of `bytes`.
    package static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var hash = SHA256()
        hash.update(bytes)
        return hash.finalizeHex()
    }

    /// The lowercase hex SHA-256 of `data`.
    package static func hex(_ data: Data) -> String {
        hexDigits(Crypto.SHA256.hash(data: data))
    }

    /// The lowercase hex SHA-256 of the UTF-8 of `text`.
    package static func hex(_ text: String) -> String {
        hex(Array(text.utf8))
    }

    /// Feeds more bytes into the hash.
    package mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let fed: Bool? = bytes.withContiguousStorageIfAvailable { buffer in
            hash.update(bufferPointer: UnsafeRawBufferPointer(buffer))
            return true
        }
        if fed == nil { Array(bytes).withUnsafeBytes { hash.update(bufferPointer: $0) } }
    }

    /// Feeds more bytes into the hash.
    package mutating func update(_ data: Data) {
        hash.update(data: data)
    }

    /// The digest in lowercase hex; the state must not be used afterwards.
    package mutating func finalizeHex() -> String {
        Self.hexDigits(hash.finalize())
    }

    private static func hexDigits(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
