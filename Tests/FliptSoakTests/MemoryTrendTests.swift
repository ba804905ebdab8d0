import Foundation
import Testing

/// The soak test's leak check on series shaped like the ones the soak client logs: it must pass what a healthy
/// client does (warm-up, noise, library pages mapped in late, a late thread) and fail a steady leak in either
/// figure.
@Suite("Soak memory check")
struct MemoryTrendTests {
    /// A life of `seconds` sampled every 250 ms; `figures` gives (heap, anon, file) KiB at a time in seconds.
    static func samples(
        seconds: Int = 90,
        _ figures: (Double) -> (heap: Int?, anon: Int?, file: Int)
    ) -> [IncarnationLog.Memory] {
        (0..<(seconds * 4)).map { index in
            let time = Double(index) / 4
            let (heap, anon, file) = figures(time)
            return IncarnationLog.Memory(
                milliseconds: index * 250,
                residentKiB: (anon ?? 5_000) + file,
                peakKiB: (anon ?? 5_000) + file,
                anonymousKiB: anon,
                fileKiB: file,
                threads: 10,
                heapKiB: heap,
                obtainedKiB: heap.map { $0 * 3 / 2 },
                cpuMilliseconds: index * 250,
                events: index / 10,
                subscriptions: index / 2
            )
        }
    }

    /// The shape measured on a healthy client: heap and private memory rise steeply in the first seconds and level
    /// off (time constant ~40 s), with the sampling noise of 4 threads allocating as they evaluate.
    static func warmUp(_ time: Double, noise: Int) -> (heap: Int, anon: Int) {
        let approach = 1 - exp(-time / 40)
        let wobble = Int((time * 7.3).truncatingRemainder(dividingBy: 1) * Double(2 * noise)) - noise
        return (1_300 + Int(700 * approach) + wobble, 4_900 + Int(1_100 * approach) + wobble)
    }

    @Test("a client that warms up and then holds steady passes")
    func warmUpPasses() {
        let trend = MemoryTrend(
            samples: Self.samples { time in
                let (heap, anon) = Self.warmUp(time, noise: 60)
                return (heap, anon, 43_900)
            }
        )
        #expect(trend.violations.isEmpty, "\(trend.violations)")
        #expect(trend.heap != nil && trend.anonymous != nil)
    }

    @Test("library pages mapped in late (5 MiB of resident memory in the last third) do not count as a leak")
    func lateLibraryPagesPass() {
        let trend = MemoryTrend(
            samples: Self.samples { time in
                let (heap, anon) = Self.warmUp(time, noise: 60)
                return (heap, anon, time < 70 ? 39_000 : 44_100)
            }
        )
        #expect(trend.violations.isEmpty, "\(trend.violations)")
    }

    @Test("a late thread (its stack and a malloc arena: 400 KiB of private memory) is not a leak")
    func lateThreadPasses() {
        let trend = MemoryTrend(
            samples: Self.samples { time in
                let (heap, anon) = Self.warmUp(time, noise: 60)
                return (heap, anon + (time < 65 ? 0 : 400), 43_900)
            }
        )
        #expect(trend.violations.isEmpty, "\(trend.violations)")
    }

    @Test("a steady heap leak of 40 KiB/s fails, at every length of life", arguments: [90, 300, 2_400])
    func heapLeakFails(seconds: Int) {
        let trend = MemoryTrend(
            samples: Self.samples(seconds: seconds) { time in
                let (heap, anon) = Self.warmUp(time, noise: 60)
                let leaked = Int(40 * time)
                return (heap + leaked, anon + leaked, 43_900)
            }
        )
        #expect(trend.heap?.grew == true)
        #expect(trend.violations.contains { $0.contains("allocator bytes in use grew") })
    }

    @Test("a leak outside the allocator (threads or mappings: 150 KiB/s of private memory) fails")
    func privateMemoryLeakFails() {
        let trend = MemoryTrend(
            samples: Self.samples { time in
                let (heap, anon) = Self.warmUp(time, noise: 60)
                return (heap, anon + Int(150 * time), 43_900)
            }
        )
        #expect(trend.heap?.grew == false)
        #expect(trend.anonymous?.grew == true)
        #expect(trend.violations.count == 1)
    }

    @Test("without heap figures (another allocator) private memory is still checked")
    func withoutHeapFigures() {
        let leaking = MemoryTrend(
            samples: Self.samples { time in
                (nil, 5_000 + Int(150 * time), 43_900)
            }
        )
        #expect(leaking.heap == nil)
        #expect(leaking.anonymous?.grew == true)
        let neither = MemoryTrend(samples: Self.samples { _ in (nil, nil, 43_900) })
        #expect(neither.violations.count == 1)
    }

    @Test("too few samples to tell is a violation, not a pass")
    func tooFewSamples() {
        let trend = MemoryTrend(samples: Array(Self.samples { _ in (1_500, 5_000, 43_900) }.prefix(20)))
        #expect(trend.violations.count == 1)
        #expect(trend.heap == nil)
    }
}
