// The evaluation form of a snapshot: every flag lowered into one contiguous block of plain records, so that an
// evaluation reads a few neighbouring cache lines, follows no object references and retains nothing but the
// strings it returns.
//
// One flag's block, at a 4-aligned byte offset:
//
//     [constraint bytes: property names, values, list entries]
//     FlagRecord, key bytes (padded to 4)
//     item × itemCount:   RuleRecord, then
//         segment × segmentCount:   SegmentRecord, then ConstraintRecord × constraintCount
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
    /// Index in `keyLists` of every segment key (the keys an AND group reports), or -1 when there are none.
    var allKeys: Int32
    /// OR groups of 2 to `ProgramBuilder.subsetLimit` segments: the index in `keyLists` of the key list for no
    /// segment, followed by one list per set of matched segments (at `subsetKeys + mask`, bit i for segment i), so
    /// that an evaluation matching several segments allocates nothing; -1 otherwise.
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
    /// Index in `keyLists` of `[key]`.
    var keyList: Int32
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
        precondition(builder.bytes.count < Int(Int32.max), "the snapshot is too large to index (2 GiB or more)")
        let block = UnsafeMutableRawPointer.allocate(byteCount: builder.bytes.count, alignment: 16)
        builder.bytes.withUnsafeBytes { block.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        base = block
        byteCount = builder.bytes.count
        // Exact capacities: the arrays grew by doubling, and the snapshot keeps them for its lifetime.
        strings = compacted(builder.strings)
        keyLists = compacted(builder.keyLists)

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
                    && bytesEqualBuffers(bytes(offset + FlagRecord.size, Int(record.keyCount)), key)
                {
                    return offset
                }
            }
            slot = (slot + 1) & mask
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
        offset + FlagRecord.size + roundedUp(Int(record.keyCount))
    }

    /// The segment keys for a list index (-1: none).
    @inline(__always)
    func keyList(_ index: Int32) -> [String] {
        index < 0 ? [] : keyLists[Int(index)]
    }

    @inline(__always)
    func string(_ index: Int32) -> String? {
        index < 0 ? nil : strings[Int(index)]
    }
}

/// What a segment group gave: whether it applies, and the keys it reports.
struct GroupOutcome {
    var applies: Bool
    /// A `keyLists` index (-1: none) used unless `builtKeys` is set.
    var keyList: Int32
    /// Keys collected when an OR group matched more than one segment.
    var builtKeys: [String]?
}

extension Program {
    /// Evaluates the group of segments following the rule record at `item`.
    @inline(__always)
    func matchGroup(
        at item: Int,
        _ rule: RuleRecord,
        entity: UnsafeBufferPointer<UInt8>,
        context: EvaluationContext
    ) -> GroupOutcome {
        let view = self.view
        var segment = item + RuleRecord.size
        if rule.isAnd {
            for _ in 0..<Int(rule.segmentCount) {
                let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
                if !segmentMatches(record, at: segment, entity: entity, context: context, view) {
                    return GroupOutcome(applies: false, keyList: -1, builtKeys: nil)
                }
                segment += Int(record.byteCount)
            }
            return GroupOutcome(applies: true, keyList: rule.allKeys, builtKeys: nil)
        }
        if rule.subsetKeys >= 0 {
            var mask: Int32 = 0
            for index in 0..<Int(rule.segmentCount) {
                let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
                if segmentMatches(record, at: segment, entity: entity, context: context, view) {
                    mask |= 1 << Int32(index)
                }
                segment += Int(record.byteCount)
            }
            guard mask != 0 else { return GroupOutcome(applies: false, keyList: -1, builtKeys: nil) }
            return GroupOutcome(applies: true, keyList: rule.subsetKeys + mask, builtKeys: nil)
        }
        var first: SegmentRecord?
        var built: [String]?
        for _ in 0..<Int(rule.segmentCount) {
            let record = base.loadUnaligned(fromByteOffset: segment, as: SegmentRecord.self)
            if segmentMatches(record, at: segment, entity: entity, context: context, view) {
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
            segment += Int(record.byteCount)
        }
        guard let first else { return GroupOutcome(applies: false, keyList: -1, builtKeys: nil) }
        return GroupOutcome(applies: true, keyList: first.keyList, builtKeys: built)
    }

    /// Whether a segment matches: ALL stops at the first failure, ANY at the first success, zero constraints
    /// match, and reaching a constraint of unknown type fails the whole segment.
    @inline(__always)
    private func segmentMatches(
        _ segment: SegmentRecord,
        at offset: Int,
        entity: UnsafeBufferPointer<UInt8>,
        context: EvaluationContext,
        _ view: ArenaView
    ) -> Bool {
        var position = offset + SegmentRecord.size
        for _ in 0..<Int(segment.constraintCount) {
            let constraint = base.loadUnaligned(fromByteOffset: position, as: ConstraintRecord.self)
            position += ConstraintRecord.size
            if constraint.operation == .unknownType { return false }
            let matched: Bool
            if constraint.readsEntityID {
                matched = constraint.matches(entity, view)
            } else {
                matched = context.withValueBytes(forKeyBytes: view[constraint.property]) {
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
        let boundaries = item + Int(rule.distributionOffset)
        let position = rustBinarySearch(count: count, Int32(bucket) + 1) {
            base.loadUnaligned(fromByteOffset: boundaries + $0 * 4, as: Int32.self)
        }
        // Every bucket finds a boundary, since the last is 1000; the guard only keeps the lookup total.
        guard position < count else { return nil }
        return base.loadUnaligned(
            fromByteOffset: boundaries + count * 4 + position * MemoryLayout<DistributionRecord>.stride,
            as: DistributionRecord.self
        )
    }
}

/// Writes flags into a program block, one `FlagDraft` at a time, and keeps their summaries in document order.
struct ProgramBuilder {
    var bytes: [UInt8] = []
    var strings: [String] = []
    var keyLists: [[String]] = []
    /// The distinct flags' summaries, in the order their keys first appear.
    var summaries: [FlagSummary] = []
    /// The FlagRecord offset of each summary's flag (a later flag with the same key replaces an earlier one).
    var offsets: [Int] = []
    private var distinct = DistinctKeys(capacity: 64)
    /// The draft being added and its constraints relocated into `bytes`, in the order they are written.
    private var relocated: [CompiledConstraint] = []
    private var nextRelocated = 0
    /// Per item of the flag being added: its distinct segments (indices into the draft's), laid end to end.
    private var chosen: [Int] = []
    private var chosenRanges: [Range<Int>] = []
    private var rollouts: [Float] = []

    /// A builder whose block will hold about `documentSize` bytes of document (for its first reservation).
    init(documentSize: Int = 0) {
        // No FlagRecord starts at offset 0, so 0 can mark an empty table slot.
        bytes.reserveCapacity(documentSize / 3 + 64)
        bytes.append(contentsOf: repeatElement(0, count: 8))
        if documentSize > 4096 {
            distinct = DistinctKeys(capacity: documentSize / 256)
            offsets.reserveCapacity(documentSize / 512)
        }
    }

    /// Adds a flag; a flag whose key was seen before replaces that flag, at its position.
    mutating func add(_ draft: FlagDraft) {
        if let position = distinct.insert(draft.key, position: summaries.count) {
            offsets[position] = write(draft, position: position)
            summaries[position] = draft.summary
        } else {
            offsets.append(write(draft, position: summaries.count))
            summaries.append(draft.summary)
        }
    }

    /// Writes a flag's block; returns its FlagRecord's byte offset.
    private mutating func write(_ draft: FlagDraft, position: Int) -> Int {
        // Each group's distinct segments, then their constraint bytes, so that the records can point at them.
        chosen.removeAll(keepingCapacity: true)
        chosenRanges.removeAll(keepingCapacity: true)
        relocated.removeAll(keepingCapacity: true)
        nextRelocated = 0
        // Variant flags keep their rules, boolean flags their rollouts of a known kind.
        let items = draft.type == .variant ? draft.rules : draft.rollouts
        var itemCount = 0
        for item in items where item.kind != .none {
            itemCount += 1
            let range = item.kind == .threshold ? 0..<0 : collapse(item.segments, of: draft)
            chosenRanges.append(range)
            for segment in chosen[range] {
                for constraint in draft.constraints[draft.segments[segment].constraints] {
                    relocated.append(relocate(constraint, from: draft.arena))
                }
            }
        }
        pad()
        let offset = bytes.count
        var checksum = CRC32()
        checksum.update(draft.key)
        var record = FlagRecord(
            position: Int32(position),
            keyCount: Int32(draft.key.utf8.count),
            keyChecksum: checksum.state,
            itemCount: Int32(itemCount),
            defaultVariantKey: add(optional: draft.defaultVariant?.key),
            defaultAttachment: add(optional: draft.defaultVariant?.attachment),
            isBoolean: draft.type == .boolean,
            isEnabled: draft.isEnabled,
            hasRolloutEntries: draft.hasRolloutEntries
        )
        append(&record, size: FlagRecord.size)
        draft.key.withUTF8Bytes { bytes.append(contentsOf: $0) }
        pad()
        var group = 0
        for item in items where item.kind != .none {
            add(item, segments: chosenRanges[group], of: draft)
            group += 1
        }
        return offset
    }

    /// Appends to `chosen` the segments of a group, distinct by key (the last definition wins, at the position of
    /// the first); returns their range in `chosen`.
    private mutating func collapse(_ segments: Range<Int>, of draft: FlagDraft) -> Range<Int> {
        let start = chosen.count
        if segments.count <= 8 {
            // Few segments (the usual case): compare keys directly rather than hashing them.
            for index in segments {
                let key = draft.segments[index].key
                if let existing = chosen[start...].firstIndex(where: { draft.segments[$0].key.bytesEqual(key) }) {
                    chosen[existing] = index
                } else {
                    chosen.append(index)
                }
            }
        } else {
            var positions: [[UInt8]: Int] = [:]
            for index in segments {
                let key = Array(draft.segments[index].key.utf8)
                if let position = positions[key] {
                    chosen[position] = index
                } else {
                    positions[key] = chosen.count
                    chosen.append(index)
                }
            }
        }
        return start..<chosen.count
    }

    /// Writes a rule or a rollout with its distinct segments.
    private mutating func add(_ item: FlagDraft.Item, segments: Range<Int>, of draft: FlagDraft) {
        let start = bytes.count
        let keys = segments.isEmpty ? [] : chosen[segments].map { draft.segments[$0].key }
        var record = RuleRecord(
            byteCount: 0,
            distributionOffset: 0,
            segmentCount: Int32(segments.count),
            distributionCount: 0,
            allKeys: add(keyList: keys),
            percentage: item.percentage,
            kind: item.kind == .rule ? .rule : item.kind == .threshold ? .threshold : .segmentRollout,
            isAnd: item.isAnd,
            value: item.value
        )
        if item.kind == .threshold {
            record.allKeys = -1
            record.isAnd = false
            record.segmentCount = 0
        } else {
            record.subsetKeys = add(subsetsOf: keys, isAnd: item.isAnd)
        }
        // Only distributions with a rollout above zero can be chosen.
        let distributions = draft.distributions[item.distributions]
        var chosenCount: Int32 = 0
        for distribution in distributions where distribution.rollout > 0 { chosenCount += 1 }
        record.distributionCount = chosenCount
        append(&record, size: RuleRecord.size)
        add(segments: segments, of: draft, record)
        if item.kind == .rule {
            record.distributionOffset = Int32(bytes.count - start)
            rollouts.removeAll(keepingCapacity: true)
            for distribution in distributions where distribution.rollout > 0 { rollouts.append(distribution.rollout) }
            for boundary in bucketBoundaries(rollouts) { appendInt32(boundary) }
            for distribution in distributions where distribution.rollout > 0 {
                var entry = DistributionRecord(
                    variantKey: add(string: distribution.variantKey),
                    attachment: add(optional: distribution.attachment)
                )
                append(&entry, size: MemoryLayout<DistributionRecord>.stride)
            }
        }
        record.byteCount = Int32(bytes.count - start)
        overwrite(record, at: start)
    }

    private mutating func add(segments: Range<Int>, of draft: FlagDraft, _ rule: RuleRecord) {
        for (position, index) in chosen[segments].enumerated() {
            let segment = draft.segments[index]
            let start = bytes.count
            // The list `[key]` a group reports when this segment alone matched: a group of one already has it
            // (its every-key list), and a small OR group has it among its subsets (bit `position` alone).
            let keyList: Int32
            if segments.count == 1 {
                keyList = rule.allKeys
            } else if rule.subsetKeys >= 0 {
                keyList = rule.subsetKeys + Int32(1 << position)
            } else {
                keyList = add(keyList: [segment.key])
            }
            var record = SegmentRecord(
                byteCount: 0,
                constraintCount: Int32(segment.constraints.count),
                key: add(string: segment.key),
                keyList: keyList,
                matchesAll: segment.matchesAll
            )
            append(&record, size: SegmentRecord.size)
            for _ in segment.constraints {
                var constraint = ConstraintRecord(relocated[nextRelocated])
                nextRelocated += 1
                append(&constraint, size: ConstraintRecord.size)
            }
            record.byteCount = Int32(bytes.count - start)
            overwrite(record, at: start)
        }
    }

    /// Adds a result string; returns its index.
    private mutating func add(string: String) -> Int32 {
        strings.append(string)
        return Int32(strings.count - 1)
    }

    /// Adds a result string; -1 for nil.
    private mutating func add(optional string: String?) -> Int32 {
        guard let string else { return -1 }
        return add(string: string)
    }

    /// OR groups with more segments than this build their key list when several match; smaller ones get every
    /// list ahead (2^n lists).
    static let subsetLimit = 4

    /// Adds the key lists of every set of segments of an OR group of 2 to `subsetLimit` segments, in document
    /// order, at consecutive indices by bit mask; returns the first index, or -1 for other groups.
    private mutating func add(subsetsOf keys: [String], isAnd: Bool) -> Int32 {
        guard !isAnd, keys.count >= 2, keys.count <= Self.subsetLimit else { return -1 }
        let first = Int32(keyLists.count)
        for mask in 0..<(1 << keys.count) {
            var list: [String] = []
            list.reserveCapacity(mask.nonzeroBitCount)
            for (bit, key) in keys.enumerated() where mask & (1 << bit) != 0 { list.append(key) }
            keyLists.append(list)
        }
        return first
    }

    /// Adds a list of segment keys; -1 for an empty list.
    private mutating func add(keyList: [String]) -> Int32 {
        if keyList.isEmpty { return -1 }
        keyLists.append(keyList)
        return Int32(keyLists.count - 1)
    }

    /// Copies the bytes and lists a decoded constraint refers to (in `arena`) into the block.
    private mutating func relocate(_ constraint: CompiledConstraint, from arena: ConstraintArena) -> CompiledConstraint
    {
        let test: ConstraintTest
        switch constraint.test {
        case .unknownType, .never, .isEmpty, .isNotEmpty, .numberComparison, .boolean, .dateTimeComparison:
            test = constraint.test
        case .equals(let span): test = .equals(copy(span, arena))
        case .notEquals(let span): test = .notEquals(copy(span, arena))
        case .hasPrefix(let span): test = .hasPrefix(copy(span, arena))
        case .hasSuffix(let span): test = .hasSuffix(copy(span, arena))
        case .contains(let span): test = .contains(copy(span, arena))
        case .notContains(let span): test = .notContains(copy(span, arena))
        case .oneOf(let list): test = .oneOf(copy(strings: list, arena))
        case .notOneOf(let list): test = .notOneOf(copy(strings: list, arena))
        case .numberOneOf(let list): test = .numberOneOf(copy(numbers: list, arena))
        case .numberNotOneOf(let list): test = .numberNotOneOf(copy(numbers: list, arena))
        }
        return CompiledConstraint(
            property: constraint.readsEntityID ? ByteSpan(start: 0, count: 0) : copy(constraint.property, arena),
            readsEntityID: constraint.readsEntityID,
            test: test
        )
    }

    private mutating func copy(_ span: ByteSpan, _ arena: ConstraintArena) -> ByteSpan {
        let start = bytes.count
        bytes.append(contentsOf: arena.bytes[Int(span.start)..<Int(span.start + span.count)])
        return ByteSpan(start: Int32(start), count: span.count)
    }

    /// Copies a string list: the element bytes, then (4-aligned) one ByteSpan per element.
    private mutating func copy(strings list: ElementSpan, _ arena: ConstraintArena) -> ElementSpan {
        let elements = arena.strings[Int(list.start)..<Int(list.start + list.count)].map { copy($0, arena) }
        pad()
        let start = bytes.count
        for var element in elements { append(&element, size: MemoryLayout<ByteSpan>.stride) }
        return ElementSpan(start: Int32(start), count: list.count)
    }

    /// Copies a number list (4-aligned).
    private mutating func copy(numbers list: ElementSpan, _ arena: ConstraintArena) -> ElementSpan {
        pad()
        let start = bytes.count
        for number in arena.numbers[Int(list.start)..<Int(list.start + list.count)] { appendInt32(number) }
        return ElementSpan(start: Int32(start), count: list.count)
    }

    private mutating func pad() {
        while bytes.count & 3 != 0 { bytes.append(0) }
    }

    private mutating func appendInt32(_ value: Int32) {
        var value = value
        append(&value, size: 4)
    }

    /// Appends a record's bytes, zero-filled up to `size`.
    private mutating func append<Record>(_ record: inout Record, size: Int) {
        withUnsafeBytes(of: &record) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: repeatElement(0, count: size - MemoryLayout<Record>.size))
    }

    private mutating func overwrite<Record>(_ record: Record, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: record, toByteOffset: offset, as: Record.self) }
    }
}
