import FliptSync
import Testing

@Suite("NDJSONSplitter and StreamMessage (pure)")
struct NDJSONSplitterTests {
    private func split(_ chunks: [String]) throws -> [String] {
        var splitter = NDJSONSplitter()
        var lines: [String] = []
        for chunk in chunks {
            lines += try splitter.append(Array(chunk.utf8)).map { String(decoding: $0, as: UTF8.self) }
        }
        if let last = splitter.finish() { lines.append(String(decoding: last, as: UTF8.self)) }
        return lines
    }

    @Test("lines split across chunks are reassembled; several per chunk come out in order")
    func chunking() throws {
        #expect(try split(["{\"a\":", "1}\n{\"b\"", ":2}\n{\"c\":3}\n"]) == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
        #expect(try split(["x\ny\nz\n"]) == ["x", "y", "z"])
    }

    @Test("any chunking of the same bytes gives the same lines")
    func everyChunking() throws {
        let text = "{\"result\":1}\r\n\n{\"result\":2}\nlast"
        let expected = ["{\"result\":1}", "", "{\"result\":2}", "last"]
        let bytes = Array(text.utf8)
        for size in 1...bytes.count {
            var splitter = NDJSONSplitter()
            var lines: [[UInt8]] = []
            var index = 0
            while index < bytes.count {
                lines += try splitter.append(bytes[index..<min(bytes.count, index + size)])
                index += size
            }
            if let last = splitter.finish() { lines.append(last) }
            #expect(lines.map { String(decoding: $0, as: UTF8.self) } == expected)
        }
    }

    @Test("CRLF loses one CR; blank lines are kept; a final line without newline comes from finish()")
    func edges() throws {
        #expect(try split(["a\r\n", "\r\n", "\n", "b\r\r\n"]) == ["a", "", "", "b\r"])
        #expect(try split(["tail"]) == ["tail"])
        #expect(try split(["tail\r"]) == ["tail"])
        #expect(try split([]) == [])
    }

    @Test("a line over the limit throws")
    func limit() throws {
        var splitter = NDJSONSplitter(maximumLineLength: 8)
        #expect(try splitter.append(Array("12345678\n".utf8)).count == 1)
        #expect(throws: NDJSONSplitter.LineTooLong.self) { try splitter.append(Array("1234567890".utf8)) }
        var other = NDJSONSplitter(maximumLineLength: 8)
        #expect(throws: NDJSONSplitter.LineTooLong.self) { try other.append(Array("1234\n123456789\n".utf8)) }
    }

    @Test("stream lines are classified: result with raw document and digest, error, blank, invalid")
    func messages() {
        let document = #"{"namespace":{"key":"default"},"flags":[],"digest":"abc"}"#
        #expect(
            StreamMessage(line: Array(#"{"result":\#(document)}"#.utf8))
                == .result(document: Array(document.utf8), digest: "abc")
        )
        #expect(
            StreamMessage(line: Array(#" { "result" : {"a":"}\"{"} } "#.utf8))
                == .result(document: Array(#"{"a":"}\"{"}"#.utf8), digest: nil)
        )
        #expect(
            StreamMessage(line: Array(#"{"error":{"code":13,"message":"boom","details":[]}}"#.utf8))
                == .error(code: 13, message: "boom")
        )
        #expect(StreamMessage(line: Array("".utf8)) == .blank)
        #expect(StreamMessage(line: Array(" \t".utf8)) == .blank)
        for bad in ["garbage", "[1]", #"{"other":1}"#, #"{"result":{"a":1}"#, #"{"result":{}} x"#, #"{"result":tru}"#] {
            guard case .invalid = StreamMessage(line: Array(bad.utf8)) else {
                Issue.record("\(bad) should be invalid")
                continue
            }
        }
    }

    /// Foundation's parser takes both; Flipt's server never sends them and the official engine (serde_json) refuses
    /// them, so the stream does too, with a reason that names the fault.
    @Test("a trailing comma or a byte-order mark makes a stream line invalid, with a reason that says which")
    func strictLines() {
        let cases: [([UInt8], String)] = [
            (Array(#"{"result":{"flags":[]},}"#.utf8), "trailing comma in the object at byte 24"),
            (Array(#"{"result":{"flags":[]} , }"#.utf8), "trailing comma in the object at byte 26"),
            ([0xEF, 0xBB, 0xBF] + Array(#"{"result":{}}"#.utf8), "byte-order mark"),
        ]
        for (line, reason) in cases {
            guard case .invalid(let found) = StreamMessage(line: line) else {
                Issue.record("\(String(decoding: line, as: UTF8.self)) should be invalid")
                continue
            }
            #expect(found.contains(reason), "\(found)")
        }
    }
}
