import FliptEngine

extension ClientCore {
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
        let plain = try fastPaths.read { (fast) throws(FliptError) -> Value? in
            provenance = fast.provenance
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

    /// Evaluates as ``evaluate(_:)`` does, and sets `answered` to the fast path that answered (or refused to),
    /// retained: the caller releases it. Hooks that read the provenance get it from there.
    @inline(__always)
    func evaluate<Value>(
        _ body: (Evaluator) throws(EvaluationError) -> Value,
        retaining answered: inout Unmanaged<FastPath>?
    ) throws(FliptError) -> Value {
        let plain = try fastPaths.read { (fast) throws(FliptError) -> Value? in
            answered = Unmanaged.passRetained(fast)
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

    /// Refreshes the snapshot age and staleness gauges every `interval` until cancelled (the client's background
    /// task runs it when a metrics backend is in force).
    func reportSnapshotGauges(every interval: Duration) async {
        while !Task.isCancelled {
            instrumentation.reportSnapshot(status())
            try? await Task.sleep(for: interval)
        }
    }
}
