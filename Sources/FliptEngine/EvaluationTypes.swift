/// The type of a flag, with the wire names as raw values.
public enum FlagType: String, Sendable, Hashable, CaseIterable {
    /// A flag whose evaluation returns one of several variants.
    case variant = "VARIANT_FLAG_TYPE"
    /// A flag whose evaluation returns true or false.
    case boolean = "BOOLEAN_FLAG_TYPE"
}

/// Why an evaluation produced its result, with the wire names as raw values.
public enum EvaluationReason: String, Sendable, Hashable, CaseIterable {
    /// A rule (variant) or rollout (boolean) matched.
    case match = "MATCH_EVALUATION_REASON"
    /// Nothing matched; the flag's default applies.
    case `default` = "DEFAULT_EVALUATION_REASON"
    /// The flag is disabled.
    case flagDisabled = "FLAG_DISABLED_EVALUATION_REASON"
    /// Nothing matched and a variant flag has no default variant.
    case unknown = "UNKNOWN_EVALUATION_REASON"
}

/// Why a batch item could not be evaluated, with the wire names as raw values.
public enum ErrorEvaluationReason: String, Sendable, Hashable, CaseIterable {
    /// The flag does not exist in the configured namespace.
    case notFound = "NOT_FOUND_ERROR_EVALUATION_REASON"
    /// Any other failure. The official engine defines it but never produces it.
    case unknown = "UNKNOWN_ERROR_EVALUATION_REASON"
}

/// The kind of one batch response, with the wire names as raw values.
public enum BatchResponseType: String, Sendable, Hashable, CaseIterable {
    /// A variant flag's result.
    case variant = "VARIANT_EVALUATION_RESPONSE_TYPE"
    /// A boolean flag's result.
    case boolean = "BOOLEAN_EVALUATION_RESPONSE_TYPE"
    /// The flag could not be evaluated.
    case error = "ERROR_EVALUATION_RESPONSE_TYPE"
}

/// A failed evaluation. `message` is the official engine's error string, character for character.
package struct EvaluationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, for callers that branch on it.
    package enum Kind: Sendable, Hashable {
        /// The namespace has no flag with the requested key (or the snapshot is of another namespace).
        case flagNotFound
        /// A variant evaluation of a boolean flag, or a boolean evaluation of a variant flag.
        case wrongFlagType
        /// Flags cannot be listed because the snapshot is of another namespace.
        case namespaceMismatch
    }

    /// What went wrong.
    package let kind: Kind
    /// The official engine's message, such as `invalid request: failed to get flag information default/f`.
    package let message: String

    /// Creates an error carrying `message`.
    package init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    package var description: String { message }

    static func flagNotFound(namespace: String, flagKey: String) -> Self {
        Self(kind: .flagNotFound, message: "invalid request: failed to get flag information \(namespace)/\(flagKey)")
    }

    static func notVariant(flagKey: String) -> Self {
        Self(kind: .wrongFlagType, message: "invalid request: \(flagKey) is not a variant flag")
    }

    static func notBoolean(flagKey: String) -> Self {
        Self(kind: .wrongFlagType, message: "invalid request: \(flagKey) is not a boolean flag")
    }

    static func flagsUnavailable(namespace: String) -> Self {
        Self(kind: .namespaceMismatch, message: "unknown error: failed to get flags for \(namespace)")
    }
}

/// A flag's default variant, as the snapshot document declares it.
public struct DefaultVariant: Sendable, Hashable {
    /// The variant's identifier.
    public let id: String
    /// The variant's key.
    public let key: String
    /// The variant's attachment (usually JSON text), if it has one.
    public let attachment: String?

    /// Creates a default variant.
    package init(id: String, key: String, attachment: String?) {
        self.id = id
        self.key = key
        self.attachment = attachment
    }
}

/// One entry of `Evaluator.listFlags()`.
public struct FlagSummary: Sendable, Hashable {
    /// The flag's key.
    public let key: String
    /// Whether the flag is enabled.
    public let isEnabled: Bool
    /// The flag's type; a missing or unknown type in the document reads as `.variant`.
    public let type: FlagType
    /// The flag's description, if the document has one (an empty description is kept).
    public let description: String?
    /// The flag's default variant, if any.
    public let defaultVariant: DefaultVariant?
}

/// The keys of a result's matched segments, held so that making a result retains no list shared with other
/// results: a result that matched one segment (the usual case) holds its key, a `String` that needs no reference
/// count when it is stored inline (15 UTF-8 bytes or fewer), and builds the one-key array when `segmentKeys` is
/// read. Retaining the snapshot's shared one-key array instead wrote a cache line shared with every other result
/// of the flag, cold at 10,000 flags: holding the key took issue18-10000 from 146-157 to 143-155 ns an evaluation,
/// and from 156 to 143-145 ns on each of two threads; issue18-40 stayed level (`flipt-bench engine`, builds
/// alternated).
///
/// Equal, and hashed alike, when the keys are, whatever the form.
enum SegmentKeyStorage: Sendable, Hashable {
    case none
    case one(String)
    case list([String])

    /// The keys, in order.
    var keys: [String] {
        switch self {
        case .none: []
        case .one(let key): [key]
        case .list(let keys): keys
        }
    }

    /// How many keys there are.
    var count: Int {
        switch self {
        case .none: 0
        case .one: 1
        case .list(let keys): keys.count
        }
    }

    /// Calls `body` with each key, in order.
    @inline(__always)
    func forEachKey(_ body: (String) throws -> Void) rethrows {
        switch self {
        case .none: return
        case .one(let key): try body(key)
        case .list(let keys): for key in keys { try body(key) }
        }
    }

    static func == (lhs: SegmentKeyStorage, rhs: SegmentKeyStorage) -> Bool {
        switch (lhs, rhs) {
        case (.none, .none): true
        case (.one(let left), .one(let right)): left == right
        case (.list(let left), .list(let right)): left == right
        default: lhs.count == rhs.count && lhs.keys == rhs.keys
        }
    }

    /// Hashes as an array of the keys does.
    func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        forEachKey { hasher.combine($0) }
    }
}

/// The result of evaluating a variant flag.
public struct VariantResult: Sendable, Hashable {
    /// The key of the evaluated flag.
    public let flagKey: String
    /// Whether a rule matched.
    public let isMatch: Bool
    /// The keys of the matched segments of the rule that applied, in document order; empty when none applied.
    ///
    /// A result that matched one segment holds its key and makes this one-element array each time it is read:
    /// read it once and keep the array when it is used in a loop.
    public var segmentKeys: [String] { matchedSegments.keys }
    /// What `segmentKeys` is made from.
    let matchedSegments: SegmentKeyStorage
    /// Why this result was produced.
    public let reason: EvaluationReason
    /// The chosen variant's key; the default variant's key, or `""`, when no distribution chose one.
    public let variantKey: String
    /// The chosen variant's attachment, if it has one.
    public let variantAttachment: String?
    /// How long the evaluation took, in whole milliseconds.
    public let requestDurationMillis: Double
    /// When the evaluation happened.
    public let evaluatedAt: EvaluationTimestamp

    /// `evaluatedAt` in RFC 3339 form, UTC, with `Z`, for example `2026-11-24T22:41:50.331507641Z`.
    public var timestamp: String { evaluatedAt.rfc3339 }
}

/// The result of evaluating a boolean flag.
public struct BooleanResult: Sendable, Hashable {
    /// The key of the evaluated flag.
    public let flagKey: String
    /// The flag's value for this entity.
    public let isEnabled: Bool
    /// Why this result was produced.
    public let reason: EvaluationReason
    /// The keys of the matched segments of the segment rollout that applied, in document order; else empty.
    ///
    /// A result that matched one segment holds its key and makes this one-element array each time it is read:
    /// read it once and keep the array when it is used in a loop.
    public var segmentKeys: [String] { matchedSegments.keys }
    /// What `segmentKeys` is made from.
    let matchedSegments: SegmentKeyStorage
    /// How long the evaluation took, in whole milliseconds.
    public let requestDurationMillis: Double
    /// When the evaluation happened.
    public let evaluatedAt: EvaluationTimestamp

    /// `evaluatedAt` in RFC 3339 form, UTC, with `Z`.
    public var timestamp: String { evaluatedAt.rfc3339 }
}

/// A batch item that could not be evaluated.
public struct BatchErrorResult: Sendable, Hashable {
    /// The flag key exactly as requested.
    public let flagKey: String
    /// The configured namespace.
    public let namespaceKey: String
    /// Why the item could not be evaluated.
    public let reason: ErrorEvaluationReason
}

/// One response in a batch, in the order of the requests.
public enum BatchResponse: Sendable, Hashable {
    /// The flag is a variant flag; its result.
    case variant(VariantResult)
    /// The flag is a boolean flag; its result.
    case boolean(BooleanResult)
    /// The flag could not be evaluated.
    case error(BatchErrorResult)

    /// The wire type of this response.
    public var type: BatchResponseType {
        switch self {
        case .variant: .variant
        case .boolean: .boolean
        case .error: .error
        }
    }
}

/// The result of a batch evaluation.
public struct BatchResult: Sendable, Hashable {
    /// One response per request, in request order.
    public let responses: [BatchResponse]
    /// How long the whole batch took, in whole milliseconds.
    public let requestDurationMillis: Double
}

/// One request of a batch.
public struct EvaluationRequest: Sendable, Hashable {
    /// The key of the flag to evaluate (compared byte for byte).
    public var flagKey: String
    /// The entity the flag is evaluated for.
    public var entityID: String
    /// The entity's properties.
    public var context: EvaluationContext

    /// Creates a request.
    public init(flagKey: String, entityID: String, context: EvaluationContext = [:]) {
        self.flagKey = flagKey
        self.entityID = entityID
        self.context = context
    }
}
