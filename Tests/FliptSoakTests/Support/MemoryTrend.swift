/// Whether the long-lived soak client's memory grew over its life, read from its memory samples.
///
/// A leak is memory that the client keeps on taking as it works: it shows as a rise from one stretch of the life to
/// the next. Two figures are compared, each as the median of the middle third of the life against the median of
/// the last third:
/// - the allocator's bytes in use (`heap`): every object the client holds, and nothing else;
/// - the process's private resident pages (`anon`): the heap as the system sees it (free space the allocator keeps
///   included), thread stacks and private mappings, so that a leak outside malloc (threads, mappings) shows too.
///
/// Resident memory as a whole (VmRSS) is reported, not checked: most of it (about 44 of 49 MiB here) is pages of
/// the executable and the libraries, which the kernel maps in the first time a code path runs (the first `429`
/// of a run, say, reaches date parsing and ICU's data) and may take back at any time. Measured here, such a step
/// added 5 MiB in the last third of a client that held nothing more, and failed the check that compared VmRSS.
///
/// The first third is not compared: it holds the boot (the cache read, the first fetch, the connection pool) and the
/// steepest part of the warm-up, as the runtime and Foundation build their caches the first time each code path
/// runs (a first `429`, a first bad document: steps of 100-300 KiB in the heap). The warm-up levels off within
/// about three minutes: measured over a 40-minute life (seed 932264), the heap was 1.73 MiB at 30 s, 1.96 MiB at
/// 90 s, 2.0 MiB at 150 s and 2.15-2.26 MiB from minute 10 to 40; private memory 5.1 MiB at 30 s, 6.1-6.3 MiB from
/// minute 4 to 40. The default long-lived client lives 90 s, so the thirds compared are 30-60 s and 60-90 s, and
/// the allowances leave room for the warm-up that remains there. A steady leak of more than
/// `allowance / (life / 3)` fails the check: about 17 KiB/s in the heap, 34 KiB/s outside it in the default run;
/// the long runs (`FLIPT_SOAK_LONG_SECONDS`) find slower ones.
struct MemoryTrend {
    /// One figure, compared between the middle and the last third of the life.
    struct Growth: Equatable {
        var name: String
        /// Median of the samples in the middle third.
        var middleKiB: Int
        /// Median of the samples in the last third.
        var lastKiB: Int
        /// The most the last third's median may be.
        var allowedKiB: Int

        var grew: Bool { lastKiB > allowedKiB }
    }

    /// The allocator's bytes in use; nil where the client could not tell (another allocator than glibc's or Darwin's).
    private(set) var heap: Growth?
    /// The private resident pages; nil in logs without them.
    private(set) var anonymous: Growth?
    /// Problems found: a growth, or too few samples to tell.
    private(set) var violations: [String] = []
    private let samples: [IncarnationLog.Memory]

    /// The rise of the allocator's bytes in use allowed from the middle to the last third (measured: 1.73 -> 1.96
    /// MiB from 30 to 90 s, so about 120 KiB between the thirds' medians).
    static let heapAllowanceKiB = 512
    /// The rise of the private resident pages allowed (a new thread's stack and malloc arena can add a few hundred
    /// KiB at any time; measured: 5.1 -> 5.7 MiB from 30 to 90 s).
    static let anonymousAllowanceKiB = 1_024

    init(samples: [IncarnationLog.Memory]) {
        self.samples = samples.sorted { $0.milliseconds < $1.milliseconds }
        guard samples.count >= 30 else {
            violations.append("memory: too few samples from the long-lived client (\(samples.count); at least 30)")
            return
        }
        heap = Self.growth(
            "allocator bytes in use",
            of: self.samples.map(\.heapKiB),
            allowanceKiB: Self.heapAllowanceKiB
        )
        anonymous = Self.growth(
            "private resident memory",
            of: self.samples.map(\.anonymousKiB),
            allowanceKiB: Self.anonymousAllowanceKiB
        )
        if heap == nil && anonymous == nil {
            violations.append("memory: the long-lived client's log gives neither heap nor private memory figures")
        }
        for growth in [heap, anonymous].compactMap(\.self) where growth.grew {
            violations.append(
                "memory: the long-lived client's \(growth.name) grew from \(growth.middleKiB) KiB (median of the "
                    + "middle third of its life) to \(growth.lastKiB) KiB (median of the last third); allowed "
                    + "\(growth.allowedKiB) KiB"
            )
        }
    }

    /// The middle and last thirds' medians of a figure, and the bound: the middle's plus `allowanceKiB`. Nil when
    /// any sample lacks the figure.
    private static func growth(_ name: String, of values: [Int?], allowanceKiB: Int) -> Growth? {
        let known = values.compactMap(\.self)
        guard known.count == values.count, !known.isEmpty else { return nil }
        let third = known.count / 3
        let middle = median(known[third..<(known.count - third)])
        let last = median(known.suffix(third))
        return Growth(name: name, middleKiB: middle, lastKiB: last, allowedKiB: middle + allowanceKiB)
    }

    private static func median(_ values: ArraySlice<Int>) -> Int {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// The samples at ten points of the life (and the last), one a line, for the report.
    var series: String {
        guard let first = samples.first, let last = samples.last else { return "" }
        let span = max(1, last.milliseconds - first.milliseconds)
        var rows: [IncarnationLog.Memory] = []
        for step in 0...10 {
            let at = first.milliseconds + span * step / 10
            if let sample = samples.first(where: { $0.milliseconds >= at }) { rows.append(sample) }
        }
        func figure(_ value: Int?) -> String { value.map(String.init) ?? "-" }
        let header = "      s   rss KiB  anon KiB  file KiB  heap KiB   got KiB  threads  events  subscriptions"
        let lines = rows.map { sample in
            [
                String(sample.milliseconds / 1_000), String(sample.residentKiB), figure(sample.anonymousKiB),
                figure(sample.fileKiB), figure(sample.heapKiB), figure(sample.obtainedKiB), figure(sample.threads),
                String(sample.events), String(sample.subscriptions),
            ]
            .enumerated().map { index, text in
                let width = [7, 10, 10, 10, 10, 10, 9, 8, 15][index]
                return String(repeating: " ", count: max(0, width - text.count)) + text
            }
            .joined()
        }
        return ([header] + lines).joined(separator: "\n")
    }
}
