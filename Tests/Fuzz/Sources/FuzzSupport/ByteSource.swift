/// Reads fuzzer-chosen parameters from the front of an input, leaving the rest as the payload.
///
/// Every read succeeds: past the end, reads return zero, so any input is usable and shrinking it stays meaningful.
public struct ByteSource {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    /// Starts reading at the first byte of `bytes`.
    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// The bytes not read yet.
    public var rest: UnsafeBufferPointer<UInt8> {
        guard position < bytes.count else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(rebasing: bytes[position...])
    }
}

/// A byte collection without contiguous storage, so code under test takes its copying path.
public struct ScatteredBytes: Collection {
    private let base: UnsafeBufferPointer<UInt8>

    /// Wraps `base`; the wrapper never offers `withContiguousStorageIfAvailable`.
    public init(_ base: UnsafeBufferPointer<UInt8>) {
        self.base = base
    }

    /// The position of the first byte.
    public var startIndex: Int { 0 }
    /// The position past the last byte.
    public var endIndex: Int { base.count }
    /// The byte at `position`.
    public subscript(position: Int) -> UInt8 { base[position] }
    /// The position after `position`.
    public func index(after position: Int) -> Int { position + 1 }
}
