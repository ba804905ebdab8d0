import Foundation
import Testing

@testable import FliptEngine

private let base = #"{"key":"f","name":"","enabled":true}"#

private func document(_ flags: String, namespace: String = #"{"key":"default"}"#) -> String {
    #"{"namespace":\#(namespace),"flags":[\#(flags)]}"#
}

@Suite("Snapshot document decoding: exactly what the official engine accepts")
struct DocumentDecodingTests {
    @Test("The decoder's table of powers of ten holds every 10^n, n in 0…308, correctly rounded")
    func powersOfTenAreExact() {
        #expect(powersOfTen.count == 309)
        for (exponent, power) in powersOfTen.enumerated() {
            #expect(power == Double("1e\(exponent)")!, "10^\(exponent)")
        }
    }

    static let accepted: [String] = [
        document(""),
        document(base),
        #"{"flags":[],"namespace":{"key":"x","name":null},"digest":"abc","extra":{"a":[1,2,{"b":null}]}}"#,
        document(
            #"{"key":"f","name":"","enabled":true,"type":null,"description":null,"rules":null,"rollouts":null,"defaultVariant":null}"#
        ),
        document(#"{"key":"f","name":"","enabled":true,"type":{"BOOLEAN_FLAG_TYPE":null}}"#),
        document(#"["f","",null,null,true,null,null,null]"#),
        #"[{"key":"default"},[]]"#,
        document(#"{"key":"f","name":"","enabled":true,"x":"\ud800","x":1e400}"#),
        document(#"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"X","distributions":[]}]}"#),
        document(
            #"{"key":"f","name":"","enabled":true,"rollouts":[{},{"threshold":{"percentage":1e-400,"value":true}}]}"#
        ),
        document(#"{"key":"f","name":"","enabled":true,"rollouts":[{"segment":{"value":true,"segments":[]}}]}"#),
        " \n\t" + document(base) + " \r\n",
        document(#"{"key":"f\u00e9\ud83d\ude00","name":"","enabled":true}"#),
        document(#"{"key":"f","name":"","enabled":true,"x":"\#u{1F600}"}"#),
        // Unknown keys the decoder expects (rank, id, name, description) are skipped like any other, whatever
        // their value.
        document(
            #"{"key":"f","name":"","enabled":true,"rules":[{"rank":{"a":[1]},"id":null,"segmentOperator":"X","#
                + #""segments":[{"name":1,"description":[],"key":"s","matchType":"X","constraints":[]}],"#
                + #""distributions":[]}],"defaultVariant":{"name":[],"id":"i","key":"k","description":{}}}"#
        ),
    ]

    static let rejected: [(String, String)] = [
        ("", "document: expected an object"),
        ("{}", #"missing required field "namespace""#),
        (#"{"namespace":{"key":"default"}}"#, #"missing required field "flags""#),
        (#"{"namespace":{"key":"default"},"flags":null}"#, "flags: expected an array, found null"),
        (#"{"namespace":null,"flags":[]}"#, "namespace: expected an object, found null"),
        (#"{"namespace":{"key":5},"flags":[]}"#, "namespace.key: expected a string, found a number"),
        (#"{"namespace":{"key":"d","name":5},"flags":[]}"#, "namespace.name: expected a string"),
        (document(#"{"key":"f","enabled":true}"#), #"flags[0]: missing required field "name""#),
        (
            document(base + "," + #"{"key":"g","name":null,"enabled":true}"#),
            "flags[1].name: expected a string, found null"
        ),
        (document(#"{"key":"f","name":"","enabled":"true"}"#), "flags[0].enabled: expected a boolean"),
        (document(#"{"key":"f","name":"","enabled":true,"type":1}"#), "flags[0].type: expected a string"),
        (document(#"{"key":"f","name":"","enabled":true,"key":"g"}"#), #"flags[0]: duplicate field "key""#),
        (
            document(#"{"key":"f","name":"","enabled":true,"rules":[{"rank":tru,"distributions":[]}]}"#),
            "flags[0].rules[0]: invalid literal"
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"OR_SEGMENT_OPERATOR"}]}"#),
            #"flags[0].rules[0]: missing required field "distributions""#
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"rules":[{"distributions":[]}]}"#),
            #"missing required field "segmentOperator""#
        ),
        (
            document(
                #"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"X","distributions":[{"variantKey":"a","rollout":"50"}]}]}"#
            ), "distributions[0].rollout: expected a number, found a string"
        ),
        (
            document(
                #"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"X","distributions":[{"variantKey":"a","rollout":1e400}]}]}"#
            ), "number out of range"
        ),
        (
            document(
                #"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"X","distributions":[],"segments":[{"key":"s","matchType":"ALL_SEGMENT_MATCH_TYPE"}]}]}"#
            ), #"segments[0]: missing required field "constraints""#
        ),
        (
            document(
                #"{"key":"f","name":"","enabled":true,"rules":[{"segmentOperator":"X","distributions":[],"segments":[{"key":"s","matchType":"A","constraints":[{"type":"T","property":"p","operator":"eq","value":5}]}]}]}"#
            ), "constraints[0].value: expected a string"
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"rollouts":[{"threshold":{"percentage":50}}]}"#),
            #"threshold: missing required field "value""#
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"rollouts":[{"segment":{"value":true}}]}"#),
            #"segment: missing required field "segments""#
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"rollouts":[{"segment":{"value":true,"segments":null}}]}"#),
            "segments: expected an array, found null"
        ),
        (
            document(#"{"key":"f","name":"","enabled":true,"defaultVariant":{"key":"k"}}"#),
            #"missing required field "id""#
        ),
        (document(#"{"key":"f","name":"","enabled":true,"type":{"BOOLEAN_FLAG_TYPE":1}}"#), "expected null"),
        (document(#"["f","",null,null,true,null,null]"#), "must have 8 elements"),
        (document(#"{"key":"f","name":"\ud800","enabled":true}"#), "flags[0].name: lone leading surrogate"),
        (document(#"{"key":"f","name":"\udc00","enabled":true}"#), "lone trailing surrogate"),
        (document(#"{"key":"f","name":"","enabled":true,"\ud800":1}"#), "lone leading surrogate"),
        (document(#"{"key":"f","name":"\x","enabled":true}"#), "invalid escape"),
        (document(#"{"key":"f","name":"","enabled":true,"x":"\u12"}"#), "invalid \\u escape"),
        (document(base) + "x", "trailing characters"),
        (document(base + ","), "flags: trailing comma in an array"),
        (document(#"{"key":"f","name":"","enabled":true,}"#), "trailing comma"),
        (document(#"{"key":"f","name":"","enabled":true,"x":01}"#), "leading zero"),
        (document(#"{"key":"f","name":"","enabled":true,"x":1.}"#), "no digit after the decimal point"),
        (document(#"{"key":"f","name":"","enabled":true,"x":NaN}"#), "expected a value"),
        (document(#"{"key":"f","name":"","enabled":true,"x":'a'}"#), "expected a value"),
        (document(#"{"key":"f","name":"","enabled":true,"x":[1,]}"#), "expected a value"),
        (document(#"{"key":"f","name":"","enabled":true,"x":"a\#tb"}"#), "control character"),
        ("\u{FEFF}" + document(base), "expected an object"),
        (document(#"{"key":"f","name":"","enabled":tru}"#), "invalid literal"),
    ]

    @Test("Accepted documents", arguments: accepted)
    func accepts(text: String) throws {
        _ = try Snapshot(document: Array(text.utf8))
    }

    @Test("Rejected documents name the problem and its location", arguments: rejected)
    func rejects(text: String, expected: String) {
        do {
            _ = try Snapshot(document: Array(text.utf8))
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test("Invalid UTF-8 is accepted in skipped values and rejected in decoded strings")
    func invalidUTF8() throws {
        func bytes(_ flag: String) -> [UInt8] {
            Array(document(flag).utf8).map { $0 == UInt8(ascii: "~") ? 0xFF : $0 }
        }
        _ = try Snapshot(document: bytes(#"{"key":"f","name":"","enabled":true,"x":"~"}"#))
        #expect(throws: DocumentError.self) { try Snapshot(document: bytes(#"{"key":"f~","name":"","enabled":true}"#)) }
    }

    @Test("Deeply nested unknown values are skipped without recursion")
    func deepNesting() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        _ = try Snapshot(document: Array(document(#"{"key":"f","name":"","enabled":true,"x":\#(deep)}"#).utf8))
    }

    @Test(
        "Escapes decode, keys included",
        arguments: [
            (#""\u0041\n\t\"\\\/\b\f\r""#, "A\n\t\"\\/\u{8}\u{C}\r"),
            (#""\ud83d\ude00""#, "\u{1F600}"),
            (#""caf\u00e9""#, "caf\u{E9}"),
        ]
    )
    func escapes(literal: String, expected: String) throws {
        let snapshot = try Snapshot(
            document: Array(document(#"{"k\u0065y":\#(literal),"name":"","enabled":true}"#).utf8)
        )
        #expect(
            try Evaluator(snapshot: snapshot, namespace: "default").listFlags().first?.key.utf8.elementsEqual(
                expected.utf8
            ) == true
        )
    }

    @Test(
        "Numbers narrow to Float32 the way serde_json does",
        arguments: [
            ("100", Float(100)), ("-0", Float(-0.0)), ("1e2", Float(100)), ("12.5e-1", Float(1.25)),
            ("18446744073709551615", Float(UInt64.max)), ("18446744073709551616", Float(1.8446744e19)),
            ("-9223372036854775808", Float(Int64.min)), ("50.00000190734863281250001", Float(50)),
            ("1e39", Float.infinity), ("1e-400", Float(0)), ("0.1", Float(0.1)),
        ]
    )
    func numbers(text: String, expected: Float) throws {
        let bytes = Array(text.utf8)
        let value = try bytes.withUnsafeBufferPointer { buffer throws(DocumentError) in
            var cursor = JSONCursor(buffer)
            return try cursor.readFloat32()
        }
        #expect(value == expected)
    }

    @Test("Foundation Data and non-contiguous collections are accepted")
    func collections() throws {
        let text = document(base)
        #expect(try Snapshot(data: Data(text.utf8)).flagCount == 1)
        #expect(try Snapshot(document: text.utf8).namespaceKey == "default")
    }
}
