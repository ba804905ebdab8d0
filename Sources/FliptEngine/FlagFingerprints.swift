// Content digests of a snapshot document's flags, to tell which flags one document adds, removes or changes
// against another.
//
// A flag's digest covers the bytes of its JSON object with the white space between tokens left out, so that two
// documents that differ only in layout (Go's protojson varies its white space from build to build) or in the
// position of a flag give equal digests, and a change anywhere in a flag (its rules, or a segment it embeds)
// gives a different one. A scanner of its own reads only the structure it needs (the `flags` array and each
// flag's `key`); it runs on documents the engine has already accepted.

/// The digest of each flag of a snapshot document, by the exact bytes of its key.
package struct FlagFingerprints: Sendable {
    /// Flag keys in the order they first appear; a later flag with the same key replaces the digest, not the place.
    package private(set) var keys: [[UInt8]] = []
    private var digests: [[UInt8]: UInt64] = [:]

    /// The number of distinct flags.
    package var count: Int { keys.count }

    /// Reads the flags of `document`; nil when its shape is not one the engine accepts (it never is, for a
    /// document that decoded into a ``Snapshot``).
    package init?(document: some Collection<UInt8>) {
        let scanned: FlagFingerprints?? = document.withContiguousStorageIfAvailable { bytes in
            var scanner = FingerprintScanner(bytes: bytes)
            return scanner.scanDocument()
        }
        if let scanned {
            guard let scanned else { return nil }
            self = scanned
        } else {
            let copy = Array(document)
            guard
                let scanned = copy.withUnsafeBufferPointer({ bytes -> FlagFingerprints? in
                    var scanner = FingerprintScanner(bytes: bytes)
                    return scanner.scanDocument()
                })
            else { return nil }
            self = scanned
        }
    }

    fileprivate init() {}

    fileprivate mutating func record(key: [UInt8], digest: UInt64) {
        if digests.updateValue(digest, forKey: key) == nil { keys.append(key) }
    }

    /// The digest of the flag whose key has exactly these bytes.
    package func digest(ofKey key: [UInt8]) -> UInt64? { digests[key] }

    /// The flags that `newer` adds, removes or changes relative to `self`: added and changed in `newer`'s order,
    /// removed in this one's.
    package func changes(to newer: FlagFingerprints) -> (added: [[UInt8]], removed: [[UInt8]], changed: [[UInt8]]) {
        var added: [[UInt8]] = []
        var changed: [[UInt8]] = []
        var removed: [[UInt8]] = []
        for key in newer.keys {
            switch digests[key] {
            case nil: added.append(key)
            case let digest? where digest != newer.digests[key]: changed.append(key)
            default: break
            }
        }
        for key in keys where newer.digests[key] == nil { removed.append(key) }
        return (added, removed, changed)
    }
}

extension Snapshot {
    /// The keys of the distinct flags, in the order they first appear in the document.
    package var flagKeys: [String] { summaries.map(\.key) }
}

/// Walks a JSON document that the engine accepted, finding the flags and hashing each one.
private struct FingerprintScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Whether white space outside strings was skipped since it was last reset: a flag without any (the usual
    /// case: servers send compact JSON) is hashed eight bytes at a time, as it stands.
    var sawSpace = false

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    /// The object form `{"namespace": …, "flags": […]}`, or the array form `[namespace, flags]` serde also accepts.
    mutating func scanDocument() -> FlagFingerprints? {
        skipSpace()
        guard index < bytes.count else { return nil }
        var result: FlagFingerprints?
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            let finished = members { scanner, name in
                if name.elementsEqual("flags".utf8) {
                    guard let flags = scanner.scanFlags() else { return false }
                    result = flags
                    return true
                }
                return scanner.skipValue()
            }
            guard finished else { return nil }
        case UInt8(ascii: "["):
            index += 1
            var position = 0
            let finished = elements { scanner in
                defer { position += 1 }
                if position == 1 {
                    guard let flags = scanner.scanFlags() else { return false }
                    result = flags
                    return true
                }
                return scanner.skipValue()
            }
            guard finished else { return nil }
        default:
            return nil
        }
        return result
    }

    private mutating func scanFlags() -> FlagFingerprints? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return nil }
        index += 1
        var fingerprints = FlagFingerprints()
        let finished = elements { scanner in
            let start = scanner.index
            scanner.sawSpace = false
            guard let key = scanner.scanFlagKey() else { return false }
            let digest =
                scanner.sawSpace
                ? scanner.digest(from: start, to: scanner.index)
                : scanner.compactDigest(from: start, to: scanner.index)
            fingerprints.record(key: key, digest: digest)
            return true
        }
        return finished ? fingerprints : nil
    }

    /// Reads one flag (object or array form) and returns its key, leaving `index` after the flag.
    private mutating func scanFlagKey() -> [UInt8]? {
        guard index < bytes.count else { return nil }
        var key: [UInt8]?
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            let finished = members { scanner, name in
                if name.elementsEqual("key".utf8) {
                    key = scanner.readString()
                    return key != nil
                }
                return scanner.skipValue()
            }
            guard finished else { return nil }
        case UInt8(ascii: "["):
            index += 1
            var first = true
            let finished = elements { scanner in
                if first {
                    first = false
                    key = scanner.readString()
                    return key != nil
                }
                return scanner.skipValue()
            }
            guard finished else { return nil }
        default:
            return nil
        }
        return key
    }

    // MARK: Structure

    /// Reads the members of an object whose `{` was consumed, through its `}`; `body` reads each value.
    private mutating func members(_ body: (inout FingerprintScanner, [UInt8]) -> Bool) -> Bool {
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return true
        }
        while true {
            skipSpace()
            guard let name = readString() else { return false }
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            skipSpace()
            guard body(&self, name) else { return false }
            skipSpace()
            guard index < bytes.count else { return false }
            let next = bytes[index]
            index += 1
            if next == UInt8(ascii: "}") { return true }
            guard next == UInt8(ascii: ",") else { return false }
        }
    }

    /// Reads the elements of an array whose `[` was consumed, through its `]`; `body` reads each element.
    private mutating func elements(_ body: (inout FingerprintScanner) -> Bool) -> Bool {
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return true
        }
        while true {
            skipSpace()
            guard body(&self) else { return false }
            skipSpace()
            guard index < bytes.count else { return false }
            let next = bytes[index]
            index += 1
            if next == UInt8(ascii: "]") { return true }
            guard next == UInt8(ascii: ",") else { return false }
        }
    }

    @inline(__always)
    private mutating func skipSpace() {
        while index < bytes.count, bytes[index] <= 0x20 {
            index += 1
            sawSpace = true
        }
    }

    /// Skips one value: a string, or a run of nested objects and arrays, or a number or literal.
    private mutating func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case Self.quote:
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == Self.quote {
                    guard skipString() else { return false }
                    continue
                }
                index += 1
                if byte <= 0x20 {
                    sawSpace = true
                } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth += 1
                } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return true }
                }
            }
            return false
        default:
            while index < bytes.count {
                let byte = bytes[index]
                if byte <= 0x20 || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    break
                }
                index += 1
            }
            return true
        }
    }

    /// Skips a string token starting at its opening quote, through its closing quote.
    private mutating func skipString() -> Bool {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Self.backslash {
                index += 2
            } else {
                index += 1
                if byte == Self.quote { return true }
            }
        }
        return false
    }

    /// Reads a string token into the bytes it denotes (escapes decoded).
    private mutating func readString() -> [UInt8]? {
        guard index < bytes.count, bytes[index] == Self.quote else { return nil }
        let start = index + 1
        var hasEscape = false
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Self.backslash {
                hasEscape = true
                index += 2
                continue
            }
            index += 1
            if byte == Self.quote {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<(index - 1)])
                return hasEscape ? Self.unescape(raw) : Array(raw)
            }
        }
        return nil
    }

    /// Decodes the escapes of a string token's content (`\"`, `\n`, `\u00e9`, surrogate pairs) into UTF-8.
    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(raw.count)
        var position = 0
        func hexUnit(at offset: Int) -> UInt32? {
            guard offset + 4 <= raw.count else { return nil }
            var value: UInt32 = 0
            for byte in raw[offset..<(offset + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while position < raw.count {
            let byte = raw[position]
            guard byte == backslash, position + 1 < raw.count else {
                result.append(byte)
                position += 1
                continue
            }
            let escape = raw[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hexUnit(at: position) else { return nil }
                position += 4
                if (0xD800..<0xDC00).contains(scalar), position + 6 <= raw.count, raw[position] == backslash,
                    raw[position + 1] == UInt8(ascii: "u"), let low = hexUnit(at: position + 2),
                    (0xDC00..<0xE000).contains(low)
                {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                result.append(contentsOf: UTF8.encode(unicode)!)
            default: result.append(escape)
            }
        }
        return result
    }

    // MARK: Digest

    /// A 64-bit digest of `bytes[start..<end]` without the white space between tokens: eight bytes at a time,
    /// each word folded in with a multiply and a rotation, then mixed (SplitMix64's finaliser). Not
    /// cryptographic: it tells edits apart, it does not resist forged collisions.
    private func digest(from start: Int, to end: Int) -> UInt64 {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        var word: UInt64 = 0
        var shift: UInt64 = 0
        var kept: UInt64 = 0
        var inString = false
        var escaped = false
        var position = start
        while position < end {
            let byte = bytes[position]
            position += 1
            if inString {
                if escaped {
                    escaped = false
                } else if byte == Self.backslash {
                    escaped = true
                } else if byte == Self.quote {
                    inString = false
                }
            } else if byte <= 0x20 {
                continue
            } else if byte == Self.quote {
                inString = true
            }
            word |= UInt64(byte) &<< shift
            shift &+= 8
            kept &+= 1
            if shift == 64 {
                hash = ((hash ^ word) &* 0x9E37_79B9_7F4A_7C15).rotated(by: 29)
                word = 0
                shift = 0
            }
        }
        return Self.finish(hash, word: word, kept: kept)
    }

    /// ``digest(from:to:)`` of a span with no white space outside strings: the same words, loaded eight bytes at a
    /// time (little-endian, as the byte-wise form packs them), so both forms give the same digest.
    private func compactDigest(from start: Int, to end: Int) -> UInt64 {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        var position = start
        let base = UnsafeRawPointer(bytes.baseAddress!)
        while position + 8 <= end {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            hash = ((hash ^ word) &* 0x9E37_79B9_7F4A_7C15).rotated(by: 29)
            position += 8
        }
        var word: UInt64 = 0
        var shift: UInt64 = 0
        while position < end {
            word |= UInt64(bytes[position]) &<< shift
            shift &+= 8
            position += 1
        }
        return Self.finish(hash, word: word, kept: UInt64(end - start))
    }

    /// Folds in the last, partial word and the length, then mixes (SplitMix64's finaliser).
    private static func finish(_ hash: UInt64, word: UInt64, kept: UInt64) -> UInt64 {
        var hash = ((hash ^ word) &* 0x9E37_79B9_7F4A_7C15).rotated(by: 29) ^ kept
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotated(by count: UInt64) -> UInt64 {
        (self &<< count) | (self &>> (64 &- count))
    }
}
