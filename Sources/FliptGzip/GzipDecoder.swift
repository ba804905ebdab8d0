import CFliptZlib

/// Why gzip input could not be decoded.
package struct GzipError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong with the input.
    package enum Kind: Sendable, Hashable {
        /// The bytes are not gzip, or are damaged (a bad header, bad deflate data, a CRC-32 or length mismatch).
        case corrupt
        /// The input ended before the gzip member did.
        case truncated
        /// The decoded size passed the limit given to the decoder.
        case tooLarge
        /// Bytes follow the end of the gzip member.
        case trailingData
    }

    /// What is wrong with the input.
    package var kind: Kind
    /// One sentence, with zlib's own reason where it gave one.
    package var message: String

    /// Creates an error.
    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    package var description: String { message }
}

/// A gzip (RFC 1952) decoder for one member, fed piece by piece, with a limit on the decoded size.
///
/// ``decode(_:)`` returns every byte the input so far decodes to (a sync-flushed stream message comes out whole
/// as soon as its last byte is given); ``finish()`` checks that the member ended. One decoder serves one response
/// and is not shared between threads.
package final class GzipDecoder {
    /// The largest total decoded size accepted.
    package let maximumSize: Int
    /// How many bytes have been decoded so far.
    package private(set) var decodedSize = 0
    /// Whether the member's trailer has been read.
    package private(set) var isFinished = false

    /// The zlib stream; zlib keeps its address, so it lives in storage of its own.
    private let stream: UnsafeMutablePointer<z_stream>
    private static let outputChunk = 65_536

    /// Creates a decoder.
    ///
    /// - Parameter maximumSize: the largest total decoded size accepted (1 GiB by default); a gzip bomb stops
    ///   there with ``GzipError/Kind/tooLarge`` instead of filling memory.
    package init(maximumSize: Int = 1 << 30) {
        self.maximumSize = maximumSize
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 16: the largest window, gzip wrapping only.
        let status = cflipt_inflate_init2(stream, 15 + 16)
        precondition(status == Z_OK, "zlib could not start a gzip decoder (inflateInit2 returned \(status))")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Decodes the next bytes of the member; returns what they decode to (possibly nothing yet).
    ///
    /// - Throws: ``GzipError`` for damaged input, bytes after the member, or output past ``maximumSize``.
    package func decode(_ bytes: some Collection<UInt8>) throws(GzipError) -> [UInt8] {
        let input = Array(bytes)
        guard !input.isEmpty else { return [] }
        guard !isFinished else {
            throw GzipError(.trailingData, "Bytes follow the end of the gzip data.")
        }
        var output: [UInt8] = []
        var failure: GzipError?
        input.withUnsafeBufferPointer { source in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress!)
            stream.pointee.avail_in = UInt32(source.count)
            defer {
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
            }
            var chunk = [UInt8](repeating: 0, count: Self.outputChunk)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { target in
                    stream.pointee.next_out = target.baseAddress
                    stream.pointee.avail_out = UInt32(target.count)
                    let status = inflate(stream, Z_NO_FLUSH)
                    return (status, target.count - Int(stream.pointee.avail_out))
                }
                decodedSize += produced
                if decodedSize > maximumSize {
                    failure = GzipError(
                        .tooLarge,
                        "The gzip data decodes to more than \(maximumSize) bytes, the limit; it was not decoded."
                    )
                    return
                }
                output += chunk[0..<produced]
                switch status {
                case Z_STREAM_END:
                    isFinished = true
                    if stream.pointee.avail_in > 0 {
                        failure = GzipError(.trailingData, "Bytes follow the end of the gzip data.")
                    }
                    return
                case Z_OK, Z_BUF_ERROR:
                    // Done when the input is used up and the output buffer was not filled (nothing held back).
                    if stream.pointee.avail_in == 0 && produced < Self.outputChunk { return }
                    if status == Z_BUF_ERROR && produced == 0 { return }
                default:
                    let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    failure = GzipError(.corrupt, "The gzip data is damaged (\(reason)).")
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Checks that the whole member, trailer included, has been decoded.
    ///
    /// - Throws: ``GzipError/Kind/truncated`` if the input ended early.
    package func finish() throws(GzipError) {
        guard isFinished else {
            throw GzipError(.truncated, "The gzip data ends before its end marker: it was cut short.")
        }
    }
}
