import FliptEngine
import FliptSync
import Foundation
import FuzzSupport

/// One fuzz input: a few parameter bytes, then a byte stream.
///
/// Byte 0 picks the line limit (bit 7 set: `byte & 0x3F` bytes; otherwise the default), byte 1 the number of
/// chunk boundaries (0–15), and the next bytes the chunk lengths; the rest is the stream. Checks that
/// `NDJSONSplitter` yields the same lines whatever the chunking — a reference split of the whole stream on `\n`
/// with one trailing `\r` removed — and refuses a line only when it is longer than the limit; then classifies
/// each line with `StreamMessage(line:)` against Foundation's parser and decodes each `result` document.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var source = ByteSource(fuzzBytes(data, size))
    let limitByte = source.byte()
    let limit = limitByte & 0x80 != 0 ? Int(limitByte & 0x3F) : nil
    let cutCount = Int(source.byte() & 0x0F)
    let chunkLengths = (0..<cutCount).map { _ in Int(source.byte()) }
    let stream = source.rest

    let expected = referenceLines(stream)
    var splitter = limit.map { NDJSONSplitter(maximumLineLength: $0) } ?? NDJSONSplitter()
    var lines: [[UInt8]] = []
    var refused = false
    var offset = 0
    var chunks = chunkLengths.map { length -> UnsafeBufferPointer<UInt8> in
        let end = min(stream.count, offset + length)
        defer { offset = end }
        return UnsafeBufferPointer(rebasing: stream[offset..<end])
    }
    chunks.append(UnsafeBufferPointer(rebasing: stream[offset...]))
    for chunk in chunks {
        do {
            lines += try splitter.append(chunk)
        } catch {
            refused = true
            break
        }
        require(splitter.bufferedByteCount <= splitter.maximumLineLength + 1, "the splitter holds too many bytes")
    }
    if !refused, let last = splitter.finish() { lines.append(last) }

    require(lines.count <= expected.count, "the splitter made \(lines.count) lines of \(expected.count)")
    require(Array(expected.prefix(lines.count)) == lines, "the splitter's lines differ from the reference")
    let tooLong = expected.contains { $0.count > splitter.maximumLineLength }
    if refused {
        require(tooLong, "the splitter refused a stream whose lines all fit in \(splitter.maximumLineLength) bytes")
    } else {
        require(lines.count == expected.count, "the splitter lost lines: \(lines.count) of \(expected.count)")
        require(!tooLong, "the splitter passed a line longer than \(splitter.maximumLineLength) bytes")
    }
    for line in lines { checkMessage(line) }
    return 0
}

/// The whole stream split on `\n`, each line without one trailing `\r`; a final unterminated line counts.
private func referenceLines(_ stream: UnsafeBufferPointer<UInt8>) -> [[UInt8]] {
    var lines = stream.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
    if lines.last?.isEmpty == true { lines.removeLast() }
    return lines.map { $0.last == 0x0D ? Array($0.dropLast()) : $0 }
}

private func checkMessage(_ line: [UInt8]) {
    let message = StreamMessage(line: line)
    let isBlank = line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
    if isBlank {
        require(message == .blank, "a blank line classified as \(message)")
        return
    }
    if let object = JSONCheck.object(line) {
        if object["result"] != nil {
            guard case .result(let document, _) = message else {
                invariantFailure("a valid line with a result member classified as \(message)")
            }
            require(JSONCheck.isValue(document), "the result member's bytes are not one JSON value")
        } else if object["error"] != nil {
            guard case .error = message else { invariantFailure("a valid error line classified as \(message)") }
        } else {
            guard case .invalid = message else { invariantFailure("a line without members classified as \(message)") }
        }
    }
    if case .result(let document, _) = message {
        _ = try? Snapshot(document: document)
    }
}
