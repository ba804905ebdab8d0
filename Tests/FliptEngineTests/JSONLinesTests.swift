import FliptFormats
import Foundation
import Testing

@testable import FliptEngine

@Suite("JSON-lines protocol")
struct JSONLinesTests {
    static let lines: JSONLinesEvaluator = {
        let flags = [
            TestDocuments.variantFlag(
                "v",
                rules: "[]",
                extra: #","defaultVariant":{"id":"i","key":"d","attachment":"{\"a\":1}"}"#
            ),
            TestDocuments.booleanFlag("b", rollouts: "[]"),
        ]
        let document = #"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#
        return JSONLinesEvaluator(snapshot: try! Snapshot(document: Array(document.utf8)), namespace: "default")
    }()

    private func answer(_ line: String) -> [String: Any] {
        let text = Self.lines.answer(line: Array(line.utf8))
        #expect(!text.contains("\n"))
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test(
        "Malformed lines get a failure envelope naming the problem",
        arguments: [
            ("", "empty line"),
            ("   ", "empty line"),
            ("[]", "expected a JSON object"),
            ("{", "unexpected end"),
            (#"{"type":"variant"}"#, #"missing required field "flag_key" for a variant request"#),
            (#"{"type":"boolean","flag_key":"b"}"#, #"missing required field "entity_id""#),
            (#"{"flag_key":"b"}"#, #"missing required field "type""#),
            (#"{"type":"bogus"}"#, #"unknown request type "bogus""#),
            (#"{"type":"batch"}"#, #"missing required field "requests""#),
            (#"{"type":"batch","requests":[{"flag_key":"v"}]}"#, #"requests[0]: missing required field "entity_id""#),
            (#"{"type":"batch","requests":[5]}"#, "requests[0]: expected an object"),
            (#"{"type":"variant","flag_key":5,"entity_id":"e"}"#, "flag_key: expected a string"),
            (#"{"type":"variant","flag_key":"v","entity_id":"e","context":[]}"#, "context: expected an object or null"),
            (#"{"type":"list","type":"list"}"#, #"duplicate field "type""#),
            (#"{"type":"list"} x"#, "trailing characters"),
        ]
    )
    func malformed(line: String, expected: String) {
        let envelope = answer(line)
        #expect(envelope["status"] as? String == "failure")
        #expect(envelope["result"] is NSNull)
        let message = envelope["error_message"] as? String ?? ""
        #expect(message.hasPrefix("malformed request line: ") && message.contains(expected), "\(message)")
    }

    @Test("A lone surrogate in an ignored member is only skipped; in a decoded one it is an error")
    func surrogates() {
        #expect(answer(#"{"type":"list","x":"\ud800"}"#)["status"] as? String == "success")
        #expect(answer(#"{"type":"variant","flag_key":"\ud800","entity_id":"e"}"#)["status"] as? String == "failure")
    }

    @Test("Variant envelope has the official fields; the attachment is omitted when absent")
    func variantEnvelope() throws {
        let text = Self.lines.answer(line: Array(#"{"type":"variant","flag_key":"v","entity_id":"e"}"#.utf8))
        #expect(
            text.hasPrefix(
                #"{"status":"success","result":{"match":false,"segment_keys":[],"reason":"DEFAULT_EVALUATION_REASON","flag_key":"v","variant_key":"d","variant_attachment":"{\"a\":1}","request_duration_millis":0.0,"timestamp":""#
            )
        )
        #expect(text.hasSuffix(#"Z"},"error_message":null}"#))
        let boolean = Self.lines.answer(
            line: Array(#"{"type":"boolean","flag_key":"b","entity_id":"e","context":null}"#.utf8)
        )
        #expect(
            boolean.hasPrefix(
                #"{"status":"success","result":{"enabled":true,"flag_key":"b","reason":"DEFAULT_EVALUATION_REASON","request_duration_millis":0.0,"timestamp":""#
            )
        )
        #expect(boolean.hasSuffix(#"Z","segment_keys":[]},"error_message":null}"#))
    }

    @Test("Evaluation failures carry the official message")
    func evaluationFailure() {
        let text = Self.lines.answer(line: Array(#"{"type":"boolean","flag_key":"v","entity_id":"e"}"#.utf8))
        #expect(
            text == #"{"status":"failure","result":null,"error_message":"invalid request: v is not a boolean flag"}"#
        )
    }

    @Test("Batch and list envelopes")
    func batchAndList() {
        let batch = Self.lines.answer(
            line: Array(
                #"{"type":"batch","requests":[{"flag_key":"x","entity_id":"e"},{"flag_key":"b","entity_id":"e","context":{}}]}"#
                    .utf8
            )
        )
        #expect(
            batch.hasPrefix(
                #"{"status":"success","result":{"responses":[{"type":"ERROR_EVALUATION_RESPONSE_TYPE","boolean_evaluation_response":null,"variant_evaluation_response":null,"error_evaluation_response":{"flag_key":"x","namespace_key":"default","reason":"NOT_FOUND_ERROR_EVALUATION_REASON"}},{"type":"BOOLEAN_EVALUATION_RESPONSE_TYPE","boolean_evaluation_response":{"enabled":true,"#
            )
        )
        #expect(
            batch.hasSuffix(
                #""variant_evaluation_response":null,"error_evaluation_response":null}],"request_duration_millis":0.0},"error_message":null}"#
            )
        )
        let list = Self.lines.answer(line: Array(#"{"type":"list"}"#.utf8))
        #expect(
            list
                == #"{"status":"success","result":[{"key":"v","enabled":true,"type":"VARIANT_FLAG_TYPE","default_variant":{"id":"i","key":"d","attachment":"{\"a\":1}"}},{"key":"b","enabled":true,"type":"BOOLEAN_FLAG_TYPE"}],"error_message":null}"#
        )
    }

    @Test(
        "Strings are escaped as serde_json escapes them",
        arguments: [
            ("plain", #""plain""#),
            ("q\"b\\s/", #""q\"b\\s/""#),
            ("\u{8}\u{C}\n\r\t", #""\b\f\n\r\t""#),
            ("\u{0}\u{1F}\u{7F}", #""\u0000\u001f\#u{7F}""#),
            ("\u{E9}\u{1F600}", "\"\u{E9}\u{1F600}\""),
        ]
    )
    func escaping(text: String, expected: String) {
        var writer = JSONWriter()
        writer.string(text)
        #expect(writer.bytes == Array(expected.utf8))
    }

    @Test("Context: byte-exact keys, last duplicate wins, non-strings dropped")
    func context() throws {
        let segment = TestDocuments.segment("s", property: "k", operator: "eq", value: "2")
        let flag = TestDocuments.variantFlag("v", rules: "[\(TestDocuments.rule([segment]))]")
        let lines = JSONLinesEvaluator(snapshot: try TestDocuments.snapshot(flag), namespace: "default")
        for (context, expected) in [
            (#"{"k":"1","k":"2"}"#, true), (#"{"k":"2","k":"1"}"#, false), (#"{"k":"2","k":2}"#, false),
            (#"{"\u006b":"2"}"#, true), (#"{"k":"2","K":"1"}"#, true),
        ] {
            let text = lines.answer(
                line: Array(#"{"type":"variant","flag_key":"v","entity_id":"e","context":\#(context)}"#.utf8)
            )
            #expect(text.contains(#""match":\#(expected)"#), "\(context)")
        }
    }

    @Test(
        "Timestamps use 0, 3, 6 or 9 fractional digits",
        arguments: [
            (0 as Int32, "2026-11-24T22:41:50Z"), (331_000_000, "2026-11-24T22:41:50.331Z"),
            (331_507_000, "2026-11-24T22:41:50.331507Z"), (331_507_641, "2026-11-24T22:41:50.331507641Z"),
            (1, "2026-11-24T22:41:50.000000001Z"),
        ]
    )
    func timestamps(nanoseconds: Int32, expected: String) {
        #expect(EvaluationTimestamp(secondsSince1970: 1_795_560_110, nanoseconds: nanoseconds).rfc3339 == expected)
    }

    @Test("Civil dates round-trip across eras")
    func civilDates() {
        for days in stride(from: Int64(-800_000), through: 3_000_000, by: 997) {
            #expect(CivilDate(daysSince1970: days).daysSince1970 == days)
        }
        #expect(EvaluationTimestamp(secondsSince1970: 0, nanoseconds: 0).rfc3339 == "1970-01-01T00:00:00Z")
        #expect(EvaluationTimestamp(secondsSince1970: 951_782_400, nanoseconds: 0).rfc3339 == "2000-02-29T00:00:00Z")
    }
}
