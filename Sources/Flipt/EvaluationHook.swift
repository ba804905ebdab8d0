import FliptEngine

/// Code that runs around every evaluation of a ``FliptClient``, in the shape of OpenFeature's hooks: for exposure
/// logging, analytics, audit and metrics.
///
/// Register hooks for every evaluation of a client in ``ClientOptions/hooks``, or for one call with the `hooks:`
/// parameter of the evaluation methods. For each evaluation the client calls, in this order:
///
/// 1. ``before(_:)`` of the client's hooks in the order given, then of the call's hooks;
/// 2. the evaluation;
/// 3. ``after(_:result:)`` when it succeeded, or ``error(_:error:)`` when it failed, of the call's hooks in reverse
///    order, then of the client's hooks in reverse order;
/// 4. ``finally(_:)`` of every hook, in that same reverse order.
///
/// Every stage has an empty default, so a hook implements only the stages it needs; declaring them in ``stages``
/// spares the calls of the others. Hooks observe: they cannot change the context, the result or the error (unlike
/// OpenFeature's `before`, which may return a new context), so a hook that misbehaves never changes what the
/// application gets. They run synchronously on the evaluating thread, outside every lock of the client; keep them
/// short and hand slow work (files, network) to another thread, as ``JSONLinesEvaluationExporter`` does. Batch
/// evaluations (``FliptClient/evaluateBatch(requests:)``) do not run hooks.
///
/// Every stage is given the same ``EvaluationHookContext``, borrowed: the client builds it once per evaluation
/// from its arguments without copying them, so a stage pays only for what it reads. A client with no hook (and no
/// evaluation metrics) pays a single branch per evaluation for this feature. One hook in ``ClientOptions/hooks``
/// whose four stages do nothing adds about 240 instructions and no reference counting per evaluation (callgrind:
/// 1,889 against 1,651 without hooks), about 20-25 ns measured side by side (`flipt-bench hooks`). A hook passed
/// per call (`hooks:`) costs more, about 750 instructions and 100 ns, because each stage copies it out of the
/// array: register hooks for hot paths in ``ClientOptions/hooks`` (see the "Hooks, default values and metrics"
/// article).
public protocol EvaluationHook: Sendable {
    /// The stages this hook implements: the client calls only these. The default is ``EvaluationHookStages/all``.
    ///
    /// Read once, when a client is created with the hook in ``ClientOptions/hooks`` (or at each call for a hook
    /// passed to one call), so it must not change.
    var stages: EvaluationHookStages { get }

    /// Runs before the evaluation.
    func before(_ evaluation: borrowing EvaluationHookContext)

    /// Runs after a successful evaluation, with its result. ``EvaluationHookContext/provenance`` tells where the
    /// snapshot that answered came from.
    func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult)

    /// Runs after a failed evaluation (no data, a missing flag, a wrong type, a failed fetch under
    /// ``ErrorStrategy/fail``, a stale snapshot under ``StaleBehavior/fail``, an empty key), with the error the
    /// throwing forms throw and the default-value forms replace with the caller's default.
    func error(_ evaluation: borrowing EvaluationHookContext, error: FliptError)

    /// Runs last, after ``after(_:result:)`` or ``error(_:error:)``.
    func finally(_ evaluation: borrowing EvaluationHookContext)
}

extension EvaluationHook {
    /// All four stages.
    public var stages: EvaluationHookStages { .all }

    /// Does nothing.
    public func before(_ evaluation: borrowing EvaluationHookContext) {}

    /// Does nothing.
    public func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult) {}

    /// Does nothing.
    public func error(_ evaluation: borrowing EvaluationHookContext, error: FliptError) {}

    /// Does nothing.
    public func finally(_ evaluation: borrowing EvaluationHookContext) {}
}

/// The stages an ``EvaluationHook`` implements (``EvaluationHook/stages``), and whether it reads the provenance
/// of the snapshot that answered.
public struct EvaluationHookStages: OptionSet, Sendable, Hashable {
    /// The option set's bits.
    public let rawValue: UInt8

    /// Creates a set from its bits.
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// ``EvaluationHook/before(_:)``.
    public static let before = EvaluationHookStages(rawValue: 1 << 0)
    /// ``EvaluationHook/after(_:result:)``.
    public static let after = EvaluationHookStages(rawValue: 1 << 1)
    /// ``EvaluationHook/error(_:error:)``.
    public static let error = EvaluationHookStages(rawValue: 1 << 2)
    /// ``EvaluationHook/finally(_:)``.
    public static let finally = EvaluationHookStages(rawValue: 1 << 3)
    /// The hook reads ``EvaluationHookContext/provenance`` in ``EvaluationHook/after(_:result:)`` or
    /// ``EvaluationHook/error(_:error:)``: the client then keeps the snapshot that answered until the hooks are
    /// done (one reference count), so that the provenance is exactly that snapshot's even when a new one replaces
    /// it meanwhile. Without it, the provenance is read from the snapshot in use when the hook asks, which is the
    /// same one unless a replacement landed during the evaluation.
    public static let provenance = EvaluationHookStages(rawValue: 1 << 4)

    /// The four stages (without ``provenance``).
    public static let all: EvaluationHookStages = [.before, .after, .error, .finally]
}

/// What an ``EvaluationHook`` is told about one evaluation: which flag, for whom, how it was asked, and where the
/// snapshot that answered came from.
///
/// Lent to each stage for the duration of the call and never copied (it is noncopyable): the client builds it
/// from its own arguments without copying them, and a property costs a copy only when a hook reads it. A hook that
/// keeps something for later (a record to export, say) reads the properties it needs into values of its own.
public struct EvaluationHookContext: ~Copyable {
    // One pointer to a frame on the evaluating call's stack, valid while the context is lent: the context cannot
    // outlive the call that lends it, because it can be neither copied nor consumed by a hook. One word, so that
    // lending it to a stage passes one register instead of the eight words of the frame (callgrind, one no-op
    // hook: 1,986 -> 1,931 instructions per evaluation).
    private let frame: UnsafeMutablePointer<Frame>

    /// What a context shows: views of the evaluating call's arguments and the snapshot that answered.
    struct Frame {
        let namespace: UnsafePointer<String>
        let flagKey: UnsafePointer<String>
        let entityID: UnsafePointer<String>
        let context: UnsafePointer<EvaluationContext>
        let defaultValue: UnsafePointer<FlagValue?>
        let flagType: FlagType
        unowned(unsafe) let core: ClientCore?
        /// The fast path that answered, when the client kept it (a hook reads the provenance); unretained here.
        var answered: Unmanaged<ClientCore.FastPath>?
    }

    /// A context over `frame`, which must stay valid while the context is lent.
    init(frame: UnsafeMutablePointer<Frame>) {
        self.frame = frame
    }

    /// The type of the flag the caller asked for: ``FlagType/variant`` for the variant forms, ``FlagType/boolean``
    /// for the boolean forms.
    public var flagType: FlagType { frame.pointee.flagType }

    /// Records the fast path that answered, for ``provenance``.
    func noteAnswered(_ answered: Unmanaged<ClientCore.FastPath>?) {
        frame.pointee.answered = answered
    }

    /// The namespace of the client that evaluates.
    public var namespace: String { frame.pointee.namespace.pointee }
    /// The key of the flag, as the caller passed it.
    public var flagKey: String { frame.pointee.flagKey.pointee }
    /// The entity the flag is evaluated for.
    public var entityID: String { frame.pointee.entityID.pointee }
    /// The entity's properties.
    public var context: EvaluationContext { frame.pointee.context.pointee }
    /// The caller's default for the default-value forms (``FliptClient/booleanValue(flagKey:entityID:context:default:hooks:)``
    /// and the like); nil for the throwing forms.
    public var defaultValue: FlagValue? { frame.pointee.defaultValue.pointee }

    /// Where the snapshot that answered came from, and how old it is. In ``EvaluationHook/before(_:)``, the
    /// snapshot in use. Exact when the hook declares ``EvaluationHookStages/provenance`` (see there).
    public var provenance: SnapshotProvenance {
        if let answered = frame.pointee.answered { return answered._withUnsafeGuaranteedRef { $0.provenance } }
        return frame.pointee.core?.currentProvenance() ?? .noData
    }

    /// Lends `body` a context made of these values: for testing a hook without a client.
    public static func with<Result, Failure: Error>(
        namespace: String,
        flagKey: String,
        entityID: String,
        context: EvaluationContext = EvaluationContext(),
        flagType: FlagType,
        defaultValue: FlagValue? = nil,
        provenance: SnapshotProvenance = .noData,
        _ body: (borrowing EvaluationHookContext) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let fast = ClientCore.FastPath(provenance: provenance)
        var values = Values(
            namespace: namespace,
            flagKey: flagKey,
            entityID: entityID,
            context: context,
            defaultValue: defaultValue
        )
        return try withExtendedLifetime(fast) { () throws(Failure) -> Result in
            try withUnsafeMutablePointer(to: &values) { (values) throws(Failure) -> Result in
                var frame = Frame(
                    namespace: UnsafePointer(values.pointer(to: \.namespace)!),
                    flagKey: UnsafePointer(values.pointer(to: \.flagKey)!),
                    entityID: UnsafePointer(values.pointer(to: \.entityID)!),
                    context: UnsafePointer(values.pointer(to: \.context)!),
                    defaultValue: UnsafePointer(values.pointer(to: \.defaultValue)!),
                    flagType: flagType,
                    core: nil,
                    answered: Unmanaged.passUnretained(fast)
                )
                return try withUnsafeMutablePointer(to: &frame) { (frame) throws(Failure) -> Result in
                    try body(EvaluationHookContext(frame: frame))
                }
            }
        }
    }

    /// The values a context made by ``with(namespace:flagKey:entityID:context:flagType:defaultValue:provenance:_:)``
    /// points at.
    private struct Values {
        var namespace: String
        var flagKey: String
        var entityID: String
        var context: EvaluationContext
        var defaultValue: FlagValue?
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
