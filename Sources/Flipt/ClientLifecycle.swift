/// Where a client is in its life: made and not started (`idle`), syncing or offline (`running`), or `closed`. It
/// moves idle → running → closed, or idle → closed, and never back.
///
/// The transitions are plain functions that change the value and say what the caller must do outside the lock
/// (cancel a task, resume waiters); they never run anything themselves. The value is generic over the handle of a
/// background task (`Task<Void, Never>` in a client) and of a task waiting for the close (a continuation), so
/// that tests check every transition with plain values (ClientLifecycleTests).
enum ClientLifecycle<Work, Waiter> {
    /// Not started: nothing runs. `offline` is what ``start(loop:watch:)`` will begin with.
    case idle(offline: Bool, closeWaiters: [Waiter])
    /// Started. `loop` is the sync loop while online; offline, the cancelled loop that may still be finishing a
    /// request (a resumed loop waits for it). `watch` is the staleness watch and gauges, online and offline.
    case running(offline: Bool, loop: Work?, watch: Work?, closeWaiters: [Waiter])
    /// Closed: nothing runs again. `ending` are the tasks cancelled by the close, for a caller that waits for them.
    case closed(offline: Bool, ending: [Work])

    /// A client that has not started; `offline` when it starts offline (or is fed in process).
    init(offline: Bool) {
        self = .idle(offline: offline, closeWaiters: [])
    }

    /// Whether the client is closed.
    var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    /// Whether the client does not sync: offline by request, or closed while offline.
    var isOffline: Bool {
        switch self {
        case .idle(let offline, _), .running(let offline, _, _, _), .closed(let offline, _): offline
        }
    }

    /// The background tasks there are to wait for: those running, or those a close cancelled.
    var work: [Work] {
        switch self {
        case .idle: []
        case .running(_, let loop, let watch, _): [watch, loop].compactMap { $0 }
        case .closed(_, let ending): ending
        }
    }

    /// Starts an idle client: `watch` (when given) always, `loop` unless it starts offline. Returns false, and
    /// makes nothing, when the client has started or closed already.
    mutating func start(loop: () -> Work, watch: (() -> Work)?) -> Bool {
        guard case .idle(let offline, let closeWaiters) = self else { return false }
        self = .running(offline: offline, loop: offline ? nil : loop(), watch: watch?(), closeWaiters: closeWaiters)
        return true
    }

    /// What ``setOffline(_:resume:)`` changed.
    struct OfflineChange {
        /// Whether the offline state changed.
        var changed: Bool
        /// The loop to cancel (going offline).
        var cancel: Work?
    }

    /// Goes offline (`true`) or back online (`false`). Running, going offline cancels the loop (kept until a
    /// resumed loop has waited for it); going online makes a new loop with `resume`, given the previous one.
    /// Idle, it only changes what the start begins with. Closed, or already in that state, it changes nothing.
    mutating func setOffline(_ offline: Bool, resume: (_ previous: Work?) -> Work) -> OfflineChange {
        switch self {
        case .idle(let current, let closeWaiters):
            guard current != offline else { return OfflineChange(changed: false) }
            self = .idle(offline: offline, closeWaiters: closeWaiters)
            return OfflineChange(changed: true)
        case .running(let current, let loop, let watch, let closeWaiters):
            guard current != offline else { return OfflineChange(changed: false) }
            if offline {
                self = .running(offline: true, loop: loop, watch: watch, closeWaiters: closeWaiters)
                return OfflineChange(changed: true, cancel: loop)
            }
            self = .running(offline: false, loop: resume(loop), watch: watch, closeWaiters: closeWaiters)
            return OfflineChange(changed: true)
        case .closed:
            return OfflineChange(changed: false)
        }
    }

    /// What ``close()`` asks the caller to do.
    struct Closing {
        /// The background tasks to cancel.
        var cancel: [Work]
        /// The tasks waiting for the close, to resume.
        var resume: [Waiter]
    }

    /// Closes the client. Returns nil when it was closed already.
    mutating func close() -> Closing? {
        switch self {
        case .idle(let offline, let closeWaiters):
            self = .closed(offline: offline, ending: [])
            return Closing(cancel: [], resume: closeWaiters)
        case .running(let offline, let loop, let watch, let closeWaiters):
            let work = [watch, loop].compactMap { $0 }
            self = .closed(offline: offline, ending: work)
            return Closing(cancel: work, resume: closeWaiters)
        case .closed:
            return nil
        }
    }

    /// Adds a task that waits for the close. Returns false, keeping nothing, when the client is closed already
    /// (the caller resumes the waiter at once).
    mutating func awaitClose(_ waiter: Waiter) -> Bool {
        switch self {
        case .idle(let offline, var closeWaiters):
            closeWaiters.append(waiter)
            self = .idle(offline: offline, closeWaiters: closeWaiters)
            return true
        case .running(let offline, let loop, let watch, var closeWaiters):
            closeWaiters.append(waiter)
            self = .running(offline: offline, loop: loop, watch: watch, closeWaiters: closeWaiters)
            return true
        case .closed:
            return false
        }
    }
}

extension ClientLifecycle: Equatable where Work: Equatable, Waiter: Equatable {}
extension ClientLifecycle.OfflineChange: Equatable where Work: Equatable {}
extension ClientLifecycle.Closing: Equatable where Work: Equatable, Waiter: Equatable {}
extension ClientLifecycle: Sendable where Work: Sendable, Waiter: Sendable {}
extension ClientLifecycle.OfflineChange: Sendable where Work: Sendable {}
extension ClientLifecycle.Closing: Sendable where Work: Sendable, Waiter: Sendable {}
