import CFliptClock
import Foundation
import Testing

@testable import FliptEngine

/// The clock evaluations read: the CPU counter converted to wall time where it is constant-rate,
/// `clock_gettime` elsewhere. Every test holds on either path; which one this machine takes is checked too.
@Suite("Evaluation clock")
struct EvaluationClockTests {
    /// Reads for `duration`, bracketing each reading with two system-clock reads; returns the reading count and
    /// the largest distance (ns) of a reading outside its bracket.
    private func bracketedReads(for duration: Duration) -> (reads: Int, worstNanos: Int64) {
        let clock = ContinuousClock()
        let end = clock.now + duration
        var reads = 0
        var worst: Int64 = 0
        while clock.now < end {
            for _ in 0..<200 {
                let before = flipt_clock_system_nanos()
                let reading = EvaluationStart.now()
                let after = flipt_clock_system_nanos()
                worst = max(worst, before - reading.nanosSince1970, reading.nanosSince1970 - after)
                reads += 1
            }
        }
        return (reads, worst)
    }

    @Test("Readings agree with the system clock to within microseconds")
    func agreesWithSystemClock() {
        _ = bracketedReads(for: .milliseconds(20))  // calibration
        let (reads, worst) = bracketedReads(for: .milliseconds(100))
        #expect(reads > 1000)
        // An anchor is at most 0.5 µs off (its reads are at most 1 µs apart), and a counter rate off by 0.3 % puts
        // readings up to 3 µs away by the end of the millisecond an anchor serves.
        #expect(worst <= 2_000, "a reading was \(worst) ns outside the system clock reads around it")
    }

    @Test("Threads reading while the anchor is republished all get consistent readings")
    func concurrentReaders() async {
        let worsts = await withTaskGroup(of: Int64.self) { group in
            for _ in 0..<4 {
                group.addTask { bracketedReads(for: .milliseconds(150)).worstNanos }
            }
            return await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(worsts.count == 4)
        #expect(worsts.allSatisfy { $0 <= 2_000 }, "worst distances from the system clock: \(worsts) ns")
    }

    @Test("Where the counter is constant-rate, nearly every reading comes from it; elsewhere none does")
    func counterServesReadings() {
        _ = bracketedReads(for: .milliseconds(20))
        let clock = ContinuousClock()
        let started = clock.now
        var reads = 0
        var fromCounter = 0
        while clock.now - started < .milliseconds(30) {
            for _ in 0..<1000 where EvaluationStart.now().ticks != 0 { fromCounter += 1 }
            reads += 1000
        }
        if flipt_clock_uses_counter() != 0 {
            // One re-anchor per millisecond at most: a few dozen of some hundred thousand reads.
            #expect((reads - fromCounter) * 100 < reads, "\(reads - fromCounter) of \(reads) read clock_gettime")
        } else {
            #expect(fromCounter == 0)
        }
    }

    @Test("Durations are whole milliseconds of real time, from either kind of reading")
    func durations() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let start = EvaluationStart.now()
        Thread.sleep(forTimeInterval: 0.015)
        let millis = start.wholeMillisecondsElapsed()
        let elapsed = (clock.now - started) / .milliseconds(1)
        #expect(millis >= 15)
        #expect(millis <= elapsed.rounded(.up))
        #expect(millis == millis.rounded())

        // A reading from clock_gettime (no counter value) measures with clock_gettime.
        var ticks: UInt64 = 1
        let nanos = flipt_clock_read_slow(&ticks)
        #expect(ticks == 0)
        let systemStart = EvaluationStart(nanosSince1970: nanos - 7_000_000, ticks: 0)
        #expect(systemStart.wholeMillisecondsElapsed() >= 7)
        #expect(systemStart.wholeMillisecondsElapsed() < 1_000)
        // A start in the future (the system clock stepped back) is 0, not negative.
        #expect(EvaluationStart(nanosSince1970: nanos + 60_000_000_000, ticks: 0).wholeMillisecondsElapsed() == 0)
    }

    @Test("A counter reading a millisecond old reads 1 ms, one a tick younger than that reads 0")
    func millisecondBoundary() throws {
        _ = bracketedReads(for: .milliseconds(20))  // calibration
        guard flipt_clock_uses_counter() != 0 else { return }  // no counter: `durations` covers clock_gettime
        let rate = flipt_clock_rate_q32()
        let millisecond = flipt_clock_millisecond_ticks()
        try #require(rate > 0 && millisecond > 1)
        // The threshold is exact: the fewest ticks that convert to a million nanoseconds.
        #expect(flipt_clock_ticks_as_nanos(millisecond, rate) >= 1_000_000)
        #expect(flipt_clock_ticks_as_nanos(millisecond - 1, rate) < 1_000_000)
        // A start exactly a millisecond of ticks ago: whatever happens before the end reading only adds to it.
        let now = flipt_clock_ticks()
        #expect(EvaluationStart(nanosSince1970: 0, ticks: now - millisecond).wholeMillisecondsElapsed() >= 1)
        #expect(EvaluationStart(nanosSince1970: 0, ticks: now - 5 * millisecond).wholeMillisecondsElapsed() >= 5)
        // A start a tenth of a millisecond ago reads 0, unless this thread is descheduled for 0.9 ms in between:
        // one of a few tries is enough.
        let quick = (0..<5).map { _ in
            EvaluationStart(nanosSince1970: 0, ticks: flipt_clock_ticks() - millisecond / 10)
                .wholeMillisecondsElapsed()
        }
        #expect(quick.contains(0), "\(quick)")
    }

    @Test("Readings split into seconds and nanoseconds, before 1970 too")
    func timestamps() {
        let reading = EvaluationStart(nanosSince1970: 1_764_000_000_123_456_789, ticks: 0).timestamp
        #expect(reading == EvaluationTimestamp(secondsSince1970: 1_764_000_000, nanoseconds: 123_456_789))
        #expect(reading.rfc3339 == "2025-11-24T16:00:00.123456789Z")
        let early = EvaluationStart(nanosSince1970: -1_500_000_000, ticks: 0).timestamp
        #expect(early == EvaluationTimestamp(secondsSince1970: -2, nanoseconds: 500_000_000))
        let now = EvaluationStart.now().timestamp
        let system = flipt_clock_system_nanos()
        #expect(abs(Int64(now.secondsSince1970) - system / 1_000_000_000) <= 1)
    }
}
