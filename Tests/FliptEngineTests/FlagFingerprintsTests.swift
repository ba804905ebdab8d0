import FliptEngine
import Testing

@Suite("Flag fingerprints: which flags one document adds, removes or changes against another")
struct FlagFingerprintsTests {
    static func fingerprints(_ json: String) throws -> FlagFingerprints {
        // Only documents the engine accepts are ever fingerprinted.
        _ = try Snapshot(document: Array(json.utf8))
        return try #require(FlagFingerprints(document: Array(json.utf8)))
    }

    static func keys(_ keys: [[UInt8]]) -> [String] { keys.map { String(decoding: $0, as: UTF8.self) } }

    static let base = """
        {"namespace":{"key":"default"},"flags":[\
        {"key":"a","name":"","enabled":true,"type":"BOOLEAN_FLAG_TYPE","rollouts":[]},\
        {"key":"b","name":"","enabled":true,"rules":[{"segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\
        {"key":"s","matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":[{"type":"STRING_CONSTRAINT_COMPARISON_TYPE",\
        "property":"p","operator":"eq","value":"x y"}]}],"distributions":[]}]},\
        {"key":"c","name":"","enabled":false}]}
        """

    @Test("white space between tokens and positions do not count; white space inside strings does")
    func layoutIgnored() throws {
        let spaced = """
            {
              "namespace": {"key": "default"},
              "flags": [
                {"key": "c", "name": "", "enabled": false},
                {"key":"a","name":"","enabled":true,"type":"BOOLEAN_FLAG_TYPE","rollouts":[ ]},
                {"key":"b","name":"","enabled":true,"rules":[{"segmentOperator":"OR_SEGMENT_OPERATOR",
                  "segments":[{"key":"s","matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":[
                  {"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"p","operator":"eq","value":"x y"}]}],
                  "distributions":[]}]}
              ]
            }
            """
        let old = try Self.fingerprints(Self.base)
        let difference = old.changes(to: try Self.fingerprints(spaced))
        #expect(difference.added.isEmpty && difference.removed.isEmpty && difference.changed.isEmpty)

        let valueChanged = Self.base.replacingOccurrences(of: #""x y""#, with: #""x  y""#)
        #expect(Self.keys(old.changes(to: try Self.fingerprints(valueChanged)).changed) == ["b"])
    }

    @Test("added, removed and changed flags, in document order")
    func kinds() throws {
        let next = Self.base
            .replacingOccurrences(
                of: #"{"key":"c","name":"","enabled":false}"#,
                with: #"{"key":"d","name":"","enabled":false}"#
            )
            .replacingOccurrences(
                of: #""key":"a","name":"","enabled":true"#,
                with: #""key":"a","name":"","enabled":false"#
            )
        let difference = try Self.fingerprints(Self.base).changes(to: try Self.fingerprints(next))
        #expect(Self.keys(difference.added) == ["d"])
        #expect(Self.keys(difference.removed) == ["c"])
        #expect(Self.keys(difference.changed) == ["a"])
    }

    @Test("keys are decoded and compared byte for byte; a later duplicate replaces the earlier one")
    func keys() throws {
        let escaped = try Self.fingerprints(
            #"{"namespace":{"key":"default"},"flags":[{"key":"caf\u00e9","name":"","enabled":true},"#
                + #"{"key":"cafe\u0301","name":"","enabled":true},{"key":"\ud83d\ude00","name":"","enabled":true},"#
                + #"{"key":"caf\u00e9","name":"x","enabled":true}]}"#
        )
        #expect(Self.keys(escaped.keys) == ["café", "cafe\u{301}", "😀"])
        let composed = Array("café".utf8)
        let plain = try Self.fingerprints(
            #"{"namespace":{"key":"default"},"flags":[{"key":"café","name":"x","enabled":true},"#
                + #"{"key":"cafe\u0301","name":"","enabled":true},{"key":"😀","name":"","enabled":true}]}"#
        )
        #expect(escaped.digest(ofKey: composed) != nil)
        let difference = escaped.changes(to: plain)
        #expect(difference.added.isEmpty && difference.removed.isEmpty)
        // Two flags' JSON differs only in how the key is written: a change of the text, reported as a change.
        #expect(Self.keys(difference.changed) == ["café", "😀"])
    }

    @Test("the array forms the engine accepts are read too")
    func arrayForms() throws {
        let document =
            #"[{"key":"default"},[["a","",null,null,true,null,null,null],{"key":"b","name":"","enabled":true}]]"#
        let fingerprints = try Self.fingerprints(document)
        #expect(Self.keys(fingerprints.keys) == ["a", "b"])
    }
}
