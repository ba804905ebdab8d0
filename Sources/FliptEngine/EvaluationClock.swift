internal import CFliptClock

/// The clock reading an evaluation starts with: its result's timestamp, and the origin of its duration.
///
/// Reads come from `CFliptClock`: the CPU's counter converted to wall time from an anchor at most a millisecond
/// old, where the CPU reports it constant-rate, and `clock_gettime(CLOCK_REALTIME)` elsewhere. Both reads of an
/// evaluation (start and end) cost less than half of two `clock_gettime` calls.
struct EvaluationStart {
    /// Wall clock, nanoseconds since 1970-01-01T00:00:00Z.
    let nanosSince1970: Int64
    /// The counter value the reading came from, or 0 when it came from `clock_gettime`.
    let ticks: UInt64

    /// Reads the clock.
    @inline(__always)
    static func now() -> EvaluationStart {
        var ticks: UInt64 = 0
        let nanos = flipt_clock_read(&ticks)
        return EvaluationStart(nanosSince1970: nanos, ticks: ticks)
    }

    /// The reading as an instant.
    var timestamp: EvaluationTimestamp {
        let (seconds, nanos) = nanosSince1970.quotientAndRemainder(dividingBy: 1_000_000_000)
        return nanos >= 0
            ? EvaluationTimestamp(unchecked: seconds, Int32(nanos))
            : EvaluationTimestamp(unchecked: seconds - 1, Int32(nanos + 1_000_000_000))
    }

    /// Whole milliseconds since the reading, as the official engine reports durations (never negative).
    @inline(__always)
    func wholeMillisecondsElapsed() -> Double {
        Double(flipt_clock_elapsed_millis(nanosSince1970, ticks))
    }
}
