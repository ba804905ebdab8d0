// Decoding a large document on two cores: the calling thread decodes the flags array from its start, while a
// second thread guesses where a flag begins past the middle of the document and decodes from there to the array's
// end. The guess needs no structural scan and no trust:
//
// - A candidate is a `{` that follows a `,` (and whitespace). It is kept when one flag decodes there within
//   64 KiB and is followed by `,` or `]`; otherwise the next candidate is tried (64 at most). The calling thread
//   waits for this search when it reaches the middle (it has long ended by then), so that whether the work is
//   shared depends on the document alone; the window bounds the wait on any document.
// - The calling thread adopts the other thread's work only when one of its own flag elements starts exactly at
//   the kept candidate. Then the candidate is a real element start of the flags array, and the other thread read
//   from it exactly what the calling thread would have read (the same bytes, the same decoder, a fresh draft per
//   flag); `ProgramBuilder.append(contentsOf:)` makes the merged builder the one a single pass gives, byte for
//   byte. When the calling thread steps past the candidate instead (it was inside a string or a nested value), the
//   other thread is stopped and the calling thread decodes on alone; when the other thread's part turns out to be
//   no valid run of flags, the calling thread decodes it itself from the candidate, and meets the same first error.
//
// Memory: the other thread keeps nothing it allocated with malloc. glibc gives it an arena of its own; a program
// built there (strings, key lists, a growing block) stays resident after the thread ends, since malloc_trim
// returns the free bins of such an arena but never its top (measured: a client holding the 9.9 MB issue18-10000
// snapshot settled at 29.0 MB RSS added against 20.9 MB on one thread). So that thread writes its part into flat
// tables in pages mapped with mmap (`FlagRun`: the block, the strings' UTF-8 bytes, the key lists and summaries as
// indices), which the calling thread turns into strings and arrays when it merges the part, and then unmaps. What
// the other thread still takes from malloc is the per-flag scratch of the decoder (a few kilobytes, freed).
//
// Measured on the 9.9 MB issue18-10000 document, instructions per load (callgrind --separate-threads=yes,
// `flipt-bench load --callgrind issue18-10000`, the difference between --count 3 and --count 1, halved): one
// thread 464.1 M; split, the calling thread 247.8 M and the other thread 211.3 M (459.1 M in all: making the
// part's strings and moving its records costs less than the block's realloc'd storage saves over an array).

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The flags of a document from a guessed element start to the end of the flags array, as the other thread wrote
/// them: a program block whose string and key-list indices refer to flat tables, all in mapped pages.
struct FlagRun {
    /// A flag as written: where its record is, and its summary's strings (indices into `entries`; -1 for nil).
    struct Flag {
        var offset: Int32
        var key: Int32
        var description: Int32
        /// -1 when the flag has no default variant.
        var variantID: Int32
        var isEnabled: Bool
        var isBoolean: Bool
    }

    /// The block, starting with 8 zero bytes as every block does; flag positions in it count from 0 in this part.
    var block: BlockStorage
    var tables: RunTables
    /// `Flag` × the flags written, in document order.
    var flags: BlockStorage

    var flagCount: Int { flags.count / MemoryLayout<Flag>.stride }

    func flag(_ index: Int) -> Flag {
        flags.load(at: index * MemoryLayout<Flag>.stride, as: Flag.self)
    }

    /// Unmaps every table.
    func release() {
        block.release()
        tables.release()
        flags.release()
    }
}

/// The strings and key lists of a `FlagRun`, flat: every string's UTF-8 bytes in `text`, one `ByteSpan` per string
/// in `entries`; result strings and key-list elements are entry indices, so that a string used in several places
/// becomes one `String` when the calling thread takes the part, as it is one when a single thread decodes it.
struct RunTables: ProgramTables {
    var text = BlockStorage(.pages, capacity: 1 << 16)
    /// `ByteSpan` × strings, into `text`.
    var entries = BlockStorage(.pages, capacity: 1 << 16)
    /// `Int32` entry × result strings.
    var strings = BlockStorage(.pages, capacity: 1 << 16)
    /// `Int32` entry × key-list elements, lists end to end.
    var listElements = BlockStorage(.pages, capacity: 1 << 16)
    /// `ElementSpan` × key lists, into `listElements` (in elements).
    var lists = BlockStorage(.pages, capacity: 1 << 16)
    /// The entry of each segment of the flag being written, once added (-1 before).
    private var segmentEntries: [Int32] = []

    var entryCount: Int { entries.count / MemoryLayout<ByteSpan>.stride }

    /// Adds a string's bytes; returns its entry.
    mutating func entry(_ string: String) -> Int32 {
        let start = Int32(text.count)
        string.withUTF8Bytes { text.append(UnsafeRawBufferPointer($0)) }
        entries.appendElement(ByteSpan(start: start, count: Int32(text.count) - start))
        return Int32(entryCount - 1)
    }

    private mutating func entry(ofSegment segment: Int, in draft: FlagDraft) -> Int32 {
        if segmentEntries[segment] < 0 { segmentEntries[segment] = entry(draft.segments[segment].key) }
        return segmentEntries[segment]
    }

    mutating func begin(_ draft: FlagDraft) {
        segmentEntries.removeAll(keepingCapacity: true)
        segmentEntries.append(contentsOf: repeatElement(-1, count: draft.segments.count))
    }

    mutating func add(string: String) -> Int32 {
        strings.append(entry(string))
        return Int32(strings.count / 4 - 1)
    }

    mutating func add(keyOf segment: Int, in draft: FlagDraft) -> Int32 {
        strings.append(entry(ofSegment: segment, in: draft))
        return Int32(strings.count / 4 - 1)
    }

    mutating func addKeyList(_ segments: UnsafeBufferPointer<Int>, of draft: FlagDraft) -> Int32 {
        lists.appendElement(ElementSpan(start: Int32(listElements.count / 4), count: Int32(segments.count)))
        for segment in segments { listElements.append(entry(ofSegment: segment, in: draft)) }
        return Int32(lists.count / MemoryLayout<ElementSpan>.stride - 1)
    }

    /// The string of `entry`, made by the calling thread.
    func string(_ entry: Int32) -> String {
        let span = entries.load(at: Int(entry) * MemoryLayout<ByteSpan>.stride, as: ByteSpan.self)
        return String(
            decoding: UnsafeRawBufferPointer(rebasing: text.bytes[Int(span.start)..<Int(span.start + span.count)]),
            as: UTF8.self
        )
    }

    func release() {
        text.release()
        entries.release()
        strings.release()
        listElements.release()
        lists.release()
    }
}

/// Writes the flags of a `FlagRun` on the other thread.
private struct FlagRunBuilder {
    var writer: BlockWriter<RunTables>
    var flags = BlockStorage(.pages, capacity: 1 << 16)

    init(documentSize: Int) {
        writer = BlockWriter(bytes: BlockStorage(.pages, capacity: documentSize / 3 + 64), tables: RunTables())
    }

    mutating func add(_ draft: FlagDraft) {
        let position = flags.count / MemoryLayout<FlagRun.Flag>.stride
        let offset = writer.write(draft, position: position)
        flags.appendElement(
            FlagRun.Flag(
                offset: Int32(offset),
                key: writer.tables.entry(draft.key),
                description: draft.description.map { writer.tables.entry($0) } ?? -1,
                variantID: draft.defaultVariant.map { writer.tables.entry($0.id) } ?? -1,
                isEnabled: draft.isEnabled,
                isBoolean: draft.type == .boolean
            )
        )
    }

    /// The tables written, which the caller now owns.
    var run: FlagRun { FlagRun(block: writer.bytes, tables: writer.tables, flags: flags) }
}

extension ProgramBuilder {
    /// Appends the flags of a part another thread wrote, as if they had been added here one by one after this
    /// builder's own: the part's block follows this one (every offset, string index, key-list index and flag
    /// position it holds is moved accordingly), its strings and key lists are made here, and a key this builder
    /// already has is replaced at its position. The result is the builder that adding the same flags here would
    /// have given, byte for byte.
    mutating func append(contentsOf run: FlagRun) {
        // The part's block begins with the 8 bytes no record starts at; every flag block is 4-aligned and ends
        // 4-aligned, so dropping them keeps the part's padding as writing here would have made it.
        let distance = writer.bytes.count - 8
        let stringBase = Int32(writer.tables.strings.count)
        let keyListBase = Int32(writer.tables.keyLists.count)
        writer.bytes.append(UnsafeRawBufferPointer(rebasing: run.block.bytes[8...]))
        adoptedParts += 1

        // One String per entry, shared by every place that refers to it.
        let tables = run.tables
        var made: [String] = []
        made.reserveCapacity(tables.entryCount)
        for entry in 0..<tables.entryCount { made.append(tables.string(Int32(entry))) }
        let strings = tables.strings.bytes.bindMemory(to: Int32.self)
        writer.tables.strings.reserveCapacity(writer.tables.strings.count + strings.count)
        for entry in strings { writer.tables.strings.append(made[Int(entry)]) }
        let elements = tables.listElements.bytes.bindMemory(to: Int32.self)
        let lists = tables.lists.bytes.bindMemory(to: ElementSpan.self)
        writer.tables.keyLists.reserveCapacity(writer.tables.keyLists.count + lists.count)
        for list in lists {
            var keys: [String] = []
            keys.reserveCapacity(Int(list.count))
            for element in elements[Int(list.start)..<Int(list.start + list.count)] { keys.append(made[Int(element)]) }
            writer.tables.keyLists.append(keys)
        }

        // Each of the part's positions becomes the position here: an existing key's, or the next new one.
        var positions: [Int32] = []
        positions.reserveCapacity(run.flagCount)
        for index in 0..<run.flagCount {
            let flag = run.flag(index)
            let offset = Int(flag.offset) + distance
            let record = run.block.load(at: Int(flag.offset), as: FlagRecord.self)
            func string(_ index: Int32) -> String? { index < 0 ? nil : made[Int(strings[Int(index)])] }
            let summary = FlagSummary(
                key: made[Int(flag.key)],
                isEnabled: flag.isEnabled,
                type: flag.isBoolean ? .boolean : .variant,
                description: flag.description < 0 ? nil : made[Int(flag.description)],
                defaultVariant: flag.variantID < 0
                    ? nil
                    : DefaultVariant(
                        id: made[Int(flag.variantID)],
                        key: string(record.defaultVariantKey) ?? "",
                        attachment: string(record.defaultAttachment)
                    )
            )
            if let existing = distinct.insert(summary.key, position: summaries.count) {
                offsets[existing] = offset
                summaries[existing] = summary
                positions.append(Int32(existing))
            } else {
                positions.append(Int32(summaries.count))
                offsets.append(offset)
                summaries.append(summary)
            }
        }
        guard let base = writer.bytes.base else { return }
        for index in 0..<run.flagCount {
            Self.move(
                flagAt: Int(run.flag(index).offset) + distance,
                in: base,
                by: Int32(distance),
                strings: stringBase,
                keyLists: keyListBase,
                positions: positions
            )
        }
    }

    /// Moves the references of the flag block at `offset` (its records' byte offsets, string indices and key-list
    /// indices, and its position), following the layout described at the top of Program.swift.
    private static func move(
        flagAt offset: Int,
        in base: UnsafeMutableRawPointer,
        by distance: Int32,
        strings stringBase: Int32,
        keyLists keyListBase: Int32,
        positions: [Int32]
    ) {
        var flag = base.loadUnaligned(fromByteOffset: offset, as: FlagRecord.self)
        flag.position = positions[Int(flag.position)]
        flag.defaultVariantKey = moved(flag.defaultVariantKey, stringBase)
        flag.defaultAttachment = moved(flag.defaultAttachment, stringBase)
        base.storeBytes(of: flag, toByteOffset: offset, as: FlagRecord.self)
        var mover = RecordMover(base: base, distance: distance, strings: stringBase, keyLists: keyListBase)
        Program.walk(flagAt: offset, in: UnsafeRawPointer(base), &mover)
    }
}

/// An index moved by `by`, or -1 (none) kept.
private func moved(_ index: Int32, _ by: Int32) -> Int32 { index < 0 ? index : index + by }

/// Moves the references of a part's records by the part's place in the builder: byte offsets by `distance`,
/// string and key-list indices by the counts the builder had.
private struct RecordMover: FlagBlockVisitor {
    let base: UnsafeMutableRawPointer
    let distance: Int32
    let strings: Int32
    let keyLists: Int32

    func visit(ruleAt item: Int, _ rule: RuleRecord) {
        var rule = rule
        rule.allKeys = moved(rule.allKeys, keyLists)
        rule.subsetKeys = moved(rule.subsetKeys, keyLists)
        base.storeBytes(of: rule, toByteOffset: item, as: RuleRecord.self)
        guard rule.kind == .rule else { return }
        let first = item + Int(rule.distributionOffset) + Int(rule.distributionCount) * 4
        for index in 0..<Int(rule.distributionCount) {
            let position = first + index * MemoryLayout<DistributionRecord>.stride
            var entry = base.loadUnaligned(fromByteOffset: position, as: DistributionRecord.self)
            entry.variantKey = moved(entry.variantKey, strings)
            entry.attachment = moved(entry.attachment, strings)
            base.storeBytes(of: entry, toByteOffset: position, as: DistributionRecord.self)
        }
    }

    func visit(segmentAt offset: Int, _ segment: SegmentRecord) {
        var segment = segment
        segment.key = moved(segment.key, strings)
        base.storeBytes(of: segment, toByteOffset: offset, as: SegmentRecord.self)
    }

    func visit(constraintAt offset: Int, _ constraint: ConstraintRecord) {
        var constraint = constraint
        constraint.move(by: distance, listsIn: base)
        base.storeBytes(of: constraint, toByteOffset: offset, as: ConstraintRecord.self)
    }
}

/// The flags of a document from a guessed element start to the end of the flags array, decoded on a thread of
/// its own.
///
/// `@unchecked Sendable`: `document` is only read (the caller keeps it alive until `join()` returns); `outcome`
/// is written by the decoding thread before it ends and read by the calling thread only after `join()`, whose
/// `pthread_join` orders the two; `thread` and `joined` are touched by the calling thread only.
final class FlagRunDecoding: @unchecked Sendable {
    /// What the calling thread should do at one of its element starts.
    enum Step {
        /// Decode this flag itself (the other thread's candidate lies further on).
        case decode
        /// Take the other thread's flags if it decoded them: this element starts at its candidate.
        case adopt
        /// Decode on alone: the candidate was passed (it was no element start) or none was kept.
        case alone
    }

    private static let searching = -2
    private static let noCandidate = -1
    /// Candidates tried before the decoding thread gives up.
    private static let candidateLimit = 64
    /// The most bytes a candidate's first flag may take: the trial of a candidate stops there, so that the search
    /// (which the calling thread waits for) reads at most `candidateLimit` times this much, whatever the document.
    private static let trialWindow = 1 << 16

    private let document: UnsafeBufferPointer<UInt8>
    /// Where the search for a candidate begins; the calling thread checks its element starts from here on.
    let searchStart: Int
    /// The kept candidate's index, `searching` or `noCandidate`.
    private let candidate = Atomic<Int>(FlagRunDecoding.searching)
    private let stopped = Atomic<Bool>(false)
    /// The flags from the kept candidate to the end of the array and the index after the closing `]`, or nil when
    /// no candidate was kept, the decoding was stopped, or the rest of the array is not a valid run of flags.
    private var outcome: (run: FlagRun, end: Int)?
    private var thread: pthread_t?
    private var joined = false

    /// Starts decoding the flags of `document` from the first flag found at or after `searchStart`; nil when no
    /// thread could be started.
    init?(document: UnsafeBufferPointer<UInt8>, searchStart: Int) {
        self.document = document
        self.searchStart = searchStart
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Glibc)
        var handle = pthread_t()
        let status = pthread_create(
            &handle,
            nil,
            { context in
                Unmanaged<FlagRunDecoding>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            },
            context
        )
        #else
        var handle: pthread_t?
        let status = pthread_create(
            &handle,
            nil,
            { context in
                Unmanaged<FlagRunDecoding>.fromOpaque(context).takeRetainedValue().run()
                return nil
            },
            context
        )
        #endif
        guard status == 0 else {
            Unmanaged<FlagRunDecoding>.fromOpaque(context).release()
            return nil
        }
        thread = handle
    }

    deinit {
        outcome?.run.release()
    }

    /// Whether splitting a document of `count` bytes can pay: it is large and there is a second processor.
    static func pays(forDocumentOf count: Int, threshold: Int) -> Bool {
        count >= threshold && sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1
    }

    /// Compares an element start of the calling thread (at or after `searchStart`) with the kept candidate,
    /// waiting for the other thread to keep one or give up: its search is short, and by the time the calling
    /// thread has decoded up to `searchStart` it has long ended, so the wait only matters on a starved machine,
    /// and it makes the outcome depend on the document alone.
    func step(atElement index: Int) -> Step {
        var kept = candidate.load(ordering: .acquiring)
        while kept == Self.searching {
            sched_yield()
            kept = candidate.load(ordering: .acquiring)
        }
        if kept == Self.noCandidate || kept < index { return .alone }
        return kept == index ? .adopt : .decode
    }

    /// Asks the decoding thread to stop at its next flag.
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// Waits for the decoding thread to end; returns the flags it decoded and the index after the array, or nil.
    /// The run stays owned by this object (unmapped when it goes).
    func join() -> (run: FlagRun, end: Int)? {
        if !joined, let thread {
            pthread_join(thread, nil)
            joined = true
        }
        return outcome
    }

    // MARK: The decoding thread

    private func run() {
        var draft = FlagDraft()
        var position = searchStart
        for _ in 0..<Self.candidateLimit {
            guard !stopped.load(ordering: .relaxed), let start = nextCandidate(from: position) else { break }
            position = start + 1
            // The trial reads the same bytes up to the window's end (the same indices), and fails past it.
            var trial = JSONCursor(
                UnsafeBufferPointer(rebasing: document[..<min(document.count, start + Self.trialWindow)])
            )
            trial.tracksPath = false
            trial.index = start
            draft.reset()
            do throws(DocumentError) {
                try trial.decodeFlag(&draft)
            } catch {
                continue
            }
            let next = trial.peekSignificant()
            guard next == UInt8(ascii: ",") || next == UInt8(ascii: "]") else { continue }
            var cursor = JSONCursor(document)
            cursor.tracksPath = false
            cursor.index = trial.index
            var builder = FlagRunBuilder(documentSize: document.count - start)
            builder.add(draft)
            candidate.store(start, ordering: .releasing)
            if let end = decodeRest(&cursor, &builder, &draft) {
                outcome = (builder.run, end)
            } else {
                builder.run.release()
            }
            return
        }
        candidate.store(Self.noCandidate, ordering: .releasing)
    }

    /// The index of the next `{` at or after `position` that follows a `,` and whitespace, or nil.
    private func nextCandidate(from position: Int) -> Int? {
        var index = position
        while index < document.count {
            if document[index] == UInt8(ascii: ",") {
                index += 1
                while index < document.count {
                    let byte = document[index]
                    guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { break }
                    index += 1
                }
                if index < document.count && document[index] == UInt8(ascii: "{") { return index }
            } else {
                index += 1
            }
        }
        return nil
    }

    /// Decodes the flags after the first one, as `JSONCursor.decodeFlags` does, to the array's end; returns the
    /// index after the closing `]`, or nil when stopped or the rest is no valid run of flags.
    private func decodeRest(
        _ cursor: inout JSONCursor,
        _ builder: inout FlagRunBuilder,
        _ draft: inout FlagDraft
    ) -> Int? {
        do throws(DocumentError) {
            while true {
                switch cursor.peekSignificant() {
                case UInt8(ascii: ","):
                    cursor.index += 1
                    if cursor.peekSignificant() == UInt8(ascii: "]") { return nil }
                case UInt8(ascii: "]"):
                    return cursor.index + 1
                default:
                    return nil
                }
                if stopped.load(ordering: .relaxed) { return nil }
                draft.reset()
                try cursor.decodeFlag(&draft)
                builder.add(draft)
            }
        } catch {
            return nil
        }
    }
}
