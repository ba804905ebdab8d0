/// SplitMix64: a small seeded generator, so that a soak schedule can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    /// A duration uniform in `range`, to the millisecond.
    mutating func duration(_ range: ClosedRange<Double>) -> Duration {
        .milliseconds(Int((Double.random(in: range, using: &self) * 1_000).rounded()))
    }
}
