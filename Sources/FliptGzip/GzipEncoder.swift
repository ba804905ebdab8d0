import CFliptZlib

/// A gzip (RFC 1952) encoder for one member, fed piece by piece: a document written in parts, or a stream whose
/// every message must reach the client at once.
///
/// ``compress(_:flush:)`` with ``FlushMode/sync`` (the default) returns bytes that, with everything returned
/// before, decode to every byte given so far: a client's decoder can hand on each message as soon as its bytes
/// arrive, which is what a stream of newline-delimited messages needs. ``finish()`` ends the member with its
/// CRC-32 and length. One encoder serves one response and is not shared between threads.
package final class GzipEncoder {
    /// How ``compress(_:flush:)`` treats what it has buffered.
    package enum FlushMode: Sendable, Hashable {
        /// Keep buffering for the best compression; the output may lag the input.
        case none
        /// Emit everything given so far, ending on a byte boundary (zlib's `Z_SYNC_FLUSH`).
        case sync
    }

    /// The zlib stream; zlib keeps its address, so it lives in storage of its own.
    private let stream: UnsafeMutablePointer<z_stream>
    private var finished = false
    private static let outputChunk = 16_384

    /// Creates an encoder.
    ///
    /// - Parameter level: zlib's compression level, 1 (fastest) to 9 (smallest); 6 by default, as gzip's.
    package init(level: Int = 6) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 16: the largest window, with a gzip header and trailer instead of zlib's.
        let status = cflipt_deflate_init2(stream, Int32(min(max(level, 1), 9)), 15 + 16, 8)
        precondition(status == Z_OK, "zlib could not start a gzip encoder (deflateInit2 returned \(status))")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `bytes`; with ``FlushMode/sync`` everything given so far is in the output.
    ///
    /// - Precondition: ``finish()`` has not been called.
    package func compress(_ bytes: some Collection<UInt8>, flush: FlushMode = .sync) -> [UInt8] {
        precondition(!finished, "GzipEncoder.compress(_:flush:) called after finish()")
        let mode = flush == .sync ? Z_SYNC_FLUSH : Z_NO_FLUSH
        // Read in place where the bytes are contiguous (arrays, Data): a copy of a 10 MB document held is a
        // 10 MB temporary on the compacting thread, which glibc may keep resident at the top of that thread's
        // arena after it is freed (malloc_trim trims only the main arena's top).
        if let output = bytes.withContiguousStorageIfAvailable({ run($0, mode: mode) }) { return output }
        return Array(bytes).withUnsafeBufferPointer { run($0, mode: mode) }
    }

    /// Ends the member: whatever is buffered, then the trailer. Later calls return nothing.
    package func finish() -> [UInt8] {
        guard !finished else { return [] }
        finished = true
        return run(UnsafeBufferPointer(start: nil, count: 0), mode: Z_FINISH)
    }

    private func run(_ source: UnsafeBufferPointer<UInt8>, mode: Int32) -> [UInt8] {
        var output: [UInt8] = []
        stream.pointee.next_in = source.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
        stream.pointee.avail_in = UInt32(source.count)
        var chunk = [UInt8](repeating: 0, count: Self.outputChunk)
        while true {
            let (status, produced) = chunk.withUnsafeMutableBufferPointer { target in
                stream.pointee.next_out = target.baseAddress
                stream.pointee.avail_out = UInt32(target.count)
                let status = deflate(stream, mode)
                return (status, target.count - Int(stream.pointee.avail_out))
            }
            output += chunk[0..<produced]
            // Z_BUF_ERROR only says that no progress was possible, which is not an error here.
            precondition(
                status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR,
                "zlib's deflate failed (\(status))"
            )
            if status == Z_STREAM_END { break }
            // A full output buffer may hide more output; otherwise all input is consumed and flushed.
            if produced < Self.outputChunk && stream.pointee.avail_in == 0 { break }
        }
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        return output
    }
}

/// One-shot gzip encoding and decoding.
package enum Gzip {
    /// The bytes as one complete gzip member.
    ///
    /// - Parameter level: zlib's compression level, 1 to 9 (6 by default).
    package static func compress(_ bytes: some Collection<UInt8>, level: Int = 6) -> [UInt8] {
        let encoder = GzipEncoder(level: level)
        return encoder.compress(bytes, flush: .none) + encoder.finish()
    }

    /// Decodes one complete gzip member.
    ///
    /// - Parameter maximumSize: the largest decoded size accepted; more throws ``GzipError/Kind/tooLarge``.
    /// - Throws: a ``GzipError`` for corrupt, truncated or oversized input, or bytes after the member.
    package static func decompress(
        _ bytes: some Collection<UInt8>,
        maximumSize: Int = 1 << 30
    ) throws(GzipError)
        -> [UInt8]
    {
        let decoder = GzipDecoder(maximumSize: maximumSize)
        let output = try decoder.decode(bytes)
        try decoder.finish()
        return output
    }
}
