import FliptStore
import FliptTestSupport
import Foundation
import Testing

/// How long and how hard the soak test runs, from the environment.
///
/// `FLIPT_SOAK_SECONDS` (default 120, at least 30) sets the number of short-lived clients (one per 4 s, at least
/// 20) killed with SIGKILL after 1–5 s (every fifth one after 50–400 ms, during boot), about 70 % of that time; then
/// one long-lived client, whose memory must not grow, lives for three quarters of it, at least 90 s (its first
/// third is warm-up, not compared: see ``MemoryTrend``). `FLIPT_SOAK_LONG_SECONDS` sets that client's life on its
/// own, for long leak hunts. `FLIPT_SOAK_SEED` replays a schedule; `FLIPT_SOAK_THREADS` sets
/// the evaluating threads (default 4). From 300 s on, the server also sends `Retry-After: 45` now and then, to check
/// the client's 30 s cap. `FLIPT_SOAK_CLIENT_ARGS` adds arguments to every `flipt-bench soak-client`
/// (for example `--retry-base-ms 0`, to see the test catch a client without back-off). `FLIPT_SOAK_KEEP=1` keeps
/// the logs (each run's, the report, the timeline) where a passing run would delete them.
struct SoakSettings {
    var seconds: Int
    /// The long-lived client's life, when set apart from ``seconds``.
    var longLivedSeconds: Int?
    var seed: UInt64
    var threads: Int
    var extraArguments: [String]

    var kills: Int { max(20, seconds / 4) }
    var longLived: Duration { .seconds(longLivedSeconds ?? max(90, seconds * 3 / 4)) }

    static let current: SoakSettings = {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["FLIPT_SOAK_SECONDS"].flatMap(Int.init).map { max(30, $0) } ?? 120
        let longLived = environment["FLIPT_SOAK_LONG_SECONDS"].flatMap(Int.init).map { max(30, $0) }
        let seed = environment["FLIPT_SOAK_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...999_999)
        let threads = environment["FLIPT_SOAK_THREADS"].flatMap(Int.init).map { max(1, $0) } ?? 4
        let extra = (environment["FLIPT_SOAK_CLIENT_ARGS"] ?? "").split(separator: " ").map(String.init)
        return SoakSettings(
            seconds: seconds,
            longLivedSeconds: longLived,
            seed: seed,
            threads: threads,
            extraArguments: extra
        )
    }()

    /// A generous bound: twice the planned length, plus start-up.
    static var timeLimitMinutes: Int {
        let longLived = Int(current.longLived.components.seconds)
        return (current.seconds * 7 / 10 + longLived) * 2 / 60 + 3
    }
}

/// One run of the soak client, from start to SIGKILL.
struct Incarnation {
    var index: Int
    var startedAt: ContinuousClock.Instant
    var killedAt: ContinuousClock.Instant
    /// The number the server gives the first connection it accepts after the start: lower ones were opened by
    /// earlier runs.
    var firstConnection: Int
    /// The last good revision in the cache right before the start (what the first answer must be).
    var expectedFirst: Int?
    /// Killed during boot, before its first answer could be required.
    var early: Bool
    var log: IncarnationLog
}

@Suite("Soak: a flapping server, SIGKILL and restarts")
struct SoakTests {
    @Test(
        "A client in fallback mode answers from served snapshots only, through flapping and kills",
        .timeLimit(.minutes(SoakSettings.timeLimitMinutes))
    )
    func flappingServerWithKills() async throws {
        let settings = SoakSettings.current
        let began = ContinuousClock.now
        print(
            "soak: seed \(settings.seed), \(settings.seconds) s, \(settings.kills) kills, \(settings.threads) threads; "
                + "replay with FLIPT_SOAK_SEED=\(settings.seed) FLIPT_SOAK_SECONDS=\(settings.seconds) "
                + (settings.longLivedSeconds.map { "FLIPT_SOAK_LONG_SECONDS=\($0) " } ?? "")
                + (settings.extraArguments.isEmpty
                    ? "" : "FLIPT_SOAK_CLIENT_ARGS='\(settings.extraArguments.joined(separator: " "))' ")
                + "swift test --filter FliptSoakTests"
        )
        _ = try ClientProcess.executable.get()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("flipt-soak-\(getpid())-\(settings.seed)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cachePath = directory + "/cache.sqlite3"
        let flapping = try FlappingServer(seed: settings.seed, longThrottles: settings.seconds >= 300)
        let key = SnapshotKey(url: flapping.server.baseURL, environment: "default", namespace: "default")
        let arguments =
            [
                "--url", flapping.server.baseURL.absoluteString, "--cache", cachePath,
                "--threads", "\(settings.threads)", "--interval-ms", "200", "--timeout-ms", "1000",
            ] + settings.extraArguments
        var findings = SoakFindings()
        var incarnations: [Incarnation] = []
        var inspections: [CacheInspection] = []
        var random = SeededRandom(seed: settings.seed &* 31 &+ 7)

        /// Starts a client after checking the cache, lets it live, kills it, and records what it logged.
        func cycle(index: Int, lifetime: Duration, early: Bool) async throws {
            let before = CacheInspection.inspect(path: cachePath, key: key)
            inspections.append(before)
            findings.record(before.problems.map { "before run \(index): \($0)" })
            let logPath = directory + "/run-\(index).log"
            let firstConnection = flapping.server.traffic.connections + 1
            let process = try ClientProcess.start(arguments: arguments + ["--log", logPath], logPath: logPath)
            try await Task.sleep(until: process.startedAt + lifetime, clock: .continuous)
            if !early {
                // A slow start must not turn into a missing first answer: wait for it (bounded).
                let limit = ContinuousClock.now + .seconds(20)
                while !process.lines().contains(where: { $0.hasPrefix("S ") }) && ContinuousClock.now < limit
                    && !process.hasExited()
                {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            if process.hasExited() {
                findings.record(["run \(index) exited by itself: \(process.output())"])
            }
            // A client that answered once but has not logged its memory (every 250 ms) or an evaluation batch
            // (every 100 ms) for 5 s or more is stuck: take its stacks before it goes.
            let sofar = IncarnationLog(lines: process.lines())
            let progress = min(sofar.memory.last?.milliseconds ?? 0, sofar.batches.last?.milliseconds ?? 0)
            let silentFor = ContinuousClock.now - process.startedAt - .milliseconds(progress)
            let killedAt: ContinuousClock.Instant
            if sofar.start != nil && silentFor >= .seconds(5) {
                killedAt = process.abortForStacks()
                findings.record([
                    "run \(index) hung: nothing logged for \(silentFor) before the kill; "
                        + "stacks:\n" + process.output().split(separator: "\n").prefix(120).joined(separator: "\n")
                ])
            } else {
                killedAt = process.killNow()
            }
            incarnations.append(
                Incarnation(
                    index: index,
                    startedAt: process.startedAt,
                    killedAt: killedAt,
                    firstConnection: firstConnection,
                    expectedFirst: before.lastGoodRevision,
                    early: early,
                    log: IncarnationLog(lines: process.lines())
                )
            )
        }

        for index in 0..<settings.kills {
            let early = index % 5 == 4
            let lifetime = early ? random.duration(0.05...0.4) : random.duration(1...5)
            try await cycle(index: index, lifetime: lifetime, early: early)
        }
        try await cycle(index: settings.kills, lifetime: settings.longLived, early: false)
        let final = CacheInspection.inspect(path: cachePath, key: key)
        inspections.append(final)
        findings.record(final.problems.map { "after the last run: \($0)" })
        flapping.stop()

        let analysis = SoakAnalysis(
            incarnations: incarnations,
            inspections: inspections,
            phases: flapping.phases,
            requests: flapping.server.requests(to: .snapshot),
            validRevisions: flapping.validRevisions,
            badRevisions: flapping.badRevisions,
            validDigests: flapping.validDigests,
            badDigests: flapping.badDigests
        )
        findings.record(analysis.violations)
        let report = analysis.report(
            duration: ContinuousClock.now - began,
            seed: settings.seed,
            threads: settings.threads
        )
        print(report)
        try? report.write(toFile: directory + "/report.txt", atomically: true, encoding: .utf8)
        try? analysis.timeline.write(toFile: directory + "/timeline.txt", atomically: true, encoding: .utf8)
        #expect(analysis.kills >= 20)
        #expect(analysis.evaluations > 0)
        let summary =
            "\(findings.all.count) violations (seed \(settings.seed), logs in \(directory)):\n"
            + findings.all.prefix(30).joined(separator: "\n")
        if !findings.all.isEmpty { Issue.record(Comment(rawValue: summary)) }
        let keep = ProcessInfo.processInfo.environment["FLIPT_SOAK_KEEP"] != nil
        if findings.all.isEmpty && !keep { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Violations collected along the way.
struct SoakFindings {
    private(set) var all: [String] = []

    mutating func record(_ violations: [String]) {
        all += violations
    }
}
