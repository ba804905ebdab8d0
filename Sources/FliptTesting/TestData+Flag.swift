import Flipt

extension TestData {
    /// A flag: a variant flag with variants, a default variant and rules, or a boolean flag with a default value
    /// and rollouts. Build one with ``variant(_:variants:default:enabled:)`` or ``boolean(_:value:)``, then add
    /// rules or rollouts with the methods that return a modified copy.
    ///
    /// ```swift
    /// let checkout = TestData.Flag.variant("checkout", variants: ["classic", "express"], default: "classic")
    ///     .rule(matching: ["beta"], distribution: ["express": 50, "classic": 50])
    /// let darkMode = TestData.Flag.boolean("dark-mode", value: false)
    ///     .rollout(matching: ["staff"], value: true)
    ///     .rollout(percentage: 25, value: true)
    /// ```
    public struct Flag: Sendable, Hashable {
        /// Whether the flag returns a variant or a boolean.
        public enum Kind: Sendable, Hashable {
            /// A flag whose evaluation returns one of its variants.
            case variant
            /// A flag whose evaluation returns true or false.
            case boolean
        }

        /// The key evaluations name.
        public var key: String
        /// A name for people (not used by evaluation).
        public var name: String
        /// A description, shown by ``Flipt/FliptClient/listFlags()``.
        public var description: String
        /// For a variant flag, whether rules are evaluated (disabled: the default variant with reason
        /// `FLAG_DISABLED`); for a boolean flag, the value when no rollout matches.
        public var isEnabled: Bool
        /// Variant or boolean.
        public var kind: Kind
        /// The variants a variant flag can return.
        public var variants: [Variant]
        /// The key of the variant returned when no rule matches, if any.
        public var defaultVariantKey: String?
        /// A variant flag's rules, evaluated in order; the first that matches decides.
        public var rules: [Rule]
        /// A boolean flag's rollouts, evaluated in order; the first that matches decides.
        public var rollouts: [Rollout]

        /// A variant flag.
        ///
        /// - Parameters:
        ///   - key: the flag's key.
        ///   - variants: the variants it can return (a string literal is a variant without attachment).
        ///   - defaultVariant: the key of the variant returned when no rule matches; nil for none (evaluations
        ///     that match nothing then return an empty variant key with reason `UNKNOWN`).
        ///   - enabled: false for a disabled flag.
        public static func variant(
            _ key: String,
            variants: [Variant],
            default defaultVariant: String? = nil,
            enabled: Bool = true
        ) -> Flag {
            Flag(
                key: key,
                name: key,
                description: "",
                isEnabled: enabled,
                kind: .variant,
                variants: variants,
                defaultVariantKey: defaultVariant,
                rules: [],
                rollouts: []
            )
        }

        /// A boolean flag whose value is `value` for every entity until rollouts say otherwise.
        public static func boolean(_ key: String, value: Bool = true) -> Flag {
            Flag(
                key: key,
                name: key,
                description: "",
                isEnabled: value,
                kind: .boolean,
                variants: [],
                defaultVariantKey: nil,
                rules: [],
                rollouts: []
            )
        }

        /// A copy with `description`.
        public func described(_ description: String) -> Flag {
            var copy = self
            copy.description = description
            return copy
        }

        /// A copy with ``isEnabled`` set to `enabled`.
        public func enabled(_ enabled: Bool) -> Flag {
            var copy = self
            copy.isEnabled = enabled
            return copy
        }

        /// A copy with `rule` added after the existing rules (variant flags).
        public func rule(_ rule: Rule) -> Flag {
            var copy = self
            copy.rules.append(rule)
            return copy
        }

        /// A copy with a rule that serves `variantKey` to entities in the segments `segmentKeys` (any of them, or
        /// all with `.and`).
        public func rule(
            matching segmentKeys: [String],
            _ combination: Combination = .or,
            serve variantKey: String
        )
            -> Flag
        {
            rule(
                Rule(segmentKeys: segmentKeys, combination: combination, distributions: [Distribution(variantKey, 100)])
            )
        }

        /// A copy with a rule that splits the entities in the segments `segmentKeys` between variants by
        /// percentage, in the order given (the order decides which entities get which variant).
        public func rule(
            matching segmentKeys: [String],
            _ combination: Combination = .or,
            distribution: KeyValuePairs<String, Double>
        ) -> Flag {
            rule(
                Rule(
                    segmentKeys: segmentKeys,
                    combination: combination,
                    distributions: distribution.map { Distribution($0.key, $0.value) }
                )
            )
        }

        /// A copy with `rollout` added after the existing rollouts (boolean flags).
        public func rollout(_ rollout: Rollout) -> Flag {
            var copy = self
            copy.rollouts.append(rollout)
            return copy
        }

        /// A copy with a rollout that gives `value` to entities in the segments `segmentKeys` (any of them, or all
        /// with `.and`).
        public func rollout(matching segmentKeys: [String], _ combination: Combination = .or, value: Bool) -> Flag {
            rollout(.segments(segmentKeys, combination, value: value))
        }

        /// A copy with a rollout that gives `value` to `percentage` percent of entities (0…100), chosen by a hash of
        /// the entity id and the flag key.
        public func rollout(percentage: Double, value: Bool) -> Flag {
            rollout(.threshold(percentage: percentage, value: value))
        }

        /// The keys of the segments the rules and rollouts use.
        var segmentKeys: Set<String> {
            var keys = Set(rules.flatMap(\.segmentKeys))
            for rollout in rollouts {
                if case .segments(let segmentKeys, _) = rollout.kind { keys.formUnion(segmentKeys) }
            }
            return keys
        }

        /// Checks what Flipt would check before storing the flag.
        func validate(segments: [String: Segment]) throws(FliptError) {
            func problem(_ text: String) -> FliptError {
                FliptError(.invalidConfiguration, "Flag \"\(key)\": \(text)")
            }
            guard !key.isEmpty else {
                throw FliptError(.invalidConfiguration, "A flag needs a key; pass a non-empty one.")
            }
            var variantKeys: Set<String> = []
            for variant in variants {
                guard !variant.key.isEmpty else {
                    throw problem("a variant has an empty key; give each variant a key.")
                }
                guard variantKeys.insert(variant.key).inserted else {
                    throw problem("variant \"\(variant.key)\" appears twice; variant keys must be distinct.")
                }
            }
            if let defaultVariantKey, !variantKeys.contains(defaultVariantKey) {
                throw problem("the default variant \"\(defaultVariantKey)\" is not one of its variants.")
            }
            for missing in segmentKeys.sorted() where segments[missing] == nil {
                throw problem("segment \"\(missing)\" does not exist; add it with TestData.update(_:) first.")
            }
            if kind == .boolean && !rules.isEmpty {
                throw problem("a boolean flag has rollouts, not rules; use rollout(…).")
            }
            if kind == .variant && !rollouts.isEmpty {
                throw problem("a variant flag has rules, not rollouts; use rule(…).")
            }
            for (number, rule) in rules.enumerated() {
                var total = 0.0
                for distribution in rule.distributions {
                    guard variantKeys.contains(distribution.variantKey) else {
                        throw problem(
                            "rule \(number + 1) serves \"\(distribution.variantKey)\", not one of its variants."
                        )
                    }
                    guard (0...100).contains(distribution.percentage) else {
                        throw problem("rule \(number + 1) gives \(distribution.percentage) %; use 0…100.")
                    }
                    total += distribution.percentage
                }
                guard total <= 100.000_001 else {
                    throw problem("rule \(number + 1) distributes \(total) %, more than 100.")
                }
            }
            for (number, rollout) in rollouts.enumerated() {
                if case .threshold(let percentage) = rollout.kind, !(0...100).contains(percentage) {
                    throw problem("rollout \(number + 1) has \(percentage) %; use 0…100.")
                }
            }
        }
    }

    /// A variant of a variant flag, with an optional attachment (usually JSON) returned with it.
    public struct Variant: Sendable, Hashable, ExpressibleByStringLiteral {
        /// The key evaluations return.
        public var key: String
        /// The attachment returned with the variant, if any.
        public var attachment: String?

        /// A variant `key` with an optional `attachment`.
        public init(_ key: String, attachment: String? = nil) {
            self.key = key
            self.attachment = attachment
        }

        /// A variant without attachment, written as its key.
        public init(stringLiteral key: String) {
            self.init(key)
        }
    }

    /// How a rule or a segment rollout combines its segments.
    public enum Combination: Sendable, Hashable {
        /// The entity is in at least one of the segments.
        case or
        /// The entity is in every one of the segments.
        case and
    }

    /// A variant flag's rule: the segments it matches and how it distributes the matching entities.
    public struct Rule: Sendable, Hashable {
        /// The keys of the segments (added with ``TestData/update(_:)-(Segment)``).
        public var segmentKeys: [String]
        /// Whether an entity must be in any or all of the segments.
        public var combination: Combination
        /// The variants served, in order; none serves the default variant.
        public var distributions: [Distribution]

        /// Creates a rule.
        public init(segmentKeys: [String], combination: Combination = .or, distributions: [Distribution]) {
            self.segmentKeys = segmentKeys
            self.combination = combination
            self.distributions = distributions
        }
    }

    /// A share of a rule's entities that gets one variant.
    public struct Distribution: Sendable, Hashable {
        /// The key of the variant.
        public var variantKey: String
        /// The share, in percent (0…100).
        public var percentage: Double

        /// `percentage` percent of the rule's entities get `variantKey`.
        public init(_ variantKey: String, _ percentage: Double) {
            self.variantKey = variantKey
            self.percentage = percentage
        }
    }

    /// A boolean flag's rollout: a percentage of entities, or the entities in some segments, get a value.
    public struct Rollout: Sendable, Hashable {
        /// Which entities the rollout applies to.
        public enum Kind: Sendable, Hashable {
            /// A percentage (0…100) of entities, by a hash of the entity id and the flag key.
            case threshold(percentage: Double)
            /// The entities in the segments with these keys, combined with or or and.
            case segments([String], Combination)
        }

        /// Which entities it applies to.
        public var kind: Kind
        /// The value those entities get.
        public var value: Bool

        /// `percentage` percent of entities get `value`.
        public static func threshold(percentage: Double, value: Bool) -> Rollout {
            Rollout(kind: .threshold(percentage: percentage), value: value)
        }

        /// Entities in any (`.or`) or all (`.and`) of the segments `segmentKeys` get `value`.
        public static func segments(_ segmentKeys: [String], _ combination: Combination = .or, value: Bool) -> Rollout {
            Rollout(kind: .segments(segmentKeys, combination), value: value)
        }
    }
}
