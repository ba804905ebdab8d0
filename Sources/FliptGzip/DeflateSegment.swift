import CFliptZlib

/// The CRC-32 and length of uncompressed bytes: what a gzip member's trailer holds.
///
/// Checksums of consecutive pieces combine without the bytes (``append(_:)``), so a member assembled from
/// pieces compressed separately, at different times, gets its trailer without reading anything twice.
package struct GzipChecksum: Sendable, Hashable {
    /// The CRC-32 (ISO 3309, as gzip uses) of the bytes.
    package private(set) var crc32: UInt32
    /// How many bytes.
    package private(set) var length: UInt64

    /// The checksum of no bytes.
    package init() {
        crc32 = 0
        length = 0
    }

    /// The checksum of `bytes`.
    package init(of bytes: some Collection<UInt8>) {
        let value =
            bytes.withContiguousStorageIfAvailable { Self.crc(of: $0) }
            ?? Array(bytes).withUnsafeBufferPointer {
                Self.crc(of: $0)
            }
        crc32 = value
        length = UInt64(bytes.count)
    }

    private static func crc(of buffer: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc = CFliptZlib.crc32(0, nil, 0)
        var start = buffer.baseAddress
        var left = buffer.count
        // zlib takes at most 4 GiB per call.
        while left > 0, let pointer = start {
            let piece = min(left, 1 << 30)
            crc = CFliptZlib.crc32(crc, pointer, UInt32(piece))
            start = pointer + piece
            left -= piece
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// The checksum of these bytes followed by the bytes `next` was computed from.
    package mutating func append(_ next: GzipChecksum) {
        guard next.length > 0 else { return }
        crc32 = UInt32(
            truncatingIfNeeded: crc32_combine(UInt(crc32), UInt(next.crc32), .init(truncatingIfNeeded: next.length))
        )
        length &+= next.length
    }
}

/// Bytes compressed on their own as raw deflate data that starts and ends on a byte boundary, refers to nothing
/// before it and does not end the deflate stream (a zlib full flush): segments can be sent one after another in
/// any order, inside one gzip member, and each decodes as soon as its last byte arrives.
///
/// This lets one compressed copy serve many responses: a server compresses a stream message once and sends the
/// same bytes on every connection, each connection keeping only a ``GzipChecksum`` (no zlib state) to write the
/// member's ``Gzip/header`` first and ``Gzip/ending(_:)`` last.
package struct DeflateSegment: Sendable, Hashable {
    /// The raw deflate data (non-final blocks, ending with an empty stored block).
    package let bytes: [UInt8]
    /// The checksum of the uncompressed bytes.
    package let checksum: GzipChecksum

    /// Compresses `input` into a segment.
    ///
    /// - Parameter level: zlib's compression level, 1 (fastest) to 9 (smallest); 6 by default, as gzip's.
    package init(compressing input: some Collection<UInt8>, level: Int = 6) {
        let source = Array(input)
        checksum = GzipChecksum(of: source)
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        // -15: the largest window, raw deflate (no header or trailer: the member's are written separately).
        let status = cflipt_deflate_init2(stream, Int32(min(max(level, 1), 9)), -15, 8)
        precondition(status == Z_OK, "zlib could not start a deflate encoder (deflateInit2 returned \(status))")
        // Room for everything in one pass: the bound for a finished stream, plus the flush's empty stored block.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, UInt(source.count))) + 64)
        var written = 0
        source.withUnsafeBufferPointer { input in
            stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            stream.pointee.avail_in = UInt32(input.count)
            while true {
                if written == output.count { output += [UInt8](repeating: 0, count: max(4_096, output.count / 2)) }
                let (result, produced) = output.withUnsafeMutableBufferPointer { target in
                    let room = target.count - written
                    stream.pointee.next_out = target.baseAddress! + written
                    stream.pointee.avail_out = UInt32(min(room, Int(UInt32.max)))
                    let result = deflate(stream, Z_FULL_FLUSH)
                    return (result, min(room, Int(UInt32.max)) - Int(stream.pointee.avail_out))
                }
                written += produced
                precondition(result == Z_OK || result == Z_BUF_ERROR, "zlib's deflate failed (\(result))")
                // Done when all input is taken and the flush did not run out of room.
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { break }
            }
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        bytes = Array(output[0..<written])
    }

    /// The segments one after another, as one segment: their bytes concatenated, their checksums combined.
    package init(concatenating segments: [DeflateSegment]) {
        var checksum = GzipChecksum()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(segments.reduce(0) { $0 + $1.bytes.count })
        for segment in segments {
            bytes += segment.bytes
            checksum.append(segment.checksum)
        }
        self.bytes = bytes
        self.checksum = checksum
    }
}

extension Gzip {
    /// The 10-byte header that starts a gzip member: deflate, no name, no time, unknown operating system.
    package static let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF]

    /// What ends a member whose deflate data so far is whole ``DeflateSegment``s: a final empty block, then the
    /// trailer (CRC-32 and length, little-endian) of everything the segments held.
    package static func ending(_ checksum: GzipChecksum) -> [UInt8] {
        // A final block with fixed Huffman codes and no symbol but the end of block: bits 1, 01, 0000000.
        var bytes: [UInt8] = [0x03, 0x00]
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: checksum.crc32 >> shift)) }
        let size = UInt32(truncatingIfNeeded: checksum.length)
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: size >> shift)) }
        return bytes
    }

    /// A whole gzip member made of one segment.
    package static func member(_ segment: DeflateSegment) -> [UInt8] {
        header + segment.bytes + ending(segment.checksum)
    }
}
