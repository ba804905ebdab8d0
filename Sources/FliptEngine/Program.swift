// The evaluation form of a snapshot: every flag lowered into one contiguous block of plain records, so that an
// evaluation reads a few neighbouring cache lines, follows no object references and retains nothing but the
// strings it returns.
//
// One flag's block, at a 4-aligned byte offset:
//
//     [constraint bytes: property names, values, list entries]
//     FlagRecord, key bytes (padded to 4)
//     item × itemCount:   RuleRecord, then
//         segment × segmentCount:   SegmentRecord, then constraint × constraintCount:
//             ConstraintRecord, name hash (UInt32), name index (Int32): see `ConstraintRecord.stride`
//         boundary (Int32) × distributionCount, then DistributionRecord × distributionCount
//
// Records are read with unaligned loads, so no record needs more than byte alignment. The strings a result
// returns (variant keys, attachments, segment keys and segment-key lists) live in Swift arrays beside the
// block, indexed by the records; a flag's strings are adjacent there too.

/// A flag's header in the program.
struct FlagRecord {
    /// The flag's position in document order (its summary's index).
    var position: Int32
    var keyCount: Int32
    /// The CRC-32 state after the key's bytes: variant bucketing hashes the key followed by the entity id.
    var keyChecksum: UInt32
    /// Rules (variant flags) or rollouts (boolean flags).
    var itemCount: Int32
    /// Index in `strings` of the default variant's key, or -1.
    var defaultVariantKey: Int32
    /// Index in `strings` of the default variant's attachment, or -1.
    var defaultAttachment: Int32
    var isBoolean: Bool
    var isEnabled: Bool
    /// Whether the document's rollout list had any entry at all (even `{}`), which decides FLAG_DISABLED.
    var hasRolloutEntries: Bool

    /// Bytes from the record's start to the key's first byte.
    static let size = roundedUp(MemoryLayout<FlagRecord>.size)
}

/// A variant rule or a boolean rollout; its segments and distributions follow it.
struct RuleRecord {
    enum Kind: UInt8 {
        case rule, threshold, segmentRollout
    }

    /// Bytes from this record's start to the next item's.
    var byteCount: Int32
    /// Bytes from this record's start to its boundaries (rules only).
    var distributionOffset: Int32
    var segmentCount: Int32
    var distributionCount: Int32
    /// AND groups of two or more segments: the index in `keyLists` of every segment key (the keys the group
    /// reports); -1 otherwise.
    var allKeys: Int32
    /// OR groups of 2 to `BlockWriter.subsetLimit` segments: the index in `keyLists` of the key list for no
    /// segment, followed by one list per set of matched segments (at `subsetKeys + mask`, bit i for segment i), so
    /// that an evaluation matching several segments allocates nothing (one matched segment reports its own key);
    /// -1 otherwise.
    var subsetKeys: Int32 = -1
    /// Threshold rollouts: the percentage.
    var percentage: Float
    var kind: Kind
    var isAnd: Bool
    /// Rollouts: the value they give.
    var value: Bool

    static let size = roundedUp(MemoryLayout<RuleRecord>.size)
}

/// A segment of a group; its constraints follow it.
struct SegmentRecord {
    /// Bytes from this record's start to the next segment (or the rule's distributions).
    var byteCount: Int32
    var constraintCount: Int32
    /// Index in `strings` of the segment key.
    var key: Int32
    var matchesAll: Bool

    static let size = roundedUp(MemoryLayout<SegmentRecord>.size)
}

/// A distribution that can be chosen (its rollout was above zero).
struct DistributionRecord {
    /// Index in `strings` of the variant key.
    var variantKey: Int32
    /// Index in `strings` of the attachment, or -1.
    var attachment: Int32
}

@inline(__always)
func roundedUp(_ count: Int) -> Int { (count + 3) & ~3 }

/// `array` in storage of exactly its size (a copy when its storage has more than an eighth to spare).
func compacted<Element>(_ array: [Element]) -> [Element] {
    guard array.capacity > array.count + array.count / 8 else { return array }
    return [Element](unsafeUninitializedCapacity: array.count) { buffer, count in
        _ = buffer.initialize(fromContentsOf: array)
        count = array.count
    }
}

/// The lowered snapshot: the byte block, the result strings and the flag-key table.
///
/// `@unchecked Sendable`: the block and the table are written once, in `init`, and only read afterwards; they
/// are freed in `deinit`, when no evaluation can be using them.
final class Program: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let strings: [String]
    let keyLists: [[String]]
    /// The distinct property names the constraints read, as strings: a context made from a dictionary is searched
    /// with them, instead of a string made of the name's bytes at every lookup.
    let propertyNames: [String]
    private let slots: UnsafeMutablePointer<FlagSlot>
    private let mask: Int

    struct FlagSlot {
        /// The high half of the key's hash.
        var tag: UInt32
        /// The FlagRecord's byte offset; 0 marks an empty slot (no record starts at 0).
        var offset: UInt32
    }

    /// Takes a builder's block, strings and key lists, and indexes its distinct flags by key.
    init(_ builder: ProgramBuilder) {
        let bytes = builder.writer.bytes.bytes
        precondition(bytes.count < Int(Int32.max), "the snapshot is too large to index (2 GiB or more)")
        let block = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        block.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        base = block
        byteCount = bytes.count
        // Exact capacities: the arrays grew by doubling, and the snapshot keeps them for its lifetime.
        strings = compacted(builder.writer.tables.strings)
        keyLists = compacted(builder.writer.tables.keyLists)

        var size = 8
        while size < builder.offsets.count * 2 { size *= 2 }
        mask = size - 1
        slots = .allocate(capacity: size)
        slots.initialize(repeating: FlagSlot(tag: 0, offset: 0), count: size)
        for offset in builder.offsets {
            let record = block.loadUnaligned(fromByteOffset: offset, as: FlagRecord.self)
            let key = UnsafeBufferPointer(
                start: block.assumingMemoryBound(to: UInt8.self) + offset + FlagRecord.size,
                count: Int(record.keyCount)
            )
            let hash = byteHash(key)
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot].offset != 0 { slot = (slot + 1) & mask }
            slots[slot] = FlagSlot(tag: UInt32(truncatingIfNeeded: hash >> 32), offset: UInt32(offset))
        }
        propertyNames = Self.indexPropertyNames(in: block, flagsAt: builder.offsets)
    }

    /// Gives each constraint that reads a property the index of its name among the distinct names, written after
    /// its name hash, and returns the names (see `PropertyNameIndex`).
    private static func indexPropertyNames(in block: UnsafeMutableRawPointer, flagsAt offsets: [Int]) -> [String] {
        var index = PropertyNameIndex(block: block)
        for offset in offsets { walk(flagAt: offset, in: UnsafeRawPointer(block), &index) }
        return index.names
    }

    /// Calls `visitor` with the byte offset and record of each item, segment and constraint of the flag block at
    /// `offset`, in block order, following the layout described at the top of this file. A visitor may rewrite
    /// the records it is given, but not the counts and sizes the walk steps by. (A visitor rather than closures:
    /// closures that change captured state make every access to it checked for exclusivity at run time, which cost
    /// 2 % of a load's instructions.)
    @inline(__always)
    static func walk(flagAt offset: Int, in base: UnsafeRawPointer, _ visitor: inout some FlagBlockVisitor) {
        let flag = base.loadUnaligned(fromByteOffset: offset, as: FlagRecord.self)
        var item = offset + FlagRecord.size + roundedUp(Int(flag.keyCount))
        for _ in 0..<Int(flag.itemCount) {
            let rule = base.loadUnaligned(fromByteOffset: item, as: RuleRecord.self)
            visitor.visit(ruleAt: item, rule)
            var segment = item + RuleRecord.size
            for _ in 0..<Int(rule.segmentCount) {
                let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
                visitor.visit(segmentAt: segment, record)
                var position = segment + SegmentRecord.size
                for _ in 0..<Int(record.constraintCount) {
                    visitor.visit(
                        constraintAt: position,
                        base.loadUnaligned(fromByteOffset: position, as: ConstraintRecord.self)
                    )
                    position += ConstraintRecord.stride
                }
                segment += Int(record.byteCount)
            }
            item += Int(rule.byteCount)
        }
    }

    deinit {
        base.deallocate()
        slots.deallocate()
    }

    @inline(__always)
    func flag(at offset: Int) -> FlagRecord {
        base.loadUnaligned(fromByteOffset: offset, as: FlagRecord.self)
    }

    /// The byte offset of the FlagRecord whose key has exactly the bytes of `key`, or nil.
    @inline(__always)
    func offset(ofKey key: UnsafeBufferPointer<UInt8>) -> Int? {
        let hash = byteHash(key)
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let candidate = slots[slot]
            if candidate.offset == 0 { return nil }
            if candidate.tag == tag {
                let offset = Int(candidate.offset)
                let record = base.loadUnaligned(fromByteOffset: offset, as: FlagRecord.self)
                if Int(record.keyCount) == key.count
                    && bytesEqualBuffers(bytes(offset &+ FlagRecord.size, Int(record.keyCount)), key)
                {
                    return offset
                }
            }
            slot = (slot &+ 1) & mask
        }
    }

    @inline(__always)
    func bytes(_ start: Int, _ count: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self) + start, count: count)
    }

    @inline(__always)
    var view: ArenaView { ArenaView(base: UnsafeRawPointer(base)) }

    /// The first item's byte offset for the flag at `offset`.
    @inline(__always)
    func firstItem(ofFlagAt offset: Int, _ record: FlagRecord) -> Int {
        offset &+ FlagRecord.size &+ roundedUp(Int(record.keyCount))
    }

    /// The segment keys a group's outcome reports.
    @inline(__always)
    func segmentKeys(_ outcome: GroupOutcome) -> SegmentKeyStorage {
        if outcome.key >= 0 { return .one(strings[Int(outcome.key)]) }
        if let built = outcome.builtKeys { return .list(built) }
        return outcome.keyList < 0 ? .none : .list(keyLists[Int(outcome.keyList)])
    }

    @inline(__always)
    func string(_ index: Int32) -> String? {
        index < 0 ? nil : strings[Int(index)]
    }
}

/// What a segment group gave: whether it applies, and the keys it reports.
struct GroupOutcome {
    var applies: Bool
    /// The index in `strings` of the one key to report, or -1.
    var key: Int32 = -1
    /// A `keyLists` index (-1: none) used when `key` is -1, unless `builtKeys` is set.
    var keyList: Int32 = -1
    /// Keys collected when an OR group matched more than one segment.
    var builtKeys: [String]? = nil

    static let notApplying = GroupOutcome(applies: false)
}

extension Program {
    /// Evaluates the group of segments following the rule record at `item`.
    ///
    /// Offsets here and in `segmentMatches` advance with wrapping arithmetic: they stay within the block, which is
    /// smaller than 2 GiB (`init` checks), so no sum can overflow, and the checks cost an instruction each step.
    @inline(__always)
    func matchGroup(
        at item: Int,
        _ rule: RuleRecord,
        entity: UnsafeBufferPointer<UInt8>,
        properties: some PropertyReader
    ) -> GroupOutcome {
        let view = self.view
        var segment = item &+ RuleRecord.size
        if rule.isAnd {
            var key: Int32 = -1
            for _ in 0..<Int(rule.segmentCount) {
                let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
                if !segmentMatches(record, at: segment, entity: entity, properties: properties, view) {
                    return .notApplying
                }
                key = record.key
                segment &+= Int(record.byteCount)
            }
            if rule.segmentCount == 1 { return GroupOutcome(applies: true, key: key) }
            return GroupOutcome(applies: true, keyList: rule.allKeys)
        }
        if rule.subsetKeys >= 0 {
            var mask: Int32 = 0
            var key: Int32 = -1
            for index in 0..<Int(rule.segmentCount) {
                let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
                if segmentMatches(record, at: segment, entity: entity, properties: properties, view) {
                    mask |= 1 << Int32(index)
                    key = record.key
                }
                segment &+= Int(record.byteCount)
            }
            guard mask != 0 else { return .notApplying }
            if mask & (mask - 1) == 0 { return GroupOutcome(applies: true, key: key) }
            return GroupOutcome(applies: true, keyList: rule.subsetKeys + mask)
        }
        var first: SegmentRecord?
        var built: [String]?
        for _ in 0..<Int(rule.segmentCount) {
            let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
            if segmentMatches(record, at: segment, entity: entity, properties: properties, view) {
                if let first {
                    if built == nil {
                        // One allocation for every key this group can still report.
                        var keys: [String] = []
                        keys.reserveCapacity(Int(rule.segmentCount))
                        keys.append(strings[Int(first.key)])
                        built = keys
                    }
                    built!.append(strings[Int(record.key)])
                } else {
                    first = record
                }
            }
            segment &+= Int(record.byteCount)
        }
        guard let first else { return .notApplying }
        if let built { return GroupOutcome(applies: true, builtKeys: built) }
        return GroupOutcome(applies: true, key: first.key)
    }

    /// Whether a segment matches: ALL stops at the first failure, ANY at the first success, zero constraints
    /// match, and reaching a constraint of unknown type fails the whole segment.
    @inline(__always)
    private func segmentMatches(
        _ segment: SegmentRecord,
        at offset: Int,
        entity: UnsafeBufferPointer<UInt8>,
        properties: some PropertyReader,
        _ view: ArenaView
    ) -> Bool {
        var position = offset &+ SegmentRecord.size
        for _ in 0..<Int(segment.constraintCount) {
            let constraint = base.loadUnaligned(fromByteOffset: position, as: ConstraintRecord.self)
            let hashPosition = position &+ ConstraintRecord.size
            position &+= ConstraintRecord.stride
            if constraint.operation == .unknownType { return false }
            let matched: Bool
            if constraint.readsEntityID {
                matched = constraint.matches(entity, view)
            } else {
                matched = properties.withValueBytes(
                    forKeyBytes: view[constraint.property],
                    hash: base.loadUnaligned(fromByteOffset: hashPosition, as: UInt32.self),
                    name: propertyNames[Int(base.loadUnaligned(fromByteOffset: hashPosition &+ 4, as: Int32.self))]
                ) {
                    constraint.matches($0, view)
                }
            }
            if segment.matchesAll {
                if !matched { return false }
            } else if matched {
                return true
            }
        }
        return segment.matchesAll || segment.constraintCount == 0
    }

    /// The distribution for a bucket in 0…999 of the rule at `item`, or nil when it has none.
    @inline(__always)
    func distribution(at item: Int, _ rule: RuleRecord, forBucket bucket: UInt32) -> DistributionRecord? {
        let count = Int(rule.distributionCount)
        guard count > 0 else { return nil }
        let boundaries = item &+ Int(rule.distributionOffset)
        let position = rustBinarySearch(count: count, Int32(bucket) &+ 1) {
            base.loadUnaligned(fromByteOffset: boundaries &+ $0 &* 4, as: Int32.self)
        }
        // Every bucket finds a boundary, since the last is 1000; the guard only keeps the lookup total.
        guard position < count else { return nil }
        return base.loadUnaligned(
            fromByteOffset: boundaries &+ count &* 4 &+ position &* MemoryLayout<DistributionRecord>.stride,
            as: DistributionRecord.self
        )
    }
}

/// What `Program.walk(flagAt:in:_:)` calls with each record of a flag block; rules and segments are skipped unless
/// a visitor implements them.
protocol FlagBlockVisitor {
    mutating func visit(ruleAt offset: Int, _ rule: RuleRecord)
    mutating func visit(segmentAt offset: Int, _ segment: SegmentRecord)
    mutating func visit(constraintAt offset: Int, _ constraint: ConstraintRecord)
}

extension FlagBlockVisitor {
    func visit(ruleAt offset: Int, _ rule: RuleRecord) {}
    func visit(segmentAt offset: Int, _ segment: SegmentRecord) {}
}

/// Gives each constraint that reads a property the index of its name among the distinct names (written after its
/// name hash) and collects the names, for `Program.propertyNames`.
///
/// The names are found through an open-addressed table of their indices, placed by the stored hash, comparing
/// bytes. Instructions per load (`flipt-bench load --callgrind`), without the pass -> with it: all-kinds-10000
/// 730.2 -> 738.2 million, issue18-10000 384.8 -> 389.4 million (+1.2 %).
private struct PropertyNameIndex: FlagBlockVisitor {
    let block: UnsafeMutableRawPointer
    private(set) var names: [String] = []
    /// For each name: its hash and where its bytes are (its first constraint's span).
    private var hashes: [UInt32] = []
    private var spans: [ByteSpan] = []
    /// Name indices (-1: empty), at most half full.
    private var table = [Int32](repeating: -1, count: 16)

    init(block: UnsafeMutableRawPointer) {
        self.block = block
    }

    mutating func visit(constraintAt offset: Int, _ constraint: ConstraintRecord) {
        guard !constraint.readsEntityID else { return }
        let hashPosition = offset + ConstraintRecord.size
        let hash = block.loadUnaligned(fromByteOffset: hashPosition, as: UInt32.self)
        block.storeBytes(of: index(of: constraint.property, hash: hash), toByteOffset: hashPosition + 4, as: Int32.self)
    }

    private mutating func index(of name: ByteSpan, hash: UInt32) -> Int32 {
        let view = ArenaView(base: UnsafeRawPointer(block))
        let bytes = view[name]
        var slot = Int(hash) & (table.count - 1)
        while table[slot] >= 0 {
            let candidate = Int(table[slot])
            if hashes[candidate] == hash, bytesEqualBuffers(view[spans[candidate]], bytes) { return Int32(candidate) }
            slot = (slot + 1) & (table.count - 1)
        }
        let new = Int32(names.count)
        // The name's bytes came from the document's JSON strings: valid UTF-8, kept as they are.
        names.append(String(decoding: bytes, as: UTF8.self))
        hashes.append(hash)
        spans.append(name)
        if 2 * names.count > table.count {
            table = [Int32](repeating: -1, count: 2 * table.count)
            for (position, hash) in hashes.enumerated() {
                var slot = Int(hash) & (table.count - 1)
                while table[slot] >= 0 { slot = (slot + 1) & (table.count - 1) }
                table[slot] = Int32(position)
            }
        } else {
            table[slot] = new
        }
        return new
    }
}
