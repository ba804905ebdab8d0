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

    // Where the properties live: the pairs' bytes packed in one buffer, or a caller's dictionary kept as it is
    // (then `packed` is empty), so that wrapping a `[String: String]` for every evaluation costs no copy. In
    // `packed`, each pair is the key's and the value's byte counts (two little-endian UInt32) followed by the key's
    // and the value's bytes: a lookup while evaluating compares bytes in one contiguous buffer and touches no
    // `String`, and passing a context retains one buffer at most. Plain members rather than an enum, so that
    // reading them while evaluating copies (and retains) nothing.
    //
    // A context of `indexedMinimum` pairs or more has an index of them by name before the pairs: `slotMask + 1`
    // UInt32 slots, each 0 or a pair's byte offset in `packed` (never 0: the slots come first), placed by
    // `propertyNameHash` of the name with linear probing and at most half full. A program stores that hash with
    // each constraint, so a lookup hashes nothing and usually reads one slot. Smaller contexts are walked pair by
    // pair, which costs fewer instructions there.
    private var packed: [UInt8] = []
    private var storedPairCount: Int32 = 0
    /// The index's slot count - 1; -1 when there is no index. (Int32s, with the count: an evaluation copies this
    /// struct, and 8 more bytes cost ~4 instructions an evaluation.)
    private var storedSlotMask: Int32 = -1
    private var pairCount: Int { Int(storedPairCount) }
    private var slotMask: Int { Int(storedSlotMask) }
    private var dictionary: [String: String]?

    /// The properties: in the order they were first set, or in the dictionary's order for a context made from
    /// a dictionary.
    public var entries: [Entry] {
        if let dictionary { return dictionary.map { Entry(key: $0.key, value: $0.value) } }
        var entries: [Entry] = []
        entries.reserveCapacity(pairCount)
        packed.withUnsafeBufferPointer { buffer in
            // Visits every pair: the body never stops the walk, so whether it stopped tells nothing.
            let pairs = UnsafeBufferPointer(rebasing: buffer[(slotMask < 0 ? 0 : 4 * (slotMask + 1))...])
            _ = Self.forEachPair(in: pairs) { key, value in
                // The bytes came from Swift strings, so they are valid UTF-8 and decode to the same bytes.
                entries.append(
                    Entry(key: String(decoding: key, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
                )
                return false
            }
        }
        return entries
    }

    /// An empty context.
    public init() {}

    /// A context holding the pairs of `dictionary` (kept, not copied).
    public init(_ dictionary: [String: String]) {
        self.dictionary = dictionary
    }

    /// A context holding `pairs`; when a key repeats (byte for byte), the last value wins.
    public init(pairs: some Sequence<(String, String)>) {
        var entries: [Entry] = []
        // Keys by their exact bytes once there are more than a few, so that a large context is built in linear
        // time (a search of the entries for each pair would be quadratic).
        var positions: [[UInt8]: Int] = [:]
        for (key, value) in pairs {
            let position: Int?
            if entries.count < Self.linearDeduplicationLimit {
                position = key.withUTF8Bytes { bytes in entries.firstIndex { $0.key.bytesEqual(bytes) } }
            } else {
                if positions.isEmpty {
                    for (index, entry) in entries.enumerated() { positions[Array(entry.key.utf8)] = index }
                }
                position = positions[Array(key.utf8)]
            }
            if let position {
                entries[position] = Entry(key: entries[position].key, value: value)
            } else {
                if !positions.isEmpty { positions[Array(key.utf8)] = entries.count }
                entries.append(Entry(key: key, value: value))
            }
        }
        self.init(packing: entries)
    }

    /// Up to this many entries, a repeated key is found by comparing it with each; past it, through a table.
    static let linearDeduplicationLimit = 16

    /// Contexts of at least this many pairs are indexed by name. Instructions per evaluation
    /// (`Tests/Scripts/callgrind-shape.sh`), every context walked -> this: attributes-20 (20 pairs) 1,480 -> 1,363,
    /// all-kinds-10000 (20 pairs) 2,070 -> 1,749; issue18-40 (5 pairs, walked) 1,343 -> 1,352. With every context
    /// indexed, the 5-pair shapes took more (issue18-40 1,420, segments-3-any-or 1,684 -> 1,805), and callgrind's
    /// branch model counted as many mispredictions as the walk's.
    static let indexedMinimum = 8

    private init(packing entries: [Entry]) {
        guard !entries.isEmpty else { return }
        var slotCount = 0
        if entries.count >= Self.indexedMinimum {
            slotCount = 4
            while slotCount < 2 * entries.count { slotCount *= 2 }
        }
        var bytes = [UInt8](repeating: 0, count: 4 * slotCount)
        bytes.reserveCapacity(entries.reduce(bytes.count) { $0 + 8 + $1.key.utf8.count + $1.value.utf8.count })
        for entry in entries {
            let offset = bytes.count
            withUnsafeBytes(of: UInt32(entry.key.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(entry.value.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: entry.key.utf8)
            bytes.append(contentsOf: entry.value.utf8)
            guard slotCount > 0 else { continue }
            bytes.withUnsafeMutableBytes { raw in
                var slot = Int(entry.key.withUTF8Bytes(propertyNameHash)) & (slotCount - 1)
                while raw.loadUnaligned(fromByteOffset: 4 * slot, as: UInt32.self) != 0 {
                    slot = (slot + 1) & (slotCount - 1)
                }
                raw.storeBytes(of: UInt32(offset), toByteOffset: 4 * slot, as: UInt32.self)
            }
        }
        packed = bytes
        storedPairCount = Int32(entries.count)
        storedSlotMask = Int32(slotCount - 1)
    }

    /// Calls `body` with the key and value bytes of each packed pair in order, until it returns true; returns
    /// whether it did.
    @inline(__always)
    static func forEachPair(
        in buffer: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Bool {
        guard let start = buffer.baseAddress else { return false }
        let raw = UnsafeRawPointer(start)
        var position = 0
        // Wrapping arithmetic: every position and count is within the buffer, which `init(packing:)` wrote.
        while position < buffer.count {
            let keyCount = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            let valueCount = Int(raw.loadUnaligned(fromByteOffset: position &+ 4, as: UInt32.self).littleEndian)
            let keyStart = position &+ 8
            let key = UnsafeBufferPointer(start: start + keyStart, count: keyCount)
            if body(key, UnsafeBufferPointer(start: start + (keyStart &+ keyCount), count: valueCount)) { return true }
            position = keyStart &+ keyCount &+ valueCount
        }
        return false
    }

    /// A context holding the literal's pairs; when a key repeats (byte for byte), the last value wins.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(pairs: elements)
    }

    /// The number of properties.
    public var count: Int { dictionary?.count ?? pairCount }

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
            self = EvaluationContext(packing: entries)
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

    /// Calls `packed`, `indexed` or `dictionary` with a reader of the properties, whichever form holds them (a
    /// packed context of `indexedMinimum` pairs or more is indexed).
    ///
    /// The evaluation is generic over the reader, so it is compiled once for each form: a lookup no longer checks
    /// which form it reads, and the packed buffer's address is taken once per evaluation instead of once per
    /// lookup. Instructions per evaluation (`Tests/Scripts/callgrind-shape.sh`), one reader that checked the form
    /// at each lookup -> this, context / dictionary form: issue18-40 1,499 -> 1,474 / 1,957 -> 1,933, rules-5
    /// 1,857 -> 1,812 / 2,553 -> 2,522, segments-3-any-or 1,956 -> 1,902 / 2,778 -> 2,748, all-kinds-10000 2,405 ->
    /// 2,315 / 3,962 -> 3,940. A dictionary's walk still retains and releases its storage (the pair iterator
    /// consumes what it walks), as before. The indexed reader is a third specialisation rather than a branch in the
    /// packed one: as a branch, small contexts paid ~130 instructions an evaluation (issue18-40 1,343 -> 1,470),
    /// as the rule walk no longer inlined the segment test.
    @inline(__always)
    func withProperties<Result>(
        packed: (PackedProperties) -> Result,
        indexed: (IndexedProperties) -> Result,
        dictionary: (DictionaryProperties) -> Result
    ) -> Result {
        if _fastPath(self.dictionary == nil) {
            return self.packed.withUnsafeBufferPointer { buffer in
                if slotMask < 0 { return packed(PackedProperties(bytes: buffer)) }
                return indexed(
                    IndexedProperties(base: UnsafeRawPointer(buffer.baseAddress.unsafelyUnwrapped), slotMask: slotMask)
                )
            }
        }
        return dictionary(DictionaryProperties(dictionary: self.dictionary.unsafelyUnwrapped))
    }

    /// Whether a lookup of a `keyCount`-byte name in a dictionary of `count` pairs goes through the dictionary's
    /// hash table rather than a walk of its pairs.
    ///
    /// Small dictionaries are walked pair by pair, touching a value only when its key matches. From
    /// `hashedLookupMinimum` keys on, the dictionary's own hash lookup is cheaper, and it is exact too: a
    /// dictionary's keys are distinct under canonical equivalence, so the one key `index(forKey:)` can find is
    /// the only candidate, and its bytes are checked. Per lookup of 8 names in 1,000 dictionaries of `n`
    /// 9-to-12-byte keys (swiftc -O, this machine), walk / hash: n = 2 20.6 / 44.7 ns, n = 5 38.3 / 51.4,
    /// n = 10 59.4 / 59.1, n = 20 118.8 / 68.2. Names over 15 bytes would make the hashed lookup allocate a
    /// `String` (small strings are stored inline), so they are hashed only in larger dictionaries.
    ///
    /// The walk uses the pair iterator: walking by index validates every index, and cost 1-2 % more instructions
    /// an evaluation in the dictionary form of `flipt-bench engine` shapes (`Tests/Scripts/callgrind-shape.sh`,
    /// issue18-40 1,990 -> 1,952; rules-5 2,604 -> 2,551).
    @inline(__always)
    static func usesHashedLookup(_ count: Int, keyCount: Int) -> Bool {
        count >= hashedLookupMinimum && (keyCount <= 15 || count >= 2 * hashedLookupMinimum)
    }

    /// Dictionaries of at least this many keys are searched through their hash table.
    static let hashedLookupMinimum = 8

    @inline(never)
    static func hashedIndex(
        in dictionary: [String: String],
        ofKeyBytes key: UnsafeBufferPointer<UInt8>
    ) -> Dictionary<String, String>.Index? {
        // The bytes are valid UTF-8 (a property name from the document, or a Swift string), so decoding keeps them.
        guard let index = dictionary.index(forKey: String(decoding: key, as: UTF8.self)),
            dictionary.keys[index].bytesEqual(key)
        else { return nil }
        return index
    }

    @inline(__always)
    func value(forKeyBytes key: UnsafeBufferPointer<UInt8>) -> String? {
        if let dictionary {
            // The same search as `DictionaryProperties.withValueBytes`'s. That one hands the value's bytes on in
            // place: through a shared function returning the `String`, the copy cost ~20 instructions an evaluation
            // (callgrind).
            if Self.usesHashedLookup(dictionary.count, keyCount: key.count) {
                return Self.hashedIndex(in: dictionary, ofKeyBytes: key).map { dictionary.values[$0] }
            }
            for (name, value) in dictionary where name.bytesEqual(key) { return value }
            return nil
        }
        return packed.withUnsafeBufferPointer { buffer in
            let value =
                slotMask < 0
                ? PackedProperties(bytes: buffer).valueBytes(forKeyBytes: key)
                : IndexedProperties(base: UnsafeRawPointer(buffer.baseAddress.unsafelyUnwrapped), slotMask: slotMask)
                    .valueBytes(forKeyBytes: key, hash: propertyNameHash(key))
            return value.map { String(decoding: $0, as: UTF8.self) }
        }
    }
}

/// How an evaluation reads the properties of its context: the value of a property by the exact bytes of its name.
protocol PropertyReader {
    /// Calls `body` with the UTF-8 bytes of the value whose key has exactly the bytes of `key`, or with no bytes
    /// when there is none (a missing property reads as `""`). `hash` gives `propertyNameHash(key)`, which only an
    /// indexed reader reads, and `name` the key as a `String`, which only a dictionary's reader reads.
    func withValueBytes<Result>(
        forKeyBytes key: UnsafeBufferPointer<UInt8>,
        hash: @autoclosure () -> UInt32,
        name: @autoclosure () -> String,
        _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result
}

/// The properties of a packed `EvaluationContext` without an index, walked pair by pair in its buffer (valid while
/// the context's `withProperties(packed:indexed:dictionary:)` runs).
struct PackedProperties: PropertyReader {
    let bytes: UnsafeBufferPointer<UInt8>

    @inline(__always)
    func withValueBytes<Result>(
        forKeyBytes key: UnsafeBufferPointer<UInt8>,
        hash: @autoclosure () -> UInt32,
        name: @autoclosure () -> String,
        _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        body(valueBytes(forKeyBytes: key) ?? UnsafeBufferPointer(start: nil, count: 0))
    }

    /// The bytes of the value whose key has exactly the bytes of `key`, or nil when there is none.
    @inline(__always)
    func valueBytes(forKeyBytes key: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        var found: UnsafeBufferPointer<UInt8>?
        _ = EvaluationContext.forEachPair(in: bytes) { name, value in
            guard name.count == key.count, bytesEqualBuffers(name, key) else { return false }
            found = value
            return true
        }
        return found
    }
}

/// The properties of a packed `EvaluationContext` with an index, found through it (valid while the context's
/// `withProperties(packed:indexed:dictionary:)` runs).
struct IndexedProperties: PropertyReader {
    /// The start of the packed buffer: the index, then the pairs.
    let base: UnsafeRawPointer
    /// The index's slot count - 1.
    let slotMask: Int

    @inline(__always)
    func withValueBytes<Result>(
        forKeyBytes key: UnsafeBufferPointer<UInt8>,
        hash: @autoclosure () -> UInt32,
        name: @autoclosure () -> String,
        _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        body(valueBytes(forKeyBytes: key, hash: hash()) ?? UnsafeBufferPointer(start: nil, count: 0))
    }

    /// The bytes of the value whose key has exactly the bytes of `key` (whose `propertyNameHash` is `hash`), or
    /// nil when there is none.
    @inline(__always)
    func valueBytes(forKeyBytes key: UnsafeBufferPointer<UInt8>, hash: UInt32) -> UnsafeBufferPointer<UInt8>? {
        var slot = Int(hash) & slotMask
        // Wrapping arithmetic: offsets and counts are within the buffer `init(packing:)` wrote, and the index is
        // at most half full, so the probe reaches an empty slot.
        while true {
            let position = Int(base.loadUnaligned(fromByteOffset: slot &* 4, as: UInt32.self))
            if position == 0 { return nil }
            let keyCount = Int(base.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            if keyCount == key.count {
                let name = (base + (position &+ 8)).assumingMemoryBound(to: UInt8.self)
                if bytesEqualBuffers(UnsafeBufferPointer(start: name, count: keyCount), key) {
                    let valueCount = Int(
                        base.loadUnaligned(fromByteOffset: position &+ 4, as: UInt32.self).littleEndian
                    )
                    return UnsafeBufferPointer(start: name + keyCount, count: valueCount)
                }
            }
            slot = (slot &+ 1) & slotMask
        }
    }
}

/// The properties of an `EvaluationContext` made from a `[String: String]`, read in the dictionary.
///
/// A dictionary of `hashedLookupMinimum` keys or more is searched with the program's string of the name
/// (`Program.propertyNames`). Instructions per evaluation, dictionary form (`Tests/Scripts/callgrind-shape.sh`), a
/// string made of the name's bytes at each lookup (names of 16 bytes or more walked unless the dictionary had 16
/// keys) -> the program's string: attributes-20 2,482-2,497 -> 2,210, all-kinds-10000 3,899 -> 3,338; the context
/// form unchanged (1,352-1,379 / 1,760-1,765); smaller dictionaries, walked, 1,904-1,915 -> 1,923-1,927
/// (issue18-40).
struct DictionaryProperties: PropertyReader {
    let dictionary: [String: String]

    @inline(__always)
    func withValueBytes<Result>(
        forKeyBytes key: UnsafeBufferPointer<UInt8>,
        hash: @autoclosure () -> UInt32,
        name: @autoclosure () -> String,
        _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        if dictionary.count >= EvaluationContext.hashedLookupMinimum {
            // The program's string of the name: no string is made here, so longer names are hashed too. A
            // dictionary's keys are distinct under canonical equivalence, so the one key found is the only
            // candidate, and its bytes are checked.
            guard let index = dictionary.index(forKey: name()), dictionary.keys[index].bytesEqual(key) else {
                return body(UnsafeBufferPointer(start: nil, count: 0))
            }
            return dictionary.values[index].withUTF8Bytes(body)
        }
        for (name, value) in dictionary where name.bytesEqual(key) {
            return value.withUTF8Bytes(body)
        }
        return body(UnsafeBufferPointer(start: nil, count: 0))
    }
}
