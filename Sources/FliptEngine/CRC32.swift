/// CRC-32 (IEEE 802.3 / zlib: reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF), the hash
/// the official engine buckets entities with.
struct CRC32: Sendable {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
        }
        return value
    }

    /// The running state (the checksum before its final XOR).
    private(set) var state: UInt32 = 0xFFFF_FFFF

    /// A checksum over no bytes yet.
    init() {}

    /// A checksum resumed from a saved `state`.
    init(state: UInt32) { self.state = state }

    /// Feeds `bytes` into the checksum.
    @inline(__always)
    mutating func update(_ bytes: UnsafeBufferPointer<UInt8>) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        state = crc
    }

    /// Feeds the UTF-8 bytes of `text` into the checksum.
    @inline(__always)
    mutating func update(_ text: String) {
        text.withUTF8Bytes { update($0) }
    }

    /// The checksum of everything fed so far.
    var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// The checksum of `first` followed directly by `second` (no separator), as the engine hashes keys.
    static func checksum(_ first: String, _ second: String) -> UInt32 {
        var crc = CRC32()
        crc.update(first)
        crc.update(second)
        return crc.value
    }
}
