/// Splits a byte stream into newline-delimited lines, whatever the chunking: a pure value type.
///
/// Lines end at `\n`; one trailing `\r` is removed. Blank lines are returned (as empty arrays) so the caller can
/// decide what they mean. A line split across chunks is reassembled; several lines in one chunk all come out in
/// order; ``finish()`` returns a final line that had no newline.
package struct NDJSONSplitter: Sendable {
    /// The longest line accepted, in bytes, without its terminator.
    package let maximumLineLength: Int
    private var pending: [UInt8] = []

    /// A line grew past ``maximumLineLength`` without a newline.
    package struct LineTooLong: Error, Sendable, Hashable {
        /// The limit that was exceeded.
        package var limit: Int
    }

    /// Creates a splitter; the default limit is the default largest document, 64 MiB per line.
    package init(maximumLineLength: Int = SyncConfiguration.defaultMaximumDocumentSize) {
        self.maximumLineLength = maximumLineLength
    }

    /// The bytes of an unfinished line held so far.
    package var bufferedByteCount: Int { pending.count }

    /// Adds a chunk and returns every line it completes, in order.
    package mutating func append(_ chunk: some Collection<UInt8>) throws(LineTooLong) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = chunk.startIndex
        var index = chunk.startIndex
        while index != chunk.endIndex {
            if chunk[index] == 0x0A {
                var line = pending
                line.append(contentsOf: chunk[start..<index])
                pending.removeAll(keepingCapacity: true)
                if line.last == 0x0D { line.removeLast() }
                guard line.count <= maximumLineLength else { throw LineTooLong(limit: maximumLineLength) }
                lines.append(line)
                start = chunk.index(after: index)
            }
            index = chunk.index(after: index)
        }
        pending.append(contentsOf: chunk[start..<chunk.endIndex])
        // One extra byte is allowed only when it is a `\r`, which the next chunk's `\n` (or `finish()`) removes.
        guard pending.count <= (pending.last == 0x0D ? maximumLineLength + 1 : maximumLineLength) else {
            pending.removeAll()
            throw LineTooLong(limit: maximumLineLength)
        }
        return lines
    }

    /// Ends the stream: returns the final line if bytes remain without a newline, and empties the buffer.
    package mutating func finish() -> [UInt8]? {
        guard !pending.isEmpty else { return nil }
        var line = pending
        pending.removeAll()
        if line.last == 0x0D { line.removeLast() }
        return line
    }
}
