import Foundation

extension TestData {
    /// A segment: entities whose context satisfies all (or any) of its constraints.
    ///
    /// ```swift
    /// try data.update(.all("adult-pros", .string("plan", .equals("pro")), .number("age", .greaterThanOrEqual(18))))
    /// try data.update(.any("staff", .entityID(.isOneOf(["u1", "u2"])), .boolean("employee", .isTrue)))
    /// ```
    ///
    /// A segment with no constraints matches every entity.
    public struct Segment: Sendable, Hashable {
        /// Whether an entity must satisfy every constraint or one of them.
        public enum MatchType: Sendable, Hashable {
            /// Every constraint must hold.
            case all
            /// At least one constraint must hold.
            case any
        }

        /// The key rules and rollouts name.
        public var key: String
        /// A name for people (not used by evaluation).
        public var name: String
        /// A description for people (not used by evaluation).
        public var description: String
        /// All or any.
        public var matchType: MatchType
        /// The constraints, checked in order.
        public var constraints: [Constraint]

        /// Creates a segment.
        public init(key: String, matchType: MatchType, constraints: [Constraint], name: String? = nil) {
            self.key = key
            self.name = name ?? key
            self.description = ""
            self.matchType = matchType
            self.constraints = constraints
        }

        /// A segment of the entities that satisfy every one of `constraints`.
        public static func all(_ key: String, _ constraints: Constraint...) -> Segment {
            Segment(key: key, matchType: .all, constraints: constraints)
        }

        /// A segment of the entities that satisfy at least one of `constraints`.
        public static func any(_ key: String, _ constraints: Constraint...) -> Segment {
            Segment(key: key, matchType: .any, constraints: constraints)
        }
    }

    /// A condition on one context property (or on the entity id), with the comparisons Flipt offers for its type.
    ///
    /// Properties and values are compared byte for byte, with no trimming or case folding. A missing property
    /// reads as the empty string. Numbers are 32-bit integers, as in Flipt's client engine (a context value such
    /// as `"3.5"` satisfies no number comparison); date-times are compared in whole seconds.
    public struct Constraint: Sendable, Hashable {
        /// The type of comparison, with the wire names as raw values.
        public enum ComparisonType: String, Sendable, Hashable, CaseIterable {
            /// Strings.
            case string = "STRING_CONSTRAINT_COMPARISON_TYPE"
            /// 32-bit integers.
            case number = "NUMBER_CONSTRAINT_COMPARISON_TYPE"
            /// `true` or `false`.
            case boolean = "BOOLEAN_CONSTRAINT_COMPARISON_TYPE"
            /// RFC 3339 date-times.
            case dateTime = "DATETIME_CONSTRAINT_COMPARISON_TYPE"
            /// The entity id, compared as a string (the property is not used).
            case entityID = "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"
        }

        /// The type of comparison.
        public var type: ComparisonType
        /// The context property compared (empty for ``ComparisonType/entityID``).
        public var property: String
        /// Flipt's operator name, such as `eq`, `isoneof` or `gte`.
        public var `operator`: String
        /// The value compared against, as Flipt stores it (a JSON array for `isoneof`/`isnotoneof`).
        public var value: String

        /// A constraint in Flipt's own terms, for operators and values the typed forms do not produce; it evaluates
        /// as Flipt's client engine evaluates it (an operator it does not know never matches).
        public init(type: ComparisonType, property: String, operator: String, value: String) {
            self.type = type
            self.property = property
            self.operator = `operator`
            self.value = value
        }

        /// A string comparison of the context property `property`.
        public static func string(_ property: String, _ comparison: StringComparison) -> Constraint {
            let (name, value) = comparison.wire
            return Constraint(type: .string, property: property, operator: name, value: value)
        }

        /// A string comparison of the entity id.
        public static func entityID(_ comparison: StringComparison) -> Constraint {
            let (name, value) = comparison.wire
            return Constraint(type: .entityID, property: "", operator: name, value: value)
        }

        /// A number comparison of the context property `property` (its value must be a 32-bit integer in decimal).
        public static func number(_ property: String, _ comparison: NumberComparison) -> Constraint {
            let (name, value) = comparison.wire
            return Constraint(type: .number, property: property, operator: name, value: value)
        }

        /// A boolean comparison of the context property `property` (its value must be `true` or `false`).
        public static func boolean(_ property: String, _ comparison: BooleanComparison) -> Constraint {
            let (name, value) = comparison.wire
            return Constraint(type: .boolean, property: property, operator: name, value: value)
        }

        /// A date-time comparison of the context property `property` (its value must be RFC 3339 with an offset,
        /// such as `2026-12-06T10:00:00Z`).
        public static func dateTime(_ property: String, _ comparison: DateTimeComparison) -> Constraint {
            let (name, value) = comparison.wire
            return Constraint(type: .dateTime, property: property, operator: name, value: value)
        }
    }

    /// A comparison of a string (a context property, or the entity id).
    public enum StringComparison: Sendable, Hashable {
        /// Equal to the value (`eq`).
        case equals(String)
        /// Not equal to the value, and not empty (`neq`).
        case notEquals(String)
        /// Empty or missing (`empty`).
        case isEmpty
        /// Not empty (`notempty`).
        case isNotEmpty
        /// Starts with the value (`prefix`).
        case hasPrefix(String)
        /// Ends with the value (`suffix`).
        case hasSuffix(String)
        /// Contains the value (`contains`).
        case contains(String)
        /// Does not contain the value, and not empty (`notcontains`).
        case notContains(String)
        /// One of the values (`isoneof`). A value with a `"`, `\` or control character makes Flipt's client engine
        /// reject the whole list (it then never matches); this form writes the list as Flipt does.
        case isOneOf([String])
        /// None of the values, and not empty (`isnotoneof`).
        case isNotOneOf([String])

        var wire: (String, String) {
            switch self {
            case .equals(let value): ("eq", value)
            case .notEquals(let value): ("neq", value)
            case .isEmpty: ("empty", "")
            case .isNotEmpty: ("notempty", "")
            case .hasPrefix(let value): ("prefix", value)
            case .hasSuffix(let value): ("suffix", value)
            case .contains(let value): ("contains", value)
            case .notContains(let value): ("notcontains", value)
            case .isOneOf(let values): ("isoneof", DocumentText.stringArray(values))
            case .isNotOneOf(let values): ("isnotoneof", DocumentText.stringArray(values))
            }
        }
    }

    /// A comparison of a number (a 32-bit integer).
    public enum NumberComparison: Sendable, Hashable {
        /// Equal (`eq`).
        case equals(Int32)
        /// Not equal (`neq`).
        case notEquals(Int32)
        /// Less than (`lt`).
        case lessThan(Int32)
        /// Less than or equal (`lte`).
        case lessThanOrEqual(Int32)
        /// Greater than (`gt`).
        case greaterThan(Int32)
        /// Greater than or equal (`gte`).
        case greaterThanOrEqual(Int32)
        /// One of the values (`isoneof`).
        case isOneOf([Int32])
        /// None of the values (`isnotoneof`).
        case isNotOneOf([Int32])
        /// Present: not empty (`present`).
        case isPresent
        /// Missing or empty (`notpresent`).
        case isNotPresent

        var wire: (String, String) {
            func list(_ values: [Int32]) -> String { "[" + values.map(String.init).joined(separator: ",") + "]" }
            return switch self {
            case .equals(let value): ("eq", String(value))
            case .notEquals(let value): ("neq", String(value))
            case .lessThan(let value): ("lt", String(value))
            case .lessThanOrEqual(let value): ("lte", String(value))
            case .greaterThan(let value): ("gt", String(value))
            case .greaterThanOrEqual(let value): ("gte", String(value))
            case .isOneOf(let values): ("isoneof", list(values))
            case .isNotOneOf(let values): ("isnotoneof", list(values))
            case .isPresent: ("present", "")
            case .isNotPresent: ("notpresent", "")
            }
        }
    }

    /// A comparison of a boolean (`true` or `false`, exactly).
    public enum BooleanComparison: Sendable, Hashable {
        /// The value is `true` (`true`).
        case isTrue
        /// The value is `false` (`false`).
        case isFalse
        /// Present: not empty (`present`).
        case isPresent
        /// Missing or empty (`notpresent`).
        case isNotPresent

        var wire: (String, String) {
            switch self {
            case .isTrue: ("true", "")
            case .isFalse: ("false", "")
            case .isPresent: ("present", "")
            case .isNotPresent: ("notpresent", "")
            }
        }
    }

    /// A comparison of a date-time, in whole seconds.
    public enum DateTimeComparison: Sendable, Hashable {
        /// The same second (`eq`).
        case equals(Date)
        /// Another second (`neq`).
        case notEquals(Date)
        /// Before (`lt`).
        case before(Date)
        /// Before or the same second (`lte`).
        case notAfter(Date)
        /// After (`gt`).
        case after(Date)
        /// After or the same second (`gte`).
        case notBefore(Date)
        /// Present: not empty (`present`).
        case isPresent
        /// Missing or empty (`notpresent`).
        case isNotPresent

        var wire: (String, String) {
            switch self {
            case .equals(let date): ("eq", DocumentText.dateTime(date))
            case .notEquals(let date): ("neq", DocumentText.dateTime(date))
            case .before(let date): ("lt", DocumentText.dateTime(date))
            case .notAfter(let date): ("lte", DocumentText.dateTime(date))
            case .after(let date): ("gt", DocumentText.dateTime(date))
            case .notBefore(let date): ("gte", DocumentText.dateTime(date))
            case .isPresent: ("present", "")
            case .isNotPresent: ("notpresent", "")
            }
        }
    }
}
