import ServiceLifecycle

extension FliptClient: Service {
    /// Keeps the snapshot in sync until the task is cancelled, a graceful shutdown is triggered (a `ServiceGroup`'s
    /// signal), or ``close()`` is called; then stops syncing and returns once no cache write can follow.
    ///
    /// A client made with `startsSyncing: false` starts syncing here; one that syncs already (the SDK-style
    /// ``init(namespace:options:)``) keeps its sync, and `run()` ends it on shutdown. Evaluations answer before,
    /// during and after `run()`, from the snapshot in use. A closed client returns at once.
    ///
    /// ```swift
    /// let flags = try FliptClient(namespace: "production", options: options, startsSyncing: false)
    /// let group = ServiceGroup(
    ///     configuration: .init(services: [flags, app], gracefulShutdownSignals: [.sigterm], logger: logger)
    /// )
    /// try await group.run()  // on SIGTERM: `app` stops first, then the client
    /// ```
    public func run() async throws {
        await core.run()
    }
}
