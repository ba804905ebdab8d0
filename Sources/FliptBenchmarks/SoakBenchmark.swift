import CFliptHeap
import Flipt
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process under test of the soak test (Tests/FliptSoakTests): a ``FliptClient`` in fallback mode that polls
/// and keeps a cache file, while threads evaluate (32 rounds, then a `--pause-us` pause, 2 ms by default). It runs
/// until it is killed, `--seconds` pass, or its parent process ends.
///
///     flipt-bench soak-client --url URL --cache FILE --log FILE [--threads N] [--interval-ms N]
///                             [--timeout-ms N] [--pause-us N] [--seconds N]
///
/// and, to check that the soak test can fail: `--retry-base-ms N`, `--retry-cap-ms N`, `--leak-kib-per-second N`,
/// `--leak-kib-per-revision N`.
///
/// Like an app, it also listens to the client's events: `--subscribers N` (default 2) tasks read
/// ``FliptClient/events()`` for the whole run, and one more subscribes, reads for up to 500 ms and cancels, over and
/// over (so that subscriptions that come and go are part of what the memory check sees).
///
/// The documents it expects (built by the soak test) have a variant flag `revision` whose default variant is
/// `r<N>` and whose one rule (`plan` = `gold`) gives `g<N>`, and a boolean flag `parity` whose value is whether N
/// is even, so every answer says which snapshot it came from. It appends one line per event to the log file, each
/// with a single `write(2)` so that a SIGKILL never leaves half a line before a whole one:
///
///     S ms=… pid=… source=cache|seed|network|none rev=N|-1 err=CODE|-   the first answer, before any thread starts
///     E ms=… th=I n=EVALS ok=N revs=R1,R2 errs=N late=N code=CODE|- bad=N   per thread, every 100 ms
///     M ms=… rss=KiB hwm=KiB anon=KiB file=KiB heap=KiB got=KiB threads=N cpu=MS events=N subs=N
///                                     every 250 ms
///
/// (`anon`: the resident pages that belong to this process alone (heap, stacks, private mappings); `file`: the
/// resident pages of mapped files, the executable and libraries above all, which grow as code paths are first
/// used and shrink when the kernel reclaims them; `heap`: bytes the allocator has handed out and not had back;
/// `got`: bytes it holds from the system, free ones included; -1 where the allocator cannot tell; `threads`: the
/// process's threads; `cpu`: the process's CPU time so far; `events`: events the
/// long-lived subscribers have read; `subs`: subscriptions opened so far.)
///
/// `revs` lists the revisions answered in the batch, in order, each once per run of equal answers; `late` counts
/// errors after any thread had an answer; `bad` counts answers that contradict themselves (a wrong variant for the
/// context, a parity that does not match the revision).
enum SoakClient {
    struct Settings {
        var url = ""
        var cachePath = ""
        var logPath = ""
        var threads = 4
        var interval = Duration.milliseconds(200)
        var timeout = Duration.milliseconds(1_000)
        var pauseMicroseconds: UInt32 = 2_000
        var seconds: Double = 0
        /// Overrides of the retry policy's base delay and cap, to check that the soak test catches a client that
        /// retries too fast (`--retry-base-ms 0`) or cuts a `Retry-After` short (`--retry-cap-ms 100`).
        var retryBase: Duration?
        var retryCap: Duration?
        /// Memory to hold on to every second, to check that the soak test notices a leak.
        var leakKiBPerSecond = 0
        /// Memory to hold on to for every snapshot that replaces the one in use (a leak of each revision).
        var leakKiBPerRevision = 0
        /// Tasks that read the client's events for the whole run.
        var subscribers = 2
    }

    static func run(arguments: [String]) {
        _ = SoakLog.milliseconds()  // times in the log count from here
        guard let settings = parse(arguments) else {
            print(
                "usage: flipt-bench soak-client --url URL --cache FILE --log FILE [--threads N] [--interval-ms N] "
                    + "[--timeout-ms N] [--pause-us N] [--seconds N]"
            )
            exit(64)
        }
        guard let log = SoakLog(path: settings.logPath) else {
            print("soak-client: cannot open the log file \(settings.logPath): \(String(cString: strerror(errno)))")
            exit(70)
        }
        var options = ClientOptions(
            url: settings.url,
            requestTimeout: settings.timeout,
            updateInterval: settings.interval,
            errorStrategy: .fallback,
            cache: CacheOptions(location: .file(settings.cachePath))
        )
        if let base = settings.retryBase { options.retryPolicy.baseDelay = base }
        if let cap = settings.retryCap {
            options.retryPolicy.maximumDelay = cap
            options.retryPolicy.baseDelay = min(options.retryPolicy.baseDelay, cap)
        }
        let client: FliptClient
        do {
            client = try FliptClient(namespace: "default", options: options)
        } catch {
            log.write("X ms=\(SoakLog.milliseconds()) err=\(error.code) message=\(error.message)")
            exit(70)
        }
        // The first answer, then the status: if the status still says `cache`, no fetched snapshot had replaced the
        // cached one when the answer was computed, so the answer came from the cache.
        let anyAnswer = AnswerFlag()
        var first = Probe(thread: 0, anyAnswer: anyAnswer)
        first.evaluate(client, iteration: 0)
        let source = client.status.source
        log.write(
            "S ms=\(SoakLog.milliseconds()) pid=\(getpid()) source=\(source.rawValue) rev=\(first.firstRevision ?? -1) "
                + "err=\(first.firstError ?? "-") bad=\(first.contradictions)"
        )
        for index in 0..<settings.threads {
            let thread = Thread { evaluateForever(client, thread: index + 1, log: log, anyAnswer: anyAnswer, settings) }
            thread.name = "soak-eval-\(index + 1)"
            thread.start()
        }
        let listening = EventListeners(client: client, settings: settings)
        let start = ContinuousClock.now
        var leaked: [[UInt8]] = []
        // The soak test kills this process; should the test itself die first, stop with it rather than linger.
        let parent = getppid()
        while settings.seconds <= 0 || ContinuousClock.now - start < .seconds(settings.seconds) {
            if getppid() != parent { exit(0) }
            if settings.leakKiBPerSecond > 0 {
                leaked.append([UInt8](repeating: 1, count: settings.leakKiBPerSecond * 256))
            }
            let memory = MemoryUse.current()
            log.write(
                "M ms=\(SoakLog.milliseconds()) rss=\(memory.residentKiB) hwm=\(memory.peakKiB) "
                    + "anon=\(memory.anonymousKiB) file=\(memory.fileKiB) threads=\(memory.threads) "
                    + "heap=\(memory.heapKiB) got=\(memory.obtainedKiB) cpu=\(MemoryUse.cpuMilliseconds()) "
                    + "events=\(listening.events) subs=\(listening.subscriptions)"
            )
            usleep(250_000)
        }
        client.close()
        exit(0)
    }

    private static func parse(_ arguments: [String]) -> Settings? {
        var settings = Settings()
        var index = 0
        while index + 1 < arguments.count {
            let value = arguments[index + 1]
            switch arguments[index] {
            case "--url": settings.url = value
            case "--cache": settings.cachePath = value
            case "--log": settings.logPath = value
            case "--threads":
                guard let number = Int(value), number >= 1 else { return nil }
                settings.threads = number
            case "--interval-ms":
                guard let number = Int(value), number >= 1 else { return nil }
                settings.interval = .milliseconds(number)
            case "--timeout-ms":
                guard let number = Int(value), number >= 1 else { return nil }
                settings.timeout = .milliseconds(number)
            case "--pause-us":
                guard let number = UInt32(value) else { return nil }
                settings.pauseMicroseconds = number
            case "--retry-base-ms":
                guard let number = Int(value), number >= 0 else { return nil }
                settings.retryBase = .milliseconds(number)
            case "--retry-cap-ms":
                guard let number = Int(value), number >= 0 else { return nil }
                settings.retryCap = .milliseconds(number)
            case "--leak-kib-per-second":
                guard let number = Int(value), number >= 0 else { return nil }
                settings.leakKiBPerSecond = number
            case "--leak-kib-per-revision":
                guard let number = Int(value), number >= 0 else { return nil }
                settings.leakKiBPerRevision = number
            case "--subscribers":
                guard let number = Int(value), number >= 0 else { return nil }
                settings.subscribers = number
            case "--seconds":
                guard let number = Double(value) else { return nil }
                settings.seconds = number
            default: return nil
            }
            index += 2
        }
        guard index == arguments.count, !settings.url.isEmpty, !settings.cachePath.isEmpty, !settings.logPath.isEmpty
        else { return nil }
        return settings
    }

    /// Evaluates in a loop, 32 rounds between pauses, and writes a line every 100 ms.
    private static func evaluateForever(
        _ client: FliptClient,
        thread: Int,
        log: SoakLog,
        anyAnswer: AnswerFlag,
        _ settings: Settings
    ) {
        var iteration = 0
        while true {
            var probe = Probe(thread: thread, anyAnswer: anyAnswer)
            let deadline = ContinuousClock.now + .milliseconds(100)
            repeat {
                for _ in 0..<32 {
                    probe.evaluate(client, iteration: iteration)
                    iteration &+= 1
                }
                if settings.pauseMicroseconds > 0 { usleep(settings.pauseMicroseconds) }
            } while ContinuousClock.now < deadline
            log.write(
                "E ms=\(SoakLog.milliseconds()) th=\(thread) n=\(probe.evaluations) ok=\(probe.ok) "
                    + "revs=\(probe.revisions.map(String.init).joined(separator: ",")) errs=\(probe.errors) "
                    + "late=\(probe.lateErrors) code=\(probe.firstError ?? "-") bad=\(probe.contradictions)"
            )
        }
    }
}

/// The soak client's event subscribers: long-lived readers, and one that keeps subscribing and cancelling.
private final class EventListeners: Sendable {
    private let counts = Mutex((events: 0, subscriptions: 0))
    private let leaked = Mutex<[[UInt8]]>([])

    /// Events read by the long-lived readers.
    var events: Int { counts.withLock { $0.events } }
    /// Subscriptions opened so far.
    var subscriptions: Int { counts.withLock { $0.subscriptions } }

    init(client: FliptClient, settings: SoakClient.Settings) {
        let leakPerRevision = settings.leakKiBPerRevision
        for _ in 0..<settings.subscribers {
            let events = client.events()
            counts.withLock { $0.subscriptions += 1 }
            Task.detached { [self] in
                for await event in events {
                    counts.withLock { $0.events += 1 }
                    if leakPerRevision > 0, case .snapshotReplaced = event {
                        leaked.withLock { $0.append([UInt8](repeating: 1, count: leakPerRevision * 1_024)) }
                    }
                }
            }
        }
        Task.detached { [self] in
            while true {
                let events = client.events()
                counts.withLock { $0.subscriptions += 1 }
                let reader = Task { for await _ in events {} }
                try? await Task.sleep(for: .milliseconds(500))
                reader.cancel()
                await reader.value
            }
        }
    }
}

/// Whether any thread has had an answer; errors after that are late, and fail the soak test.
private final class AnswerFlag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }
}

/// One batch of evaluations and what they answered.
private struct Probe {
    let thread: Int
    let anyAnswer: AnswerFlag
    var evaluations = 0
    var ok = 0
    var errors = 0
    var lateErrors = 0
    var contradictions = 0
    var revisions: [Int] = []
    var firstError: String?
    var firstRevision: Int? { revisions.first }

    init(thread: Int, anyAnswer: AnswerFlag) {
        self.thread = thread
        self.anyAnswer = anyAnswer
    }

    /// A batch (`revision` with or without the matching context, and `parity`), then one single evaluation.
    mutating func evaluate(_ client: FliptClient, iteration: Int) {
        let late = anyAnswer.isSet
        let gold = iteration % 2 == 0
        let entity = "entity-\(thread)-\(iteration % 97)"
        let context: EvaluationContext = gold ? ["plan": "gold"] : ["plan": "basic"]
        do {
            evaluations += 1
            let batch = try client.evaluateBatch(requests: [
                EvaluationRequest(flagKey: "revision", entityID: entity, context: context),
                EvaluationRequest(flagKey: "parity", entityID: entity),
            ])
            guard batch.responses.count == 2, case .variant(let variant) = batch.responses[0],
                case .boolean(let parity) = batch.responses[1],
                let revision = Self.revision(of: variant.variantKey, gold: gold)
            else {
                contradictions += 1
                return
            }
            if parity.isEnabled != revision.isMultiple(of: 2) { contradictions += 1 }
            record(revision)
            evaluations += 1
            let single = try client.evaluateVariant(flagKey: "revision", entityID: entity)
            guard let alone = Self.revision(of: single.variantKey, gold: false) else {
                contradictions += 1
                return
            }
            record(alone)
        } catch {
            errors += 1
            if late { lateErrors += 1 }
            if firstError == nil { firstError = "\(error.code)" }
        }
    }

    private mutating func record(_ revision: Int) {
        ok += 1
        if ok == 1 { anyAnswer.set() }
        if revisions.last != revision { revisions.append(revision) }
    }

    /// The revision in `g<N>` (context matched the rule) or `r<N>` (default variant).
    private static func revision(of variantKey: String, gold: Bool) -> Int? {
        guard variantKey.first == (gold ? "g" : "r") else { return nil }
        return Int(variantKey.dropFirst())
    }
}

/// An append-only log file written one whole line per `write(2)`.
private final class SoakLog: Sendable {
    private let descriptor: Int32

    init?(path: String) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if descriptor < 0 { return nil }
    }

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                #if canImport(Glibc) || canImport(Musl)
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                let written = Darwin.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// Milliseconds on the monotonic clock since the process started.
    static func milliseconds() -> Int64 {
        let components = (ContinuousClock.now - processStart).components
        return components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }

    private static let processStart = ContinuousClock.now
}

/// Resident memory of this process, from /proc (zero where /proc does not exist), and the allocator's figures.
struct MemoryUse {
    var residentKiB = 0
    var peakKiB = 0
    /// Resident pages of this process alone (RssAnon).
    var anonymousKiB = 0
    /// Resident pages of mapped files (RssFile).
    var fileKiB = 0
    /// Threads of the process.
    var threads = 0
    /// Bytes handed out by the allocator and not yet freed, in KiB; -1 where the allocator cannot tell.
    var heapKiB = -1
    /// Bytes the allocator holds from the system (free ones included), in KiB; -1 where it cannot tell.
    var obtainedKiB = -1

    static func current() -> MemoryUse {
        var use = MemoryUse()
        let heap = flipt_heap_current()
        if heap.available != 0 {
            use.heapKiB = Int(heap.in_use / 1_024)
            use.obtainedKiB = Int(heap.obtained / 1_024)
        }
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return use }
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let value = Int(fields[1]) else { continue }
            if fields[0] == "VmRSS:" { use.residentKiB = value }
            if fields[0] == "VmHWM:" { use.peakKiB = value }
            if fields[0] == "RssAnon:" { use.anonymousKiB = value }
            if fields[0] == "RssFile:" { use.fileKiB = value }
            if fields[0] == "Threads:" { use.threads = value }
        }
        return use
    }

    /// CPU time used by the whole process so far, in milliseconds.
    static func cpuMilliseconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return time.tv_sec * 1_000 + time.tv_nsec / 1_000_000
    }
}
