import FliptEngine
import FliptStore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures the SQLite snapshot cache, and hosts the child-process writer that FliptStoreTests drives.
///
///     flipt-bench store [--runs N] [--flags 1000,10000]
///         cold load (open + migrate check + read + decode + index) against decode + index alone, write time
///     flipt-bench store writer --path P [--count N] [--flags F] [--tag T] [--namespace NS] [--then-304-and-503]
///         saves N snapshots (0: forever) to P, printing "saved <generation>" after each commit
enum StoreBenchmark {
    static func run(arguments: [String]) {
        if arguments.first == "writer" {
            runWriter(arguments: Array(arguments.dropFirst()))
            return
        }
        if arguments.first == "loop" {
            runLoop(arguments: Array(arguments.dropFirst()))
            return
        }
        if arguments.contains("--help") {
            print("usage: flipt-bench store [--runs N] [--flags 1000,10000]")
            print("       flipt-bench store writer --path P [--count N] [--flags F] [--tag T]")
            return
        }
        let runs = Int(value(of: "--runs", in: arguments) ?? "") ?? 41
        let sizes = (value(of: "--flags", in: arguments) ?? "1000,10000").split(separator: ",").compactMap { Int($0) }
        print("SQLite \(SnapshotStore.sqliteVersion), \(runs) runs per figure, medians; release build expected")
        for flagCount in sizes {
            measure(flagCount: flagCount, runs: runs)
        }
    }

    // MARK: Measurement

    private static func measure(flagCount: Int, runs: Int) {
        let document = generateDocument(flagCount: flagCount, seed: 0)
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("flipt-bench-store-\(getpid())-\(flagCount)")
        try? FileManager.default.removeItem(at: directory)
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("cache.sqlite").path
        let key = SnapshotKey(url: URL(string: "https://flipt.example.com")!, environment: "default", namespace: "ns")

        // Write: a new generation per run (documents differ, so none is deduplicated); 3 generations kept. The
        // default store syncs each commit (synchronous = FULL); a second file, written alternately with the same
        // documents, does not (NORMAL), for the cost of that sync side by side.
        var writes: [Sample] = []
        var writesUnsynced: [Sample] = []
        do {
            let store = try SnapshotStore(path: path)
            let unsynced = try SnapshotStore(
                path: directory.appendingPathComponent("unsynced.sqlite").path,
                options: .init(syncsEachCommit: false)
            )
            for run in 0..<runs {
                let variant = generateDocument(flagCount: flagCount, seed: run + 1)
                writes.append(try Sample.time { try store.save(NewSnapshot(document: variant), for: key) })
                writesUnsynced.append(try Sample.time { try unsynced.save(NewSnapshot(document: variant), for: key) })
            }
            try store.save(NewSnapshot(document: document, etag: "\"final\""), for: key)
        } catch {
            fatalError("store benchmark setup failed: \(error)")
        }
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0

        func coldLoad(fullCheck: Bool = false, verify: Bool = false) throws -> Sample {
            try Sample.time {
                let store = try SnapshotStore(
                    path: path,
                    options: .init(checksIntegrityOnOpen: fullCheck, verifiesDocumentsOnRead: verify)
                )
                guard let stored = try store.lastGood(for: key) else { fatalError("no last good snapshot") }
                let snapshot = try Snapshot(data: stored.document)
                precondition(snapshot.flagCount == flagCount)
            }
        }
        func decodeOnly() throws -> Sample {
            try Sample.time {
                let snapshot = try Snapshot(data: document)
                precondition(snapshot.flagCount == flagCount)
            }
        }
        // Interleave the measurements so that machine noise hits them alike.
        var cold: [Sample] = []
        var coldVerified: [Sample] = []
        var coldFullCheck: [Sample] = []
        var open: [Sample] = []
        var decode: [Sample] = []
        var hash: [Sample] = []
        do {
            _ = (try coldLoad(), try decodeOnly())  // warm-up
            for _ in 0..<runs {
                cold.append(try coldLoad())
                coldVerified.append(try coldLoad(verify: true))
                coldFullCheck.append(try coldLoad(fullCheck: true))
                open.append(try Sample.time { _ = try SnapshotStore(path: path) })
                decode.append(try decodeOnly())
                hash.append(Sample.time { precondition(SHA256.hex(document).count == 64) })
            }
        } catch {
            fatalError("measurement failed: \(error)")
        }
        let decodeMedian = Sample.median(decode)
        print("")
        print("\(flagCount) flags: document \(document.count / 1024) KiB, file \(fileSize / 1024) KiB (3 generations)")
        print("  " + "".padding(toLength: 44, withPad: " ", startingAt: 0) + "   wall ms    CPU ms  SQLite adds (CPU)")
        func row(_ label: String, _ samples: [Sample], share: Bool = false) {
            let value = Sample.median(samples)
            var line = "  " + label.padding(toLength: 44, withPad: " ", startingAt: 0)
            line += String(format: "%10.2f%10.2f", value.wall.milliseconds, value.cpu.milliseconds)
            if share { line += String(format: "  %+6.1f %%", (value.cpu / decodeMedian.cpu - 1) * 100) }
            print(line)
        }
        row("decode + index alone", decode)
        row("cold load (open, check, read, decode)", cold, share: true)
        row("  same, verifiesDocumentsOnRead", coldVerified, share: true)
        row("  same, full quick_check on open", coldFullCheck, share: true)
        row("open + migration check alone", open)
        row("SHA-256 of the document alone", hash)
        row("write one snapshot (hash, insert, prune)", writes)
        row("  same, synchronous=NORMAL (no sync/commit)", writesUnsynced)
    }

    /// Wall-clock and thread CPU time of one run. On this shared machine CPU time is the steadier figure:
    /// it leaves out the time the thread waited for a core.
    struct Sample {
        var wall: Duration
        var cpu: Duration

        static func time(_ body: () throws -> Void) rethrows -> Sample {
            let wallStart = ContinuousClock.now
            let cpuStart = threadCPUTime()
            try body()
            return Sample(wall: ContinuousClock.now - wallStart, cpu: threadCPUTime() - cpuStart)
        }

        static func median(_ samples: [Sample]) -> Sample {
            let walls = samples.map(\.wall).sorted()
            let cpus = samples.map(\.cpu).sorted()
            return Sample(wall: walls[walls.count / 2], cpu: cpus[cpus.count / 2])
        }

        private static func threadCPUTime() -> Duration {
            var spec = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
            return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
        }
    }
}

extension Duration {
    fileprivate var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

extension StoreBenchmark {
    // MARK: Loops for profilers and instruction counters

    /// `flipt-bench store loop --what cold|decode|open [--flags N] [--count K]`: repeats one step K times
    /// on a fresh cache, for `perf stat -e instructions` or `valgrind --tool=callgrind`, whose counts do not
    /// depend on how loaded the machine is. Setup (generate, save) is the same for every `--what`, so the
    /// difference between two runs' counts is the cost of the steps alone.
    private static func runLoop(arguments: [String]) {
        let what = value(of: "--what", in: arguments) ?? "cold"
        let flagCount = Int(value(of: "--flags", in: arguments) ?? "") ?? 1000
        let count = Int(value(of: "--count", in: arguments) ?? "") ?? 20
        let document = generateDocument(flagCount: flagCount, seed: 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flipt-bench-loop-\(getpid())").path
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let key = SnapshotKey(url: URL(string: "https://flipt.example.com")!, environment: "default", namespace: "ns")
        do {
            try SnapshotStore(path: path).save(NewSnapshot(document: document), for: key)
            for _ in 0..<count {
                switch what {
                case "open":
                    _ = try SnapshotStore(path: path)
                case "decode":
                    let snapshot = try Snapshot(data: document)
                    precondition(snapshot.flagCount == flagCount)
                default:
                    let stored = try SnapshotStore(path: path).lastGood(for: key)
                    let snapshot = try Snapshot(data: stored!.document)
                    precondition(snapshot.flagCount == flagCount)
                }
            }
        } catch {
            fatalError("loop failed: \(error)")
        }
    }

    // MARK: Writer child process (for the FliptStoreTests two-writer and SIGKILL tests)

    private static func runWriter(arguments: [String]) {
        guard let path = value(of: "--path", in: arguments) else {
            FileHandle.standardError.write(Data("writer: --path is required\n".utf8))
            exit(2)
        }
        let count = Int(value(of: "--count", in: arguments) ?? "") ?? 0
        let flagCount = Int(value(of: "--flags", in: arguments) ?? "") ?? 50
        let tag = value(of: "--tag", in: arguments) ?? "writer"
        let key = SnapshotKey(
            url: URL(string: "http://127.0.0.1:8080")!,
            environment: "default",
            namespace: value(of: "--namespace", in: arguments) ?? "default"
        )
        // A few documents made up front, so that the loop spends its time saving, not generating.
        let documents = (1...4).map {
            generateDocument(flagCount: flagCount, seed: $0, tag: "\(tag)-\($0)", namespace: key.namespace)
        }
        do {
            let store = try SnapshotStore(path: path)
            say("opened")
            var sequence = 0
            while count == 0 || sequence < count {
                sequence += 1
                let document = documents[sequence % documents.count]
                let started = Date()
                let saved = try store.save(
                    NewSnapshot(document: document, etag: "\"\(tag)-\(sequence)\"", fetchedAt: started),
                    for: key,
                    attempt: SyncAttempt(startedAt: started, outcome: .updated, httpStatus: 200, duration: .zero)
                )
                say("saved \(saved.generation)")
            }
            if arguments.contains("--then-304-and-503") {
                // For documentation examples: a confirmation, then a failed attempt, as a sync loop records them.
                let now = Date()
                try store.recordNotModified(
                    for: key,
                    at: now,
                    attempt: SyncAttempt(
                        startedAt: now,
                        outcome: .notModified,
                        httpStatus: 304,
                        duration: .milliseconds(8)
                    )
                )
                try store.recordAttempt(
                    SyncAttempt(
                        startedAt: now.addingTimeInterval(30),
                        outcome: .failed,
                        httpStatus: 503,
                        errorClass: "http_5xx",
                        duration: .milliseconds(41)
                    ),
                    for: key
                )
            }
        } catch {
            FileHandle.standardError.write(Data("writer: \(error)\n".utf8))
            exit(1)
        }
    }

    /// Writes a line to standard output unbuffered, so that a parent reading the pipe sees it at once.
    private static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private static func value(of option: String, in arguments: [String]) -> String? {
        guard let index = arguments.firstIndex(of: option), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    // MARK: Documents

    /// A v2 snapshot document with `flagCount` flags: half variant flags with two rules (segments with
    /// string, number and datetime constraints, two distributions), half boolean flags with a segment and a
    /// threshold rollout. `seed` changes values so that documents differ; `tag` lands in the namespace name.
    static func generateDocument(flagCount: Int, seed: Int, tag: String = "", namespace: String = "ns") -> Data {
        var json = #"{"namespace":{"key":"\#(namespace)","name":"\#(tag)"},"flags":["#
        json.reserveCapacity(flagCount * 1200)
        for index in 0..<flagCount {
            if index > 0 { json += "," }
            let key = "flag_\(index)"
            if index % 2 == 0 {
                json += #"{"key":"\#(key)","name":"Flag \#(index)","description":"generated","enabled":true,"#
                json += #""type":"VARIANT_FLAG_TYPE","createdAt":"2026-08-22T10:00:00Z","rules":["#
                for rank in 1...2 {
                    if rank > 1 { json += "," }
                    json += #"{"id":"r\#(index)-\#(rank)","rank":\#(rank),"segmentOperator":"OR_SEGMENT_OPERATOR","#
                    json += #""segments":[{"key":"segment_\#(index % 97)_\#(rank)","name":"","description":"","#
                    json += #""matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":["#
                    json += #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"plan","operator":"eq","#
                    json += #""value":"plan-\#((index + seed) % 7)"},"#
                    json += #"{"type":"NUMBER_CONSTRAINT_COMPARISON_TYPE","property":"age","operator":"gte","#
                    json += #""value":"\#((index + seed) % 90)"},"#
                    json += #"{"type":"DATETIME_CONSTRAINT_COMPARISON_TYPE","property":"signup","operator":"lt","#
                    json += #""value":"2026-0\#(1 + index % 9)-15T00:00:00Z"}]}],"#
                    json += #""distributions":[{"ruleId":"r\#(index)-\#(rank)","variantKey":"a","#
                    json += #""variantAttachment":"{\"color\":\"red\"}","rollout":\#(50 + seed % 10)},"#
                    json += #"{"ruleId":"r\#(index)-\#(rank)","variantKey":"b","variantAttachment":"","#
                    json += #""rollout":\#(50 - seed % 10)}]}"#
                }
                json += #"],"rollouts":[],"defaultVariant":{"id":"\#(key)/a","key":"a","attachment":""}}"#
            } else {
                json += #"{"key":"\#(key)","name":"Flag \#(index)","description":"generated","enabled":true,"#
                json += #""type":"BOOLEAN_FLAG_TYPE","rules":[],"rollouts":["#
                json += #"{"type":"SEGMENT_ROLLOUT_TYPE","rank":1,"segment":{"value":true,"#
                json += #""segmentOperator":"AND_SEGMENT_OPERATOR","segments":[{"key":"beta","name":"","#
                json += #""description":"","matchType":"ANY_SEGMENT_MATCH_TYPE","constraints":["#
                json += #"{"type":"BOOLEAN_CONSTRAINT_COMPARISON_TYPE","property":"beta","operator":"true","#
                json += #""value":""},{"type":"ENTITY_ID_CONSTRAINT_COMPARISON_TYPE","property":"","#
                json += #""operator":"isoneof","value":"[\"u\#(seed)\",\"u\#(index)\"]"}]}]}},"#
                json += #"{"type":"THRESHOLD_ROLLOUT_TYPE","rank":2,"threshold":{"percentage":\#(index % 100),"#
                json += #""value":false}}]}"#
            }
        }
        json += #"],"digest":"\#(String(repeating: "0", count: 39))\#(seed % 10)"}"#
        return Data(json.utf8)
    }
}
