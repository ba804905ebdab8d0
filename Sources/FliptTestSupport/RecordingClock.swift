import Synchronization

/// A clock whose `sleep` returns at once and records the duration asked for, advancing its own time by it.
///
/// Use it to test intervals and back-off without waiting: run the code under test, then read ``sleeps``.
/// Cancellation is honoured: sleeping in a cancelled task throws `CancellationError`.
package final class RecordingClock: Clock, Sendable {
    /// A point in the recording clock's virtual time.
    package struct Instant: InstantProtocol, Sendable {
        /// Time since the clock was created.
        package var offset: Duration

        /// Creates an instant at `offset` from the clock's origin.
        package init(offset: Duration) {
            self.offset = offset
        }

        /// The instant `duration` later.
        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }

        /// The duration from this instant to `other`.
        package func duration(to other: Instant) -> Duration { other.offset - offset }

        /// Orders instants by time.
        package static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let state = Mutex<(now: Instant, sleeps: [Duration])>((Instant(offset: .zero), []))

    /// Creates a clock at virtual time zero.
    package init() {}

    /// The current virtual time: the sum of every sleep so far.
    package var now: Instant { state.withLock { $0.now } }

    /// The resolution of the clock (one nanosecond).
    package var minimumResolution: Duration { .nanoseconds(1) }

    /// Every duration slept so far, in order (deadlines in the past are recorded as zero).
    package var sleeps: [Duration] { state.withLock { $0.sleeps } }

    /// Records the sleep, moves virtual time to `deadline` and returns without waiting.
    package func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        state.withLock { state in
            let duration = max(.zero, state.now.duration(to: deadline))
            state.sleeps.append(duration)
            state.now = state.now.advanced(by: duration)
        }
        await Task.yield()
        try Task.checkCancellation()
    }
}
