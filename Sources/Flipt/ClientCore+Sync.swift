import FliptEngine
import FliptStore
import FliptSync
import Foundation

/// Sync: what the loop's outcomes, a forced refresh and an in-process replacement do to the snapshot in use, the
/// status and (through ``SnapshotSync/record(_:timing:at:in:)``) the cache.
extension ClientCore {
    /// The ETag to send as If-None-Match: only a snapshot the server sent (now or in an earlier run) may be
    /// confirmed with it, never a seed.
    func confirmableETag() -> String? {
        state.withLock { state -> String? in
            guard let served = state.served, served.source != .seed else { return nil }
            return served.etag
        }
    }

    /// One fetch now, applied as the loop applies its fetches; see ``FliptClient/refresh()``.
    func refresh() async -> RefreshResult {
        let (closed, offline) = state.withLock { ($0.lifecycle.isClosed, $0.lifecycle.isOffline) }
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

    /// Replaces the snapshot in use with `document` for a client fed in process (FliptTesting): validated as a
    /// seed is, swapped, and reported with its flag changes as a fetched one is. Nothing is persisted.
    func replaceInProcess(document: [UInt8]) throws(FliptError) -> FlagChanges {
        let snapshot = try SnapshotSync.snapshot(of: document, namespace: namespace, from: .replacement)
        let now = options.wallClock()
        let served = Served(fresh: snapshot, document: document, source: .seed, etag: nil, at: now)
        guard let replaced = replace(with: served, at: now) else {
            throw FliptError(.closed, "The client was closed; its snapshot is no longer replaced.")
        }
        return replaced.changes
    }

    /// What swapping a snapshot in did: whether it ended a failure, the status after, the flags that changed.
    struct Swap {
        var recovered: Bool
        var status: ClientStatus
        var changes: FlagChanges
    }

    /// Swaps `served` in, computes which flags changed, then tells waiters and subscribers; nothing is persisted.
    /// Returns nil when the client is closed.
    func replace(with served: Served, at now: Date) -> (status: ClientStatus, changes: FlagChanges)? {
        guard let swap = swapIn(served, at: now) else { return nil }
        resumeWaiters()
        announce(swap)
        return (swap.status, swap.changes)
    }

    /// Swaps `served` in, computes which flags changed, writes `recording` to the cache (on the store's thread),
    /// then tells waiters and subscribers. Returns nil when the client is closed.
    func replace(
        with served: Served,
        at now: Date,
        recording: (event: SyncLoop.Event, timing: SyncLoop.Timing)
    ) async -> (status: ClientStatus, changes: FlagChanges)? {
        guard let swap = swapIn(served, at: now) else { return nil }
        resumeWaiters()
        await persist(recording.event, timing: recording.timing, at: now, action: "save the new snapshot")
        announce(swap)
        return (swap.status, swap.changes)
    }

    /// Tells subscribers that a snapshot was swapped in (and that a failure ended, when it did).
    private func announce(_ swap: Swap) {
        let replacedEvent = ClientEvent.snapshotReplaced(swap.status, changes: swap.changes)
        publish(swap.recovered ? [replacedEvent, .recovered(swap.status)] : [replacedEvent])
    }

    /// Swaps `served` in and computes which flags changed; nil when the client is closed.
    private func swapIn(_ served: Served, at now: Date) -> Swap? {
        let next = FlagFingerprints(document: served.document.bytes())
        let outcome = fingerprints.withLock {
            previous -> (recovered: Bool, status: ClientStatus, changes: FlagChanges)? in
            let replaced = state.withLock { $0.served }
            if previous == nil, let replaced { previous = FlagFingerprints(document: replaced.document.bytes()) }
            let changes: FlagChanges
            if let next, replaced == nil || previous != nil {
                changes = FlagChanges.between(previous: previous, next: next)
            } else {
                changes = FlagChanges.byKeys(previous: replaced?.evaluator.snapshot, next: served.evaluator.snapshot)
            }
            let swapped = state.withLock { state -> (recovered: Bool, status: ClientStatus)? in
                guard !state.lifecycle.isClosed else { return nil }
                state.served = served
                let recovered = state.progress.succeeded(at: now)
                return (recovered, status(of: state, now: ContinuousClock.now))
            }
            guard let swapped else { return nil }
            previous = next
            return (swapped.recovered, swapped.status, changes)
        }
        guard let outcome else { return nil }
        return Swap(recovered: outcome.recovered, status: outcome.status, changes: outcome.changes)
    }

    /// Applies one outcome of the sync loop: swap in memory, persist after, tell subscribers last.
    func handle(_ event: SyncLoop.Event, timing: SyncLoop.Timing) async {
        let now = options.wallClock()
        switch event {
        case .updated(let fetched):
            await apply(fetched, at: now, timing: timing)
        case .unchanged:
            await confirm(event, at: now, timing: timing)
        case .failed(let error):
            await fail(error, event: event, at: now, timing: timing)
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
            fresh: fetched.snapshot,
            document: fetched.document,
            source: .network,
            etag: fetched.etag,
            at: now
        )
        let replaced = await replace(with: served, at: now, recording: (.updated(fetched), timing))
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

    private func confirm(_ event: SyncLoop.Event, at now: Date, timing: SyncLoop.Timing) async {
        let confirmed = state.withLock { state -> (recovered: Bool, status: ClientStatus)? in
            guard !state.lifecycle.isClosed else { return nil }
            if var served = state.served {
                served.lastConfirmedAt = now
                served.ageAtMark = .zero
                served.mark = .now
                state.served = served
            }
            let recovered = state.progress.succeeded(at: now)
            return (recovered, status(of: state, now: ContinuousClock.now))
        }
        guard let confirmed else { return }
        resumeWaiters()
        await persist(event, timing: timing, at: now, action: "record the 304")
        let current = confirmed.status
        publish(confirmed.recovered ? [.confirmed(current), .recovered(current)] : [.confirmed(current)])
        await servePinnedAfterConfirmation(at: now)
    }

    private func fail(_ error: SyncError, event: SyncLoop.Event, at now: Date, timing: SyncLoop.Timing) async {
        if error.kind == .cancelled { return }
        let failure = FliptError(error)
        let closed = state.withLock { state -> Bool in
            guard !state.lifecycle.isClosed else { return true }
            state.progress.failed(failure, at: now)
            return false
        }
        guard !closed else { return }
        logger.warning(
            "Fetch failed; \(options.errorStrategy == .fallback ? "serving the last good snapshot" : "evaluations report the error")",
            metadata: ["namespace": "\(namespace)", "error": "\(error.message)"]
        )
        await persist(event, timing: timing, at: now, action: "record the failed attempt")
        publish([.fetchFailed(failure)])
    }

    /// Writes a fetch outcome to the cache through the sync layer, on the store's thread; a failure is logged and
    /// noted in the status, never thrown: it must not stop serving.
    func persist(_ event: SyncLoop.Event, timing: SyncLoop.Timing, at now: Date, action: String) async {
        guard let store, !store.isReadOnly else { return }
        do throws(StoreError) {
            try await sync.record(event, timing: timing, at: now, in: store)
            state.withLock { state in
                if state.progress.cacheProblem != nil {
                    state.progress.wroteCache(problem: nil, readOnly: store.isReadOnly)
                }
            }
        } catch {
            state.withLock { $0.progress.wroteCache(problem: "\(error)", readOnly: store.isReadOnly) }
            logger.error(
                "Could not \(action) in the cache; the snapshot is still served from memory",
                metadata: ["error": "\(error)"]
            )
        }
    }
}
