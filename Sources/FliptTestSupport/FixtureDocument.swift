import FliptFormats
import Foundation

/// Builders of snapshot documents in Flipt v2 wire format, for tests and measurements.
package enum FixtureDocument {
    /// A document for `namespace` with `flagCount` flags: even ones are variant flags with one rule, odd ones are
    /// boolean flags with a segment rollout and a threshold rollout. `revision` changes the descriptions, so each
    /// revision has a different digest.
    package static func json(namespace: String = "default", flagCount: Int = 2, revision: Int = 0) -> String {
        var flags: [String] = []
        flags.reserveCapacity(flagCount)
        let segment = """
            {"key":"segment1","name":"","description":"","matchType":"ANY_SEGMENT_MATCH_TYPE",\
            "constraints":[{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"fizz","operator":"eq",\
            "value":"buzz"}]}
            """
        for index in 0..<flagCount {
            if index % 2 == 0 {
                flags.append(
                    """
                    {"key":"flag\(index)","name":"Flag \(index)","description":"revision \(revision)",\
                    "enabled":true,"type":"VARIANT_FLAG_TYPE","rules":[{"id":"r\(index)","rank":1,\
                    "segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\(segment)],"distributions":[\
                    {"ruleId":"r\(index)","variantKey":"variant1","variantAttachment":"","rollout":100}]}],\
                    "rollouts":[],"defaultVariant":{"id":"v\(index)","key":"variant1","attachment":""}}
                    """
                )
            } else {
                flags.append(
                    """
                    {"key":"flag\(index)","name":"Flag \(index)","description":"revision \(revision)",\
                    "enabled":true,"type":"BOOLEAN_FLAG_TYPE","rules":[],"rollouts":[\
                    {"type":"SEGMENT_ROLLOUT_TYPE","rank":1,"segment":{"value":true,\
                    "segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\(segment)]}},\
                    {"type":"THRESHOLD_ROLLOUT_TYPE","rank":2,"threshold":{"percentage":50,"value":true}}]}
                    """
                )
            }
        }
        return "{\"namespace\":{\"key\":\(JSONString.quoted(namespace))},\"flags\":[\(flags.joined(separator: ","))]}"
    }

    /// The same document as UTF-8 bytes.
    package static func bytes(namespace: String = "default", flagCount: Int = 2, revision: Int = 0) -> [UInt8] {
        Array(json(namespace: namespace, flagCount: flagCount, revision: revision).utf8)
    }
}
