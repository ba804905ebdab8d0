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

    /// The properties, in the order they were first set.
    public private(set) var entries: [Entry]

    /// An empty context.
    public init() {
        entries = []
    }

    /// A context holding the pairs of `dictionary`.
    public init(_ dictionary: [String: String]) {
        entries = dictionary.map { Entry(key: $0.key, value: $0.value) }
    }

    /// A context holding `pairs`; when a key repeats (byte for byte), the last value wins.
    public init(pairs: some Sequence<(String, String)>) {
        entries = []
        for (key, value) in pairs { self[key] = value }
    }

    /// A context holding the literal's pairs; when a key repeats (byte for byte), the last value wins.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(pairs: elements)
    }

    /// The number of properties.
    public var count: Int { entries.count }

    /// Whether the context has no properties.
    public var isEmpty: Bool { entries.isEmpty }

    /// The value of the property whose name has exactly the bytes of `key`; setting replaces or appends.
    public subscript(key: String) -> String? {
        get {
            key.withUTF8Bytes { value(forKeyBytes: $0) }
        }
        set {
            let existing = key.withUTF8Bytes { position(ofKeyBytes: $0) }
            switch (existing, newValue) {
            case (let position?, let value?): entries[position] = Entry(key: entries[position].key, value: value)
            case (let position?, nil): entries.remove(at: position)
            case (nil, let value?): entries.append(Entry(key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    @inline(__always)
    func value(forKeyBytes key: UnsafeBufferPointer<UInt8>) -> String? {
        entries.withUnsafeBufferPointer { entries in
            for index in entries.indices where entries[index].key.bytesEqual(key) {
                return entries[index].value
            }
            return nil
        }
    }

    private func position(ofKeyBytes key: UnsafeBufferPointer<UInt8>) -> Int? {
        entries.firstIndex { $0.key.bytesEqual(key) }
    }
}
