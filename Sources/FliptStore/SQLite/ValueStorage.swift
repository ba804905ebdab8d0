import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Storage for a large value read from the file (``Connection/value(in:column:row:)``), freed with the `Data` that
/// holds it.
///
/// Filling fresh memory costs its page faults: about 0.4 ms per MB here, as much again as the read itself. On
/// Linux a value of ``hugePageThreshold`` bytes or more goes into an anonymous mapping whose whole 2 MiB blocks are
/// marked for transparent huge pages (`madvise(MADV_HUGEPAGE)`), one fault per block instead of one per 4 KiB page;
/// the tail of the value stays on small pages, so it uses no more memory than `malloc` would. Where the system
/// turns huge pages off the call does nothing and the mapping behaves as `malloc`'s own would. Measured here
/// (`sqlite3_blob_read` of a 9.9 MB document into the storage, C, chrt): 7.7-9.3 ms with `malloc`, 4.0-4.6 ms so.
/// Smaller values are `malloc`'d.
enum ValueStorage {
    /// From this size on (4 MiB), Linux maps the storage with huge pages where it can.
    static let hugePageThreshold = 4 << 20
    private static let hugePageSize = 2 << 20

    /// `count` bytes of storage and the deallocator that frees them; nil when the memory cannot be had.
    static func allocate(_ count: Int) -> (UnsafeMutableRawPointer, Data.Deallocator)? {
        #if os(Linux)
        if count >= hugePageThreshold, let mapped = mapped(count) { return mapped }
        #endif
        guard let pointer = malloc(count) else { return nil }
        return (pointer, .free)
    }

    #if os(Linux)
    /// An anonymous mapping with room to start the storage on a huge page boundary (the slack before it is never
    /// touched, so it takes no memory).
    private static func mapped(_ count: Int) -> (UnsafeMutableRawPointer, Data.Deallocator)? {
        let length = count + hugePageSize
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != UnsafeMutableRawPointer(bitPattern: -1)
        else { return nil }
        let aligned = (UInt(bitPattern: base) + UInt(hugePageSize - 1)) & ~UInt(hugePageSize - 1)
        guard let start = UnsafeMutableRawPointer(bitPattern: aligned) else { return nil }
        // Advice only: refused, the storage works on small pages.
        _ = madvise(start, count / hugePageSize * hugePageSize, MADV_HUGEPAGE)
        let address = UInt(bitPattern: base)
        return (start, .custom { _, _ in _ = munmap(UnsafeMutableRawPointer(bitPattern: address), length) })
    }
    #endif
}
