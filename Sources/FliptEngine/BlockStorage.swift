// Growable runs of plain bytes for the program's writers.
//
// The calling thread's builder grows its block with realloc. A thread that decodes part of a document for it
// (FlagRunDecoding) writes into pages mapped straight from the system instead: glibc gives that thread a malloc
// arena of its own, and what it leaves there stays resident after the thread ends (malloc_trim returns the free
// bins of such an arena but never its top). Pages mapped with mmap leave nothing behind once unmapped.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable run of bytes holding plain records, in memory from malloc or from mmap.
///
/// A plain struct over a pointer: its owner calls `release()` once, when no copy of it is used any more.
struct BlockStorage {
    /// Where the memory comes from.
    enum Source {
        /// malloc and realloc.
        case heap
        /// Anonymous pages mapped with mmap (never malloc); growing maps a larger run and copies.
        case pages
    }

    let source: Source
    private(set) var base: UnsafeMutableRawPointer?
    /// Bytes written.
    private(set) var count = 0
    private(set) var capacity = 0

    /// An empty run with room for `capacity` bytes (at least one page when mapped).
    init(_ source: Source, capacity: Int) {
        self.source = source
        grow(toAtLeast: max(capacity, 64))
    }

    /// Frees the memory; the storage must not be used afterwards.
    func release() {
        guard let base else { return }
        switch source {
        case .heap: free(base)
        case .pages: munmap(base, capacity)
        }
    }

    /// The bytes written.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(toAtLeast: count + extra) }
    }

    @inline(never)
    private mutating func grow(toAtLeast needed: Int) {
        var size = max(capacity * 2, needed)
        switch source {
        case .heap:
            guard let moved = realloc(base, size) else { fatalError("out of memory for a \(size)-byte block") }
            base = moved
        case .pages:
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            size = (size + page - 1) / page * page
            let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let mapped, mapped != MAP_FAILED else { fatalError("out of memory for a \(size)-byte block") }
            if let base {
                mapped.copyMemory(from: base, byteCount: count)
                munmap(base, capacity)
            }
            base = mapped
        }
        capacity = size
    }

    /// Appends `bytes`.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends `count` zero bytes.
    @inline(__always)
    mutating func appendZeros(_ zeros: Int) {
        guard zeros > 0 else { return }
        reserve(zeros)
        (base! + count).initializeMemory(as: UInt8.self, repeating: 0, count: zeros)
        count += zeros
    }

    /// Appends the bytes of a plain value (its size, not its stride).
    @inline(__always)
    mutating func append<Value>(_ value: Value) {
        reserve(MemoryLayout<Value>.size)
        var value = value
        withUnsafeBytes(of: &value) { (base! + count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        count += MemoryLayout<Value>.size
    }

    /// Appends a plain value as an array element: its bytes, zero-filled to its stride.
    @inline(__always)
    mutating func appendElement<Value>(_ value: Value) {
        append(value)
        appendZeros(MemoryLayout<Value>.stride - MemoryLayout<Value>.size)
    }

    /// The plain value at byte `offset`.
    @inline(__always)
    func load<Value>(at offset: Int, as type: Value.Type) -> Value {
        base!.loadUnaligned(fromByteOffset: offset, as: type)
    }

    /// Overwrites the plain value at byte `offset`.
    @inline(__always)
    func store<Value>(_ value: Value, at offset: Int) {
        base!.storeBytes(of: value, toByteOffset: offset, as: Value.self)
    }
}
