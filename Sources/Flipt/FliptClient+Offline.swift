import FliptEngine

/// What a forced fetch, ``FliptClient/refresh()``, ended with.
public enum RefreshResult: Sendable, Hashable {
    /// The server sent a new snapshot; it is now in use. The status is the client's right after the replacement.
    case updated(ClientStatus, changes: FlagChanges)
    /// The server confirmed that the snapshot in use is current (a `304`).
    case notModified(ClientStatus)
    /// No fetch was made (``FliptError/Code/offline``, ``FliptError/Code/closed``), or it failed
    /// (``FliptError/Code/fetchFailed``, with the fetch error as its `underlying` error). Nothing that is
    /// served changed.
    case failed(FliptError)
}

extension FliptClient {
    /// Stops (`true`) or resumes (`false`) all network activity of the client.
    ///
    /// Offline, polling stops and an open stream is closed; evaluations keep answering from the snapshot in use
    /// (fetched, cached or seeded), and the staleness watch goes on, so ``ClientEvent/becameStale(_:)`` and
    /// ``StaleBehavior/fail`` still apply. Back online, the client fetches at once (a conditional request for the
    /// snapshot in use), then polls or streams as before. Calling it with the current state does nothing.
    /// ``ClientOptions/startsOffline`` creates a client that starts offline.
    ///
    /// A client made by `FliptTesting` has no server: it stays offline and this does nothing.
    public func setOffline(_ offline: Bool) {
        core.setOffline(offline)
    }

    /// Whether the client is offline (see ``setOffline(_:)``).
    public var isOffline: Bool { core.isOffline }

    /// Fetches the snapshot now, whatever the poll schedule, and returns what happened.
    ///
    /// The fetch is the one the background loop makes: a conditional request for the snapshot in use, with the same
    /// retries of transient failures (so a server that does not answer can keep it waiting through the retry
    /// back-off; cancel the calling task to stop it). Its outcome is applied as a poll's is: a new snapshot
    /// replaces the one in use, is written to the cache and reported by ``events()``; a failure is recorded in
    /// ``status`` and, under ``ErrorStrategy/fail``, makes evaluations throw until a fetch succeeds. The schedule
    /// of the background loop does not change; its next request confirms whatever snapshot is then in use.
    ///
    /// - Returns: ``RefreshResult/failed(_:)`` with ``FliptError/Code/offline`` without fetching while the client is
    ///   offline, and with ``FliptError/Code/closed`` after ``close()``.
    public func refresh() async -> RefreshResult {
        await core.refresh()
    }
}
