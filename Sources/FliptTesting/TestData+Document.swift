import FliptFormats
import Foundation

extension TestData {
    /// The snapshot document of `flags`, in the shape and field order of a Flipt v2 server (protobuf JSON with
    /// default values emitted; `digest` and the timestamps, which evaluation ignores, are left out). Segments are
    /// embedded in each rule and rollout that uses them, as the server does.
    static func document(namespace: String, flags: [Flag], segments: [String: Segment]) -> [UInt8] {
        var text = DocumentText()
        text.raw(#"{"namespace":{"key":"#)
        text.string(namespace)
        text.raw(#"},"flags":["#)
        for (position, flag) in flags.enumerated() {
            if position > 0 { text.raw(",") }
            text.flag(flag, segments: segments)
        }
        text.raw("]}")
        return text.bytes
    }
}

/// JSON text written by hand, field by field, so that the field order is the server's.
struct DocumentText {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ literal: String) {
        bytes.append(contentsOf: literal.utf8)
    }

    /// A JSON string literal (`JSONString`).
    mutating func string(_ value: String) {
        JSONString.append(value, to: &bytes)
    }

    mutating func member(_ name: String, _ value: String, first: Bool = false) {
        if !first { raw(",") }
        string(name)
        raw(":")
        string(value)
    }

    mutating func member(_ name: String, literal value: String) {
        raw(",")
        string(name)
        raw(":")
        raw(value)
    }

    /// A number as Go's protojson writes a float: integers without a fraction, others in the shortest form.
    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    mutating func flag(_ flag: TestData.Flag, segments: [String: TestData.Segment]) {
        raw("{")
        member("key", flag.key, first: true)
        member("name", flag.name)
        member("description", flag.description)
        member("enabled", literal: flag.isEnabled ? "true" : "false")
        member("type", flag.kind == .boolean ? "BOOLEAN_FLAG_TYPE" : "VARIANT_FLAG_TYPE")
        raw(#","rules":["#)
        for (number, rule) in flag.rules.enumerated() {
            if number > 0 { raw(",") }
            let ruleID = "\(flag.key)/rule-\(number + 1)"
            raw("{")
            member("id", ruleID, first: true)
            member("rank", literal: String(number + 1))
            member("segmentOperator", Self.operatorName(rule.combination))
            raw(#","segments":"#)
            self.segments(rule.segmentKeys, from: segments)
            raw(#","distributions":["#)
            for (position, distribution) in rule.distributions.enumerated() {
                if position > 0 { raw(",") }
                let attachment = flag.variants.first { $0.key == distribution.variantKey }?.attachment ?? ""
                raw("{")
                member("ruleId", ruleID, first: true)
                member("variantKey", distribution.variantKey)
                member("variantAttachment", attachment)
                member("rollout", literal: Self.number(distribution.percentage))
                raw("}")
            }
            raw("]}")
        }
        raw(#"],"rollouts":["#)
        for (number, rollout) in flag.rollouts.enumerated() {
            if number > 0 { raw(",") }
            raw("{")
            switch rollout.kind {
            case .threshold(let percentage):
                member("type", "THRESHOLD_ROLLOUT_TYPE", first: true)
                member("rank", literal: String(number + 1))
                member("description", "")
                raw(#","threshold":{"percentage":"#)
                raw(Self.number(percentage))
                member("value", literal: rollout.value ? "true" : "false")
                raw("}")
            case .segments(let keys, let combination):
                member("type", "SEGMENT_ROLLOUT_TYPE", first: true)
                member("rank", literal: String(number + 1))
                member("description", "")
                raw(#","segment":{"value":"#)
                raw(rollout.value ? "true" : "false")
                member("segmentOperator", Self.operatorName(combination))
                raw(#","segments":"#)
                self.segments(keys, from: segments)
                raw("}")
            }
            raw("}")
        }
        raw("]")
        if let defaultKey = flag.defaultVariantKey {
            let attachment = flag.variants.first { $0.key == defaultKey }?.attachment ?? ""
            raw(#","defaultVariant":{"#)
            member("id", "\(flag.key)/\(defaultKey)", first: true)
            member("key", defaultKey)
            member("attachment", attachment)
            raw("}")
        }
        raw("}")
    }

    private mutating func segments(_ keys: [String], from segments: [String: TestData.Segment]) {
        raw("[")
        for (position, key) in keys.enumerated() {
            if position > 0 { raw(",") }
            // Validation made sure every key names a segment.
            guard let segment = segments[key] else { continue }
            raw("{")
            member("key", segment.key, first: true)
            member("name", segment.name)
            member("description", segment.description)
            member("matchType", segment.matchType == .all ? "ALL_SEGMENT_MATCH_TYPE" : "ANY_SEGMENT_MATCH_TYPE")
            raw(#","constraints":["#)
            for (number, constraint) in segment.constraints.enumerated() {
                if number > 0 { raw(",") }
                raw("{")
                member("type", constraint.type.rawValue, first: true)
                member("property", constraint.property)
                member("operator", constraint.operator)
                member("value", constraint.value)
                raw("}")
            }
            raw("]}")
        }
        raw("]")
    }

    private static func operatorName(_ combination: TestData.Combination) -> String {
        combination == .and ? "AND_SEGMENT_OPERATOR" : "OR_SEGMENT_OPERATOR"
    }

    /// A JSON array of strings, as Flipt stores an `isoneof` value.
    static func stringArray(_ values: [String]) -> String {
        var text = DocumentText()
        text.raw("[")
        for (position, value) in values.enumerated() {
            if position > 0 { text.raw(",") }
            text.string(value)
        }
        text.raw("]")
        return String(decoding: text.bytes, as: UTF8.self)
    }

    /// RFC 3339 in UTC with whole seconds (`2026-12-06T10:00:00Z`): the precision Flipt's client engine compares.
    static func dateTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let parts = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second],
            from: Date(timeIntervalSince1970: seconds)
        )
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
            parts.year ?? 0,
            parts.month ?? 0,
            parts.day ?? 0,
            parts.hour ?? 0,
            parts.minute ?? 0,
            parts.second ?? 0
        )
    }
}
