import FliptSync

/// Events and waiters: the streams of ``ClientEvent``s and the tasks in ``FliptClient/waitUntilReady(timeout:)``.
extension ClientCore {
    /// A task waiting in ``FliptClient/waitUntilReady(timeout:)``.
    enum Waiter {
        case waiting(CheckedContinuation<Void, Never>)
        case cancelled
    }

    func events() -> AsyncStream<ClientEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ClientEvent.self,
            bufferingPolicy: .bufferingNewest(256)
        )
        let id: Int? = state.withLock { state in
            guard !state.lifecycle.isClosed else { return nil }
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Tells every subscriber `events`, in order (outside the state lock).
    func publish(_ events: [ClientEvent]) {
        guard !events.isEmpty else { return }
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers {
            for event in events { subscriber.yield(event) }
        }
    }

    func waitUntilReady(timeout: Duration) async throws(FliptError) {
        if state.withLock({ $0.progress.hasFetched }) { return }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let ready = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.readySignal(id: id) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        let (closed, progress) = state.withLock { ($0.lifecycle.isClosed, $0.progress) }
        if progress.hasFetched || ready && !closed { return }
        if closed { throw FliptError(.closed, "The client was closed while waiting for fresh flag data.") }
        let failure = progress.failure
        let reason = failure.map { " The last fetch failed: \($0.message)" } ?? " No fetch has completed yet."
        throw FliptError(
            .timedOut,
            "No fresh flag data arrived within \(Self.describe(timeout)).\(reason)",
            underlying: failure
        )
    }

    /// Returns true once a fetch has succeeded, false when the client closed or the wait was cancelled.
    private func readySignal(id: Int) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.progress.hasFetched || state.lifecycle.isClosed { return true }
                    if case .cancelled = state.waiters[id] {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return state.withLock { $0.progress.hasFetched }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if case .waiting(let continuation) = state.waiters[id] {
                    state.waiters[id] = nil
                    return continuation
                }
                state.waiters[id] = .cancelled
                return nil
            }
            continuation?.resume()
        }
    }

    /// Resumes every task in ``waitUntilReady(timeout:)`` (a fetch succeeded, or the client closed).
    func resumeWaiters() {
        let waiters = state.withLock { state -> [Waiter] in
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            return waiters
        }
        for case .waiting(let continuation) in waiters { continuation.resume() }
    }
}
