import Synchronization

/// A shareable source of random numbers, injected wherever jitter is drawn so tests can be deterministic.
///
/// Copies share one underlying generator.
package struct RandomSource: RandomNumberGenerator, Sendable {
    private let generate: @Sendable () -> UInt64

    /// Wraps a function that returns uniformly distributed 64-bit values.
    package init(_ generate: @escaping @Sendable () -> UInt64) {
        self.generate = generate
    }

    /// The system's cryptographically secure generator.
    package static var system: RandomSource {
        RandomSource {
            var generator = SystemRandomNumberGenerator()
            return generator.next()
        }
    }

    /// A deterministic generator (SplitMix64) for tests and reproducible simulations.
    package static func seeded(_ seed: UInt64) -> RandomSource {
        let state = SeedState(seed)
        return RandomSource { state.next() }
    }

    /// The next random value.
    package mutating func next() -> UInt64 {
        generate()
    }

    /// A uniform value in `0...1`.
    mutating func unit() -> Double {
        Double(next() >> 11) / Double(UInt64(1) << 53)
    }
}

private final class SeedState: Sendable {
    private let state: Mutex<UInt64>

    init(_ seed: UInt64) {
        state = Mutex(seed)
    }

    func next() -> UInt64 {
        state.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}

extension Duration {
    /// This duration scaled by `factor` (non-negative), in attosecond precision.
    func scaled(by factor: Double) -> Duration {
        self * factor
    }

    /// `base × 2^exponent`, capped at `cap`, without overflow.
    static func exponential(base: Duration, exponent: Int, cap: Duration) -> Duration {
        var value = base
        for _ in 0..<max(0, exponent) {
            if value >= cap { return cap }
            value = value * 2
        }
        return min(value, cap)
    }

    /// The duration in seconds as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
