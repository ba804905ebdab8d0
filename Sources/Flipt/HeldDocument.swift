import CFliptHeap
import FliptGzip
import FliptStore
import Foundation

/// The document of the snapshot in use, for the few things that need its bytes after it was decoded:
/// ``FliptClient/getSnapshot()``, the rollback checks, and the flag changes of the next replacement.
///
/// None of them is on the evaluation path, so a document of ``compactionThreshold`` bytes or more is kept
/// gzip-compressed once ``compact()`` has run (zlib level 1: 5-11 % of the size of the 10,000-flag documents of
/// `flipt-bench load`, 4-11 ms per MB of CPU on a busy 2-core VM). The client compacts in a background task after
/// it serves a snapshot (``compactInBackground()``), so neither boot nor a replacement waits for it; until then the
/// raw bytes are held.
final class HeldDocument: Sendable {
    /// Documents smaller than this stay raw: compressing them saves little, and a zlib stream costs ~270 KB.
    static let compactionThreshold = 64 * 1024

    /// The document's size in bytes.
    let count: Int
    private let state: Locked<State>
    /// Held for the whole of a compaction, so that two (the background task's and a caller's) never run at once
    /// and a caller of ``compact()`` returns only when the document is compact and the heap trimmed.
    private let compaction = Locked(())

    private enum Form {
        case bytes([UInt8])
        case data(Data)
        case compressed([UInt8])
    }

    private struct State {
        var form: Form
        /// SHA-256 of the document, lowercase hex, once computed.
        var contentHash: String?
    }

    /// Holds `bytes` as they are.
    init(_ bytes: [UInt8]) {
        count = bytes.count
        state = Locked(State(form: .bytes(bytes), contentHash: nil))
    }

    /// Holds a document read from the cache, without copying it. (Its hash is computed from its bytes when
    /// asked, not taken from the cache's row: a file edited in place may no longer match it.)
    init(_ data: Data) {
        count = data.count
        state = Locked(State(form: .data(data), contentHash: nil))
    }

    /// The document's bytes (decompressed when compacted).
    func bytes() -> [UInt8] {
        let form = state.withLock { $0.form }
        switch form {
        case .bytes(let bytes): return bytes
        case .data(let data): return [UInt8](data)
        case .compressed(let compressed):
            do {
                return try Gzip.decompress(compressed, maximumSize: count)
            } catch {
                // The bytes were compressed here and have not left memory since.
                preconditionFailure("a held snapshot document no longer decompresses: \(error)")
            }
        }
    }

    /// SHA-256 of the document, lowercase hex (computed on the first call, then kept).
    func contentHash() -> String {
        if let known = state.withLock({ $0.contentHash }) { return known }
        let hash = SHA256.hex(bytes())
        state.withLock { $0.contentHash = hash }
        return hash
    }

    /// Whether the document is held compressed.
    var isCompact: Bool {
        state.withLock { state in
            if case .compressed = state.form { return true }
            return false
        }
    }

    /// Replaces the raw bytes with their gzip compression, unless the document is below ``compactionThreshold``
    /// or already compact; then returns the freed pages to the system where the allocator keeps them
    /// (`malloc_trim`, glibc).
    func compact() {
        guard count >= Self.compactionThreshold else { return }
        compaction.withLock { _ in
            guard let compressed = compressedForm() else { return }
            state.withLock { $0.form = .compressed(compressed) }
            // The raw copy (and the decode's temporaries before it) were freed into the heap's free lists; a large
            // block in the middle of the heap goes back to the system only with a trim.
            flipt_heap_trim()
        }
    }

    /// The gzip compression of the raw bytes, in storage of exactly its size; nil when already compact.
    private func compressedForm() -> [UInt8]? {
        let compressed: [UInt8]
        switch state.withLock({ $0.form }) {
        case .compressed: return nil
        case .bytes(let bytes): compressed = Gzip.compress(bytes, level: 1)
        case .data(let data): compressed = Gzip.compress(data, level: 1)
        }
        // The encoder's output grew by doubling; the held copy keeps only what it needs.
        return [UInt8](unsafeUninitializedCapacity: compressed.count) { buffer, count in
            _ = buffer.initialize(fromContentsOf: compressed)
            count = compressed.count
        }
    }

    /// Compacts in a low-priority task; does nothing for a document below ``compactionThreshold``. The task does
    /// not keep the document alive: one replaced before the task runs is not compressed.
    func compactInBackground() {
        guard count >= Self.compactionThreshold else { return }
        Task.detached(priority: .background) { [weak self] in
            self?.compact()
        }
    }
}

extension FliptClient {
    /// Whether the snapshot in use holds its document compressed (for tests and `flipt-bench load`).
    package var holdsCompactDocument: Bool {
        core.state.withLock { $0.served?.document.isCompact ?? false }
    }

    /// Compacts the held document now, without waiting for the background task (`flipt-bench load` measures the
    /// memory of the settled client).
    package func compactHeldDocument() {
        core.state.withLock { $0.served?.document }?.compact()
    }
}
