#if canImport(Foundation)
import struct Foundation.Data
#endif

/// An immutable, indexed snapshot of one namespace's flags, decoded from a snapshot document.
///
/// Decoding accepts exactly the documents the official engine accepts (v1 and v2 wire shapes) and indexes them
/// for evaluation: flags by the exact bytes of their key (a later flag with the same key replaces an earlier
/// one), rules with their bucket boundaries computed, constraint values parsed, duplicate segments collapsed.
public final class Snapshot: Sendable {
    /// The document's `namespace.key`.
    public let namespaceKey: String
    /// The distinct flags, in the order their keys first appear in the document.
    let flags: [CompiledFlag]
    private let table: FlagTable
    /// The bytes and lists the compiled constraints refer to.
    let arena: ConstraintArena

    /// Decodes and indexes a snapshot document (UTF-8 JSON bytes).
    ///
    /// - Throws: `DocumentError` naming where and why the document is invalid.
    public init(document: some Collection<UInt8>) throws(DocumentError) {
        let decoded: DecodedDocument
        if let result = try Self.decode(contiguous: document) {
            decoded = result
        } else {
            let copy = Array(document)
            decoded = try Self.decode(contiguous: copy)!
        }
        namespaceKey = decoded.namespaceKey
        arena = decoded.arena
        var flags: [CompiledFlag] = []
        flags.reserveCapacity(decoded.flags.count)
        var builder = FlagTable.Builder(capacity: decoded.flags.count)
        for flag in decoded.flags {
            if let position = builder.insert(flag.key, position: flags.count) {
                flags[position] = flag
            } else {
                flags.append(flag)
            }
        }
        self.flags = flags
        table = builder.table
    }

    #if canImport(Foundation)
    /// Decodes and indexes a snapshot document held in `Data`.
    public convenience init(data: Data) throws(DocumentError) {
        try self.init(document: data)
    }
    #endif

    private static func decode(
        contiguous document: some Collection<UInt8>
    ) throws(DocumentError)
        -> DecodedDocument?
    {
        var outcome: Result<DecodedDocument, DocumentError>?
        _ = document.withContiguousStorageIfAvailable { bytes in
            var cursor = JSONCursor(bytes)
            do throws(DocumentError) {
                outcome = .success(try cursor.decodeDocument())
            } catch {
                outcome = .failure(error)
            }
        }
        return try outcome?.get()
    }

    /// The number of distinct flags.
    public var flagCount: Int { flags.count }

    /// A summary of the flag whose key has exactly the bytes of `key`, or nil when there is none. Unlike
    /// evaluation, this ignores the namespace.
    public func flagSummary(forKey key: String) -> FlagSummary? {
        flag(forKey: key)?.summary
    }

    /// The flag whose key has exactly the bytes of `key`.
    @inline(__always)
    func flag(forKey key: String) -> CompiledFlag? {
        key.withUTF8Bytes { bytes in
            guard let position = table.position(of: bytes, in: flags) else { return nil }
            return flags[position]
        }
    }
}

/// An open-addressing hash table from a flag key's bytes to its position in the flag array.
struct FlagTable: Sendable {
    private var slots: [Slot]
    private var mask: Int

    private struct Slot: Sendable {
        var hash: UInt64
        /// Position + 1; 0 marks an empty slot.
        var entry: Int32
    }

    @inline(__always)
    func position(of key: UnsafeBufferPointer<UInt8>, in flags: [CompiledFlag]) -> Int? {
        let hash = byteHash(key)
        var slot = Int(truncatingIfNeeded: hash) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let candidate = slots[slot]
                if candidate.entry == 0 { return nil }
                if candidate.hash == hash {
                    let position = Int(candidate.entry) - 1
                    if flags[position].key.bytesEqual(key) { return position }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Builds a table while flags are appended; reports duplicates so the caller can replace.
    struct Builder {
        private(set) var table: FlagTable
        private var keys: [[UInt8]] = []

        init(capacity: Int) {
            var size = 8
            while size < capacity * 2 { size *= 2 }
            table = FlagTable(slots: Array(repeating: Slot(hash: 0, entry: 0), count: size), mask: size - 1)
        }

        /// Inserts `key` at `position`, or returns the position of an equal key already present.
        mutating func insert(_ key: String, position: Int) -> Int? {
            let bytes = Array(key.utf8)
            let hash = bytes.withUnsafeBufferPointer { byteHash($0) }
            var slot = Int(truncatingIfNeeded: hash) & table.mask
            while true {
                let candidate = table.slots[slot]
                if candidate.entry == 0 {
                    table.slots[slot] = Slot(hash: hash, entry: Int32(position + 1))
                    keys.append(bytes)
                    return nil
                }
                if candidate.hash == hash && keys[Int(candidate.entry) - 1] == bytes {
                    return Int(candidate.entry) - 1
                }
                slot = (slot + 1) & table.mask
            }
        }
    }
}
