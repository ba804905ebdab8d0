import Foundation

/// The snapshot documents the soak server serves. Every answer of the soak client tells which one it came from.
///
/// Revision N has a variant flag `revision` (default variant `r<N>`; a rule on `plan` = `gold` gives `g<N>`), a
/// boolean flag `parity` (true when N is even) and 10–39 filler flags, so that sizes vary between revisions. Bad
/// documents carry revisions from ``badRevisionBase`` up, so that an answer from one is recognised at once.
enum SoakDocument {
    /// Revisions at or above this one only ever appear in documents the client must reject.
    static let badRevisionBase = 100_000

    /// What is wrong with a bad document.
    enum Defect: CaseIterable, CustomStringConvertible {
        /// The body stops in the middle of the JSON.
        case truncatedJSON
        /// Well-formed JSON, but a flag lacks its required `enabled` field.
        case missingField
        /// A valid document of another namespace.
        case otherNamespace

        var description: String {
            switch self {
            case .truncatedJSON: "truncated JSON"
            case .missingField: "schema-invalid"
            case .otherNamespace: "other namespace"
            }
        }
    }

    /// A valid document of namespace `default` at `revision`.
    static func valid(revision: Int) -> [UInt8] {
        Array(json(revision: revision, namespace: "default", omitEnabled: false).utf8)
    }

    /// A document the client must reject.
    static func bad(_ defect: Defect, revision: Int) -> [UInt8] {
        switch defect {
        case .truncatedJSON:
            let text = json(revision: revision, namespace: "default", omitEnabled: false)
            return Array(text.utf8.prefix(text.utf8.count * 2 / 3))
        case .missingField:
            return Array(json(revision: revision, namespace: "default", omitEnabled: true).utf8)
        case .otherNamespace:
            return Array(json(revision: revision, namespace: "other", omitEnabled: false).utf8)
        }
    }

    private static func json(revision: Int, namespace: String, omitEnabled: Bool) -> String {
        let gold = """
            {"key":"gold","name":"Gold","description":"","matchType":"ALL_SEGMENT_MATCH_TYPE",\
            "constraints":[{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"plan","operator":"eq",\
            "value":"gold"}]}
            """
        var flags = [
            """
            {"key":"revision","name":"Revision","description":"revision \(revision)","enabled":true,\
            "type":"VARIANT_FLAG_TYPE","rules":[{"id":"rule-gold","rank":1,"segmentOperator":"OR_SEGMENT_OPERATOR",\
            "segments":[\(gold)],"distributions":[{"ruleId":"rule-gold","variantKey":"g\(revision)",\
            "variantAttachment":"{\\"revision\\":\(revision)}","rollout":100}]}],"rollouts":[],\
            "defaultVariant":{"id":"default-\(revision)","key":"r\(revision)","attachment":""}}
            """,
            """
            {"key":"parity","name":"Parity","description":"",\(omitEnabled ? "" : "\"enabled\":true,")\
            "type":"BOOLEAN_FLAG_TYPE","rules":[],"rollouts":[{"type":"THRESHOLD_ROLLOUT_TYPE","rank":1,\
            "threshold":{"percentage":100,"value":\(revision % 2 == 0)}}]}
            """,
        ]
        let fillers = 10 + (revision &* 7) % 30
        for index in 0..<fillers {
            flags.append(
                """
                {"key":"filler\(index)","name":"Filler \(index)","description":"filler flag \(index)",\
                "enabled":\(index % 5 != 0),"type":"VARIANT_FLAG_TYPE","rules":[{"id":"f\(index)","rank":1,\
                "segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\(gold)],"distributions":[\
                {"ruleId":"f\(index)","variantKey":"on","variantAttachment":"","rollout":50},\
                {"ruleId":"f\(index)","variantKey":"off","variantAttachment":"","rollout":50}]}],"rollouts":[]}
                """
            )
        }
        return "{\"namespace\":{\"key\":\"\(namespace)\"},\"flags\":[\(flags.joined(separator: ","))]}"
    }

    /// The revision of a document (the default variant of `revision`), or nil when it has none.
    static func revision(of document: Data) -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: document) as? [String: Any],
            let flags = object["flags"] as? [[String: Any]],
            let flag = flags.first(where: { $0["key"] as? String == "revision" }),
            let variant = flag["defaultVariant"] as? [String: Any],
            let key = variant["key"] as? String, key.hasPrefix("r")
        else { return nil }
        return Int(key.dropFirst())
    }
}
