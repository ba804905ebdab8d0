#if canImport(Foundation)
import struct Foundation.Data
#endif

/// An immutable, indexed snapshot of one namespace's flags, decoded from a snapshot document.
///
/// Decoding accepts exactly the documents the official engine accepts (v1 and v2 wire shapes) and indexes them
/// for evaluation: flags by the exact bytes of their key (a later flag with the same key replaces an earlier
/// one), rules with their bucket boundaries computed, constraint values parsed, duplicate segments collapsed.
package final class Snapshot: Sendable {
    /// The document's `namespace.key`.
    package let namespaceKey: String
    /// The distinct flags' summaries, in the order their keys first appear in the document.
    let summaries: [FlagSummary]
    /// The flags lowered for evaluation, with the flag-key table.
    let program: Program
    /// Whether part of the document's flags were decoded on another thread (`FlagRunDecoding`).
    package let decodedOnTwoThreads: Bool

    /// A snapshot with no flags, of the namespace with the empty key: a placeholder where a snapshot is required.
    package static let empty = Snapshot()

    private init() {
        namespaceKey = ""
        summaries = []
        let builder = ProgramBuilder()
        program = Program(builder)
        decodedOnTwoThreads = false
        builder.release()
    }

    /// Decodes and indexes a snapshot document (UTF-8 JSON bytes).
    ///
    /// - Throws: `DocumentError` naming where and why the document is invalid.
    package convenience init(document: some Collection<UInt8>) throws(DocumentError) {
        try self.init(document: document, splitAbove: Self.splitThreshold)
    }

    /// Documents of at least this many bytes (256 KiB) are decoded on two threads when there are two processors: a
    /// thread costs tens of microseconds, a quarter of a megabyte about 2 ms to decode.
    package static let splitThreshold = 1 << 18

    /// Decodes and indexes a snapshot document, on two threads when it has `splitAbove` bytes or more, the other
    /// thread looking for a flag from byte `searchStart` on (by default the middle). Tests split small documents
    /// at chosen places with it.
    package init(
        document: some Collection<UInt8>,
        splitAbove threshold: Int,
        searchStart: Int? = nil
    ) throws(DocumentError) {
        var builder = ProgramBuilder(documentSize: document.count)
        defer { builder.release() }
        let namespaceKey: String
        let split = (threshold, searchStart ?? document.count / 2)
        if let result = try Self.decode(contiguous: document, into: &builder, split: split) {
            namespaceKey = result
        } else {
            let copy = Array(document)
            namespaceKey = try Self.decode(contiguous: copy, into: &builder, split: split)!
        }
        self.namespaceKey = namespaceKey
        summaries = compacted(builder.summaries)
        program = Program(builder)
        decodedOnTwoThreads = builder.adoptedParts > 0
    }

    #if canImport(Foundation)
    /// Decodes and indexes a snapshot document held in `Data`.
    package convenience init(data: Data) throws(DocumentError) {
        try self.init(document: data)
    }
    #endif

    private static func decode(
        contiguous document: some Collection<UInt8>,
        into builder: inout ProgramBuilder,
        split: (threshold: Int, searchStart: Int)
    ) throws(DocumentError) -> String? {
        var outcome: Result<String, DocumentError>?
        _ = document.withContiguousStorageIfAvailable { bytes in
            var cursor = JSONCursor(bytes)
            cursor.tracksPath = false
            do throws(DocumentError) {
                if FlagRunDecoding.pays(forDocumentOf: bytes.count, threshold: split.threshold),
                    let other = FlagRunDecoding(document: bytes, searchStart: split.searchStart)
                {
                    // The other thread reads `bytes`: it must have ended before they can go.
                    defer {
                        other.stop()
                        _ = other.join()
                    }
                    outcome = .success(try cursor.decodeDocument(into: &builder, split: other))
                } else {
                    outcome = .success(try cursor.decodeDocument(into: &builder))
                }
            } catch {
                // Decode again, recording the path, so that the error names where the problem is.
                var again = JSONCursor(bytes)
                var discarded = ProgramBuilder()
                defer { discarded.release() }
                do throws(DocumentError) {
                    _ = try again.decodeDocument(into: &discarded)
                    outcome = .failure(error)
                } catch {
                    outcome = .failure(error)
                }
            }
        }
        return try outcome?.get()
    }

    /// Whether the two snapshots are the same to the byte: namespace, summaries, program block, result strings
    /// and segment-key lists (how a document was decoded must not show in its snapshot).
    package func isIdentical(to other: Snapshot) -> Bool {
        func utf8(_ strings: [String]) -> [[UInt8]] { strings.map { Array($0.utf8) } }
        guard namespaceKey.utf8.elementsEqual(other.namespaceKey.utf8), summaries == other.summaries,
            utf8(summaries.map(\.key)) == utf8(other.summaries.map(\.key)),
            program.byteCount == other.program.byteCount,
            UnsafeRawBufferPointer(start: program.base, count: program.byteCount)
                .elementsEqual(UnsafeRawBufferPointer(start: other.program.base, count: other.program.byteCount))
        else { return false }
        return utf8(program.strings) == utf8(other.program.strings)
            && program.keyLists.map(utf8) == other.program.keyLists.map(utf8)
    }

    /// The number of distinct flags.
    package var flagCount: Int { summaries.count }

    /// A summary of the flag whose key has exactly the bytes of `key`, or nil when there is none. Unlike
    /// evaluation, this ignores the namespace.
    package func flagSummary(forKey key: String) -> FlagSummary? {
        guard let offset = key.withUTF8Bytes({ program.offset(ofKey: $0) }) else { return nil }
        return summaries[Int(program.flag(at: offset).position)]
    }
}

/// Finds repeated flag keys while a document's flags are collected (an open-addressing table of positions that
/// grows as keys are added).
struct DistinctKeys {
    private var slots: [Slot]
    private var mask: Int
    private var keys: [String] = []

    private struct Slot {
        var hash: UInt64
        /// Position + 1; 0 marks an empty slot.
        var entry: Int32
    }

    init(capacity: Int) {
        var size = 8
        while size < capacity * 2 { size *= 2 }
        slots = Array(repeating: Slot(hash: 0, entry: 0), count: size)
        mask = size - 1
        keys.reserveCapacity(capacity)
    }

    /// Inserts `key` at `position`, or returns the position of a key with the same bytes already present.
    mutating func insert(_ key: String, position: Int) -> Int? {
        let hash = key.withUTF8Bytes { byteHash($0) }
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let candidate = slots[slot]
            if candidate.entry == 0 {
                slots[slot] = Slot(hash: hash, entry: Int32(position + 1))
                keys.append(key)
                if keys.count * 2 > slots.count { grow() }
                return nil
            }
            if candidate.hash == hash && keys[Int(candidate.entry) - 1].bytesEqual(key) {
                return Int(candidate.entry) - 1
            }
            slot = (slot + 1) & mask
        }
    }

    /// Doubles the table, keeping it at most half full.
    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(hash: 0, entry: 0), count: old.count * 2)
        mask = slots.count - 1
        for entry in old where entry.entry != 0 {
            var slot = Int(truncatingIfNeeded: entry.hash) & mask
            while slots[slot].entry != 0 { slot = (slot + 1) & mask }
            slots[slot] = entry
        }
    }
}
