import FliptEngine

extension ClientCore {
    /// Evaluates as ``evaluate(_:)`` does, and also returns where the snapshot that answered came from; never
    /// throws: the error is the result's failure.
    ///
    /// In the common case (data, no failure, no deadline) the result and the provenance come from one read of the
    /// fast path. Otherwise ``evaluate(_:)`` decides (a failed fetch, no data, a stale snapshot) with the provenance
    /// read just before; only a snapshot swapped in between can make the two differ.
    @inline(__always)
    func evaluateWithProvenance<Value>(
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) -> (Result<Value, FliptError>, SnapshotProvenance) {
        let (plain, provenance) = fastPaths.read { (fast) -> (Result<Value, FliptError>?, SnapshotProvenance) in
            guard fast.isPlain else { return (nil, fast.provenance) }
            do throws(EvaluationError) {
                return (.success(try body(fast.evaluator)), fast.provenance)
            } catch {
                return (.failure(FliptError(error)), fast.provenance)
            }
        }
        if let plain { return (plain, provenance) }
        do throws(FliptError) {
            return (.success(try evaluate(body)), provenance)
        } catch {
            return (.failure(error), provenance)
        }
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
