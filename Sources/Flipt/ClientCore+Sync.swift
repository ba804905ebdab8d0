import FliptEngine
import FliptStore
import FliptSync
import Foundation
import Logging

extension ClientCore {
    /// Starts the background work: the sync loop (unless the client starts offline or is fed in process) and,
    /// with a maximum age, the staleness watch. Both end on cancellation.
    /// Does nothing once started (by the initialiser, or by ``FliptClient/run()`` for a client made with
    /// `startsSyncing: false`) or closed.
    func start() {
        let maximumAge = options.cache.maximumAge
        let online = !options.startsOffline && !options.isFedInProcess
        state.withLock { state in
            guard !state.started, !state.closed else { return }
            state.started = true
            state.isOffline = !online
            // A client fed in process has its data from the start: nothing to wait for.
            if options.isFedInProcess { state.hasFetched = true }
            let gaugeInterval = instrumentation.gaugeInterval
            if maximumAge != nil || gaugeInterval != nil {
                // The staleness watch and the snapshot gauges run online and offline.
                state.syncTask = Task.detached { [self] in
                    await withTaskGroup(of: Void.self) { group in
                        if let maximumAge { group.addTask { await self.watchStaleness(maximumAge: maximumAge) } }
                        if let gaugeInterval { group.addTask { await self.reportSnapshotGauges(every: gaugeInterval) } }
                    }
                }
            }
            if online { state.loopTask = Task.detached { [self] in await self.runLoop() } }
        }
    }

    /// The sync loop; each request confirms the snapshot in use at that moment.
    private func runLoop() async {
        await loop.run(
            currentETag: { [weak self] in self?.confirmableETag() },
            onTimedEvent: { event, timing in await self.handle(event, timing: timing) }
        )
    }

    /// The ETag to send as If-None-Match: only a snapshot the server sent (now or in an earlier run) may be
    /// confirmed with it, never a seed.
    func confirmableETag() -> String? {
        state.withLock { state -> String? in
            guard let served = state.served, served.source != .seed else { return nil }
            return served.etag
        }
    }

    // MARK: Offline control

    /// Stops (`true`) or resumes (`false`) the sync loop; see ``FliptClient/setOffline(_:)``.
    func setOffline(_ offline: Bool) {
        guard !options.isFedInProcess else { return }
        let changed = state.withLock { state -> Bool in
            guard !state.closed, state.isOffline != offline else { return false }
            state.isOffline = offline
            if offline {
                state.loopTask?.cancel()
            } else {
                // The cancelled loop may still be finishing a request: the new one starts once it has ended.
                let previous = state.loopTask
                state.loopTask = Task.detached { [self] in
                    await previous?.value
                    if Task.isCancelled { return }
                    await self.runLoop()
                }
            }
            return true
        }
        if changed {
            logger.info(
                offline ? "Offline: polling and streaming stopped" : "Online: syncing again",
                metadata: ["namespace": "\(namespace)"]
            )
        }
    }

    var isOffline: Bool { state.withLock { $0.isOffline } }

    /// One fetch now, applied as the loop applies its fetches; see ``FliptClient/refresh()``.
    func refresh() async -> RefreshResult {
        let (closed, offline) = state.withLock { ($0.closed, $0.isOffline) }
        if closed { return .failed(FliptError(.closed, "The client was closed; create a new one to fetch flags.")) }
        if offline {
            let message =
                options.isFedInProcess
                ? "This client is fed in process by FliptTesting's TestData, not by a server; change its flags with "
                    + "TestData.update(_:)."
                : "The client is offline, so it does not fetch; call setOffline(false) first."
            return .failed(FliptError(.offline, message))
        }
        let (event, timing) = await loop.fetchNow(etag: confirmableETag())
        switch event {
        case .updated(let fetched):
            guard let replaced = await apply(fetched, at: options.wallClock(), timing: timing) else {
                return .failed(FliptError(.closed, "The client was closed while the refresh was in flight."))
            }
            return .updated(replaced.status, changes: replaced.changes)
        case .unchanged:
            await handle(event, timing: timing)
            return .notModified(status())
        case .failed(let error):
            await handle(event, timing: timing)
            if error.kind == .cancelled {
                return .failed(FliptError(.fetchFailed, "The refresh was cancelled.", underlying: error))
            }
            return .failed(FliptError(error))
        case .streamConnected, .streamEnded:
            return .notModified(status())
        }
    }

    // MARK: Replacement

    /// Replaces the snapshot in use with `document` for a client fed in process (FliptTesting): validated as a
    /// seed is, swapped, and reported with its flag changes as a fetched one is. Nothing is persisted.
    func replaceInProcess(document: [UInt8]) throws(FliptError) -> FlagChanges {
        let snapshot: Snapshot
        do {
            snapshot = try Snapshot(document: document)
        } catch {
            throw FliptError(.invalidSnapshot, "The replacement is not a valid snapshot document (\(error)).")
        }
        guard snapshot.namespaceKey == namespace else {
            throw FliptError(
                .invalidSnapshot,
                "The replacement is a snapshot of namespace \"\(snapshot.namespaceKey)\", but the client is for "
                    + "\"\(namespace)\"."
            )
        }
        let now = options.wallClock()
        let served = Served(
            evaluator: Evaluator(snapshot: snapshot, namespace: namespace),
            document: document,
            source: .seed,
            etag: nil,
            fetchedAt: now,
            lastConfirmedAt: now,
            ageAtMark: .zero,
            mark: .now
        )
        guard let replaced = replace(with: served, at: now) else {
            throw FliptError(.closed, "The client was closed; its snapshot is no longer replaced.")
        }
        return replaced.changes
    }

    /// Swaps `served` in, computes which flags changed, then tells waiters and subscribers; nothing is persisted.
    /// Returns nil when the client is closed.
    func replace(with served: Served, at now: Date) -> (status: ClientStatus, changes: FlagChanges)? {
        guard let outcome = swapIn(served, at: now) else { return nil }
        announce(outcome)
        return (outcome.status, outcome.changes)
    }

    /// Swaps `served` in, then persists it with `persist` (on the store's thread), then tells subscribers.
    /// Returns nil when the client is closed.
    func replace(
        with served: Served,
        at now: Date,
        persist: @escaping @Sendable (SnapshotStore) async throws(StoreError) -> Void
    ) async -> (status: ClientStatus, changes: FlagChanges)? {
        guard let outcome = swapIn(served, at: now) else { return nil }
        await self.persist(action: "save the new snapshot", persist)
        announce(outcome)
        return (outcome.status, outcome.changes)
    }

    /// Swaps `served` in, computes which flags changed and resumes the waiters; returns nil when the client is
    /// closed.
    private func swapIn(
        _ served: Served,
        at now: Date
    ) -> (recovered: Bool, status: ClientStatus, changes: FlagChanges)? {
        let next = FlagFingerprints(document: served.document)
        let outcome = fingerprints.withLock {
            previous -> (recovered: Bool, status: ClientStatus, changes: FlagChanges)? in
            let replaced = state.withLock { $0.served }
            if previous == nil, let replaced { previous = FlagFingerprints(document: replaced.document) }
            let changes: FlagChanges
            if let next, replaced == nil || previous != nil {
                changes = FlagChanges.between(previous: previous, next: next)
            } else {
                changes = FlagChanges.byKeys(previous: replaced?.evaluator.snapshot, next: served.evaluator.snapshot)
            }
            let swapped = state.withLock { state -> (recovered: Bool, status: ClientStatus)? in
                guard !state.closed else { return nil }
                let recovered = state.fetchFailure != nil || state.staleReported
                state.served = served
                state.fetchFailure = nil
                state.staleReported = false
                state.lastAttemptAt = now
                state.hasFetched = true
                return (recovered, status(of: state, now: ContinuousClock.now))
            }
            guard let swapped else { return nil }
            previous = next
            return (swapped.recovered, swapped.status, changes)
        }
        guard let outcome else { return nil }
        resumeWaiters()
        return outcome
    }

    /// Tells subscribers of a replacement made by ``swapIn(_:at:)``.
    private func announce(_ outcome: (recovered: Bool, status: ClientStatus, changes: FlagChanges)) {
        let replacedEvent = ClientEvent.snapshotReplaced(outcome.status, changes: outcome.changes)
        publish(outcome.recovered ? [replacedEvent, .recovered(outcome.status)] : [replacedEvent])
    }

    /// Applies one outcome of the sync loop: swap in memory, persist after, tell subscribers last.
    func handle(_ event: SyncLoop.Event, timing: SyncLoop.Timing) async {
        let now = options.wallClock()
        switch event {
        case .updated(let fetched):
            await apply(fetched, at: now, timing: timing)
        case .unchanged:
            await confirm(at: now, timing: timing)
        case .failed(let error):
            await fail(error, at: now, timing: timing)
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

    @discardableResult
    private func apply(
        _ fetched: FetchedSnapshot,
        at now: Date,
        timing: SyncLoop.Timing
    ) async -> (status: ClientStatus, changes: FlagChanges)? {
        if await holdsOffRollback(fetched, at: now, timing: timing) {
            resumeWaiters()
            return (status(), FlagChanges())
        }
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
        let replaced = await replace(with: served, at: now, persist: save(fetched, at: now, timing: timing))
        guard let replaced else { return nil }
        if state.withLock({ $0.pinnedByRollback }) { _ = await currentPin() }  // the save lifted the pin
        logger.info(
            "New snapshot",
            metadata: [
                "namespace": "\(namespace)", "etag": "\(fetched.etag ?? "")",
                "flags": "\(fetched.snapshot.flagCount)", "bytes": "\(fetched.document.count)",
                "added": "\(replaced.changes.added.count)", "removed": "\(replaced.changes.removed.count)",
                "changed": "\(replaced.changes.changed.count)",
            ]
        )
        return replaced
    }

    private func confirm(at now: Date, timing: SyncLoop.Timing) async {
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
        let key = self.key
        await persist(action: "record the 304") { (store: SnapshotStore) async throws(StoreError) in
            try await store.recordNotModified(
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
        publish(recovered ? [.confirmed(current), .recovered(current)] : [.confirmed(current)])
        await servePinnedAfterConfirmation(at: now)
    }

    private func fail(_ error: SyncError, at now: Date, timing: SyncLoop.Timing) async {
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
        let key = self.key
        await persist(action: "record the failed attempt") { (store: SnapshotStore) async throws(StoreError) in
            try await store.recordAttempt(
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

    /// The cache write of a fetched document, with its attempt (the store keeps a rollback's pinned generation
    /// when the document is the one rolled back from).
    func save(
        _ fetched: FetchedSnapshot,
        at now: Date,
        timing: SyncLoop.Timing
    ) -> @Sendable (SnapshotStore) async throws(StoreError) -> Void {
        let key = self.key
        return { (store: SnapshotStore) async throws(StoreError) in
            try await store.save(
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
    }

    /// Runs a cache write (its SQLite work on the store's thread, off the cooperative pool); a failure is logged
    /// and noted in the status, never thrown: it must not stop serving.
    func persist(action: String, _ write: @Sendable (SnapshotStore) async throws(StoreError) -> Void) async {
        guard let store, !store.isReadOnly else { return }
        do {
            try await write(store)
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

    func resumeWaiters() {
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
