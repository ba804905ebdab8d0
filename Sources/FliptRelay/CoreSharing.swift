import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Gives an event loop's core to the other runnable threads once per round of reads it answered.
///
/// An event loop that always finds more requests waiting never blocks, and the scheduler takes its core away only
/// at a timer tick (every 4 ms at 250 Hz): a thread waiting for that core, a client on the same machine or the
/// application beside the relay, then waits whole ticks. Yielding (`sched_yield`) after each round lets such a
/// thread run at once; when nothing else waits, the call returns at once. One instance per event loop, touched
/// only on it.
///
/// Measured with `Tests/Load/compare.sh`'s 304 path (40 and 1,000 flags, 50 connections, wrk's 2 threads on the
/// same 2 cores as the relay's 2 event loops, 5 rounds of 3 s): p99 7.5-7.7 ms without, 2.3-2.4 ms with the
/// yield; requests/s within 3 % either way; the 200 paths unchanged.
final class CoreSharing: Sendable {
    /// Whether a yield is scheduled for the end of the current round.
    private let scheduled: NIOLoopBoundBox<Bool>
    private let count = Atomic<Int>(0)

    /// Creates the sharing of `eventLoop`'s core; call it on that loop.
    init(eventLoop: any EventLoop) {
        scheduled = NIOLoopBoundBox(false, eventLoop: eventLoop)
    }

    /// Times the loop yielded its core so far.
    var yields: Int { count.load(ordering: .relaxed) }

    /// A connection of this loop answered what it read: the loop yields its core once the current round of
    /// I/O is done (at most once per round, however many connections answered in it). Called on the loop.
    func roundAnswered() {
        guard !scheduled.value else { return }
        scheduled.value = true
        // Tasks run after the round's I/O events, before the loop waits again.
        scheduled.eventLoop.assumeIsolated().execute { [self] in
            scheduled.value = false
            count.add(1, ordering: .relaxed)
            sched_yield()
        }
    }
}
