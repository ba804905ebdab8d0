import FliptEngine
import FliptStore
import FliptSync
import Foundation
import Logging

extension ClientCore {
    /// The background work: the sync loop and, with a maximum age, the staleness watch. Ends on cancellation.
    func runSync() async {
        let etag = state.withLock { state -> String? in
            // Only a snapshot the server sent (now or in an earlier run) may be confirmed with If-None-Match.
            guard let served = state.served, served.source != .seed else { return nil }
            return served.etag
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.loop.run(etag: etag) { event, timing in self.handle(event, timing: timing) }
            }
            if let maximumAge = options.cache.maximumAge {
                group.addTask { await self.watchStaleness(maximumAge: maximumAge) }
            }
            if let interval = instrumentation.gaugeInterval {
                group.addTask { await self.reportSnapshotGauges(every: interval) }
            }
            await group.waitForAll()
        }
    }

    /// Applies one outcome of the sync loop: swap in memory, persist after, tell subscribers last.
    func handle(_ event: SyncLoop.Event, timing: SyncLoop.Timing) {
        let now = options.wallClock()
        switch event {
        case .updated(let fetched):
            apply(fetched, at: now, timing: timing)
        case .unchanged:
            confirm(at: now, timing: timing)
        case .failed(let error):
            fail(error, at: now, timing: timing)
        case .streamConnected:
            logger.debug("Stream connected", metadata: ["namespace": "\(namespace)"])
        case .streamEnded(let delay):
            logger.info(
                "Stream ended; reconnecting",
                metadata: ["namespace": "\(namespace)", "delay": "\(Self.describe(delay))"]
            )
        }
        if instrumentation.gaugeInterval != nil { instrumentation.reportSnapshot(status()) }
    }

    private func apply(_ fetched: FetchedSnapshot, at now: Date, timing: SyncLoop.Timing) {
        let served = Served(
            evaluator: Evaluator(snapshot: fetched.snapshot, namespace: namespace),
            document: fetched.document,
            source: .network,
            etag: fetched.etag,
            fetchedAt: now,
            lastConfirmedAt: now,
            ageAtMark: .zero,
            mark: .now
        )
        let (closed, recovered, current) = state.withLock { state -> (Bool, Bool, ClientStatus?) in
            guard !state.closed else { return (true, false, nil) }
            let recovered = state.fetchFailure != nil || state.staleReported
            state.served = served
            state.fetchFailure = nil
            state.staleReported = false
            state.lastAttemptAt = now
            state.hasFetched = true
            return (false, recovered, status(of: state, now: ContinuousClock.now))
        }
        guard !closed, let current else { return }
        resumeWaiters()
        logger.info(
            "New snapshot",
            metadata: [
                "namespace": "\(namespace)", "etag": "\(fetched.etag ?? "")",
                "flags": "\(fetched.snapshot.flagCount)", "bytes": "\(fetched.document.count)",
            ]
        )
        persist(action: "save the new snapshot") { store in
            try store.save(
                NewSnapshot(
                    document: Data(fetched.document),
                    etag: fetched.etag,
                    fetchedAt: now,
                    serverDate: fetched.serverDate,
                    source: .network
                ),
                for: key,
                attempt: SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: .updated,
                    httpStatus: fetched.status,
                    duration: timing.duration
                )
            )
        }
        publish(recovered ? [.snapshotReplaced(current), .recovered(current)] : [.snapshotReplaced(current)])
    }

    private func confirm(at now: Date, timing: SyncLoop.Timing) {
        let (closed, recovered, current) = state.withLock { state -> (Bool, Bool, ClientStatus?) in
            guard !state.closed else { return (true, false, nil) }
            let recovered = state.fetchFailure != nil || state.staleReported
            if var served = state.served {
                served.lastConfirmedAt = now
                served.ageAtMark = .zero
                served.mark = .now
                state.served = served
            }
            state.fetchFailure = nil
            state.staleReported = false
            state.lastAttemptAt = now
            state.hasFetched = true
            return (false, recovered, status(of: state, now: ContinuousClock.now))
        }
        guard !closed, let current else { return }
        resumeWaiters()
        persist(action: "record the 304") { store in
            try store.recordNotModified(
                for: key,
                at: now,
                attempt: SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: .notModified,
                    httpStatus: 304,
                    duration: timing.duration
                )
            )
        }
        if recovered { publish([.recovered(current)]) }
    }

    private func fail(_ error: SyncError, at now: Date, timing: SyncLoop.Timing) {
        if error.kind == .cancelled { return }
        let failure = FliptError(error)
        let closed = state.withLock { state -> Bool in
            guard !state.closed else { return true }
            state.fetchFailure = failure
            state.lastAttemptAt = now
            return false
        }
        guard !closed else { return }
        logger.warning(
            "Fetch failed; \(options.errorStrategy == .fallback ? "serving the last good snapshot" : "evaluations report the error")",
            metadata: ["namespace": "\(namespace)", "error": "\(error.message)"]
        )
        persist(action: "record the failed attempt") { store in
            try store.recordAttempt(
                SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: error.kind == .badDocument ? .rejected : .failed,
                    httpStatus: error.httpStatus,
                    errorClass: error.errorClass,
                    duration: timing.duration
                ),
                for: key
            )
        }
        publish([.fetchFailed(failure)])
    }

    /// Runs a cache write; a failure is logged and noted in the status, never thrown: it must not stop serving.
    private func persist(action: String, _ write: (SnapshotStore) throws -> Void) {
        guard let store, !store.isReadOnly else { return }
        do {
            try write(store)
            state.withLock { state in
                if state.cacheProblem != nil && !store.isReadOnly { state.cacheProblem = nil }
            }
        } catch {
            state.withLock { $0.cacheProblem = "\(error)" }
            logger.error(
                "Could not \(action) in the cache; the snapshot is still served from memory",
                metadata: ["error": "\(error)"]
            )
        }
    }

    private func resumeWaiters() {
        let waiters = state.withLock { state -> [Waiter] in
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return waiters
        }
        for case .waiting(let continuation) in waiters { continuation.resume() }
    }

    /// Reports ``ClientEvent/becameStale(_:)`` once each time the snapshot in use passes the maximum age.
    private func watchStaleness(maximumAge: Duration) async {
        while !Task.isCancelled {
            let (wait, event) = state.withLock { state -> (Duration, ClientEvent?) in
                guard let served = state.served, !state.closed else { return (maximumAge, nil) }
                let age = served.age(at: .now)
                if age > maximumAge {
                    if state.staleReported { return (maximumAge, nil) }
                    state.staleReported = true
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
}
