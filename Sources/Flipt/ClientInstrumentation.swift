import FliptStore
import Logging
import Metrics
import Synchronization

/// What a client reports about its evaluations and its snapshot besides answering: the hooks it runs, the
/// rate-limited log and the counter of evaluations answered with the caller's default, and the snapshot age and
/// staleness gauges.
///
/// Made once with the client, so that its metrics go to the swift-metrics factory in force there (as the sync's
/// do); with no backend nothing is created and only the hooks and the log remain.
final class ClientInstrumentation: Sendable {
    /// The client's hooks: ``ClientOptions/hooks``, then the evaluation counter when it is on.
    let hooks: [any EvaluationHook]
    // The hooks of each stage, as unretained views of chains that `chains` keeps alive: an evaluation calls
    // through them without a retain and release of the chain (an optional class reference read two objects away
    // is retained around the call otherwise: 3 pairs per evaluation with one hook, callgrind).
    /// The hooks that implement ``EvaluationHook/before(_:)``, in order; nil for none.
    let beforeHooks: Unmanaged<HookChain>?
    /// The hooks that implement ``EvaluationHook/after(_:result:)``, last first (the order they run in).
    let afterHooks: Unmanaged<HookChain>?
    /// The hooks that implement ``EvaluationHook/error(_:error:)``, last first.
    let errorHooks: Unmanaged<HookChain>?
    /// The hooks that implement ``EvaluationHook/finally(_:)``, last first.
    let finallyHooks: Unmanaged<HookChain>?
    private let chains: [HookChain?]
    /// Whether a hook reads the provenance of the snapshot that answered (``EvaluationHookStages/provenance``).
    let readsProvenance: Bool
    /// Whether evaluations must go through the hook machinery: the single check the plain path pays.
    let observesEvaluations: Bool
    /// How often the snapshot gauges are refreshed, or nil when there is no metrics backend.
    let gaugeInterval: Duration?

    private let namespace: String
    private let log: RateLimitedLog
    private let metrics: ClientMetrics?

    /// The metrics of one client, when a backend is in force.
    private final class ClientMetrics: Sendable {
        let namespace: String
        let factory: any MetricsFactory
        let age: Gauge
        let stale: Gauge
        let defaults = Mutex<[String: Counter]>([:])

        init(namespace: String, factory: any MetricsFactory) {
            self.namespace = namespace
            self.factory = factory
            let dimensions = [("namespace", namespace)]
            age = Gauge(label: "flipt_snapshot_age_seconds", dimensions: dimensions, factory: factory)
            stale = Gauge(label: "flipt_snapshot_stale", dimensions: dimensions, factory: factory)
        }

        func countDefault(code: FliptError.Code) {
            let label = code.description
            let counter = defaults.withLock { counters in
                if let counter = counters[label] { return counter }
                let counter = Counter(
                    label: "flipt_evaluation_defaults_total",
                    dimensions: [("namespace", namespace), ("code", label)],
                    factory: factory
                )
                counters[label] = counter
                return counter
            }
            counter.increment()
        }
    }

    /// How often a line of one kind of evaluation error reaches the log at most.
    static let errorLogInterval: Duration = .seconds(30)

    init(namespace: String, options: ClientOptions) {
        self.namespace = namespace
        let factory = MetricsSystem.factory
        let metrics = factory is NOOPMetricsHandler ? nil : ClientMetrics(namespace: namespace, factory: factory)
        var hooks = options.hooks
        if let metrics, options.metrics.countsEvaluations {
            hooks.append(EvaluationCounter(namespace: namespace, factory: metrics.factory))
        }
        self.hooks = hooks
        let stages = hooks.map(\.stages)
        func implementing(_ stage: EvaluationHookStages) -> [any EvaluationHook] {
            zip(hooks, stages).filter { $0.1.contains(stage) }.map(\.0)
        }
        let chains = [
            HookChain(implementing(.before)), HookChain(implementing(.after).reversed()),
            HookChain(implementing(.error).reversed()), HookChain(implementing(.finally).reversed()),
        ]
        self.chains = chains
        beforeHooks = chains[0].map(Unmanaged.passUnretained)
        afterHooks = chains[1].map(Unmanaged.passUnretained)
        errorHooks = chains[2].map(Unmanaged.passUnretained)
        finallyHooks = chains[3].map(Unmanaged.passUnretained)
        readsProvenance = stages.contains { $0.contains(.provenance) }
        self.observesEvaluations = !hooks.isEmpty
        self.metrics = metrics
        self.gaugeInterval = metrics == nil ? nil : options.metrics.gaugeInterval
        self.log = RateLimitedLog(logger: options.logger, interval: Self.errorLogInterval)
    }

    /// Reports an evaluation answered with the caller's default: a counter by error code and a log line, at most
    /// one per error code every ``errorLogInterval`` (the next says how many were left out).
    func reportDefault(flagKey: String, error: FliptError) {
        metrics?.countDefault(code: error.code)
        log.log(
            .warning,
            kind: error.code.description,
            "An evaluation returned the caller's default because it failed: \(error.message)",
            metadata: ["namespace": "\(namespace)", "flag": "\(flagKey)", "code": "\(error.code)"]
        )
    }

    /// Sets the snapshot age and staleness gauges from the client's status.
    func reportSnapshot(_ status: ClientStatus) {
        guard let metrics else { return }
        if let age = status.age {
            metrics.age.record(Double(age.components.seconds) + Double(age.components.attoseconds) * 1e-18)
        }
        metrics.stale.record(status.isStale ? 1 : 0)
    }
}

/// The hooks of one stage, in the order they run: a chain of immutable nodes rather than an array, so that each
/// hook is called in place. Calling a hook read from an array's buffer copies its existential out first (an outlined
/// copy and destroy per stage, and a retain and release for a class hook); a hook in a `let` of a node that is
/// itself borrowed is called where it is, and the next node is borrowed too: no copy, no reference count
/// (callgrind, `Tests/Scripts/callgrind-hooks.sh hook`).
final class HookChain: Sendable {
    let hook: any EvaluationHook
    let next: HookChain?
    /// `next`, unretained (this node keeps it alive), so that walking the chain counts no references.
    private let nextNode: Unmanaged<HookChain>?

    private init(_ hook: any EvaluationHook, next: HookChain?) {
        self.hook = hook
        self.next = next
        nextNode = next.map(Unmanaged.passUnretained)
    }

    /// The chain of `hooks` in this order, or nil when there are none.
    convenience init?(_ hooks: [any EvaluationHook]) {
        guard let first = hooks.first else { return nil }
        self.init(first, next: HookChain(Array(hooks.dropFirst())))
    }

    /// Calls `call` with each hook of the chain that starts at `first`, in order, each borrowed in place.
    @inline(__always)
    static func forEach(from first: Unmanaged<HookChain>, _ call: (borrowing any EvaluationHook) -> Void) {
        var node = first
        while true {
            let next = node._withUnsafeGuaranteedRef { chain in
                call(chain.hook)
                return chain.nextNode
            }
            guard let next else { return }
            node = next
        }
    }
}

/// The opt-in evaluation counter (``MetricsOptions/countsEvaluations``): `flipt_evaluations_total{namespace,
/// flag, reason}`, a hook like any other.
final class EvaluationCounter: EvaluationHook {
    private struct Key: Hashable {
        var flag: String
        var reason: String
    }

    /// At most this many flag keys get counters of their own; evaluations of others (say, keys of flags that do
    /// not exist, built from input) are counted under the flag `_other`, so that a bug cannot grow the metric
    /// without bound.
    static let flagLimit = 10_000

    private let namespace: String
    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])

    init(namespace: String, factory: any MetricsFactory) {
        self.namespace = namespace
        self.factory = factory
    }

    var stages: EvaluationHookStages { [.after, .error] }

    func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult) {
        count(flag: evaluation.flagKey, reason: Self.label(result.reason))
    }

    func error(_ evaluation: borrowing EvaluationHookContext, error: FliptError) {
        count(flag: evaluation.flagKey, reason: "error")
    }

    static func label(_ reason: EvaluationReason) -> String {
        switch reason {
        case .match: "match"
        case .default: "default"
        case .flagDisabled: "flag_disabled"
        case .unknown: "unknown"
        }
    }

    private func count(flag: String, reason: String) {
        let counter = counters.withLock { counters in
            if let counter = counters[Key(flag: flag, reason: reason)] { return counter }
            let key = Key(flag: counters.count < Self.flagLimit ? flag : "_other", reason: reason)
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "flipt_evaluations_total",
                dimensions: [("namespace", namespace), ("flag", key.flag), ("reason", reason)],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
