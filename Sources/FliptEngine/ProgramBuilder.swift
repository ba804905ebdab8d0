// Writing flags into a program block (the layout is described at the top of Program.swift).
//
// `BlockWriter` lowers one `FlagDraft` at a time into a block; where the strings and segment-key lists its records
// refer to by index are kept is up to its `ProgramTables`: Swift strings and arrays for a snapshot
// (`SnapshotTables`, in `ProgramBuilder`), or flat tables in mapped pages for the part of a document another thread
// decodes (`RunTables`, in FlagRunDecoding.swift), which the calling thread turns into strings when it takes them.

/// Where a `BlockWriter` keeps the strings and segment-key lists its records refer to, by index.
protocol ProgramTables {
    /// Called before each flag is written.
    mutating func begin(_ draft: FlagDraft)
    /// Adds a result string; returns its index.
    mutating func add(string: String) -> Int32
    /// Adds the key of the draft's segment at `segment` as a result string; returns its index.
    mutating func add(keyOf segment: Int, in draft: FlagDraft) -> Int32
    /// Adds the list of the keys of the draft's segments at `segments`, in that order (an empty list too); returns
    /// its index.
    mutating func addKeyList(_ segments: UnsafeBufferPointer<Int>, of draft: FlagDraft) -> Int32
}

/// A snapshot's result strings and segment-key lists, as the program keeps them.
struct SnapshotTables: ProgramTables {
    var strings: [String] = []
    var keyLists: [[String]] = []

    mutating func begin(_ draft: FlagDraft) {}

    mutating func add(string: String) -> Int32 {
        strings.append(string)
        return Int32(strings.count - 1)
    }

    mutating func add(keyOf segment: Int, in draft: FlagDraft) -> Int32 {
        add(string: draft.segments[segment].key)
    }

    mutating func addKeyList(_ segments: UnsafeBufferPointer<Int>, of draft: FlagDraft) -> Int32 {
        var list: [String] = []
        list.reserveCapacity(segments.count)
        for segment in segments { list.append(draft.segments[segment].key) }
        keyLists.append(list)
        return Int32(keyLists.count - 1)
    }
}

/// A range of `BlockWriter.chosen`. Outside the generic writer: a type nested in it would be generic too, and making
/// its array storage would check `Tables: ProgramTables` at run time, the same conformance walk as `Range<Int>`'s.
private struct ChosenRange {
    var start: Int
    var end: Int
}

/// Writes flags into a program block, one `FlagDraft` at a time.
struct BlockWriter<Tables: ProgramTables> {
    var bytes: BlockStorage
    var tables: Tables
    /// The draft being added and its constraints relocated into `bytes`, in the order they are written.
    private var relocated: [CompiledConstraint] = []
    private var nextRelocated = 0
    /// Per item of the flag being added: its distinct segments (indices into the draft's), laid end to end.
    private var chosen: [Int] = []
    /// Per item: its range in `chosen`. Kept as plain bounds: the first `[Range<Int>]` a process makes costs it a
    /// scan of every protocol conformance in the binary (the runtime checks `Int: Comparable` to instantiate the
    /// array's storage), ~220 µs of a 1,000-flag cold boot (perf, 40 boots).
    private var chosenRanges: [ChosenRange] = []
    private var rollouts: [Float] = []
    /// The segments of one key list being added.
    private var listSegments: [Int] = []

    /// A writer whose block starts with the 8 bytes at which no record starts (so that 0 can mark an empty slot).
    init(bytes: BlockStorage, tables: Tables) {
        self.bytes = bytes
        self.tables = tables
        self.bytes.appendZeros(8)
    }

    /// Writes a flag's block; returns its FlagRecord's byte offset.
    mutating func write(_ draft: FlagDraft, position: Int) -> Int {
        tables.begin(draft)
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
            chosenRanges.append(ChosenRange(start: range.lowerBound, end: range.upperBound))
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
        let record = FlagRecord(
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
        append(record, size: FlagRecord.size)
        draft.key.withUTF8Bytes { bytes.append(UnsafeRawBufferPointer($0)) }
        pad()
        var group = 0
        for item in items where item.kind != .none {
            add(item, segments: chosenRanges[group].start..<chosenRanges[group].end, of: draft)
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
        var record = RuleRecord(
            byteCount: 0,
            distributionOffset: 0,
            segmentCount: Int32(segments.count),
            distributionCount: 0,
            // Only an AND group of two or more reports every key as a list: a group that reports one key reports
            // the segment's (see `GroupOutcome.key`).
            allKeys: item.isAnd && segments.count >= 2 ? addKeyList(chosen[segments], of: draft) : -1,
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
            record.subsetKeys = add(subsetsOf: segments, isAnd: item.isAnd, of: draft)
        }
        // Only distributions with a rollout above zero can be chosen.
        let distributions = draft.distributions[item.distributions]
        var chosenCount: Int32 = 0
        for distribution in distributions where distribution.rollout > 0 { chosenCount += 1 }
        record.distributionCount = chosenCount
        append(record, size: RuleRecord.size)
        add(segments: segments, of: draft, record)
        if item.kind == .rule {
            record.distributionOffset = Int32(bytes.count - start)
            rollouts.removeAll(keepingCapacity: true)
            for distribution in distributions where distribution.rollout > 0 { rollouts.append(distribution.rollout) }
            for boundary in bucketBoundaries(rollouts) { bytes.append(boundary) }
            for distribution in distributions where distribution.rollout > 0 {
                let entry = DistributionRecord(
                    variantKey: tables.add(string: distribution.variantKey),
                    attachment: add(optional: distribution.attachment)
                )
                append(entry, size: MemoryLayout<DistributionRecord>.stride)
            }
        }
        record.byteCount = Int32(bytes.count - start)
        bytes.store(record, at: start)
    }

    private mutating func add(segments: Range<Int>, of draft: FlagDraft, _ rule: RuleRecord) {
        for index in chosen[segments] {
            let segment = draft.segments[index]
            let start = bytes.count
            var record = SegmentRecord(
                byteCount: 0,
                constraintCount: Int32(segment.constraints.count),
                key: tables.add(keyOf: index, in: draft),
                matchesAll: segment.matchesAll
            )
            append(record, size: SegmentRecord.size)
            for _ in segment.constraints {
                let constraint = ConstraintRecord(relocated[nextRelocated])
                // The name's bytes as the evaluation reads them (the block starts with 8 zero bytes, so it has an
                // address).
                let hash =
                    constraint.readsEntityID
                    ? 0 : propertyNameHash(ArenaView(base: bytes.bytes.baseAddress!)[constraint.property])
                nextRelocated += 1
                append(constraint, size: ConstraintRecord.size)
                append(hash, size: 4)
                // The name's index in `Program.propertyNames`, which `Program.init` assigns.
                append(Int32(-1), size: 4)
            }
            record.byteCount = Int32(bytes.count - start)
            bytes.store(record, at: start)
        }
    }

    /// Adds a result string; -1 for nil.
    private mutating func add(optional string: String?) -> Int32 {
        guard let string else { return -1 }
        return tables.add(string: string)
    }

    /// Adds a list of the keys of the draft's segments at `segments`.
    private mutating func addKeyList(_ segments: some Sequence<Int>, of draft: FlagDraft) -> Int32 {
        listSegments.removeAll(keepingCapacity: true)
        listSegments.append(contentsOf: segments)
        return listSegments.withUnsafeBufferPointer { tables.addKeyList($0, of: draft) }
    }

    /// OR groups with more segments than this build their key list when several match; smaller ones get every
    /// list ahead (2^n lists).
    static var subsetLimit: Int { 4 }

    /// Adds the key lists of every set of segments of an OR group of 2 to `subsetLimit` segments, in document
    /// order, at consecutive indices by bit mask; returns the first index, or -1 for other groups.
    private mutating func add(subsetsOf segments: Range<Int>, isAnd: Bool, of draft: FlagDraft) -> Int32 {
        guard !isAnd, segments.count >= 2, segments.count <= Self.subsetLimit else { return -1 }
        var first: Int32 = -1
        for mask in 0..<(1 << segments.count) {
            let list = addKeyList(
                chosen[segments].enumerated().lazy.filter { mask & (1 << $0.offset) != 0 }.map(\.element),
                of: draft
            )
            if mask == 0 { first = list }
        }
        return first
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
        arena.bytes.withUnsafeBytes { all in
            bytes.append(UnsafeRawBufferPointer(rebasing: all[Int(span.start)..<Int(span.start + span.count)]))
        }
        return ByteSpan(start: Int32(start), count: span.count)
    }

    /// Copies a string list: the element bytes, then (4-aligned) one ByteSpan per element.
    private mutating func copy(strings list: ElementSpan, _ arena: ConstraintArena) -> ElementSpan {
        let elements = arena.strings[Int(list.start)..<Int(list.start + list.count)].map { copy($0, arena) }
        pad()
        let start = bytes.count
        for element in elements { append(element, size: MemoryLayout<ByteSpan>.stride) }
        return ElementSpan(start: Int32(start), count: list.count)
    }

    /// Copies a number list (4-aligned).
    private mutating func copy(numbers list: ElementSpan, _ arena: ConstraintArena) -> ElementSpan {
        pad()
        let start = bytes.count
        for number in arena.numbers[Int(list.start)..<Int(list.start + list.count)] { bytes.append(number) }
        return ElementSpan(start: Int32(start), count: list.count)
    }

    private mutating func pad() {
        bytes.appendZeros((4 - bytes.count & 3) & 3)
    }

    /// Appends a record's bytes, zero-filled up to `size`.
    private mutating func append<Record>(_ record: Record, size: Int) {
        bytes.append(record)
        bytes.appendZeros(size - MemoryLayout<Record>.size)
    }
}

/// Writes flags into a program block, one `FlagDraft` at a time, and keeps their summaries in document order.
struct ProgramBuilder {
    var writer: BlockWriter<SnapshotTables>
    /// The distinct flags' summaries, in the order their keys first appear.
    var summaries: [FlagSummary] = []
    /// The FlagRecord offset of each summary's flag (a later flag with the same key replaces an earlier one).
    var offsets: [Int] = []
    var distinct = DistinctKeys(capacity: 64)
    /// How many parts decoded on another thread were appended (`append(contentsOf:)`).
    var adoptedParts = 0

    /// A builder whose block will hold about `documentSize` bytes of document (for its first reservation).
    init(documentSize: Int = 0) {
        writer = BlockWriter(bytes: BlockStorage(.heap, capacity: documentSize / 3 + 64), tables: SnapshotTables())
        if documentSize > 4096 {
            distinct = DistinctKeys(capacity: documentSize / 256)
            offsets.reserveCapacity(documentSize / 512)
        }
    }

    /// Adds a flag; a flag whose key was seen before replaces that flag, at its position.
    mutating func add(_ draft: FlagDraft) {
        if let position = distinct.insert(draft.key, position: summaries.count) {
            offsets[position] = writer.write(draft, position: position)
            summaries[position] = draft.summary
        } else {
            offsets.append(writer.write(draft, position: summaries.count))
            summaries.append(draft.summary)
        }
    }

    /// Frees the block (`Program` copies it).
    func release() {
        writer.bytes.release()
    }
}
