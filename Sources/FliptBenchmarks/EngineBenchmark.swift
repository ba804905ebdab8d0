// flipt-bench engine: this engine against the official Flipt engine, on the same documents and requests.
//
// The official engine is the shared library shipped in PyPI `flipt-client` (libfliptengine.so). It is loaded at
// run time with dlopen and called the way the official SDKs call it: a JSON request string in, a JSON answer
// string out, then `destroy_string`. It only loads documents from a Flipt server, so this file contains a small
// loopback HTTP responder that serves the document on 127.0.0.1.

import FliptEngine
import FliptFormats
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `flipt-bench engine`: nanoseconds per evaluation and start-up time, this engine against the official one.
enum EngineBenchmark {
    static let usage = """
        usage: flipt-bench engine --official-lib PATH [--document FILE]... [--requests N] [--rounds N]
               flipt-bench engine --official-lib PATH --shapes [--shape NAME]... [--seed N] [--requests N] [--rounds N]
               flipt-bench engine [--official-lib PATH] --callgrind NAME [--form context|dictionary|official]
                                  [--evaluations N] [--seed N] [--requests N]
               flipt-bench engine --threads N [--shape NAME]... [--seed N] [--requests N] [--rounds N]

          --official-lib PATH  the official engine's shared library, e.g.
                               .venv/lib/python3.11/site-packages/ext/linux_x86_64/libfliptengine.so
          --document FILE      a snapshot document (namespace `default`) to benchmark; repeatable.
                               Default: two generated documents, 40 flags and 10,000 flags.
          --requests N         distinct evaluation requests per document (default 2000)
          --rounds N           measured rounds; the median is reported (default 7)
          --shapes             generated workloads of many shapes (context attributes, constraint types, segments,
                               match types, rules, match and no-match paths, rollouts, distributions, 40 / 1,000 /
                               10,000 flags), through the public FliptClient API with a prebuilt EvaluationContext
                               and with a [String: String], beside the official engine's C ABI
          --shape NAME         only this shape (repeatable); an unknown name lists them all
          --seed N             the base seed of the generated shapes (default 18; printed)
          --callgrind NAME     one warm-up pass, then --evaluations N (default 100000) evaluations of shape NAME in
                               one function, callgrindLoop: instructions per evaluation are the Ir of
                                 valgrind --tool=callgrind --toggle-collect='*callgrindLoop*' flipt-bench engine …
                               divided by N (Tests/Scripts/callgrind-shape.sh does it)
          --form FORM          --callgrind through the client with a prebuilt EvaluationContext (context, the
                               default), with a [String: String] (dictionary), or the official engine (official)
          --threads N          the shapes (default issue18-40 and issue18-1000) on one client from one thread and
                               from N threads at once, rounds alternated: ns per evaluation per thread, and the
                               ratio (1.0x: the threads do not slow each other); no official engine

        Build with `swift build -c release --product flipt-bench`; debug timings mean nothing.
        """

    static func run(arguments: [String]) {
        do {
            let options = try Options(arguments: arguments)
            if let shape = options.callgrindShape {
                try ShapeBenchmark.callgrind(options, shapeName: shape)
            } else if options.threads > 0 {
                try ConcurrencyBenchmark.measure(options)
            } else if options.runsShapes {
                try ShapeBenchmark.measure(options)
            } else {
                try measure(options)
            }
        } catch let failure as BenchmarkFailure {
            print("flipt-bench engine: \(failure.message)")
            exit(1)
        } catch {
            print("flipt-bench engine: \(error)")
            exit(1)
        }
    }

    struct Options {
        var officialLibrary = ""
        var documents: [String] = []
        var requestCount = 2000
        var rounds = 7
        var runsShapes = false
        var shapes: [String] = []
        var seed: UInt64 = 18
        var callgrindShape: String?
        var form = "context"
        var evaluations = 100_000
        var threads = 0

        init(arguments: [String]) throws {
            var reader = BenchmarkArguments(arguments, usage: usage)
            while let argument = reader.next() {
                switch argument {
                case "--official-lib": officialLibrary = try reader.value(argument)
                case "--document": documents.append(try reader.value(argument))
                case "--requests": requestCount = try reader.number(argument)
                case "--rounds": rounds = try reader.number(argument)
                case "--shapes": runsShapes = true
                case "--shape":
                    runsShapes = true
                    shapes.append(try reader.value(argument))
                case "--seed": seed = UInt64(try reader.number(argument))
                case "--callgrind": callgrindShape = try reader.value(argument)
                case "--form": form = try reader.value(argument)
                case "--evaluations": evaluations = try reader.number(argument)
                case "--threads": threads = try reader.number(argument)
                case "-h", "--help":
                    print(usage)
                    exit(0)
                default: throw BenchmarkFailure("unknown argument \(argument)\n\n\(usage)")
                }
            }
            guard !officialLibrary.isEmpty || (callgrindShape != nil && form != "official") || threads > 0 else {
                throw BenchmarkFailure("--official-lib is required\n\n\(usage)")
            }
        }
    }

    /// One benchmark input: a document and the requests evaluated against it.
    struct Workload {
        let name: String
        let document: [UInt8]
        let requests: [BenchmarkRequest]
    }

    static func measure(_ options: Options) throws {
        // The musl build of the official engine aborts when RUST_BACKTRACE is set and it formats an error.
        unsetenv("RUST_BACKTRACE")
        let official = try OfficialEngine(libraryPath: options.officialLibrary)
        var workloads: [Workload] = []
        if options.documents.isEmpty {
            for flagCount in [40, 10_000] {
                let document = GeneratedDocument.make(flagCount: flagCount, seed: UInt64(flagCount))
                workloads.append(try workload(name: "generated, \(flagCount) flags", document: document, options))
            }
        } else {
            for path in options.documents {
                let name = path.split(separator: "/").last.map(String.init) ?? path
                workloads.append(try workload(name: name, document: try readFile(path), options))
            }
        }

        print("flipt-bench engine: \(options.rounds) rounds, median; ns per evaluation (lower is better)")
        let widths = [24, 7, 10, 9, 13, 12, 9, 14, 9]
        print(
            row(
                [
                    "document", "flags", "bytes", "requests", "this engine", "official", "speed-up",
                    "official+SDK", "speed-up",
                ],
                widths
            )
        )
        var startups: [(Workload, Duration, Duration)] = []
        var agreements: [String] = []
        for workload in workloads {
            let server = try LoopbackDocumentServer(body: workload.document)
            let snapshot = try Snapshot(document: workload.document)
            let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
            let engine = try official.start(url: server.url)
            agreements.append(try checkSameAnswers(evaluator, official, engine, workload))
            for request in workload.requests where official.callAsTheSwiftSDKDoes(engine, request) == 0 {
                throw BenchmarkFailure(
                    "\(workload.name): the SDK call path got no successful answer for \(request.flagKey)"
                )
            }
            let count = workload.requests.count
            var ours: [Double] = []
            var theirs: [Double] = []
            var theirsThroughSDK: [Double] = []
            for round in 0..<options.rounds {
                // Alternate which engine goes first, so neither always runs on a warmer machine.
                if round % 2 == 0 {
                    ours.append(nanosecondsPerEvaluation(count: count) { evaluateAll(evaluator, workload.requests) })
                }
                theirs.append(
                    nanosecondsPerEvaluation(count: count) { official.evaluateAll(engine, workload.requests) }
                )
                if round % 2 == 1 {
                    ours.append(nanosecondsPerEvaluation(count: count) { evaluateAll(evaluator, workload.requests) })
                }
                theirsThroughSDK.append(
                    nanosecondsPerEvaluation(count: count) {
                        official.evaluateAllAsTheSwiftSDKDoes(engine, workload.requests)
                    }
                )
            }
            official.stop(engine)
            let (o, t, sdk) = (median(ours), median(theirs), median(theirsThroughSDK))
            let cells = [
                workload.name, "\(snapshot.flagCount)", "\(workload.document.count)", "\(count)",
                format(o) + " ns", format(t) + " ns", format(t / o) + "x", format(sdk) + " ns", format(sdk / o) + "x",
            ]
            print(row(cells, widths))
            let ourStartup = try startupOfThisEngine(workload, options)
            let officialStartup = try official.startup(
                url: server.url,
                request: workload.requests[0],
                rounds: options.rounds
            )
            startups.append((workload, ourStartup, officialStartup))
            server.close()
        }
        print(
            """
              official: the C ABI with each request's JSON prepared ahead (the engine alone).
              official+SDK: the C ABI called as the official Swift SDK (flipt-client-swift) calls it: JSONEncoder for
              the request, a C copy of it, the call, String(cString:), destroy_string, JSONDecoder for the answer.
            """
        )
        for agreement in agreements { print("  " + agreement) }
        print("")
        print("start-up: this engine = decode + index + first evaluation; official = init (HTTP fetch + parse) + first")
        let startupWidths = [24, 13, 12, 9]
        print(row(["document", "this engine", "official", "speed-up"], startupWidths))
        for (workload, ours, theirs) in startups {
            let cells = [workload.name, milliseconds(ours), milliseconds(theirs), format(theirs / ours) + "x"]
            print(row(cells, startupWidths))
        }
    }

    static func workload(name: String, document: [UInt8], _ options: Options) throws -> Workload {
        let snapshot = try Snapshot(document: document)
        let flags = try Evaluator(snapshot: snapshot, namespace: "default").listFlags()
        guard !flags.isEmpty else { throw BenchmarkFailure("\(name): the document has no flags") }
        var random = SplitMix64(seed: UInt64(document.count))
        let requests = (0..<options.requestCount).map { _ in
            BenchmarkRequest.random(flag: flags[Int(random.next() % UInt64(flags.count))], using: &random)
        }
        return Workload(name: name, document: document, requests: requests)
    }

    /// Fails unless both engines evaluate every request successfully and agree on its outcome, so that both
    /// do the same work and no error path is benchmarked.
    static func checkSameAnswers(
        _ evaluator: Evaluator,
        _ official: OfficialEngine,
        _ engine: UnsafeMutableRawPointer,
        _ workload: Workload
    ) throws -> String {
        var matches = 0
        for request in workload.requests {
            let answer = official.answer(engine, request)
            let expected: [String]
            do {
                switch request.kind {
                case .variant:
                    let result = try evaluator.variant(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context
                    )
                    expected = [
                        #""match":\#(result.isMatch)"#, #""reason":"\#(result.reason.rawValue)""#,
                        #""variant_key":"# + BenchmarkRequest.jsonString(result.variantKey),
                    ]
                    matches += result.isMatch ? 1 : 0
                case .boolean:
                    let result = try evaluator.boolean(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context
                    )
                    expected = [#""enabled":\#(result.isEnabled)"#, #""reason":"\#(result.reason.rawValue)""#]
                    matches += result.reason == .match ? 1 : 0
                }
            } catch {
                throw BenchmarkFailure("this engine did not evaluate \(request.flagKey): \(error)")
            }
            guard answer.hasPrefix(#"{"status":"success""#), expected.allSatisfy(answer.contains) else {
                throw BenchmarkFailure("\(workload.name): the engines disagree on \(request.flagKey): \(answer)")
            }
        }
        return "\(workload.name): both engines agree on all \(workload.requests.count) answers (\(matches) MATCH)"
    }

    /// Evaluates every request once with this engine; returns a value that depends on every answer.
    @inline(never)
    static func evaluateAll(_ evaluator: Evaluator, _ requests: [BenchmarkRequest]) -> Int {
        // Requests are read in place (not copied out of the array, which retains their strings), for both engines,
        // so that the loop adds as little as it can to either.
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].kind {
                case .variant:
                    if let result = try? evaluator.variant(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].context
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? evaluator.boolean(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].context
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }

    /// Passes per measurement from `FLIPT_BENCH_PASSES`, for instruction counts under callgrind that do not depend
    /// on how fast the machine is; nil (the default) measures for about 100 ms.
    static let fixedPasses: Int? = ProcessInfo.processInfo.environment["FLIPT_BENCH_PASSES"].flatMap { Int($0) }

    /// Runs `pass` (`count` evaluations) repeatedly for about 100 ms (or `FLIPT_BENCH_PASSES` times); returns
    /// nanoseconds per evaluation.
    static func nanosecondsPerEvaluation(count: Int, _ pass: () -> Int) -> Double {
        let clock = ContinuousClock()
        var passes = 0
        var sink = 0
        let start = clock.now
        var elapsed = Duration.zero
        while fixedPasses.map({ passes < $0 }) ?? (elapsed < .milliseconds(100)) {
            sink &+= pass()
            passes += 1
            elapsed = clock.now - start
        }
        blackHole(sink)
        return elapsed / .nanoseconds(1) / Double(passes * count)
    }

    static func startupOfThisEngine(_ workload: Workload, _ options: Options) throws -> Duration {
        let clock = ContinuousClock()
        var samples: [Duration] = []
        let request = workload.requests[0]
        for _ in 0..<options.rounds {
            let start = clock.now
            let snapshot = try Snapshot(document: workload.document)
            let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
            blackHole(evaluateAll(evaluator, [request]))
            samples.append(clock.now - start)
        }
        return samples.sorted()[samples.count / 2]
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func format(_ value: Double) -> String {
        value >= 100 ? "\(Int(value.rounded()))" : "\((value * 10).rounded() / 10)"
    }

    static func milliseconds(_ duration: Duration) -> String {
        format(duration / .milliseconds(1)) + " ms"
    }

    static func row(_ cells: [String], _ widths: [Int]) -> String {
        zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BenchmarkFailure("cannot read \(path)")
        }
        return Array(data)
    }
}

/// Keeps the optimiser from discarding a computed value.
@inline(never)
func blackHole(_ value: Int) {
    if value == 0x5EED_F11B_7 { print("") }
}

/// A failure that ends the benchmark with a message.
struct BenchmarkFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One evaluation request, prepared for both engines (the official one gets its JSON text ahead of time).
struct BenchmarkRequest {
    enum Kind { case variant, boolean }
    let kind: Kind
    let flagKey: String
    let entityID: String
    let context: EvaluationContext
    /// The same context as an application holds it, for the official SDK's call path.
    let dictionary: [String: String]
    /// The official engine's request JSON, NUL-terminated.
    let officialJSON: [CChar]

    static func random(flag: FlagSummary, using random: inout SplitMix64) -> BenchmarkRequest {
        let plans = ["free", "pro", "enterprise", "team"]
        let countries = ["us", "de", "fr", "jp", "br", "in"]
        var pairs: [(String, String)] = [
            ("plan", plans[Int(random.next() % 4)]),
            ("age", String(random.next() % 90)),
            ("country", countries[Int(random.next() % 6)]),
        ]
        if random.next() % 2 == 0 { pairs.append(("beta", random.next() % 2 == 0 ? "true" : "false")) }
        if random.next() % 2 == 0 { pairs.append(("signup", "2024-0\(1 + random.next() % 9)-15T10:00:00Z")) }
        let entityID = "user-\(random.next() % 1_000_000)"
        let contextJSON = pairs.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",")
        let json =
            "{\"namespace_key\":\"default\",\"flag_key\":\(jsonString(flag.key)),"
            + "\"entity_id\":\"\(entityID)\",\"context\":{\(contextJSON)}}"
        return BenchmarkRequest(
            kind: flag.type == .boolean ? .boolean : .variant,
            flagKey: flag.key,
            entityID: entityID,
            context: EvaluationContext(pairs: pairs),
            dictionary: Dictionary(pairs, uniquingKeysWith: { $1 }),
            officialJSON: Array(json.utf8CString)
        )
    }

    static func jsonString(_ text: String) -> String {
        JSONString.quoted(text)
    }
}

/// The official engine's C ABI, loaded with dlopen.
struct OfficialEngine {
    typealias Initialize = @convention(c) (UnsafePointer<CChar>?) -> UnsafeMutableRawPointer?
    typealias Evaluate =
        @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>?
    typealias Destroy = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias DestroyString = @convention(c) (UnsafeMutablePointer<CChar>?) -> Void

    let initialize: Initialize
    let evaluateVariant: Evaluate
    let evaluateBoolean: Evaluate
    let destroy: Destroy
    let destroyString: DestroyString

    init(libraryPath: String) throws {
        guard let handle = dlopen(libraryPath, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw BenchmarkFailure("cannot load the official engine at \(libraryPath): \(reason)")
        }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let address = dlsym(handle, name) else {
                throw BenchmarkFailure("\(libraryPath) has no symbol \(name); is it libfliptengine from flipt-client?")
            }
            return unsafeBitCast(address, to: type)
        }
        initialize = try symbol("initialize_engine", as: Initialize.self)
        evaluateVariant = try symbol("evaluate_variant", as: Evaluate.self)
        evaluateBoolean = try symbol("evaluate_boolean", as: Evaluate.self)
        destroy = try symbol("destroy_engine", as: Destroy.self)
        destroyString = try symbol("destroy_string", as: DestroyString.self)
    }

    /// Creates an engine that fetches its document from `url` (blocks until the first fetch is done).
    func start(url: String) throws -> UnsafeMutableRawPointer {
        let options =
            "{\"url\":\"\(url)\",\"namespace\":\"default\",\"fetch_mode\":\"polling\",\"error_strategy\":\"fail\"}"
        guard let engine = initialize(options) else { throw BenchmarkFailure("initialize_engine returned null") }
        return engine
    }

    func stop(_ engine: UnsafeMutableRawPointer) { destroy(engine) }

    /// Calls the engine for one request and frees the answer; returns a byte of the answer (`"status":"s…`).
    @inline(__always)
    func call(_ engine: UnsafeMutableRawPointer, _ request: BenchmarkRequest) -> Int {
        request.officialJSON.withUnsafeBufferPointer { json in
            let function = request.kind == .variant ? evaluateVariant : evaluateBoolean
            guard let answer = function(engine, json.baseAddress) else { return 0 }
            let byte = Int(answer[11])
            destroyString(answer)
            return byte
        }
    }

    /// The request as the official Swift SDK encodes it.
    private struct SDKRequest: Encodable {
        let flag_key: String
        let entity_id: String
        let context: [String: String]
    }

    /// The answer envelope the official Swift SDK decodes, with the result fields it reads.
    private struct SDKAnswer: Decodable {
        struct Result: Decodable {
            let flag_key: String
            let match: Bool?
            let enabled: Bool?
            let reason: String
            let variant_key: String?
            let variant_attachment: String?
            let segment_keys: [String]?
            let request_duration_millis: Double
            let timestamp: String
        }
        let status: String
        let result: Result?
        let error_message: String?
    }

    /// Calls the engine for one request the way the official Swift SDK does on every evaluation; returns a value
    /// that depends on the decoded answer.
    @inline(never)
    func callAsTheSwiftSDKDoes(_ engine: UnsafeMutableRawPointer, _ request: BenchmarkRequest) -> Int {
        let body = SDKRequest(flag_key: request.flagKey, entity_id: request.entityID, context: request.dictionary)
        guard let data = try? JSONEncoder().encode(body), let text = String(data: data, encoding: .utf8) else {
            return 0
        }
        let copy = strdup(text)
        defer { free(copy) }
        let function = request.kind == .variant ? evaluateVariant : evaluateBoolean
        guard let pointer = function(engine, copy) else { return 0 }
        let answer = String(cString: pointer)
        destroyString(pointer)
        guard let decoded = try? JSONDecoder().decode(SDKAnswer.self, from: Data(answer.utf8)),
            decoded.status == "success", let result = decoded.result
        else { return 0 }
        return result.reason.utf8.count &+ (result.match == true || result.enabled == true ? 1 : 0)
    }

    func evaluateAllAsTheSwiftSDKDoes(_ engine: UnsafeMutableRawPointer, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices { sink &+= callAsTheSwiftSDKDoes(engine, requests[index]) }
            return sink
        }
    }

    /// The engine's whole answer to one request.
    func answer(_ engine: UnsafeMutableRawPointer, _ request: BenchmarkRequest) -> String {
        request.officialJSON.withUnsafeBufferPointer { json in
            let function = request.kind == .variant ? evaluateVariant : evaluateBoolean
            guard let pointer = function(engine, json.baseAddress) else { return "null" }
            defer { destroyString(pointer) }
            return String(cString: pointer)
        }
    }

    func evaluateAll(_ engine: UnsafeMutableRawPointer, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices { sink &+= call(engine, requests[index]) }
            return sink
        }
    }

    /// Median time from `initialize_engine` until the first evaluation succeeds.
    func startup(url: String, request: BenchmarkRequest, rounds: Int) throws -> Duration {
        let clock = ContinuousClock()
        var samples: [Duration] = []
        for _ in 0..<rounds {
            let start = clock.now
            let engine = try self.start(url: url)
            // `{"status":"success"…`: byte 11 is the `s` of success (`f` of failure before the first fetch).
            while call(engine, request) != Int(UInt8(ascii: "s")) {
                guard clock.now - start < .seconds(30) else {
                    throw BenchmarkFailure("the official engine did not answer successfully within 30 s of start-up")
                }
            }
            let elapsed = clock.now - start
            stop(engine)
            samples.append(elapsed)
        }
        return samples.sorted()[samples.count / 2]
    }
}

/// Answers every HTTP GET on 127.0.0.1 with one document and an ETag (`304` to a matching `If-None-Match`).
final class LoopbackDocumentServer: Sendable {
    let port: UInt16
    private let listener: Int32

    var url: String { "http://127.0.0.1:\(port)" }

    init(body: [UInt8]) throws {
        #if canImport(Glibc)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let listener = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard listener >= 0 else { throw BenchmarkFailure("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(listener, generic, length) == 0 && listen(listener, 16) == 0
                    && getsockname(listener, generic, &length) == 0
            }
        }
        guard bound else { throw BenchmarkFailure("cannot listen on 127.0.0.1: errno \(errno)") }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        let etag = "\"bench-\(body.count)\""
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nEtag: \(etag)\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let full = Array(head.utf8) + body
        let notModified = Array("HTTP/1.1 304 Not Modified\r\nEtag: \(etag)\r\nConnection: close\r\n\r\n".utf8)
        let thread = Thread {
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                var one: Int32 = 1
                setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                let request = Self.readHead(connection)
                let conditional = request.lowercased().contains("if-none-match: \(etag.lowercased())")
                Self.writeAll(connection, conditional ? notModified : full)
                closeDescriptor(connection)
            }
        }
        thread.start()
    }

    /// Stops accepting connections.
    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        closeDescriptor(listener)
    }

    private static func readHead(_ connection: Int32) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                received.removeSubrange(end.upperBound...)
                break
            }
        }
        return String(decoding: received, as: UTF8.self)
    }

    private static func writeAll(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            #if canImport(Glibc)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            let written = bytes[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, flags) }
            if written <= 0 { return }
            offset += written
        }
    }
}

private func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}

/// A deterministic random number generator (SplitMix64), so generated documents are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Benchmark documents: half variant flags (1–3 rules of 1–2 segments, 1–3 even distributions, a default
/// variant), half boolean flags (a segment rollout, then a threshold). Segments have 1–3 constraints drawn from
/// string, number, string-list, datetime and boolean ones on the properties `BenchmarkRequest` sets.
/// Deterministic per seed.
enum GeneratedDocument {
    static func make(flagCount: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
        let plans = ["free", "pro", "enterprise", "team"]
        let countries = [#"\"us\""#, #"\"de\""#, #"\"fr\""#, #"\"jp\""#, #"\"br\""#, #"\"in\""#]
        func constraint(_ type: String, _ property: String, _ op: String, _ value: String) -> String {
            #"{"type":"\#(type)_CONSTRAINT_COMPARISON_TYPE","property":"\#(property)","#
                + #""operator":"\#(op)","value":"\#(value)"}"#
        }
        func segment() -> String {
            let constraints = [
                constraint("STRING", "plan", "eq", pick(plans)),
                constraint("NUMBER", "age", pick(["gt", "lte"]), String(below(80))),
                constraint("STRING", "country", "isoneof", "[\(pick(countries)),\(pick(countries))]"),
                constraint("DATETIME", "signup", "gt", "2024-01-01T00:00:00Z"),
                constraint("BOOLEAN", "beta", "true", ""),
            ]
            let chosen = (0...below(3)).map { _ in pick(constraints) }.joined(separator: ",")
            let match = pick(["ALL_SEGMENT_MATCH_TYPE", "ANY_SEGMENT_MATCH_TYPE"])
            return #"{"key":"segment-\#(below(50))","name":"","matchType":"\#(match)","constraints":[\#(chosen)]}"#
        }
        var flags: [String] = []
        flags.reserveCapacity(flagCount)
        for index in 0..<flagCount {
            let key = "flag-\(index)"
            if index % 2 == 0 {
                let rules = (1...(1 + below(3))).map { rank -> String in
                    let variants = 1 + below(3)
                    let distributions = (0..<variants).map {
                        #"{"variantKey":"v\#($0)","variantAttachment":"","rollout":\#(100.0 / Double(variants))}"#
                    }.joined(separator: ",")
                    let segments = (0...below(2)).map { _ in segment() }.joined(separator: ",")
                    let op = pick(["OR_SEGMENT_OPERATOR", "AND_SEGMENT_OPERATOR"])
                    return #"{"rank":\#(rank),"segmentOperator":"\#(op)","segments":[\#(segments)],"#
                        + #""distributions":[\#(distributions)]}"#
                }.joined(separator: ",")
                flags.append(
                    #"{"key":"\#(key)","name":"\#(key)","description":"","enabled":true,"type":"VARIANT_FLAG_TYPE","#
                        + #""rules":[\#(rules)],"rollouts":[],"defaultVariant":{"id":"\#(key)/v0","key":"v0"}}"#
                )
            } else {
                let rollouts =
                    #"{"segment":{"value":true,"segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\#(segment())]}},"#
                    + #"{"threshold":{"percentage":\#(below(101)),"value":true}}"#
                flags.append(
                    #"{"key":"\#(key)","name":"\#(key)","description":"","enabled":true,"type":"BOOLEAN_FLAG_TYPE","#
                        + #""rules":[],"rollouts":[\#(rollouts)]}"#
                )
            }
        }
        let digest = String(random.next(), radix: 16)
        let document =
            #"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))],"digest":"\#(digest)"}"#
        return Array(document.utf8)
    }
}
