import Flipt
import Foundation
import Synchronization

/// `flipt-bench engine --threads N`: the same evaluations on one client from one thread and from N threads at once,
/// rounds alternated, as nanoseconds per evaluation per thread. On a machine with N free cores, N threads that
/// share nothing would each take as long as one thread alone; what they share (cache lines every evaluation
/// writes, such as a reader count or a reference count) makes each slower.
enum ConcurrencyBenchmark {
    static func measure(_ options: EngineBenchmark.Options) throws {
        let names = options.shapes.isEmpty ? ["issue18-40", "issue18-1000"] : options.shapes
        let threads = options.threads
        print(
            "flipt-bench engine --threads \(threads): seed \(options.seed), \(options.requestCount) requests per shape, "
                + "\(options.rounds) alternated rounds, median ns per evaluation per thread"
        )
        print("  FliptClient.evaluateVariant/evaluateBoolean with a prebuilt EvaluationContext, one client shared")
        let widths = [20, 10, 12, 8]
        print(EngineBenchmark.row(["shape", "1 thread", "\(threads) threads", "ratio"], widths))
        for shape in try ShapeBenchmark.selected(names) {
            let prepared = try ShapeBenchmark.prepare(shape, baseSeed: options.seed, requestCount: options.requestCount)
            let client = try ShapeBenchmark.client(prepared.document)
            defer { client.close() }
            let requests = prepared.requests
            // Passes per thread and round: about 100 ms of one thread's work.
            let single = EngineBenchmark.nanosecondsPerEvaluation(count: requests.count) {
                ShapeBenchmark.evaluateWithContexts(client, requests)
            }
            let passes = max(1, Int(100_000_000 / (single * Double(requests.count))))
            var alone: [Double] = []
            var together: [Double] = []
            for _ in 0..<options.rounds {
                alone.append(run(threads: 1, passes: passes, client, requests))
                together.append(run(threads: threads, passes: passes, client, requests))
            }
            let (one, many) = (EngineBenchmark.median(alone), EngineBenchmark.median(together))
            let format = EngineBenchmark.format
            print(EngineBenchmark.row([shape.name, format(one), format(many), format(many / one) + "x"], widths))
        }
        print(
            "  on \(ProcessInfo.processInfo.activeProcessorCount) processors; ratio 1.0x: threads do not slow each other"
        )
    }

    /// Nanoseconds per evaluation per thread, `threads` threads each making `passes` passes over `requests` at once.
    private static func run(
        threads: Int,
        passes: Int,
        _ client: FliptClient,
        _ requests: [BenchmarkRequest]
    )
        -> Double
    {
        // The threads start together, released by a semaphore rather than a spin: under a real-time scheduling
        // policy (`chrt -f`) a spinning thread never gives its core back.
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let finished = DispatchGroup()
        let elapsed = Mutex<[Duration]>([])
        for _ in 0..<threads {
            finished.enter()
            Thread.detachNewThread {
                ready.signal()
                go.wait()
                let start = ContinuousClock.now
                var sink = 0
                for _ in 0..<passes { sink &+= ShapeBenchmark.evaluateWithContexts(client, requests) }
                let time = ContinuousClock.now - start
                blackHole(sink)
                elapsed.withLock { $0.append(time) }
                finished.leave()
            }
        }
        for _ in 0..<threads { ready.wait() }
        for _ in 0..<threads { go.signal() }
        finished.wait()
        let times = elapsed.withLock { $0 }
        let mean = times.reduce(Duration.zero, +) / times.count
        return mean / .nanoseconds(1) / Double(passes * requests.count)
    }
}
