import FliptSync
import Testing

@Suite("RetryPolicy and ReconnectPolicy (pure)")
struct PolicyTests {
    @Test("retryable outcomes: 408, 429, 5xx and transport failures; nothing else")
    func classification() {
        for status in [408, 429, 500, 503, 599] { #expect(RetryPolicy.isRetryable(status: status)) }
        for status in [200, 204, 304, 400, 401, 403, 404, 409, 499, 600] {
            #expect(!RetryPolicy.isRetryable(status: status))
        }
        #expect(RetryPolicy.isRetryable(failure: .network))
        #expect(RetryPolicy.isRetryable(failure: .timeout))
        for kind in [SyncError.Kind.badDocument, .cancelled, .unexpectedResponse, .authentication(401)] {
            #expect(!RetryPolicy.isRetryable(failure: kind))
        }
    }

    @Test("three retries, each uniform in 0...min(cap, base·2^k), then stop")
    func fullJitterBounds() {
        for seed in UInt64(0)..<200 {
            var policy = RetryPolicy()
            var random = RandomSource.seeded(seed)
            var delays: [Duration] = []
            while case .retry(let delay) = policy.next(after: .failure(.network), using: &random) {
                delays.append(delay)
            }
            #expect(delays.count == 3)
            for (k, delay) in delays.enumerated() {
                #expect(delay >= .zero && delay <= .seconds(1 << k))
            }
        }
    }

    @Test("the jitter spreads over the whole range (not a fixed fraction)")
    func jitterSpread() {
        var random = RandomSource.seeded(9)
        var firsts: [Duration] = []
        for _ in 0..<500 {
            var policy = RetryPolicy()
            if case .retry(let delay) = policy.next(after: .response(status: 503, retryAfter: nil), using: &random) {
                firsts.append(delay)
            }
        }
        #expect(firsts.count == 500)
        #expect(firsts.min()! < .milliseconds(50))
        #expect(firsts.max()! > .milliseconds(950))
    }

    @Test("the cap bounds every delay, and large retry counts do not overflow")
    func cap() {
        var policy = RetryPolicy(maximumRetries: 100, baseDelay: .seconds(1), maximumDelay: .seconds(30))
        var random = RandomSource.seeded(3)
        var count = 0
        while case .retry(let delay) = policy.next(after: .failure(.timeout), using: &random) {
            #expect(delay <= .seconds(30))
            count += 1
        }
        #expect(count == 100)
    }

    @Test("Retry-After replaces the jitter and is capped; non-retryable statuses stop at once")
    func retryAfter() {
        var random = RandomSource.seeded(1)
        var policy = RetryPolicy()
        #expect(
            policy.next(after: .response(status: 429, retryAfter: .seconds(5)), using: &random)
                == .retry(after: .seconds(5))
        )
        #expect(
            policy.next(after: .response(status: 503, retryAfter: .seconds(90)), using: &random)
                == .retry(after: .seconds(30))
        )
        #expect(policy.retriesSoFar == 2)
        var fresh = RetryPolicy()
        #expect(fresh.next(after: .response(status: 404, retryAfter: .seconds(1)), using: &random) == .stop)
        #expect(fresh.next(after: .failure(.badDocument), using: &random) == .stop)
        #expect(fresh.retriesSoFar == 0)
    }

    @Test("reconnect back-off grows while connections deliver nothing, and resets after a good message")
    func reconnect() {
        var policy = ReconnectPolicy()
        var random = RandomSource.seeded(11)
        for n in 0..<8 {
            let delay = policy.next(afterConnectionDelivering: false, using: &random)
            #expect(delay <= min(.seconds(30), .seconds(1 << n)))
            #expect(policy.failuresInARow == n + 1)
        }
        let afterGood = policy.next(afterConnectionDelivering: true, using: &random)
        #expect(afterGood <= .seconds(1))
        #expect(policy.failuresInARow == 1)
        // The ceiling really grows: over many draws at n = 5 some delay exceeds the base.
        var grown = ReconnectPolicy()
        var largest = Duration.zero
        for _ in 0..<5 { _ = grown.next(afterConnectionDelivering: false, using: &random) }
        for _ in 0..<20 {
            var copy = grown
            largest = max(largest, copy.next(afterConnectionDelivering: false, using: &random))
        }
        #expect(largest > .seconds(4))
    }

    @Test("the same seed gives the same sequence; different seeds differ")
    func determinism() {
        var a = RandomSource.seeded(5)
        var b = RandomSource.seeded(5)
        var c = RandomSource.seeded(6)
        let first = (0..<4).map { _ in a.next() }
        #expect(first == (0..<4).map { _ in b.next() })
        #expect(first != (0..<4).map { _ in c.next() })
    }

    @Test("poll delays stay within interval × (1 ± jitter), and sub-second intervals work")
    func pollDelay() {
        var random = RandomSource.seeded(2)
        var delays: [Duration] = []
        for _ in 0..<1_000 {
            delays.append(SyncLoop.pollDelay(interval: .seconds(120), jitter: 0.1, using: &random))
        }
        #expect(delays.allSatisfy { $0 >= .seconds(108) && $0 <= .seconds(132) })
        #expect(delays.min()! < .seconds(110) && delays.max()! > .seconds(130))
        #expect(SyncLoop.pollDelay(interval: .milliseconds(250), jitter: 0, using: &random) == .milliseconds(250))
    }
}
