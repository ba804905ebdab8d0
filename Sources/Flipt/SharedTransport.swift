import FliptSync

/// An HTTP client and its connection pool, made by ``ClientOptions/makeTransport()`` for several ``FliptClient``s
/// to share as their ``ClientOptions/transport``.
///
/// Its owner calls ``shutdown()`` once, after shutting down every client that uses it: a client never shuts down
/// a transport it was given.
public struct SharedTransport: Sendable {
    /// The transport the clients fetch with.
    package let base: any HTTPTransport

    /// Wraps a transport, such as a test's own.
    package init(_ base: any HTTPTransport) {
        self.base = base
    }

    /// Closes the connections and releases the pool; fetches through it fail from then on. Calling it more than
    /// once is harmless.
    public func shutdown() async {
        await base.shutdown()
    }
}
