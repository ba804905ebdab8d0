/// The properties of the entity being evaluated: an ordered list of key/value pairs whose keys are compared as
/// exact UTF-8 bytes.
///
/// Unlike a `[String: String]`, which merges canonically equivalent keys such as "é" (U+00E9) and "e\u{301}",
/// this keeps them apart, as the official engine does. Setting a key that is already present (byte for byte)
/// replaces its value, so the last value wins.
public struct EvaluationContext: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// One property of the context.
    public struct Entry: Sendable, Hashable {
        /// The property name.
        public let key: String
        /// The property value.
        public let value: String

        /// Byte-exact equality.
        public static func == (lhs: Entry, rhs: Entry) -> Bool {
            lhs.key.bytesEqual(rhs.key) && lhs.value.bytesEqual(rhs.value)
        }

        /// Hashes the exact bytes.
        public func hash(into hasher: inout Hasher) {
            key.withUTF8Bytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            hasher.combine(0xFF as UInt8)
            value.withUTF8Bytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    // Where the properties live: a list built pair by pair, or a caller's dictionary kept as it is (then `pairs`
    // is empty), so that wrapping a `[String: String]` for every evaluation costs no copy. Two plain members
    // rather than an enum, so that reading them while evaluating copies (and retains) nothing.
    private var pairs: [Entry]
    private var dictionary: [String: String]?
    // The pairs' bytes, packed for lookups while evaluating: for each pair, the key's and the value's byte counts
    // (two UInt32) followed by the key's and the value's bytes. Comparing keys then touches one contiguous buffer
    // and no `String`.
    private var packed: [UInt8] = []

    /// The properties: in the order they were first set, or in the dictionary's order for a context made from
    /// a dictionary.
    public var entries: [Entry] {
        if let dictionary { return dictionary.map { Entry(key: $0.key, value: $0.value) } }
        return pairs
    }

    /// An empty context.
    public init() {
        pairs = []
    }

    /// A context holding the pairs of `dictionary` (kept, not copied).
    public init(_ dictionary: [String: String]) {
        pairs = []
        self.dictionary = dictionary
    }

    /// A context holding `pairs`; when a key repeats (byte for byte), the last value wins.
    public init(pairs: some Sequence<(String, String)>) {
        var entries: [Entry] = []
        for (key, value) in pairs {
            if let position = key.withUTF8Bytes({ bytes in entries.firstIndex { $0.key.bytesEqual(bytes) } }) {
                entries[position] = Entry(key: entries[position].key, value: value)
            } else {
                entries.append(Entry(key: key, value: value))
            }
        }
        self.pairs = entries
        packed = Self.pack(entries)
    }

    private static func pack(_ entries: [Entry]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.reduce(0) { $0 + 8 + $1.key.utf8.count + $1.value.utf8.count })
        for entry in entries {
            withUnsafeBytes(of: UInt32(entry.key.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(entry.value.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: entry.key.utf8)
            bytes.append(contentsOf: entry.value.utf8)
        }
        return bytes
    }

    /// A context holding the literal's pairs; when a key repeats (byte for byte), the last value wins.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(pairs: elements)
    }

    /// The number of properties.
    public var count: Int { dictionary?.count ?? pairs.count }

    /// Whether the context has no properties.
    public var isEmpty: Bool { count == 0 }

    /// The value of the property whose name has exactly the bytes of `key`; setting replaces or appends.
    public subscript(key: String) -> String? {
        get {
            key.withUTF8Bytes { value(forKeyBytes: $0) }
        }
        set {
            var entries = self.entries
            let existing = key.withUTF8Bytes { bytes in entries.firstIndex { $0.key.bytesEqual(bytes) } }
            switch (existing, newValue) {
            case (let position?, let value?): entries[position] = Entry(key: entries[position].key, value: value)
            case (let position?, nil): entries.remove(at: position)
            case (nil, let value?): entries.append(Entry(key: key, value: value))
            case (nil, nil): break
            }
            pairs = entries
            packed = Self.pack(entries)
            dictionary = nil
        }
    }

    /// Contexts are equal when they hold the same properties (byte for byte), whatever their order.
    public static func == (lhs: EvaluationContext, rhs: EvaluationContext) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for entry in lhs.entries {
            guard let value = entry.key.withUTF8Bytes({ rhs.value(forKeyBytes: $0) }), value.bytesEqual(entry.value)
            else { return false }
        }
        return true
    }

    /// Hashes the properties independently of their order.
    public func hash(into hasher: inout Hasher) {
        var combined = 0
        for entry in entries { combined ^= entry.hashValue }
        hasher.combine(count)
        hasher.combine(combined)
    }

    /// Calls `body` with the UTF-8 bytes of the value whose key has exactly the bytes of `key`, or with no bytes
    /// when there is none (a missing property reads as `""`).
    @inline(__always)
    func withValueBytes<Result>(
        forKeyBytes key: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        if _fastPath(dictionary == nil) {
            return packed.withUnsafeBufferPointer { buffer in
                guard let start = buffer.baseAddress else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
                let raw = UnsafeRawPointer(start)
                var position = 0
                while position < buffer.count {
                    let keyCount = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
                    let valueCount = Int(
                        raw.loadUnaligned(fromByteOffset: position + 4, as: UInt32.self).littleEndian
                    )
                    let keyStart = position + 8
                    if keyCount == key.count
                        && bytesEqualBuffers(UnsafeBufferPointer(start: start + keyStart, count: keyCount), key)
                    {
                        return body(UnsafeBufferPointer(start: start + keyStart + keyCount, count: valueCount))
                    }
                    position = keyStart + keyCount + valueCount
                }
                return body(UnsafeBufferPointer(start: nil, count: 0))
            }
        }
        for (name, value) in dictionary! where name.bytesEqual(key) {
            return value.withUTF8Bytes(body)
        }
        return body(UnsafeBufferPointer(start: nil, count: 0))
    }

    @inline(__always)
    func value(forKeyBytes key: UnsafeBufferPointer<UInt8>) -> String? {
        if let dictionary {
            for (name, value) in dictionary where name.bytesEqual(key) {
                return value
            }
            return nil
        }
        for entry in pairs where entry.key.bytesEqual(key) {
            return entry.value
        }
        return nil
    }
}
