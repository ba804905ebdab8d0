import Foundation

/// Status: ``ClientStatus``, the staleness watch and the snapshot gauges.
extension ClientCore {
    func status() -> ClientStatus {
        state.withLock { status(of: $0, now: .now) }
    }

    func status(of state: State, now: ContinuousClock.Instant) -> ClientStatus {
        let served = state.served
        let age = served?.age(at: now)
        var isStale = false
        if let age, let maximumAge = options.cache.maximumAge { isStale = age > maximumAge }
        return ClientStatus(
            source: served?.source ?? .none,
            etag: served?.etag,
            fetchedAt: served?.fetchedAt,
            lastConfirmedAt: served?.lastConfirmedAt,
            age: age,
            isStale: isStale,
            lastError: state.progress.failure,
            lastAttemptAt: state.progress.lastAttemptAt,
            hasFetched: state.progress.hasFetched,
            cachePath: store?.path,
            cacheProblem: state.progress.cacheProblem,
            flagCount: served?.evaluator.snapshot.flagCount ?? 0,
            isPinnedByRollback: state.pinnedByRollback
        )
    }

    /// Reports ``ClientEvent/becameStale(_:)`` once each time the snapshot in use passes the maximum age.
    func watchStaleness(maximumAge: Duration) async {
        while !Task.isCancelled {
            let (wait, event) = state.withLock { state -> (Duration, ClientEvent?) in
                guard let served = state.served, !state.lifecycle.isClosed else { return (maximumAge, nil) }
                let age = served.age(at: .now)
                if age > maximumAge {
                    guard state.progress.becameStale() else { return (maximumAge, nil) }
                    return (maximumAge, .becameStale(status(of: state, now: ContinuousClock.now)))
                }
                return (maximumAge - age + .milliseconds(1), nil)
            }
            if let event {
                logger.warning("The snapshot is older than the maximum age", metadata: ["namespace": "\(namespace)"])
                publish([event])
            }
            try? await Task.sleep(for: wait)
        }
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
