import Foundation

/// The flag-by-flag differences between two snapshot documents, summarised for people and scripts.
///
/// Both documents must already have been accepted by the engine; this reads them as plain JSON. Flags are
/// matched by key (a later flag with a repeated key replaces the earlier one, as in the engine), rules and
/// rollouts by position, which is their evaluation order.
struct SnapshotDiff {
    /// A flag as the diff sees it.
    struct FlagFacts {
        var key: String
        var type: String
        var isEnabled: Bool
        var name: String?
        var description: String?
        var defaultVariant: String?
        var rules: [[String: Any]]
        var rollouts: [[String: Any]]
        var canonical: String

        var json: JSONValue {
            .object([("key", .string(key)), ("type", .string(type)), ("enabled", .bool(isEnabled))])
        }
    }

    /// One difference within a flag.
    struct Detail {
        /// `enabled`, `type`, `name`, `description`, `default_variant`, `rules`, `rollouts` or `other`.
        var aspect: String
        /// The difference in words: `enabled: true → false`.
        var text: String
        var from: JSONValue = .null
        var to: JSONValue = .null

        var json: JSONValue {
            .object([("aspect", .string(aspect)), ("from", from), ("to", to), ("summary", .string(text))])
        }
    }

    /// A flag present in both documents, with what changed.
    struct Change {
        var key: String
        var type: String
        var details: [Detail]
    }

    var added: [FlagFacts] = []
    var removed: [FlagFacts] = []
    var changed: [Change] = []
    var unchanged = 0

    /// Compares the flags of two documents.
    init(from old: Data, to new: Data) throws {
        let before = try Self.flags(in: old)
        let after = try Self.flags(in: new)
        let beforeByKey = Dictionary(before.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        let afterByKey = Dictionary(after.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        for flag in after where beforeByKey[flag.key] == nil {
            added.append(flag)
        }
        for flag in before {
            guard let newer = afterByKey[flag.key] else {
                removed.append(flag)
                continue
            }
            if flag.canonical == newer.canonical {
                unchanged += 1
            } else {
                changed.append(Change(key: flag.key, type: newer.type, details: Self.details(flag, newer)))
            }
        }
    }

    /// Whether the documents hold the same flags with the same definitions.
    var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    // MARK: Reading

    private static func flags(in document: Data) throws -> [FlagFacts] {
        guard let root = try JSONSerialization.jsonObject(with: document) as? [String: Any] else {
            throw CommandFailure(ExitStatus.invalidDocument, "a snapshot document is not a JSON object")
        }
        var order: [String] = []
        var byKey: [String: FlagFacts] = [:]
        for case let flag as [String: Any] in root["flags"] as? [Any] ?? [] {
            guard let key = flag["key"] as? String else { continue }
            if byKey[key] == nil { order.append(key) }
            let defaultVariant = flag["defaultVariant"] as? [String: Any]
            byKey[key] = FlagFacts(
                key: key,
                type: flag["type"] as? String == "BOOLEAN_FLAG_TYPE" ? "boolean" : "variant",
                isEnabled: flag["enabled"] as? Bool ?? false,
                name: flag["name"] as? String,
                description: flag["description"] as? String,
                defaultVariant: defaultVariant?["key"] as? String,
                rules: (flag["rules"] as? [Any] ?? []).compactMap { $0 as? [String: Any] },
                rollouts: (flag["rollouts"] as? [Any] ?? []).compactMap { $0 as? [String: Any] },
                canonical: canonical(flag)
            )
        }
        return order.compactMap { byKey[$0] }
    }

    /// JSON text with sorted keys, so that equal values compare equal whatever their member order.
    private static func canonical(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "null" }
        guard
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Comparing

    private static func details(_ old: FlagFacts, _ new: FlagFacts) -> [Detail] {
        var details: [Detail] = []
        if old.isEnabled != new.isEnabled {
            details.append(
                Detail(
                    aspect: "enabled",
                    text: new.isEnabled ? "enabled (was disabled)" : "disabled (was enabled)",
                    from: .bool(old.isEnabled),
                    to: .bool(new.isEnabled)
                )
            )
        }
        if old.type != new.type {
            details.append(
                Detail(
                    aspect: "type",
                    text: "type: \(old.type) → \(new.type)",
                    from: .string(old.type),
                    to: .string(new.type)
                )
            )
        }
        if old.defaultVariant != new.defaultVariant {
            details.append(
                Detail(
                    aspect: "default_variant",
                    text: "default variant: \(old.defaultVariant ?? "(none)") → \(new.defaultVariant ?? "(none)")",
                    from: .optional(old.defaultVariant),
                    to: .optional(new.defaultVariant)
                )
            )
        }
        if old.name != new.name {
            details.append(
                Detail(
                    aspect: "name",
                    text: "name: \(quoted(old.name)) → \(quoted(new.name))",
                    from: .optional(old.name),
                    to: .optional(new.name)
                )
            )
        }
        if old.description != new.description {
            details.append(
                Detail(
                    aspect: "description",
                    text: "description: \(quoted(old.description)) → \(quoted(new.description))",
                    from: .optional(old.description),
                    to: .optional(new.description)
                )
            )
        }
        details += compare(
            old.rules,
            new.rules,
            noun: "rule",
            aspect: "rules",
            describe: describeRule,
            parts: ruleParts
        )
        details += compare(
            old.rollouts,
            new.rollouts,
            noun: "rollout",
            aspect: "rollouts",
            describe: describeRollout,
            parts: rolloutParts
        )
        if details.isEmpty {
            details.append(
                Detail(aspect: "other", text: "other fields changed (ids, ranks, attachments or extra fields)")
            )
        }
        return details
    }

    /// One labelled part of a rule or rollout, compared on its own (`segments`, `distribution`, …).
    private typealias Part = (label: String, summary: String, canonical: String)

    private static func compare(
        _ old: [[String: Any]],
        _ new: [[String: Any]],
        noun: String,
        aspect: String,
        describe: ([String: Any]) -> String,
        parts: ([String: Any]) -> [Part]
    ) -> [Detail] {
        var details: [Detail] = []
        if old.count != new.count {
            details.append(
                Detail(
                    aspect: aspect,
                    text: "\(aspect): \(old.count) → \(new.count)",
                    from: .int(old.count),
                    to: .int(new.count)
                )
            )
        }
        for index in 0..<max(old.count, new.count) {
            let position = "\(noun) \(index + 1)"
            guard index < old.count else {
                details.append(Detail(aspect: aspect, text: "\(position) added: \(describe(new[index]))"))
                continue
            }
            guard index < new.count else {
                details.append(Detail(aspect: aspect, text: "\(position) removed: \(describe(old[index]))"))
                continue
            }
            guard canonical(old[index]) != canonical(new[index]) else { continue }
            let before = parts(old[index])
            let after = parts(new[index])
            guard before.map(\.label) == after.map(\.label) else {
                details.append(
                    Detail(
                        aspect: aspect,
                        text: "\(position) replaced: \(describe(old[index])); now \(describe(new[index]))"
                    )
                )
                continue
            }
            var described = false
            var reported: Set<String> = []
            for (previous, current) in zip(before, after) where previous.canonical != current.canonical {
                described = true
                let text: String
                if previous.summary == current.summary {
                    text = "\(position) \(current.label) changed (\(current.summary))"
                } else {
                    // A changed segment list also changes the segment definitions: report it once.
                    guard reported.insert("\(previous.summary)→\(current.summary)").inserted else { continue }
                    text = "\(position) \(current.label): \(previous.summary) → \(current.summary)"
                }
                details.append(Detail(aspect: aspect, text: text))
            }
            if !described {
                details.append(Detail(aspect: aspect, text: "\(position): other fields changed (ids, ranks or extras)"))
            }
        }
        return details
    }

    private static func segmentKeys(_ value: Any?) -> String {
        let keys = (value as? [Any] ?? []).compactMap { ($0 as? [String: Any])?["key"] as? String }
        return keys.isEmpty ? "(no segments)" : keys.joined(separator: ", ")
    }

    private static func segmentOperator(_ value: Any?) -> String {
        value as? String == "AND_SEGMENT_OPERATOR" ? "AND" : "OR"
    }

    private static func ruleParts(_ rule: [String: Any]) -> [Part] {
        let distributions = (rule["distributions"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        let split =
            distributions.isEmpty
            ? "(no variants)"
            : distributions.map { "\($0["variantKey"] as? String ?? "?") \(percent($0["rollout"]))" }
                .joined(separator: ", ")
        return [
            ("segments", segmentKeys(rule["segments"]), segmentKeys(rule["segments"])),
            ("segment operator", segmentOperator(rule["segmentOperator"]), segmentOperator(rule["segmentOperator"])),
            ("distribution", split, canonical(rule["distributions"])),
            ("segment definitions", segmentKeys(rule["segments"]), canonical(rule["segments"])),
        ]
    }

    private static func describeRule(_ rule: [String: Any]) -> String {
        let parts = ruleParts(rule)
        return "segments \(parts[0].summary) (\(parts[1].summary)) → \(parts[2].summary)"
    }

    private static func rolloutParts(_ rollout: [String: Any]) -> [Part] {
        let threshold = rollout["threshold"] as? [String: Any]
        let segment = rollout["segment"] as? [String: Any]
        let kind = threshold != nil ? "threshold" : segment != nil ? "segment" : "empty"
        var parts: [Part] = [("kind", kind, kind)]
        if let threshold {
            let summary = "\(percent(threshold["percentage"])) → \(boolText(threshold["value"]))"
            parts.append(("threshold", summary, canonical(threshold)))
        }
        if let segment {
            let keys = segmentKeys(segment["segments"])
            let summary = "\(keys) (\(segmentOperator(segment["segmentOperator"]))) → \(boolText(segment["value"]))"
            parts.append(("segment", summary, canonical(segment)))
        }
        return parts
    }

    private static func describeRollout(_ rollout: [String: Any]) -> String {
        rolloutParts(rollout).dropFirst().map { "\($0.label) \($0.summary)" }.joined(separator: ", ")
    }

    private static func percent(_ value: Any?) -> String {
        let number: Double
        if let value = value as? Double {
            number = value
        } else if let value = value as? Int {
            number = Double(value)
        } else if let value = value as? NSNumber {
            number = value.doubleValue
        } else {
            return "?%"
        }
        return number == number.rounded() && abs(number) < 1e9 ? "\(Int(number))%" : "\(number)%"
    }

    private static func boolText(_ value: Any?) -> String {
        guard let value = value as? Bool else { return "false" }
        return value ? "true" : "false"
    }

    private static func quoted(_ text: String?) -> String {
        guard let text else { return "(none)" }
        return "\"\(text)\""
    }
}
