/// CRC-32 (IEEE 802.3 / zlib: reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF), the hash
/// the official engine buckets entities with.
///
/// Eight bytes a step ("slice-by-8": eight table lookups that do not wait for each other), then four, then one.
/// Measured on this project's x86-64 VM with the result of each checksum feeding the next (as an evaluation waits
/// for its bucket), ns per checksum, byte at a time / slice-by-8: 8 bytes 18.4 / 9.6, 20 bytes 47.7 / 16.5,
/// 36 bytes (a UUID) 85.5 / 23.2. zlib's `crc32()`, the usual library for it, takes the byte-at-a-time path below
/// its braided threshold: 11.5, 35.1, 67.7 ns for 12, 24, 36 bytes (C, `gcc -O2`, side by side in one run).
/// Through `FliptClient` (`chrt -f 50 flipt-bench engine --shapes --shape entity-uuid --shape rollouts-only`, old
/// and new builds alternated, three runs): UUID entity IDs 175-177 -> 141-146 ns per evaluation, rollouts only
/// 126-129 -> 112-116 ns.
struct CRC32: Sendable {
    /// The lookup tables, eight of 256 entries: table 0 advances the state by one byte, table k by one byte followed
    /// by k zero bytes. Allocated once for the process and never freed. Hot paths pass the pointer they keep
    /// (``Evaluator`` does), so that they do not go through the lazy global's initialisation check every time.
    static let tables = Tables {
        let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 {
                value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
            }
            tables[index] = value
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return UnsafePointer(tables)
    }

    /// Where the tables are: immutable once made and never freed, so shared by every thread.
    struct Tables: @unchecked Sendable {
        /// The first entry of the tables.
        let pointer: UnsafePointer<UInt32>

        /// The tables `make` fills.
        fileprivate init(_ make: () -> UnsafePointer<UInt32>) { pointer = make() }
    }

    /// The running state (the checksum before its final XOR).
    private(set) var state: UInt32 = 0xFFFF_FFFF

    /// A checksum over no bytes yet.
    init() {}

    /// A checksum resumed from a saved `state`.
    init(state: UInt32) { self.state = state }

    /// Feeds `bytes` into the checksum; `tables` must be ``tables``' pointer.
    @inline(__always)
    mutating func update(_ bytes: UnsafeBufferPointer<UInt8>, tables: UnsafePointer<UInt32> = CRC32.tables.pointer) {
        guard var position = bytes.baseAddress.map(UnsafeRawPointer.init) else { return }
        var remaining = bytes.count
        var crc = state
        @inline(__always) func entry(_ slice: Int, _ byte: UInt32) -> UInt32 {
            tables[slice &* 256 &+ Int(byte & 0xFF)]
        }
        while remaining >= 8 {
            let low = position.loadUnaligned(as: UInt32.self).littleEndian ^ crc
            let high = position.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            crc =
                entry(7, low) ^ entry(6, low >> 8) ^ entry(5, low >> 16) ^ entry(4, low >> 24)
                ^ entry(3, high) ^ entry(2, high >> 8) ^ entry(1, high >> 16) ^ entry(0, high >> 24)
            position += 8
            remaining &-= 8
        }
        if remaining >= 4 {
            let word = position.loadUnaligned(as: UInt32.self).littleEndian ^ crc
            crc = entry(3, word) ^ entry(2, word >> 8) ^ entry(1, word >> 16) ^ entry(0, word >> 24)
            position += 4
            remaining &-= 4
        }
        while remaining > 0 {
            crc = entry(0, crc ^ UInt32(position.load(as: UInt8.self))) ^ (crc >> 8)
            position += 1
            remaining &-= 1
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
