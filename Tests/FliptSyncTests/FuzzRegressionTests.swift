import FliptSync
import Testing

/// Inputs found by the stream fuzz harness (Tests/Fuzz, `StreamFuzzer`), kept so the fixes stay fixed.
@Suite("Fuzz regressions: NDJSON splitter")
struct FuzzRegressionTests {
    /// The harness's input layout: byte 0 picks the line limit (`byte & 0x3F` when bit 7 is set), byte 1 the
    /// number of chunk lengths that follow (`byte & 0x0F`), then those lengths; the rest is the stream.
    private struct Case {
        var limit: Int
        var chunks: [ArraySlice<UInt8>]

        init(_ input: [UInt8]) {
            limit = input[0] & 0x80 != 0 ? Int(input[0] & 0x3F) : 64 << 20
            let count = Int(input[1] & 0x0F)
            var offset = 2 + count
            chunks = []
            for length in input[2..<(2 + count)] {
                let end = min(input.count, offset + Int(length))
                chunks.append(input[offset..<end])
                offset = end
            }
            chunks.append(input[offset...])
        }

        /// Every line the splitter returns, or nil when it refused the stream.
        func split() -> [[UInt8]]? {
            var splitter = NDJSONSplitter(maximumLineLength: limit)
            var lines: [[UInt8]] = []
            do {
                for chunk in chunks { lines += try splitter.append(chunk) }
            } catch {
                return nil
            }
            if let last = splitter.finish() { lines.append(last) }
            return lines
        }
    }

    /// Found by the fuzzer: an unterminated final line one byte over the limit passed, because `append` kept
    /// one byte beyond the limit for a possible `\r` whatever that byte was, and `finish()` returned it all.
    @Test("a final line without newline one byte over the limit is refused")
    func unterminatedLineOverLimit() {
        // Limit 16, no chunk boundaries; the stream is 17 bytes without a newline.
        let input: [UInt8] = [0x90, 0x00, 0x00, 0x01] + Array(repeating: UInt8(ascii: "V"), count: 15)
        #expect(Case(input).split() == nil)
    }

    @Test("the extra byte is allowed when it is the CR of a CRLF still to come, or a trailing CR at the end")
    func carriageReturnAtTheLimit() throws {
        let sixteen = Array(repeating: UInt8(ascii: "a"), count: 16)
        var splitter = NDJSONSplitter(maximumLineLength: 16)
        #expect(try splitter.append(sixteen + [0x0D]).isEmpty)
        #expect(try splitter.append([0x0A]) == [sixteen])
        #expect(try splitter.append(sixteen + [0x0D]).isEmpty)
        #expect(splitter.finish() == sixteen)
        var other = NDJSONSplitter(maximumLineLength: 16)
        #expect(throws: NDJSONSplitter.LineTooLong.self) { try other.append(sixteen + [0x0D, 0x0D]) }
    }

    @Test("no line longer than the limit comes out, whatever the chunking")
    func limitHoldsForEveryChunking() {
        let stream = Array("exactly-sixteen!\n0123456789abcdefg".utf8)
        for cut in 0...stream.count {
            let input: [UInt8] = [0x90, 0x01, UInt8(cut)] + stream
            #expect(Case(input).split() == nil, "cut at \(cut)")
        }
        for cut in 0...17 {
            let input: [UInt8] = [0x90, 0x01, UInt8(cut)] + Array("exactly-sixteen!\nshort".utf8)
            #expect(Case(input).split()?.map(\.count) == [16, 5], "cut at \(cut)")
        }
    }
}
