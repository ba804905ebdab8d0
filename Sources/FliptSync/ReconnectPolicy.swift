/// How long to wait before reopening a stream: full-jitter exponential back-off that resets after a good message.
///
/// A pure state machine. After a connection ends, the delay is uniform in `0...min(maximumDelay, baseDelay × 2^n)`,
/// where `n` counts the consecutive connections that delivered no valid snapshot; a connection that delivered at
/// least one resets `n` to zero first, so a healthy stream that the server closes reconnects within `baseDelay`.
package struct ReconnectPolicy: Sendable, Hashable {
    /// The nominal delay after a good connection.
    package var baseDelay: Duration
    /// The cap on any delay.
    package var maximumDelay: Duration
    /// Consecutive connections that delivered nothing valid.
    package private(set) var failuresInARow = 0

    /// Creates a policy; the defaults are base 1 s, cap 30 s.
    package init(baseDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(30)) {
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
    }

    /// The delay before the next connection, given whether the one that just ended delivered a valid snapshot.
    package mutating func next(
        afterConnectionDelivering deliveredSnapshot: Bool,
        using random: inout some RandomNumberGenerator
    ) -> Duration {
        if deliveredSnapshot { failuresInARow = 0 }
        let ceiling = Duration.exponential(base: baseDelay, exponent: failuresInARow, cap: maximumDelay)
        failuresInARow += 1
        return ceiling * Double.random(in: 0...1, using: &random)
    }

    /// Starts over, as after a good message.
    package mutating func reset() {
        failuresInARow = 0
    }

    func validate() throws(SyncError) {
        guard baseDelay >= .zero, maximumDelay >= baseDelay else {
            throw SyncError(.configuration, "The reconnect policy needs 0 ≤ baseDelay ≤ maximumDelay.")
        }
    }
}
