import FliptEngine
import Foundation

/// The fast path: what an evaluation reads, without the state lock, and the errors it throws instead of answering.
extension ClientCore {
    /// What an evaluation needs, rebuilt whenever the snapshot or the fetch state changes and published in a
    /// ``FastPathSlot``, so that an evaluation reads it without a lock.
    final class FastPath: Sendable {
        /// The evaluator of the snapshot in use; without data, one over an empty snapshot that is never used.
        /// Not optional, so that an evaluation borrows it from this object instead of copying it out.
        let evaluator: Evaluator
        /// Whether there is a snapshot to evaluate.
        let hasData: Bool
        /// The error evaluations throw: the latest fetch failed and the strategy is ``ErrorStrategy/fail``.
        let failure: FliptError?
        /// With ``StaleBehavior/fail``: when the snapshot in use passes the maximum age, in
        /// ``ClientCore/monotonicNanoseconds(at:)``; `Int64.max` for never.
        let staleDeadline: Int64
        /// Data, no failure and no deadline: an evaluation needs no other check.
        let isPlain: Bool
        /// Where the snapshot in use came from, for hooks and evaluation details.
        let provenance: SnapshotProvenance

        init(
            evaluator: Evaluator? = nil,
            failure: FliptError? = nil,
            staleDeadline: Int64 = .max,
            provenance: SnapshotProvenance = .noData
        ) {
            self.evaluator = evaluator ?? Self.placeholder
            self.hasData = evaluator != nil
            self.failure = failure
            self.staleDeadline = staleDeadline
            self.isPlain = evaluator != nil && failure == nil && staleDeadline == .max
            self.provenance = provenance
        }

        private static let placeholder = Evaluator(snapshot: Snapshot.empty, namespace: "")
    }

    /// The monotonic clock (`ContinuousClock`) in nanoseconds, as a plain integer that is cheap to compare.
    @inline(__always)
    static func monotonicNanoseconds(at instant: ContinuousClock.Instant = .now) -> Int64 {
        let components = (instant - Self.monotonicOrigin).components
        return components.seconds &* 1_000_000_000 &+ components.attoseconds / 1_000_000_000
    }

    private static let monotonicOrigin = ContinuousClock.now

    /// The evaluator to use now (retained), or the error evaluations must throw.
    func currentEvaluator() throws(FliptError) -> Evaluator {
        try evaluate { $0 }
    }

    /// Runs `body` with the evaluator of the current snapshot, borrowed from the fast path without a lock or a
    /// retain; throws instead when evaluations must fail (a failed fetch under ``ErrorStrategy/fail``, no data, a
    /// stale snapshot under ``StaleBehavior/fail``), and converts the engine's errors.
    @inline(__always)
    func evaluate<Result>(_ body: (Evaluator) throws(EvaluationError) -> Result) throws(FliptError) -> Result {
        let result = try fastPaths.read { (fast) throws(FliptError) -> Result? in
            if _slowPath(!fast.isPlain) {
                // Out of line: the stale check reads `ContinuousClock`, whose resilient `Instant` costs a metadata
                // call and a dynamic stack allocation in every function it is inlined into (about 25 instructions
                // an evaluation on the plain path, callgrind).
                guard try admitsEvaluation(fast) else { return nil }
            }
            do throws(EvaluationError) {
                return try body(fast.evaluator)
            } catch {
                throw FliptError(error)
            }
        }
        guard let result else { throw staleError() }
        return result
    }

    /// Whether a fast path that is not plain may answer: throws its failure or the no-data error, and returns
    /// false when the snapshot is past its maximum age under ``StaleBehavior/fail`` (the caller throws the stale
    /// error outside the gate: it reads the state, whose lock a writer may hold while it waits for the read).
    @inline(never)
    private func admitsEvaluation(_ fast: FastPath) throws(FliptError) -> Bool {
        if let failure = fast.failure { throw failure }
        guard fast.hasData else { throw noDataError() }
        return Self.monotonicNanoseconds() <= fast.staleDeadline
    }

    /// Evaluates as ``evaluate(_:)`` does, and sets `provenance` to where the snapshot that answers came from.
    ///
    /// In the common case (data, no failure, no deadline) the result and the provenance come from one read of the
    /// fast path. Otherwise ``evaluate(_:)`` decides (a failed fetch, no data, a stale snapshot) with the provenance
    /// read just before; only a snapshot swapped in between can make the two differ.
    @inline(__always)
    func evaluate<Value>(
        _ body: (Evaluator) throws(EvaluationError) -> Value,
        provenance: inout SnapshotProvenance
    ) throws(FliptError) -> Value {
        try evaluate(body) { provenance = $0.provenance }
    }

    /// Evaluates as ``evaluate(_:)`` does, and sets `answered` to the fast path that answered (or refused to),
    /// retained: the caller releases it. Hooks that read the provenance get it from there.
    @inline(__always)
    func evaluate<Value>(
        _ body: (Evaluator) throws(EvaluationError) -> Value,
        retaining answered: inout Unmanaged<FastPath>?
    ) throws(FliptError) -> Value {
        try evaluate(body) { answered = Unmanaged.passRetained($0) }
    }

    /// Evaluates as ``evaluate(_:)`` does, first showing `note` the fast path read for the answer. In the common
    /// case (data, no failure, no deadline) the answer comes from that one read; otherwise ``evaluate(_:)``
    /// decides (a failed fetch, no data, a stale snapshot).
    @inline(__always)
    private func evaluate<Value>(
        _ body: (Evaluator) throws(EvaluationError) -> Value,
        noting note: (FastPath) -> Void
    ) throws(FliptError) -> Value {
        let plain = try fastPaths.read { (fast) throws(FliptError) -> Value? in
            note(fast)
            guard fast.isPlain else { return nil }
            do throws(EvaluationError) {
                return try body(fast.evaluator)
            } catch {
                throw FliptError(error)
            }
        }
        if let plain { return plain }
        return try evaluate(body)
    }

    /// The fast path in use, retained: the caller releases it.
    func retainedFastPath() -> Unmanaged<FastPath> {
        fastPaths.read { Unmanaged.passRetained($0) }
    }

    /// The provenance of the snapshot in use.
    func currentProvenance() -> SnapshotProvenance {
        fastPaths.read { $0.provenance }
    }

    @inline(never)
    private func staleError() -> FliptError {
        let age = state.withLock { $0.served?.age(at: .now) } ?? .zero
        let maximumAge = options.cache.maximumAge ?? .zero
        return FliptError(
            .stale,
            "The snapshot of namespace \"\(namespace)\" is \(Self.describe(age)) old, beyond the maximum age of "
                + "\(Self.describe(maximumAge)); the server has not confirmed it since. Check the network, or use "
                + "StaleBehavior.serveStale to keep serving it."
        )
    }

    @inline(never)
    private func noDataError() -> FliptError {
        FliptError(
            .noData,
            "No flag data yet for namespace \"\(namespace)\": the cache holds no snapshot for it and the first fetch "
                + "from \(key.serverURL) has not completed. Wait with waitUntilReady(timeout:), or pass a seed "
                + "snapshot in ClientOptions.snapshot."
        )
    }

    /// A duration as people read it: `250 ms`, `12.5 s`, `3 min`, `1.5 h`, `2.0 days`.
    static func describe(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        if seconds < 1 { return String(format: "%.0f ms", seconds * 1000) }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86400)
    }
}
