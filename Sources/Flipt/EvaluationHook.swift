import FliptEngine

/// Code that runs around every evaluation of a ``FliptClient``, in the shape of OpenFeature's hooks: for exposure
/// logging, analytics, audit and metrics.
///
/// Register hooks for every evaluation of a client in ``ClientOptions/hooks``, or for one call with the `hooks:`
/// parameter of the evaluation methods. For each evaluation the client calls, in this order:
///
/// 1. ``before(_:)`` of the client's hooks in the order given, then of the call's hooks;
/// 2. the evaluation;
/// 3. ``after(_:result:provenance:)`` when it succeeded, or ``error(_:error:provenance:)`` when it failed, of the
///    call's hooks in reverse order, then of the client's hooks in reverse order;
/// 4. ``finally(_:)`` of every hook, in that same reverse order.
///
/// Every method has an empty default, so a hook implements only the stages it needs. Hooks observe: they cannot
/// change the context, the result or the error (unlike OpenFeature's `before`, which may return a new context),
/// so a hook that misbehaves never changes what the application gets. They run synchronously on the evaluating
/// thread, outside every lock of the client; keep them short and hand slow work (files, network) to another
/// thread, as ``JSONLinesEvaluationExporter`` does. Batch evaluations (``FliptClient/evaluateBatch(requests:)``)
/// do not run hooks.
///
/// A client with no hook (and no evaluation metrics) pays a single branch per evaluation for this feature; a hook
/// that does nothing costs about 1,000 instructions per evaluation today (see the "Hooks, default values and
/// metrics" article for the measured figures).
public protocol EvaluationHook: Sendable {
    /// Runs before the evaluation.
    func before(_ evaluation: EvaluationHookContext)

    /// Runs after a successful evaluation, with its result and where the snapshot that answered came from.
    func after(_ evaluation: EvaluationHookContext, result: some FlagEvaluationResult, provenance: SnapshotProvenance)

    /// Runs after a failed evaluation (no data, a missing flag, a wrong type, a failed fetch under
    /// ``ErrorStrategy/fail``, a stale snapshot under ``StaleBehavior/fail``, an empty key), with the error the
    /// throwing forms throw and the default-value forms replace with the caller's default.
    func error(_ evaluation: EvaluationHookContext, error: FliptError, provenance: SnapshotProvenance)

    /// Runs last, after ``after(_:result:provenance:)`` or ``error(_:error:provenance:)``.
    func finally(_ evaluation: EvaluationHookContext)
}

extension EvaluationHook {
    /// Does nothing.
    public func before(_ evaluation: EvaluationHookContext) {}

    /// Does nothing.
    public func after(
        _ evaluation: EvaluationHookContext,
        result: some FlagEvaluationResult,
        provenance: SnapshotProvenance
    ) {}

    /// Does nothing.
    public func error(_ evaluation: EvaluationHookContext, error: FliptError, provenance: SnapshotProvenance) {}

    /// Does nothing.
    public func finally(_ evaluation: EvaluationHookContext) {}
}

/// What an ``EvaluationHook`` is told about one evaluation: which flag, for whom, and how it was asked.
public struct EvaluationHookContext: Sendable, Hashable {
    /// The namespace of the client that evaluates.
    public let namespace: String
    /// The key of the flag, as the caller passed it.
    public let flagKey: String
    /// The entity the flag is evaluated for.
    public let entityID: String
    /// The entity's properties.
    public let context: EvaluationContext
    /// The type of flag the caller asked for (``FlagType/variant`` or ``FlagType/boolean``).
    public let flagType: FlagType
    /// The caller's default for the default-value forms (``FliptClient/booleanValue(flagKey:entityID:context:default:hooks:)``
    /// and the like); nil for the throwing forms.
    public let defaultValue: FlagValue?

    /// Creates a hook context (for tests of a hook; the client makes its own).
    public init(
        namespace: String,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        flagType: FlagType,
        defaultValue: FlagValue? = nil
    ) {
        self.namespace = namespace
        self.flagKey = flagKey
        self.entityID = entityID
        self.context = context
        self.flagType = flagType
        self.defaultValue = defaultValue
    }
}

/// The value of a flag for an entity: a boolean flag's value or a variant flag's variant key.
public enum FlagValue: Sendable, Hashable {
    /// A boolean flag's value.
    case boolean(Bool)
    /// A variant flag's variant key (`""` when no variant applies).
    case variant(String)
}

/// The result of one successful evaluation, as a hook sees it: ``VariantResult`` or ``BooleanResult``.
public protocol FlagEvaluationResult: Sendable, Hashable {
    /// The key of the evaluated flag.
    var flagKey: String { get }
    /// Why the flag has this value.
    var reason: EvaluationReason { get }
    /// The keys of the segments that matched, in document order; empty when none applied.
    var segmentKeys: [String] { get }
    /// The flag's value for the entity.
    var value: FlagValue { get }
    /// When the evaluation happened.
    var evaluatedAt: EvaluationTimestamp { get }
}

extension VariantResult: FlagEvaluationResult {
    /// The chosen variant's key, as a ``FlagValue``.
    public var value: FlagValue { .variant(variantKey) }
}

extension BooleanResult: FlagEvaluationResult {
    /// The flag's value, as a ``FlagValue``.
    public var value: FlagValue { .boolean(isEnabled) }
}
