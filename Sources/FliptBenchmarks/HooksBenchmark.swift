import Flipt
import FliptEngine
import FliptStore
import Foundation
import Metrics
import Prometheus

/// What hooks, the default-value forms and the opt-in evaluation metrics cost per evaluation, side by side in one
/// run against the same client with none of them, on the same requests (interleaved rounds, medians).
///
///     swift run -c release flipt-bench hooks [--requests N] [--rounds N] [--flags N]
///     flipt-bench hooks --callgrind none|hook|callhook|metrics|default|exporter [--evaluations N] [--flags N]
///
/// The clients boot from a cache file written for the run, so that their snapshot has an ETag as a fetched one
/// does (the provenance hooks receive then holds a string on the heap). `--callgrind FORM` runs one warm-up pass,
/// then N evaluations in `callgrindLoop` (`Tests/Scripts/callgrind-hooks.sh` counts them). The exporter's buffer holds
/// every record of a run and its writer waits an hour between writes, so that what is measured is the cost an
/// evaluation pays (making and buffering the record), not the writer thread's encoding.
enum HooksBenchmark {
    /// A hook that does nothing: every stage is the protocol's empty default.
    struct NoOpHook: EvaluationHook {}

    private struct Clients {
        let plain: FliptClient
        let hooked: FliptClient
        let counting: FliptClient
        let exporting: FliptClient
        let exporter: JSONLinesEvaluationExporter
        let directory: String

        func close() {
            plain.close()
            hooked.close()
            counting.close()
            exporting.close()
            exporter.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func run(arguments: [String]) {
        var requestCount = 2_000
        var rounds = 15
        var flagCount = 40
        var callgrindForm: String?
        var evaluations = 100_000
        var index = 0
        while index < arguments.count {
            let value = index + 1 < arguments.count ? arguments[index + 1] : nil
            switch (arguments[index], value.flatMap { Int($0) }, value) {
            case ("--requests", .some(let number), _): requestCount = number
            case ("--rounds", .some(let number), _): rounds = number
            case ("--flags", .some(let number), _): flagCount = number
            case ("--evaluations", .some(let number), _): evaluations = number
            case ("--callgrind", _, .some(let form)): callgrindForm = form
            default:
                print(
                    "usage: flipt-bench hooks [--requests N] [--rounds N] [--flags N] "
                        + "[--callgrind none|hook|callhook|metrics|default|exporter --evaluations N]"
                )
                return
            }
            index += 2
        }
        do {
            let document = GeneratedDocument.make(flagCount: flagCount, seed: 7)
            let requests = try makeRequests(document: document, count: requestCount)
            let clients = try makeClients(document: document, records: max(evaluations, requestCount * rounds) * 4)
            defer { clients.close() }
            if let callgrindForm {
                try callgrind(clients, requests, form: callgrindForm, evaluations: evaluations)
            } else {
                measure(clients, requests, rounds: rounds, flagCount: flagCount)
            }
        } catch {
            print("hooks benchmark failed: \(error)")
        }
    }

    private static func makeRequests(document: [UInt8], count: Int) throws -> [BenchmarkRequest] {
        let flags = try Evaluator(snapshot: try Snapshot(document: document), namespace: "default").listFlags()
        var random = SplitMix64(seed: 11)
        return (0..<count).map { _ in
            BenchmarkRequest.random(flag: flags[Int(random.next() % UInt64(flags.count))], using: &random)
        }
    }

    /// Four clients over one cache file holding the document with an ETag: no hook, one no-op hook, the
    /// evaluation counter reporting to a Prometheus registry, and a JSON-lines exporter holding `records` records.
    private static func makeClients(document: [UInt8], records: Int) throws -> Clients {
        let directory = NSTemporaryDirectory() + "flipt-bench-hooks-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/cache.sqlite3"
        let url = "http://127.0.0.1:9"
        let store = try SnapshotStore(path: path)
        try store.save(
            NewSnapshot(document: Data(document), etag: "\"bench-0123456789abcdef0123456789abcdef\""),
            for: SnapshotKey(url: URL(string: url)!, environment: "default", namespace: "default")
        )
        var options = ClientOptions(
            url: url,
            updateInterval: .seconds(3_600),
            errorStrategy: .fallback,
            cache: CacheOptions(location: .file(path))
        )
        let plain = try FliptClient(options: options)
        options.hooks = [NoOpHook()]
        let hooked = try FliptClient(options: options)
        options.hooks = []
        options.metrics.countsEvaluations = true
        let factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        let counting = try withMetricsFactory(factory) { try FliptClient(options: options) }
        options.metrics.countsEvaluations = false
        let exporter = try JSONLinesEvaluationExporter(
            path: directory + "/evaluations.jsonl",
            capacity: records,
            flushInterval: .seconds(3_600)
        )
        options.hooks = [exporter]
        let exporting = try FliptClient(options: options)
        return Clients(
            plain: plain,
            hooked: hooked,
            counting: counting,
            exporting: exporting,
            exporter: exporter,
            directory: directory
        )
    }

    private static func measure(_ clients: Clients, _ requests: [BenchmarkRequest], rounds: Int, flagCount: Int) {
        let forms: [(String, ([BenchmarkRequest]) -> Int)] = [
            ("no hook (evaluateVariant/evaluateBoolean)", { ShapeBenchmark.evaluateWithContexts(clients.plain, $0) }),
            ("one no-op hook in ClientOptions.hooks", { ShapeBenchmark.evaluateWithContexts(clients.hooked, $0) }),
            ("one no-op hook passed per call", { evaluateWithCallHook(clients.plain, $0) }),
            ("evaluation metrics (Prometheus)", { ShapeBenchmark.evaluateWithContexts(clients.counting, $0) }),
            ("JSONLinesEvaluationExporter (buffering)", { ShapeBenchmark.evaluateWithContexts(clients.exporting, $0) }),
            ("booleanValue/variantKey(default:), no hook", { evaluateWithDefaults(clients.plain, $0) }),
            ("…Details(default:), no hook", { evaluateWithDetails(clients.plain, $0) }),
        ]
        var samples = [[Double]](repeating: [], count: forms.count)
        for _ in 0..<rounds {
            for (index, form) in forms.enumerated() {
                samples[index].append(
                    EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) { form.1(requests) }
                )
            }
        }
        let medians = samples.map(EngineBenchmark.median)
        print(
            "Evaluation cost by form, \(flagCount) flags, \(requests.count) requests × \(rounds) interleaved rounds "
                + "(median ns per evaluation; difference against the first row)"
        )
        for (index, form) in forms.enumerated() {
            let name = form.0.padding(toLength: 46, withPad: " ", startingAt: 0)
            print(
                "  \(name) \(String(format: "%8.1f", medians[index]))   \(String(format: "%+7.1f", medians[index] - medians[0]))"
            )
        }
    }

    private static func callgrind(
        _ clients: Clients,
        _ requests: [BenchmarkRequest],
        form: String,
        evaluations: Int
    ) throws {
        let pass: ([BenchmarkRequest]) -> Int
        switch form {
        case "none": pass = { ShapeBenchmark.evaluateWithContexts(clients.plain, $0) }
        case "hook": pass = { ShapeBenchmark.evaluateWithContexts(clients.hooked, $0) }
        case "callhook": pass = { evaluateWithCallHook(clients.plain, $0) }
        case "metrics": pass = { ShapeBenchmark.evaluateWithContexts(clients.counting, $0) }
        case "default": pass = { evaluateWithDefaults(clients.plain, $0) }
        case "exporter": pass = { ShapeBenchmark.evaluateWithContexts(clients.exporting, $0) }
        default:
            throw BenchmarkFailure("--callgrind is none, hook, callhook, metrics, default or exporter, not \(form)")
        }
        var sink = pass(requests)
        sink &+= ShapeBenchmark.callgrindLoop(evaluations: evaluations, requests, pass)
        blackHole(sink)
        print("callgrind: hooks form \(form), \(evaluations) evaluations in callgrindLoop")
    }

    @inline(never)
    private static func evaluateWithCallHook(_ client: FliptClient, _ requests: [BenchmarkRequest]) -> Int {
        let hooks: [any EvaluationHook] = [NoOpHook()]
        return requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                let request = requests[index]
                switch request.kind {
                case .variant:
                    if let result = try? client.evaluateVariant(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context,
                        hooks: hooks
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? client.evaluateBoolean(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context,
                        hooks: hooks
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }

    @inline(never)
    private static func evaluateWithDefaults(_ client: FliptClient, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                let request = requests[index]
                switch request.kind {
                case .variant:
                    sink &+=
                        client.variantKey(
                            flagKey: request.flagKey,
                            entityID: request.entityID,
                            context: request.context,
                            default: "off"
                        ).utf8.count
                case .boolean:
                    sink &+=
                        client.booleanValue(
                            flagKey: request.flagKey,
                            entityID: request.entityID,
                            context: request.context,
                            default: false
                        ) ? 1 : 2
                }
            }
            return sink
        }
    }

    @inline(never)
    private static func evaluateWithDetails(_ client: FliptClient, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                let request = requests[index]
                switch request.kind {
                case .variant:
                    let details = client.variantKeyDetails(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context,
                        default: "off"
                    )
                    sink &+= details.value.utf8.count &+ (details.reason == .match ? 1 : 0)
                case .boolean:
                    let details = client.booleanValueDetails(
                        flagKey: request.flagKey,
                        entityID: request.entityID,
                        context: request.context,
                        default: false
                    )
                    sink &+= details.value ? 1 : 2
                }
            }
            return sink
        }
    }
}
