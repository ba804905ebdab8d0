@testable import FliptEngine

/// Small snapshot documents written inline for the engine tests.
enum TestDocuments {
    /// A snapshot of `flags` (JSON objects as text) in namespace `default`.
    static func snapshot(_ flags: String...) throws -> Snapshot {
        try Snapshot(
            document: Array(#"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#.utf8)
        )
    }

    /// A variant flag `key` with `rules` (JSON array text) and optional extra members.
    static func variantFlag(_ key: String, rules: String, extra: String = "") -> String {
        #"{"key":"\#(key)","name":"","enabled":true,"type":"VARIANT_FLAG_TYPE","rules":\#(rules)\#(extra)}"#
    }

    /// A boolean flag `key` with `rollouts` (JSON array text).
    static func booleanFlag(_ key: String, enabled: Bool = true, rollouts: String) -> String {
        #"{"key":"\#(key)","name":"","enabled":\#(enabled),"type":"BOOLEAN_FLAG_TYPE","rollouts":\#(rollouts)}"#
    }

    /// A segment with one constraint.
    static func segment(
        _ key: String,
        type: String = "STRING",
        property: String = "p",
        operator name: String,
        value: String,
        matchType: String = "ALL_SEGMENT_MATCH_TYPE"
    ) -> String {
        #"{"key":"\#(key)","matchType":"\#(matchType)","constraints":[{"type":"\#(type)_CONSTRAINT_COMPARISON_TYPE","property":"\#(property)","operator":"\#(name)","value":\#(jsonString(value))}]}"#
    }

    /// A rule over `segments` with `distributions` (variant key, rollout) pairs.
    static func rule(
        _ segments: [String],
        operator name: String = "OR_SEGMENT_OPERATOR",
        distributions: [(String, String)] = [("on", "100")]
    ) -> String {
        let parts = distributions.map { #"{"variantKey":"\#($0.0)","rollout":\#($0.1)}"# }
        return
            #"{"segmentOperator":"\#(name)","segments":[\#(segments.joined(separator: ","))],"distributions":[\#(parts.joined(separator: ","))]}"#
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var writer = JSONWriter()
        writer.string(text)
        return writer.text
    }
}
