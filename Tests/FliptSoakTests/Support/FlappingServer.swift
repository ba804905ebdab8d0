import Dispatch
import FliptTestSupport
import Foundation
import Synchronization

/// A loopback Flipt server that changes its behaviour on a seeded random schedule, and remembers what it did.
///
/// Conditions follow each other every 0.5–8 s: up (200 or 304), a changed document (a new revision), refused
/// requests (connection closed, reset, or a truncated body), silent connections, 503 bursts, 429 with
/// `Retry-After`, and bad documents (truncated JSON, schema-invalid, another namespace) served as the current one.
/// A failing condition sometimes also moves to a new revision, which the client then gets on recovery.
final class FlappingServer: Sendable {
    /// What the server does during a phase.
    enum Condition: Sendable, Hashable, CustomStringConvertible {
        /// Serves the current valid document.
        case up
        /// Serves a new valid revision from now on.
        case changed
        /// Answers every snapshot request with this transport failure.
        case refusing(TestFliptServer.Fault)
        /// Reads every snapshot request and never answers.
        case silent
        /// Answers every snapshot request with `503`.
        case unavailable
        /// Answers every snapshot request with `429` and `Retry-After: seconds` (which the client caps at 30 s).
        case throttled(seconds: Int)
        /// Serves a bad document as the current one.
        case bad(SoakDocument.Defect)

        /// Whether every attempt fails in a way the retry policy retries.
        var isFailing: Bool {
            switch self {
            case .refusing, .silent, .unavailable, .throttled: true
            case .up, .changed, .bad: false
            }
        }

        /// Whether every request is answered at once with one response (200, 304 or a rejected document).
        var answersNormally: Bool {
            switch self {
            case .up, .changed, .bad: true
            default: false
            }
        }

        var description: String {
            switch self {
            case .up: "up"
            case .changed: "changed"
            case .refusing(.closeConnection): "closed"
            case .refusing(.resetConnection): "reset"
            case .refusing: "truncated"
            case .silent: "silent"
            case .unavailable: "503"
            case .throttled(let seconds): "429(\(seconds)s)"
            case .bad(let defect): "bad(\(defect))"
            }
        }
    }

    /// One stretch of time with one condition. Between one phase's end and the next one's start the server is
    /// being switched over.
    struct Phase: Sendable {
        var condition: Condition
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant?
        /// The valid revision current during the phase.
        var revision: Int
    }

    private struct State {
        var phases: [Phase] = []
        var validRevisions: [Int] = []
        var badRevisions: [Int] = []
        /// The ETag (digest) of every document served, valid (with its revision) or bad.
        var validDigests: [String: Int] = [:]
        var badDigests: Set<String> = []
        var stopping = false
    }

    /// How many faults are queued for a failing phase: more than any client could use up in one.
    private static let faultsPerPhase = 5_000

    let server: TestFliptServer
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the server with revision 1, then the schedule on its own thread.
    ///
    /// - Parameter longThrottles: also send, now and then, `Retry-After: 45` for 50–60 s, beyond the client's 30 s
    ///   cap (for long runs only: it idles the client for half a minute).
    init(seed: UInt64, longThrottles: Bool = false) throws {
        server = try TestFliptServer(version: .v2)
        server.setDocument(SoakDocument.valid(revision: 1))
        let digest = server.digest() ?? ""
        state.withLock { state in
            state.validRevisions = [1]
            state.validDigests[digest] = 1
            state.phases = [Phase(condition: .up, start: .now, end: nil, revision: 1)]
        }
        let thread = Thread { [self] in
            var random = SeededRandom(seed: seed)
            flap(using: &random, longThrottles: longThrottles)
            finished.signal()
        }
        thread.name = "soak-flapping-server"
        thread.start()
    }

    /// Ends the schedule, then stops the server.
    func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        finished.wait()
        server.stop()
    }

    /// Every phase so far; the last one is still open.
    var phases: [Phase] { state.withLock { $0.phases } }

    /// Every revision ever served as a valid document.
    var validRevisions: Set<Int> { state.withLock { Set($0.validRevisions) } }

    /// Every revision ever served in a bad document.
    var badRevisions: Set<Int> { state.withLock { Set($0.badRevisions) } }

    /// The revision of every valid document served, by ETag.
    var validDigests: [String: Int] { state.withLock { $0.validDigests } }

    /// The ETags of the bad documents served.
    var badDigests: Set<String> { state.withLock { $0.badDigests } }

    private func flap(using random: inout SeededRandom, longThrottles: Bool) {
        var revision = 1
        var badCount = 0
        while !state.withLock({ $0.stopping }) {
            var (condition, length) = Self.next(using: &random)
            if case .throttled = condition, longThrottles, Int.random(in: 0..<6, using: &random) == 0 {
                (condition, length) = (.throttled(seconds: 45), random.duration(50...60))
            }
            var newRevision = condition == .changed
            if condition.isFailing && Double.random(in: 0..<1, using: &random) < 0.3 { newRevision = true }
            if newRevision { revision += 1 }
            let current = revision
            // The previous phase ends before anything changes, and the next starts once everything has: a request
            // inside a phase's window certainly met that phase's behaviour.
            let changing = ContinuousClock.now
            state.withLock { state in
                if !state.phases.isEmpty { state.phases[state.phases.count - 1].end = changing }
            }
            // The valid document first (a new revision, or the current one replacing a bad one), then the faults.
            server.setDocument(SoakDocument.valid(revision: current))
            let validDigest = server.digest() ?? ""
            state.withLock { $0.validDigests[validDigest] = current }
            server.clearFaults()
            switch condition {
            case .up, .changed:
                break
            case .refusing(let fault):
                server.enqueue(fault, times: Self.faultsPerPhase)
            case .silent:
                server.enqueue(.silent, times: Self.faultsPerPhase)
            case .unavailable:
                server.enqueue(.status(503), times: Self.faultsPerPhase)
            case .throttled(let seconds):
                server.enqueue(.retryAfter("\(seconds)"), times: Self.faultsPerPhase)
            case .bad(let defect):
                badCount += 1
                let badRevision = SoakDocument.badRevisionBase + badCount
                server.setDocument(SoakDocument.bad(defect, revision: badRevision))
                let badDigest = server.digest() ?? ""
                state.withLock { state in
                    state.badRevisions.append(badRevision)
                    state.badDigests.insert(badDigest)
                }
            }
            let now = ContinuousClock.now
            state.withLock { state in
                if newRevision { state.validRevisions.append(current) }
                state.phases.append(Phase(condition: condition, start: now, end: nil, revision: current))
            }
            let until = now + length
            while ContinuousClock.now < until && !state.withLock({ $0.stopping }) {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        let now = ContinuousClock.now
        state.withLock { state in
            if !state.phases.isEmpty { state.phases[state.phases.count - 1].end = now }
        }
        server.clearFaults()
    }

    /// The next condition and how long it lasts.
    private static func next(using random: inout SeededRandom) -> (Condition, Duration) {
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<16:
            return (.up, random.duration(0.5...3))
        case 16..<38:
            return (.changed, random.duration(0.5...3))
        case 38..<52:
            let faults: [TestFliptServer.Fault] = [.closeConnection, .resetConnection, .truncatedBody(sentBytes: 40)]
            return (.refusing(faults.randomElement(using: &random)!), random.duration(1...6))
        case 52..<60:
            return (.silent, random.duration(1...4))
        case 60..<74:
            return (.unavailable, random.duration(1...6))
        case 74..<84:
            return (.throttled(seconds: Int.random(in: 1...3, using: &random)), random.duration(2...8))
        default:
            let defect = SoakDocument.Defect.allCases.randomElement(using: &random)!
            return (.bad(defect), random.duration(0.5...3))
        }
    }
}
