import Flipt
import FliptEngine
import Foundation

/// Measures what the public API (`FliptClient.evaluateVariant/evaluateBoolean`: request validation, reading the
/// current snapshot, the error-strategy and staleness checks, error conversion) adds to the bare engine
/// (`Evaluator`), side by side in one run, on 40- and 10,000-flag documents, for both context forms: an
/// `EvaluationContext` built once per request, and a `[String: String]` (which the engine is given wrapped in an
/// `EvaluationContext`, as the client does, so that both sides pay the same dictionary lookups).
///
///     swift run -c release flipt-bench client [--requests N] [--rounds N] [--flags N]
///
/// With `FLIPT_BENCH_PASSES=1` each measurement is one pass, for instruction counts under callgrind; each of the
/// four loops is a function of its own, so that `--toggle-collect` can select it by name.
enum ClientBenchmark {
    static func run(arguments: [String]) {
        var requestCount = 2_000
        var rounds = 15
        var flagCounts = [40, 10_000]
        var index = 0
        while index < arguments.count {
            let value = index + 1 < arguments.count ? Int(arguments[index + 1]) : nil
            switch (arguments[index], value) {
            case ("--requests", .some(let number)): requestCount = number
            case ("--rounds", .some(let number)): rounds = number
            case ("--flags", .some(let number)): flagCounts = [number]
            default:
                print("usage: flipt-bench client [--requests N] [--rounds N] [--flags N]")
                return
            }
            index += 2
        }
        print("FliptClient API against the bare engine: \(requestCount) requests × \(rounds) interleaved rounds")
        print("document      context               engine ns/eval   client ns/eval   API overhead")
        for flagCount in flagCounts {
            do {
                try measure(flagCount: flagCount, requestCount: requestCount, rounds: rounds)
            } catch {
                print("\(flagCount) flags: failed: \(error)")
            }
        }
    }

    private struct Request {
        let base: BenchmarkRequest
        let dictionary: [String: String]
    }

    private static func measure(flagCount: Int, requestCount: Int, rounds: Int) throws {
        let document = GeneratedDocument.make(flagCount: flagCount, seed: 7)
        let evaluator = Evaluator(snapshot: try Snapshot(document: document), namespace: "default")
        let flags = try evaluator.listFlags()
        var random = SplitMix64(seed: 11)
        let requests = (0..<requestCount).map { _ in
            let base = BenchmarkRequest.random(flag: flags[Int(random.next() % UInt64(flags.count))], using: &random)
            var dictionary: [String: String] = [:]
            for entry in base.context.entries { dictionary[entry.key] = entry.value }
            return Request(base: base, dictionary: dictionary)
        }
        let client = try FliptClient(
            options: ClientOptions(
                url: "http://127.0.0.1:9",
                updateInterval: .seconds(3_600),
                errorStrategy: .fallback,
                snapshot: String(decoding: document, as: UTF8.self),
                cache: CacheOptions(location: .disabled, maximumAge: .seconds(86_400))
            )
        )
        defer { client.close() }
        let bases = requests.map(\.base)
        var samples = [[Double]](repeating: [], count: 4)
        for _ in 0..<rounds {
            samples[0].append(
                EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) {
                    EngineBenchmark.evaluateAll(evaluator, bases)
                }
            )
            samples[1].append(
                EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) {
                    evaluateAllWithContexts(client, requests)
                }
            )
            samples[2].append(
                EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) {
                    engineEvaluateAllWithDictionaries(evaluator, requests)
                }
            )
            samples[3].append(
                EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) { evaluateAll(client, requests) }
            )
        }
        let medians = samples.map(EngineBenchmark.median)
        let name = "\(flagCount) flags".padding(toLength: 12, withPad: " ", startingAt: 0)
        for (form, engine, api) in [
            ("EvaluationContext ", medians[0], medians[1]), ("[String: String]  ", medians[2], medians[3]),
        ] {
            print(
                "\(name)  \(form)  \(String(format: "%14.1f", engine))   \(String(format: "%14.1f", api))   "
                    + String(format: "%+11.1f %%", (api / engine - 1) * 100)
            )
        }
    }

    /// The bare engine with each request's `[String: String]` wrapped in an `EvaluationContext`, as the client's
    /// dictionary forms do.
    @inline(never)
    private static func engineEvaluateAllWithDictionaries(_ evaluator: Evaluator, _ requests: [Request]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].base.kind {
                case .variant:
                    if let result = try? evaluator.variant(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: EvaluationContext(requests[index].dictionary)
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? evaluator.boolean(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: EvaluationContext(requests[index].dictionary)
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }

    /// Through the public API with the engine's own context type, built once per request.
    @inline(never)
    private static func evaluateAllWithContexts(_ client: FliptClient, _ requests: [Request]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].base.kind {
                case .variant:
                    if let result = try? client.evaluateVariant(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: requests[index].base.context
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? client.evaluateBoolean(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: requests[index].base.context
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }

    @inline(never)
    private static func evaluateAll(_ client: FliptClient, _ requests: [Request]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].base.kind {
                case .variant:
                    if let result = try? client.evaluateVariant(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: requests[index].dictionary
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? client.evaluateBoolean(
                        flagKey: requests[index].base.flagKey,
                        entityID: requests[index].base.entityID,
                        context: requests[index].dictionary
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }
}
