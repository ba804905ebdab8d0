import FliptTestSupport
import Foundation

/// Checks the soak run against the rules, and adds up the figures.
///
/// 1. Once a good snapshot exists (in the cache at start, or answered in this run), no evaluation fails.
/// 2. Every answer comes from a revision the server served as valid, never from a bad document; within a run each
///    thread's answers never go back to an older revision, nor below the cached one it started from; no answer
///    contradicts itself.
/// 3. The first answer after a restart is the last good snapshot in the cache at that moment, and the first request
///    asks with that snapshot's ETag. Every `If-None-Match` names a valid document (never a bad one), never an older
///    one than the request before, and once a run asks with a new ETag, its answers reach that revision.
/// 4. Requests follow the policy: at most 4 attempts per fetch and polls at least 180 ms apart (so never five
///    requests within 180 ms); a fetch answered at once (200, 304, bad document) is followed by the next poll no
///    sooner than 180 ms; after a `429` with `Retry-After: N` the retry waits N s, or 30 s when N is larger (short
///    gaps only between fetches, at most one per four attempts); under jittered back-off (refused, 503, silent) the request rate stays
///    near the policy's mean (about 1.1 per second) rather than the 20 per second of polling without back-off.
/// 5. The cache file passes the integrity check and every document hash after every kill (checked by
///    ``CacheInspection``), and its last good revision never goes back.
/// 6. The long-lived client does not leak: neither the allocator's bytes in use nor its private resident memory
///    rise from the middle to the last third of its life beyond ``MemoryTrend``'s allowances.
struct SoakAnalysis {
    let incarnations: [Incarnation]
    let inspections: [CacheInspection]
    let phases: [FlappingServer.Phase]
    let requests: [TestFliptServer.RecordedRequest]
    let validRevisions: Set<Int>
    let badRevisions: Set<Int>
    let validDigests: [String: Int]
    let badDigests: Set<String>

    private(set) var violations: [String] = []
    private(set) var notes: [String] = []
    private(set) var backOff = (requests: 0, seconds: 0.0, allowance: 0.0)
    private(set) var memory = (peakKiB: 0, cpuShare: 0.0)
    /// The long-lived client's memory over its life (nil without a long-lived client).
    private(set) var memoryTrend: MemoryTrend?

    /// The time allowed for scheduling noise between the client deciding to send and the server reading the head.
    static let slack = Duration.milliseconds(80)
    /// The shortest poll interval the client may use: 200 ms less its 10 % jitter.
    static let shortestPoll = Duration.milliseconds(180)

    init(
        incarnations: [Incarnation],
        inspections: [CacheInspection],
        phases: [FlappingServer.Phase],
        requests: [TestFliptServer.RecordedRequest],
        validRevisions: Set<Int>,
        badRevisions: Set<Int>,
        validDigests: [String: Int],
        badDigests: Set<String>
    ) {
        self.incarnations = incarnations
        self.inspections = inspections
        self.phases = phases
        self.requests = requests.sorted { $0.receivedAt < $1.receivedAt }
        self.validRevisions = validRevisions
        self.badRevisions = badRevisions
        self.validDigests = validDigests
        self.badDigests = badDigests
        checkAnswers()
        checkETags()
        checkCacheHistory()
        checkRequests()
        checkMemory()
    }

    var kills: Int { incarnations.count }
    var evaluations: Int { incarnations.reduce(0) { $0 + $1.log.evaluations } }
    var errors: Int { incarnations.reduce(0) { $0 + $1.log.batches.reduce(0) { $0 + $1.errors } } }

    // MARK: 1–3: answers

    private mutating func checkAnswers() {
        for run in incarnations {
            let name = "run \(run.index)"
            let log = run.log
            if let failure = log.startFailure { violations.append("\(name): the client did not start: \(failure)") }
            for line in log.unreadable.prefix(3) { violations.append("\(name): unreadable log line: \(line)") }
            guard let start = log.start else {
                if !run.early { violations.append("\(name): no first answer before the kill") }
                continue
            }
            if start.contradictions > 0 { violations.append("\(name): the first answer contradicts itself") }
            checkFirstAnswer(start, run: run, name: name)
            var lastByThread: [Int: Int] = [:]
            for batch in log.batches {
                if batch.contradictions > 0 {
                    violations.append("\(name) thread \(batch.thread): \(batch.contradictions) contradictory answers")
                }
                if batch.errors > 0 && run.expectedFirst != nil {
                    violations.append(
                        "\(name) thread \(batch.thread): \(batch.errors) evaluation errors (\(batch.errorCode ?? "?")) "
                            + "with revision \(run.expectedFirst!) in the cache at start"
                    )
                } else if batch.lateErrors > 0 {
                    violations.append(
                        "\(name) thread \(batch.thread): \(batch.lateErrors) evaluation errors "
                            + "(\(batch.errorCode ?? "?")) after a snapshot had been answered"
                    )
                }
                for revision in batch.revisions {
                    checkServed(revision, name: "\(name) thread \(batch.thread)")
                    if let floor = run.expectedFirst, revision < floor {
                        violations.append(
                            "\(name) thread \(batch.thread): answered revision \(revision), older than the cached "
                                + "\(floor) it started from"
                        )
                    }
                    if let last = lastByThread[batch.thread], revision < last {
                        violations.append(
                            "\(name) thread \(batch.thread): went back from revision \(last) to \(revision)"
                        )
                    }
                    lastByThread[batch.thread] = revision
                }
            }
        }
    }

    private mutating func checkFirstAnswer(_ start: IncarnationLog.Start, run: Incarnation, name: String) {
        if let revision = start.revision { checkServed(revision, name: "\(name) first answer") }
        switch (run.expectedFirst, start.source) {
        case (let expected?, "cache"):
            if start.revision != expected {
                violations.append(
                    "\(name): first answer revision \(start.revision.map(String.init) ?? "none") "
                        + "(error \(start.error ?? "-")), but the cache's last good is \(expected)"
                )
            }
        case (nil, "none"):
            if start.error != "no_data" {
                violations.append(
                    "\(name): no cached snapshot, yet the first evaluation gave \(start.error ?? "no error")"
                )
            }
        case (_, "network"):
            // The first fetch completed between the answer and the status read: the answer may be either.
            notes.append("\(name): the first fetch had already completed when the status was read")
            if start.revision == nil { violations.append("\(name): first evaluation failed: \(start.error ?? "?")") }
        default:
            violations.append(
                "\(name): started from \(start.source), but the cache's last good is "
                    + "\(run.expectedFirst.map(String.init) ?? "none")"
            )
        }
    }

    private mutating func checkServed(_ revision: Int, name: String) {
        if badRevisions.contains(revision) || revision >= SoakDocument.badRevisionBase {
            violations.append("\(name): answered from a BAD document (revision \(revision))")
        } else if !validRevisions.contains(revision) {
            violations.append("\(name): answered revision \(revision), which the server never served")
        }
    }

    /// The requests a run sent, in order.
    private func requests(of run: Incarnation) -> [TestFliptServer.RecordedRequest] {
        requests.filter {
            $0.receivedAt >= run.startedAt && $0.receivedAt <= run.killedAt && $0.connectionID >= run.firstConnection
        }
    }

    /// A request for a message: its connection, when, and the revision it asked with.
    private func describe(_ request: TestFliptServer.RecordedRequest) -> String {
        let origin = phases.first?.start ?? request.receivedAt
        let asked = request.header("If-None-Match").map { validDigests[$0].map { "r\($0)" } ?? "?" } ?? "-"
        return "connection \(request.connectionID) at \(request.receivedAt - origin) asking \(asked)"
    }

    /// Every request and every phase, one a line, for a post-mortem.
    var timeline: String {
        let origin = phases.first?.start ?? .now
        var lines: [(ContinuousClock.Instant, String)] = []
        for phase in phases {
            lines.append((phase.start, "phase \(phase.condition) revision \(phase.revision)"))
            if let end = phase.end { lines.append((end, "phase end")) }
        }
        for run in incarnations {
            lines.append((run.startedAt, "run \(run.index) started (first connection \(run.firstConnection))"))
            lines.append((run.killedAt, "run \(run.index) killed"))
        }
        for request in requests { lines.append((request.receivedAt, "request " + describe(request))) }
        return lines.sorted { $0.0 < $1.0 }.map { "\($0.0 - origin)\t\($0.1)" }.joined(separator: "\n")
    }

    private mutating func checkETags() {
        for run in incarnations {
            let name = "run \(run.index)"
            let sent = requests(of: run)
            let answered = run.log.batches.flatMap(\.revisions).max() ?? run.log.start?.revision
            if let first = sent.first {
                let asked = first.header("If-None-Match").flatMap { validDigests[$0] }
                if asked != run.expectedFirst {
                    violations.append(
                        "\(name): the first request asked for revision \(asked.map(String.init) ?? "none"), but the "
                            + "cache's last good is \(run.expectedFirst.map(String.init) ?? "none")"
                    )
                }
            }
            var previous: Int?
            for request in sent {
                guard let etag = request.header("If-None-Match") else {
                    if let previous { violations.append("\(name): dropped its ETag (had revision \(previous))") }
                    continue
                }
                if badDigests.contains(etag) {
                    violations.append("\(name): sent the ETag of a BAD document as If-None-Match")
                    continue
                }
                guard let revision = validDigests[etag] else {
                    violations.append("\(name): sent an ETag the server never served: \(etag)")
                    continue
                }
                if let previous, revision < previous {
                    violations.append("\(name): asked with revision \(revision) after \(previous)")
                }
                // A new ETag means a new snapshot was accepted before this request: answers must have reached it.
                if revision != previous && run.killedAt - request.receivedAt > .seconds(1)
                    && (answered ?? -1) < revision
                {
                    violations.append(
                        "\(name): accepted revision \(revision) (asked with its ETag), but never answered from it "
                            + "(highest answer \(answered.map(String.init) ?? "none"))"
                    )
                }
                previous = revision
            }
        }
    }

    // MARK: 5: the cache

    private mutating func checkCacheHistory() {
        var highest: Int?
        for (index, inspection) in inspections.enumerated() {
            guard let revision = inspection.lastGoodRevision else {
                if let highest {
                    violations.append("inspection \(index): the cache lost its last good snapshot (was \(highest))")
                }
                continue
            }
            checkServed(revision, name: "cache inspection \(index)")
            if let previous = highest, revision < previous {
                violations.append(
                    "inspection \(index): the cache's last good went back from \(previous) to \(revision)"
                )
            }
            highest = max(highest ?? revision, revision)
        }
    }

    // MARK: 4: request rate

    /// The phase whose window holds `instant`, or nil while the server was being switched over.
    private func phase(at instant: ContinuousClock.Instant) -> FlappingServer.Phase? {
        guard let phase = phases.last(where: { $0.start <= instant }) else { return nil }
        if let end = phase.end, instant > end { return nil }
        return phase
    }

    private mutating func checkRequests() {
        for run in incarnations {
            let sent = requests(of: run)
            let times = sent.map(\.receivedAt)
            let name = "run \(run.index)"
            // At most four attempts per fetch, fetches at least 180 ms apart: never five requests within 180 ms.
            if times.count >= 5 {
                for index in 0..<(times.count - 4)
                where times[index + 4] - times[index] < Self.shortestPoll - Self.slack {
                    violations.append(
                        "\(name): 5 requests within \(times[index + 4] - times[index]) (more than 4 attempts per poll)"
                    )
                    break
                }
            }
            var shortGapsSince: Int? = nil
            for index in 0..<max(0, times.count - 1) {
                let (at, next) = (times[index], times[index + 1])
                guard let current = phase(at: at) else {
                    shortGapsSince = nil
                    continue
                }
                let end = current.end ?? .now
                guard at + Self.slack < end, next < end else {
                    shortGapsSince = nil
                    continue
                }
                let gap = next - at
                if current.condition.answersNormally && gap < Self.shortestPoll - Self.slack {
                    violations.append(
                        "\(name): a request \(gap) after one answered at once (\(current.condition)); the poll "
                            + "interval is at least 180 ms [\(describe(sent[index])); \(describe(sent[index + 1]))]"
                    )
                }
                guard case .throttled(let seconds) = current.condition else {
                    shortGapsSince = nil
                    continue
                }
                // The client waits what the server asks, up to its cap of 30 s.
                let wait = Duration.seconds(min(seconds, 30))
                if gap >= wait - Self.slack {
                    if seconds > 30 && gap > .seconds(seconds) - Self.slack {
                        violations.append("\(name): waited \(gap) after a 429 with Retry-After: \(seconds) (cap: 30 s)")
                    }
                    shortGapsSince = shortGapsSince.map { $0 + 1 }
                    continue
                }
                // A short gap after a 429 is only allowed between fetches: after the fourth attempt of one.
                if gap < Self.shortestPoll - Self.slack {
                    violations.append("\(name): a request \(gap) after a 429 with Retry-After: \(seconds)")
                } else if let longGaps = shortGapsSince, longGaps < 3 {
                    violations.append(
                        "\(name): a retry \(gap) after a 429 with Retry-After: \(seconds) (only \(longGaps) "
                            + "waits of \(seconds) s since the previous fetch)"
                    )
                }
                shortGapsSince = 0
            }
        }
        checkBackOff()
    }

    /// Under jittered back-off a failing fetch makes 4 attempts over 0–7 s (3.5 s on average) and the next one
    /// starts 180–220 ms later: about 1.1 requests per second. Allowed here: 2 per second, plus 4 for each phase
    /// and each client start (a fetch already under way, or a fresh one).
    private mutating func checkBackOff() {
        var count = 0
        var seconds = 0.0
        var allowance = 0.0
        for phase in phases {
            switch phase.condition {
            case .refusing, .unavailable, .silent: break
            default: continue
            }
            guard let end = phase.end else { continue }
            let inside = requests.filter { $0.receivedAt >= phase.start && $0.receivedAt < end }
            let starts = incarnations.filter { $0.startedAt >= phase.start && $0.startedAt < end }.count
            let length =
                Double((end - phase.start).components.seconds)
                + Double((end - phase.start).components.attoseconds) / 1e18
            count += inside.count
            seconds += length
            allowance += 4 + 4 * Double(starts) + 2 * length
        }
        backOff = (count, seconds, allowance)
        if Double(count) > allowance {
            violations.append(
                "back-off: \(count) requests in \(String(format: "%.1f", seconds)) s of failing server "
                    + "(allowed \(Int(allowance)))"
            )
        }
    }

    // MARK: 6: memory

    private mutating func checkMemory() {
        memory.peakKiB = incarnations.flatMap(\.log.memory).map(\.peakKiB).max() ?? 0
        guard let longLived = incarnations.last else {
            violations.append("memory: no long-lived client ran")
            return
        }
        let trend = MemoryTrend(samples: longLived.log.memory)
        memoryTrend = trend
        violations += trend.violations
        if let start = longLived.log.memory.first, let end = longLived.log.memory.last,
            end.milliseconds > start.milliseconds
        {
            memory.cpuShare =
                Double(end.cpuMilliseconds - start.cpuMilliseconds) / Double(end.milliseconds - start.milliseconds)
        }
    }

    // MARK: Report

    private func describe(_ growth: MemoryTrend.Growth?) -> String {
        guard let growth else { return "no figures" }
        return "\(growth.name) \(growth.middleKiB) -> \(growth.lastKiB) KiB (allowed \(growth.allowedKiB))"
    }

    func report(duration: Duration, seed: UInt64, threads: Int) -> String {
        var byCondition: [String: Int] = [:]
        for phase in phases { byCondition[phase.condition.description, default: 0] += 1 }
        let conditions = byCondition.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let answered = incarnations.filter { $0.log.start?.source == "cache" }.count
        return """
            soak report (seed \(seed))
              duration        \(duration.formatted(.units(allowed: [.minutes, .seconds], width: .narrow)))
              kills           \(kills) (SIGKILL; \(incarnations.filter(\.early).count) during boot)
              first answers   \(answered) from the cache's last good, \(notes.count) after the first fetch
              requests        \(requests.count) snapshot requests
              back-off        \(backOff.requests) requests in \(String(format: "%.1f", backOff.seconds)) s of \
            failing server (\(String(format: "%.2f", Double(backOff.requests) / max(backOff.seconds, 1))) per s; \
            allowed \(Int(backOff.allowance)))
              server phases   \(phases.count): \(conditions)
              revisions       \(validRevisions.count) valid, \(badRevisions.count) bad documents served
              evaluations     \(evaluations) (\(errors) errors while no snapshot existed yet)
              failures        \(violations.count)
              memory          long-lived client, medians of the middle and last thirds of its life: \
            \(describe(memoryTrend?.heap)); \(describe(memoryTrend?.anonymous)); peak RSS of any run \(memory.peakKiB) KiB
              client CPU      \(String(format: "%.2f", memory.cpuShare)) cores (long-lived client, \(threads) evaluating threads)
            long-lived client's memory over its life:
            \(memoryTrend?.series ?? "(none)")
            """
    }
}
