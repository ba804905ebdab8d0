import ServiceLifecycle

/// The lifecycle: start, offline and online, close; the state moves as ``ClientLifecycle`` says, and the tasks
/// are started, cancelled and awaited here, outside the state lock.
extension ClientCore {
    /// Starts the background work: the sync loop (unless the client is offline or fed in process) and, with a
    /// maximum age or a metrics backend, the staleness watch and gauges. Both end on cancellation.
    /// Does nothing once started (by the initialiser, or by ``FliptClient/run()`` for a client made with
    /// `startsSyncing: false`) or closed.
    func start() {
        let maximumAge = options.cache.maximumAge
        let gaugeInterval = instrumentation.gaugeInterval
        state.withLock { state in
            let watch: (() -> Task<Void, Never>)? =
                maximumAge == nil && gaugeInterval == nil
                ? nil
                : {
                    Task.detached { [self] in
                        await withTaskGroup(of: Void.self) { group in
                            if let maximumAge { group.addTask { await self.watchStaleness(maximumAge: maximumAge) } }
                            if let gaugeInterval {
                                group.addTask { await self.reportSnapshotGauges(every: gaugeInterval) }
                            }
                        }
                    }
                }
            let started = state.lifecycle.start(
                loop: { Task.detached { [self] in await self.runLoop() } },
                watch: watch
            )
            // A client fed in process has its data from the start: nothing to wait for.
            if started && options.isFedInProcess { state.progress.hasFetched = true }
        }
    }

    /// The sync loop; each request confirms the snapshot in use at that moment.
    private func runLoop() async {
        await loop.run(
            currentETag: { [weak self] in self?.confirmableETag() },
            onTimedEvent: { event, timing in await self.handle(event, timing: timing) }
        )
    }

    /// Stops (`true`) or resumes (`false`) the sync loop; see ``FliptClient/setOffline(_:)``.
    func setOffline(_ offline: Bool) {
        guard !options.isFedInProcess else { return }
        let change = state.withLock { state in
            state.lifecycle.setOffline(offline) { previous in
                // The cancelled loop may still be finishing a request: the new one starts once it has ended.
                Task.detached { [self] in
                    await previous?.value
                    if Task.isCancelled { return }
                    await self.runLoop()
                }
            }
        }
        change.cancel?.cancel()
        if change.changed {
            logger.info(
                offline ? "Offline: polling and streaming stopped" : "Online: syncing again",
                metadata: ["namespace": "\(namespace)"]
            )
        }
    }

    var isOffline: Bool { state.withLock { $0.lifecycle.isOffline } }

    /// Closes: cancels the background tasks, finishes the event streams, resumes every waiter. Idempotent.
    func close() {
        let closed = state.withLock { state -> Closed? in
            guard let closing = state.lifecycle.close() else { return nil }
            let closed = Closed(
                closing: closing,
                subscribers: Array(state.subscribers.values),
                waiters: Array(state.waiters.values)
            )
            state.subscribers = [:]
            state.waiters = [:]
            return closed
        }
        guard let closed else { return }
        for task in closed.closing.cancel { task.cancel() }
        for subscriber in closed.subscribers { subscriber.finish() }
        for case .waiting(let continuation) in closed.waiters { continuation.resume() }
        for continuation in closed.closing.resume { continuation.resume() }
    }

    /// What a close hands over from the state to be finished outside the lock.
    private struct Closed {
        var closing: Lifecycle.Closing
        var subscribers: [AsyncStream<ClientEvent>.Continuation]
        var waiters: [Waiter]
    }

    /// Returns once ``close()`` has been called.
    func waitUntilClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waits = state.withLock { $0.lifecycle.awaitClose(continuation) }
            if !waits { continuation.resume() }
        }
    }

    /// Closes and waits until the background tasks have ended, also when another caller closed first.
    func closeAndWait() async {
        close()
        for task in state.withLock({ $0.lifecycle.work }) { await task.value }
    }

    /// The body of ``FliptClient/run()``.
    func run() async {
        start()
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await waitUntilClosed()
            } onCancel: {
                self.close()
            }
        } onGracefulShutdown: {
            self.close()
        }
        await closeAndWait()
    }
}
