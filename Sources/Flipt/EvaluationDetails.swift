import FliptEngine

/// The value of a flag with everything that explains it: why it has that value, the error when the caller's
/// default was returned instead, and where the snapshot that answered came from.
///
/// Returned by ``FliptClient/booleanValueDetails(flagKey:entityID:context:default:hooks:)`` and
/// ``FliptClient/variantKeyDetails(flagKey:entityID:context:default:hooks:)``, the counterparts of LaunchDarkly's
/// `variationDetail` and OpenFeature's `get…Details`. They never throw: on any error ``value`` is the caller's
/// default, ``reason`` is nil, and ``error`` says what happened.
public struct EvaluationDetails<Value: Sendable & Hashable>: Sendable, Hashable {
    /// The key of the flag, as the caller passed it.
    public let flagKey: String
    /// The flag's value for the entity, or the caller's default when ``error`` is set.
    public let value: Value
    /// Why the flag has this value; nil when the caller's default was returned because of an error.
    public let reason: EvaluationReason?
    /// Why the caller's default was returned, or nil when the flag was evaluated.
    public let error: FliptError?
    /// The keys of the segments that matched, in document order; empty when none applied or on error.
    public let segmentKeys: [String]
    /// The chosen variant's attachment (variant flags only), if it has one.
    public let variantAttachment: String?
    /// Where the snapshot that answered came from, and how old it is; ``SnapshotProvenance/noData`` without data.
    public let provenance: SnapshotProvenance

    /// Creates details (for tests; the client makes its own).
    public init(
        flagKey: String,
        value: Value,
        reason: EvaluationReason?,
        error: FliptError? = nil,
        segmentKeys: [String] = [],
        variantAttachment: String? = nil,
        provenance: SnapshotProvenance
    ) {
        self.flagKey = flagKey
        self.value = value
        self.reason = reason
        self.error = error
        self.segmentKeys = segmentKeys
        self.variantAttachment = variantAttachment
        self.provenance = provenance
    }

    /// The code of ``error`` (``FliptError/Code/flagNotFound``, ``FliptError/Code/noData``, …), or nil when the
    /// flag was evaluated.
    public var errorCode: FliptError.Code? { error?.code }

    /// Whether ``value`` is the caller's default because the evaluation failed.
    public var isDefaultValue: Bool { error != nil }
}
