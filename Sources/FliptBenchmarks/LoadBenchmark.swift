// flipt-bench load: how long a snapshot takes to load and how much memory it keeps (issue 18 items 3 and 4).
//
//   decode + index    `Snapshot(document:)` on documents of several shapes, beside the official engine's
//                     `initialize_engine` (loopback fetch + parse) until its first successful answer, in one run
//   cold boot         a fresh process of this benchmark opens a client on a cache file written beforehand and
//                     evaluates once: the time from the client's creation to that first answer, and the whole
//                     process's time from spawn to the answer
//   memory            the RSS of that process before the client and while it holds the snapshot (anonymous and
//                     file-backed pages apart), and the allocator's live heap, against the document's size

import CFliptHeap
import Flipt
import FliptEngine
import FliptGzip
import FliptStore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A document shape whose load is measured.
struct LoadShape: Sendable {
    enum Source: Sendable {
        /// A `ShapeGenerator` document of this shape.
        case shape(Shape)
        /// Variant flags whose distributions carry JSON attachments of about this many bytes.
        case attachments(bytes: Int)
        /// Flags with no rules or rollouts (key, name, description, default variant).
        case flat
    }

    var name: String
    var flagCount: Int
    var source: Source

    static let all: [LoadShape] = {
        func shape(_ name: String, _ count: Int, _ change: (inout Shape) -> Void = { _ in }) -> LoadShape {
            var shape = Shape(name: name)
            shape.flagCount = count
            change(&shape)
            return LoadShape(name: name, flagCount: count, source: .shape(shape))
        }
        return [
            shape("issue18-1000", 1_000),
            shape("issue18-10000", 10_000),
            // Issue 18's workload with one or two segments per rule: a 13 MB document, the size the issue quotes.
            shape("segments-1-2-10000", 10_000) { $0.segmentsPerRule = 1...2 },
            LoadShape(name: "flat-10000", flagCount: 10_000, source: .flat),
            shape("many-rules-10000", 10_000) {
                $0.rules = 3...3
                $0.segmentsPerRule = 2...2
                $0.constraintsPerSegment = 3...3
                $0.distributions = 4...4
                $0.kinds = Shape.Kind.allCases
            },
            shape("all-kinds-10000", 10_000) {
                $0.attributeCount = 20
                $0.kinds = Shape.Kind.allCases
                $0.segmentsPerRule = 1...3
            },
            LoadShape(name: "attachments-10000", flagCount: 10_000, source: .attachments(bytes: 150)),
        ]
    }()

    /// The document; the same seed gives the same bytes.
    func document(seed: UInt64) -> [UInt8] {
        switch source {
        case .shape(let shape):
            var generator = ShapeGenerator(shape: shape, seed: seed)
            return generator.document()
        case .attachments(let bytes):
            return Self.attachmentDocument(flagCount: flagCount, attachmentBytes: bytes, seed: seed)
        case .flat:
            var flags: [String] = []
            for index in 0..<flagCount {
                let type = index % 2 == 0 ? "VARIANT_FLAG_TYPE" : "BOOLEAN_FLAG_TYPE"
                let defaultVariant = index % 2 == 0 ? #"{"id":"d\#(index)","key":"off"}"# : "null"
                flags.append(
                    #"{"key":"flat-\#(index)","name":"Flat flag \#(index)","description":"a flag with no rules","#
                        + #""enabled":\#(index % 3 != 0),"type":"\#(type)","rules":[],"rollouts":[],"#
                        + #""defaultVariant":\#(defaultVariant)}"#
                )
            }
            return Array(#"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#.utf8)
        }
    }

    /// Variant flags with two rules of one segment and three distributions each, every distribution and the
    /// default variant carrying a JSON attachment (escaped inside a JSON string, as Flipt sends them).
    static func attachmentDocument(flagCount: Int, attachmentBytes: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        func attachment() -> String {
            var fields: [String] = []
            var size = 2
            while size < attachmentBytes {
                let field = #""field\#(fields.count)":{"text":"value \#(random.next() % 100_000)","on":true}"#
                size += field.utf8.count + 1
                fields.append(field)
            }
            return BenchmarkRequest.jsonString("{" + fields.joined(separator: ",") + "}")
        }
        var flags: [String] = []
        for index in 0..<flagCount {
            let rules = (0..<2).map { rank in
                let distributions = (0..<3).map { variant in
                    #"{"variantKey":"v\#(variant)","variantAttachment":\#(attachment()),"rollout":33.33}"#
                }.joined(separator: ",")
                let constraint =
                    #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"plan","operator":"eq","value":"pro"}"#
                let segment =
                    #"{"key":"segment-\#(rank)","name":"s","matchType":"ALL_SEGMENT_MATCH_TYPE","#
                    + #""constraints":[\#(constraint)]}"#
                return #"{"rank":\#(rank + 1),"segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\#(segment)],"#
                    + #""distributions":[\#(distributions)]}"#
            }.joined(separator: ",")
            flags.append(
                #"{"key":"attached-\#(index)","name":"attached","description":"","enabled":true,"#
                    + #""type":"VARIANT_FLAG_TYPE","rules":[\#(rules)],"rollouts":[],"#
                    + #""defaultVariant":{"id":"d","key":"v0","attachment":\#(attachment())}}"#
            )
        }
        return Array(#"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#.utf8)
    }
}

/// `flipt-bench load`: decode + index, cold boot and memory.
enum LoadBenchmark {
    static let usage = """
        usage: flipt-bench load --official-lib PATH [--shape NAME]... [--rounds N] [--boot-rounds N] [--seed N]
               flipt-bench load --callgrind NAME [--count N] [--seed N]

          --official-lib PATH  the official engine's shared library (libfliptengine.so from PyPI flipt-client)
          --shape NAME         only this document shape (repeatable); an unknown name lists them all
          --rounds N           decode + index rounds per shape, interleaved with the official engine's (default 9)
          --boot-rounds N      fresh processes per cold boot figure (default 7)
          --seed N             the documents' seed (default 18)
          --callgrind NAME     decode + index the shape's document once, then --count N more times (default 5);
                               instructions per load = (Ir with --count N - Ir with --count 1) / (N - 1), each Ir
                               the summary of valgrind --tool=callgrind on a copy stripped with --strip-debug

        Prints medians. Cold boot and memory run for every selected shape. With FLIPT_BENCH_SMAPS=DIR, each boot
        process writes its /proc/self/smaps before the client and while it holds the snapshot into DIR.
        Build with `swift build -c release --product flipt-bench`.
        """

    struct Options {
        var officialLibrary = ""
        var shapes: [String] = []
        var rounds = 9
        var bootRounds = 7
        var seed: UInt64 = 18
        var callgrindShape: String?
        var count = 5
    }

    static func run(arguments: [String]) {
        if arguments.first == "boot" {
            bootChild(arguments: Array(arguments.dropFirst()))
            return
        }
        do {
            let options = try parse(arguments)
            if let name = options.callgrindShape {
                try callgrind(name, options)
            } else {
                try measure(options)
            }
        } catch let failure as BenchmarkFailure {
            print("flipt-bench load: \(failure.message)")
            exit(1)
        } catch {
            print("flipt-bench load: \(error)")
            exit(1)
        }
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var reader = BenchmarkArguments(arguments, usage: usage)
        while let argument = reader.next() {
            switch argument {
            case "--official-lib": options.officialLibrary = try reader.value(argument)
            case "--shape": options.shapes.append(try reader.value(argument))
            case "--rounds": options.rounds = try reader.number(argument)
            case "--boot-rounds": options.bootRounds = try reader.number(argument)
            case "--seed": options.seed = UInt64(try reader.number(argument))
            case "--callgrind": options.callgrindShape = try reader.value(argument)
            case "--count": options.count = try reader.number(argument)
            case "-h", "--help":
                print(usage)
                exit(0)
            default: throw BenchmarkFailure("unknown argument \(argument)\n\n\(usage)")
            }
        }
        guard !options.officialLibrary.isEmpty || options.callgrindShape != nil else {
            throw BenchmarkFailure("--official-lib is required\n\n\(usage)")
        }
        return options
    }

    static func selected(_ names: [String]) throws -> [LoadShape] {
        if names.isEmpty { return LoadShape.all }
        return try names.map { name in
            guard let shape = LoadShape.all.first(where: { $0.name == name }) else {
                throw BenchmarkFailure("no shape \(name); shapes: \(LoadShape.all.map(\.name).joined(separator: ", "))")
            }
            return shape
        }
    }

    // MARK: Decode + index

    static func measure(_ options: Options) throws {
        unsetenv("RUST_BACKTRACE")
        let official = try OfficialEngine(libraryPath: options.officialLibrary)
        let shapes = try selected(options.shapes)
        print("flipt-bench load: seed \(options.seed), \(options.rounds) rounds, medians (release build expected)")
        print("decode + index: Snapshot(document:); official: initialize_engine (loopback fetch + parse) to its first")
        print("successful answer, rounds interleaved; held = the heap the Snapshot keeps (program, strings,")
        print("summaries); gzip = the client's held copy of the document (zlib level 1, HeldDocument) and its time;")
        print("1 thread = the same decode with no second thread (documents of 256 KiB or more use two)")
        let widths = [20, 7, 7, 9, 9, 9, 7, 9, 9, 9, 9]
        let titles = [
            "shape", "flags", "MB", "this ms", "1 thread", "official", "ratio", "held MB", "held/doc", "gzip MB",
            "gzip ms",
        ]
        print(EngineBenchmark.row(titles, widths))
        var boots: [(LoadShape, [UInt8], BenchmarkRequest)] = []
        for shape in shapes {
            let document = shape.document(seed: options.seed)
            let heapBefore = heapInUse()
            let snapshot = try Snapshot(document: document)
            let held = Double(heapInUse() - heapBefore)
            guard snapshot.isIdentical(to: try Snapshot(document: document, splitAbove: .max)) else {
                throw BenchmarkFailure("\(shape.name): the two-thread decode differs from the one-thread decode")
            }
            let flags = try Evaluator(snapshot: snapshot, namespace: "default").listFlags()
            var random = SplitMix64(seed: options.seed)
            let request = BenchmarkRequest.random(flag: flags[flags.count / 2], using: &random)
            let server = try LoopbackDocumentServer(body: document)
            defer { server.close() }
            var ours: [Duration] = []
            var oneThread: [Duration] = []
            var theirs: [Duration] = []
            for _ in 0..<options.rounds {
                ours.append(decodeAndIndex(document))
                oneThread.append(decodeAndIndex(document, splitAbove: .max))
                theirs.append(try official.startup(url: server.url, request: request, rounds: 1))
            }
            let clock = ContinuousClock()
            let start = clock.now
            let compressed = Gzip.compress(document, level: 1)
            let compression = clock.now - start
            let mine = median(ours)
            let reference = median(theirs)
            let cells = [
                shape.name, "\(snapshot.flagCount)", format(Double(document.count) / 1e6),
                EngineBenchmark.milliseconds(mine), EngineBenchmark.milliseconds(median(oneThread)),
                EngineBenchmark.milliseconds(reference),
                format(mine / reference) + "x", format(held / 1e6), format(held / Double(document.count)) + "x",
                format(Double(compressed.count) / 1e6), EngineBenchmark.milliseconds(compression),
            ]
            print(EngineBenchmark.row(cells, widths))
            boots.append((shape, document, request))
        }
        if !boots.isEmpty { try measureBoots(boots, options) }
    }

    /// One decode + index, timed; on two threads from `splitAbove` bytes on.
    static func decodeAndIndex(_ document: [UInt8], splitAbove threshold: Int = Snapshot.splitThreshold) -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        let snapshot = try! Snapshot(document: document, splitAbove: threshold)
        let elapsed = clock.now - start
        blackHole(snapshot.flagCount)
        return elapsed
    }

    // MARK: Cold boot and memory

    /// Writes each document into a cache file, then boots fresh processes on it.
    static func measureBoots(_ boots: [(LoadShape, [UInt8], BenchmarkRequest)], _ options: Options) throws {
        print("")
        print("cold boot: a fresh `flipt-bench load boot` process, cache written beforehand; client = FliptClient(…)")
        print("with the cache file to its first answer; process = spawn to that answer; RSS = the process's resident")
        print("memory before the client and while it holds the snapshot (after the first answer), with its anonymous")
        print("and file-backed parts (RssAnon, RssFile); heap = bytes the allocator has handed out and not had back")
        print("(mallinfo2), the live part of the RSS added. Row `settled`: the same process once the client's")
        print("background step has compressed the held document (run at once here, compactHeldDocument())")
        let widths = [18, 8, 7, 10, 11, 11, 10, 9, 10, 10, 10, 9]
        print(
            EngineBenchmark.row(
                [
                    "shape", "at", "doc MB", "client ms", "process ms", "RSS before", "RSS added", "added/doc",
                    "anon added", "file added", "heap added", "heap/doc",
                ],
                widths
            )
        )
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flipt-bench-load-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (shape, document, request) in boots {
            let path = directory.appendingPathComponent("\(shape.name).sqlite").path
            // A client with the document as its seed writes it to the cache, as a first run would.
            do {
                let client = try FliptClient(options: bootOptions(cachePath: path, seed: document))
                client.close()
            }
            var reports: [BootReport] = []
            for _ in 0..<options.bootRounds {
                reports.append(try bootProcess(cachePath: path, request: request))
            }
            func medianOf(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            let before = medianOf(reports.map(\.before.rss))
            let megabytes = Double(document.count) / 1e6
            for (phase, memory) in [("answer", \BootReport.held), ("settled", \BootReport.settled)] {
                let added = medianOf(reports.map { $0[keyPath: memory].rss - $0.before.rss })
                let heap = medianOf(reports.map { $0[keyPath: memory].heap - $0.before.heap })
                let cells = [
                    shape.name, phase, format(megabytes),
                    format(medianOf(reports.map(\.clientMilliseconds))) + " ms",
                    format(medianOf(reports.map(\.processMilliseconds))) + " ms",
                    format(before / 1e6) + " MB", format(added / 1e6) + " MB",
                    format(added / Double(document.count)) + "x",
                    format(medianOf(reports.map { $0[keyPath: memory].anonymous - $0.before.anonymous }) / 1e6) + " MB",
                    format(medianOf(reports.map { $0[keyPath: memory].file - $0.before.file }) / 1e6) + " MB",
                    format(heap / 1e6) + " MB", format(heap / Double(document.count)) + "x",
                ]
                print(EngineBenchmark.row(cells, widths))
            }
        }
    }

    static func bootOptions(cachePath: String, seed: [UInt8]? = nil) -> ClientOptions {
        ClientOptions(
            url: "http://127.0.0.1:9",
            updateInterval: .seconds(3_600),
            errorStrategy: .fallback,
            snapshot: seed.map { String(decoding: $0, as: UTF8.self) },
            cache: CacheOptions(location: .file(cachePath), maximumAge: nil)
        )
    }

    /// A boot process's memory at one point, in bytes.
    struct Memory {
        var rss: Double
        var anonymous: Double
        var file: Double
        /// The allocator's live heap.
        var heap: Double

        /// The process's memory now.
        static func now() -> Memory {
            let resident = LoadBenchmark.resident()
            return Memory(
                rss: Double(resident.total),
                anonymous: Double(resident.anonymous),
                file: Double(resident.file),
                heap: Double(heapInUse())
            )
        }

        /// `rss anonymous file heap`, as a boot process prints them.
        var fields: String { "\(Int(rss)) \(Int(anonymous)) \(Int(file)) \(Int(heap))" }

        init(rss: Double, anonymous: Double, file: Double, heap: Double) {
            self.rss = rss
            self.anonymous = anonymous
            self.file = file
            self.heap = heap
        }

        init?(_ numbers: ArraySlice<Double>) {
            guard numbers.count == 4 else { return nil }
            let values = Array(numbers)
            self.init(rss: values[0], anonymous: values[1], file: values[2], heap: values[3])
        }
    }

    struct BootReport {
        var clientMilliseconds: Double
        var processMilliseconds: Double
        /// Before the client.
        var before: Memory
        /// After the first answer.
        var held: Memory
        /// After the held document was compacted.
        var settled: Memory
    }

    /// Spawns `flipt-bench load boot`, which prints one line `boot <client ns>`, then the memory (``Memory/fields``)
    /// before the client, after its first answer and after the held document was compacted, and then waits for its
    /// standard input to close.
    static func bootProcess(cachePath: String, request: BenchmarkRequest) throws -> BootReport {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        let kind = request.kind == .boolean ? "boolean" : "variant"
        process.arguments = ["load", "boot", cachePath, kind, request.flagKey, request.entityID]
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        var line: [UInt8] = []
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(contentsOf: chunk)
            if line.last == UInt8(ascii: "\n") { break }
        }
        let processTime = clock.now - start
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        let numbers = fields.dropFirst().compactMap { Double($0) }
        guard fields.count == 14, fields[0] == "boot", numbers.count == 13, let before = Memory(numbers[1..<5]),
            let held = Memory(numbers[5..<9]), let settled = Memory(numbers[9..<13])
        else {
            throw BenchmarkFailure("the boot process printed \(String(decoding: line, as: UTF8.self))")
        }
        return BootReport(
            clientMilliseconds: numbers[0] / 1e6,
            processMilliseconds: processTime / .milliseconds(1),
            before: before,
            held: held,
            settled: settled
        )
    }

    /// `flipt-bench load boot CACHE variant|boolean FLAG ENTITY`: the child of `bootProcess`.
    static func bootChild(arguments: [String]) {
        guard arguments.count == 4 else {
            print("usage: flipt-bench load boot CACHE variant|boolean FLAG ENTITY")
            exit(2)
        }
        let smaps = ProcessInfo.processInfo.environment["FLIPT_BENCH_SMAPS"]
        if let smaps { copySmaps(to: "\(smaps)/before-\(getpid())") }
        let before = Memory.now()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let client = try FliptClient(options: bootOptions(cachePath: arguments[0]))
            if arguments[1] == "boolean" {
                blackHole(try client.evaluateBoolean(flagKey: arguments[2], entityID: arguments[3]).isEnabled ? 1 : 2)
            } else {
                blackHole(try client.evaluateVariant(flagKey: arguments[2], entityID: arguments[3]).variantKey.count)
            }
            let elapsed = clock.now - start
            let held = Memory.now()
            if let smaps { copySmaps(to: "\(smaps)/held-\(getpid())") }
            client.compactHeldDocument()
            let settled = Memory.now()
            if let smaps { copySmaps(to: "\(smaps)/settled-\(getpid())") }
            // Written unbuffered, so that the parent reads it at once.
            let line = "boot \(Int(elapsed / .nanoseconds(1))) \(before.fields) \(held.fields) \(settled.fields)\n"
            FileHandle.standardOutput.write(Data(line.utf8))
            // Hold the client until the parent closes standard input.
            _ = FileHandle.standardInput.readDataToEndOfFile()
            client.close()
        } catch {
            print("boot failed: \(error)")
            exit(1)
        }
    }

    /// Bytes the allocator has handed out and not had back (every arena plus large mapped blocks).
    static func heapInUse() -> Int {
        Int(flipt_heap_current().in_use)
    }

    /// The process's resident set size in bytes, with its anonymous and file-backed parts (`VmRSS`, `RssAnon`,
    /// `RssFile` of /proc/self/status; 0 where there is none).
    static func resident() -> (total: Int, anonymous: Int, file: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0) }
        var values: [Substring: Int] = [:]
        for line in status.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { continue }
            values[fields[0]] = kilobytes * 1024
        }
        return (values["VmRSS:"] ?? 0, values["RssAnon:"] ?? 0, values["RssFile:"] ?? 0)
    }

    /// Copies /proc/self/smaps to `path` (for FLIPT_BENCH_SMAPS).
    static func copySmaps(to path: String) {
        // Read to its end: /proc files report a size of zero.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/smaps") else { return }
        _ = FileManager.default.createFile(atPath: path, contents: file.readDataToEndOfFile())
        try? file.close()
    }

    // MARK: Callgrind

    static func callgrind(_ name: String, _ options: Options) throws {
        guard let shape = try selected([name]).first else { return }
        let document = shape.document(seed: options.seed)
        blackHole(try Snapshot(document: document).flagCount)
        blackHole(callgrindLoadLoop(document, count: options.count))
        print("callgrind: shape \(shape.name), \(document.count) bytes, \(options.count) loads in callgrindLoadLoop")
    }

    @inline(never)
    static func callgrindLoadLoop(_ document: [UInt8], count: Int) -> Int {
        var sink = 0
        for _ in 0..<count { sink &+= try! Snapshot(document: document).flagCount }
        return sink
    }

    static func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }
    static func format(_ value: Double) -> String { EngineBenchmark.format(value) }
}
