/// The log of one soak client process, parsed (the line format is described on `SoakClient` in flipt-bench).
struct IncarnationLog {
    /// The first answer, written before the evaluating threads start.
    struct Start {
        var source: String
        var revision: Int?
        var error: String?
        var contradictions: Int
    }

    /// What one thread answered during about 100 ms.
    struct Batch {
        var milliseconds: Int
        var thread: Int
        var evaluations: Int
        var answers: Int
        var revisions: [Int]
        var errors: Int
        var lateErrors: Int
        var errorCode: String?
        var contradictions: Int
    }

    /// A memory sample.
    struct Memory {
        var milliseconds: Int
        var residentKiB: Int
        var peakKiB: Int
        /// Resident pages of the process alone (heap, stacks, private mappings); nil in logs without it.
        var anonymousKiB: Int?
        /// Resident pages of mapped files (the executable and libraries); nil in logs without it.
        var fileKiB: Int?
        /// The process's threads; nil in logs without it.
        var threads: Int?
        /// Bytes the allocator has handed out and not had back, in KiB; nil where it cannot tell.
        var heapKiB: Int?
        /// Bytes the allocator holds from the system, in KiB; nil where it cannot tell.
        var obtainedKiB: Int?
        var cpuMilliseconds: Int
        /// Events the client's long-lived subscribers have read so far.
        var events: Int
        /// Event subscriptions opened so far.
        var subscriptions: Int
    }

    var start: Start?
    var batches: [Batch] = []
    var memory: [Memory] = []
    /// A client that could not start (an `X` line).
    var startFailure: String?
    /// Lines that do not parse.
    var unreadable: [String] = []

    init(lines: [Substring]) {
        for line in lines {
            let parts = line.split(separator: " ")
            guard let tag = parts.first else { continue }
            var fields: [Substring: Substring] = [:]
            for part in parts.dropFirst() {
                guard let equals = part.firstIndex(of: "=") else { continue }
                fields[part[..<equals]] = part[part.index(after: equals)...]
            }
            func int(_ name: Substring) -> Int? { fields[name].flatMap { Int($0) } }
            func text(_ name: Substring) -> String? { fields[name].flatMap { $0 == "-" ? nil : String($0) } }
            switch tag {
            case "S":
                guard let source = text("source"), let revision = int("rev"), let bad = int("bad") else {
                    unreadable.append(String(line))
                    continue
                }
                start = Start(
                    source: source,
                    revision: revision >= 0 ? revision : nil,
                    error: text("err"),
                    contradictions: bad
                )
            case "E":
                guard let milliseconds = int("ms"), let thread = int("th"), let evaluations = int("n"),
                    let answers = int("ok"),
                    let revisions = fields["revs"], let errors = int("errs"), let late = int("late"),
                    let bad = int("bad")
                else {
                    unreadable.append(String(line))
                    continue
                }
                batches.append(
                    Batch(
                        milliseconds: milliseconds,
                        thread: thread,
                        evaluations: evaluations,
                        answers: answers,
                        revisions: revisions.split(separator: ",").compactMap { Int($0) },
                        errors: errors,
                        lateErrors: late,
                        errorCode: text("code"),
                        contradictions: bad
                    )
                )
            case "M":
                guard let milliseconds = int("ms"), let resident = int("rss"), let peak = int("hwm") else {
                    unreadable.append(String(line))
                    continue
                }
                memory.append(
                    Memory(
                        milliseconds: milliseconds,
                        residentKiB: resident,
                        peakKiB: peak,
                        anonymousKiB: int("anon"),
                        fileKiB: int("file"),
                        threads: int("threads"),
                        heapKiB: int("heap").flatMap { $0 >= 0 ? $0 : nil },
                        obtainedKiB: int("got").flatMap { $0 >= 0 ? $0 : nil },
                        cpuMilliseconds: int("cpu") ?? 0,
                        events: int("events") ?? 0,
                        subscriptions: int("subs") ?? 0
                    )
                )
            case "X":
                startFailure = String(line)
            default:
                unreadable.append(String(line))
            }
        }
    }

    /// Every evaluation the process logged.
    var evaluations: Int { batches.reduce(start == nil ? 0 : 1) { $0 + $1.evaluations } }
}
