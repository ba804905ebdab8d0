/// When and after how long to retry one request: full-jitter exponential back-off, a pure state machine.
///
/// Retries happen on 408, 429, 500–599 and transport failures (refused, reset, DNS, timeout). Every other
/// status ends the request at once. The delay before retry `k` (from 0) is uniform in
/// `0...min(maximumDelay, baseDelay × 2^k)`; a `Retry-After` from the server replaces it, capped at
/// `maximumDelay`. Use a fresh value (or ``reset()``) for every request.
package struct RetryPolicy: Sendable, Hashable {
    /// What an attempt ended with.
    package enum Outcome: Sendable, Hashable {
        /// The server answered with this status, and a parsed `Retry-After` if it sent one.
        case response(status: Int, retryAfter: Duration?)
        /// The attempt failed without a response, or with a body that could not be read.
        case failure(SyncError.Kind)
    }

    /// What to do next.
    package enum Decision: Sendable, Hashable {
        /// Wait this long, then try again.
        case retry(after: Duration)
        /// Do not retry: hand the outcome to the caller.
        case stop
    }

    /// At most this many retries per request (so `maximumRetries + 1` attempts).
    package var maximumRetries: Int
    /// The nominal delay before the first retry.
    package var baseDelay: Duration
    /// The cap on any delay, `Retry-After` included.
    package var maximumDelay: Duration
    /// Retries decided so far for the current request.
    package private(set) var retriesSoFar = 0

    /// Creates a policy; the defaults are 3 retries, base 1 s, cap 30 s.
    package init(maximumRetries: Int = 3, baseDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(30)) {
        self.maximumRetries = maximumRetries
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
    }

    /// Whether a status is worth retrying: 408, 429 and 500–599.
    package static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }

    /// Whether a failure without a response is worth retrying: network problems and timeouts.
    package static func isRetryable(failure kind: SyncError.Kind) -> Bool {
        kind == .network || kind == .timeout
    }

    /// Decides after an attempt, drawing the jitter from `random`.
    package mutating func next(after outcome: Outcome, using random: inout some RandomNumberGenerator) -> Decision {
        let retryAfter: Duration?
        switch outcome {
        case .response(let status, let serverDelay):
            guard Self.isRetryable(status: status) else { return .stop }
            retryAfter = serverDelay
        case .failure(let kind):
            guard Self.isRetryable(failure: kind) else { return .stop }
            retryAfter = nil
        }
        guard retriesSoFar < maximumRetries else { return .stop }
        defer { retriesSoFar += 1 }
        if let retryAfter {
            return .retry(after: min(max(retryAfter, .zero), maximumDelay))
        }
        let ceiling = Duration.exponential(base: baseDelay, exponent: retriesSoFar, cap: maximumDelay)
        return .retry(after: ceiling * Double.random(in: 0...1, using: &random))
    }

    /// Starts over for a new request.
    package mutating func reset() {
        retriesSoFar = 0
    }

    func validate() throws(SyncError) {
        guard maximumRetries >= 0, baseDelay >= .zero, maximumDelay >= baseDelay else {
            throw SyncError(
                .configuration,
                "The retry policy needs maximumRetries ≥ 0 and 0 ≤ baseDelay ≤ maximumDelay."
            )
        }
    }
}
