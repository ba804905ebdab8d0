import Flipt
import FliptTestSupport
import Foundation
import InMemoryTracing
import Metrics
import MetricsTestKit
import Testing
import Tracing

@Suite("Client metrics and traces", .timeLimit(.minutes(1)))
struct ObservabilityTests {
    @Test("evaluations are counted by flag and reason when asked, and not otherwise")
    func evaluationCounts() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let metrics = TestMetrics()
            var options = testOptions(url: server.baseURL, cache: nil)
            let silent = try withMetricsFactory(metrics) { try FliptClient(options: options) }
            options.metrics.countsEvaluations = true
            let counting = try withMetricsFactory(metrics) { try FliptClient(namespace: "default", options: options) }
            try await silent.waitUntilReady(timeout: .seconds(20))
            try await counting.waitUntilReady(timeout: .seconds(20))

            _ = try silent.evaluateVariant(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"])
            #expect(metrics.counters(label: "flipt_evaluations_total").isEmpty)

            for _ in 0..<3 {
                _ = try counting.evaluateVariant(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"])
            }
            _ = try counting.evaluateVariant(flagKey: "flag0", entityID: "u")
            _ = counting.booleanValue(flagKey: "flag1", entityID: "u", context: ["fizz": "buzz"], default: false)
            _ = counting.booleanValue(flagKey: "missing", entityID: "u", default: false)
            func count(_ flag: String, _ reason: String) -> Int64 {
                metrics.counterTotal(
                    label: "flipt_evaluations_total",
                    dimensions: [("namespace", "default"), ("flag", flag), ("reason", reason)]
                )
            }
            #expect(count("flag0", "match") == 3)
            #expect(count("flag0", "default") == 1)
            #expect(count("flag1", "match") == 1)
            #expect(count("missing", "error") == 1)
            #expect(metrics.counterTotal(label: "flipt_evaluations_total") == 6)
            await silent.shutdown()
            await counting.shutdown()
        }
    }

    @Test("the snapshot age and staleness gauges follow the snapshot, and failures are counted by kind")
    func snapshotGauges() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let metrics = TestMetrics()
            // A maximum age well above the 100 ms poll: on a busy machine a poll can come late, and a snapshot that
            // went stale before the failures start would make the rest of the test check nothing.
            var options = testOptions(url: server.baseURL, cache: nil, maximumAge: .seconds(2))
            options.metrics.gaugeInterval = .milliseconds(50)
            let client = try withMetricsFactory(metrics) { try FliptClient(namespace: "default", options: options) }
            try await client.waitUntilReady(timeout: .seconds(20))
            let dimensions = [("namespace", "default")]
            // The first report can come before the first snapshot (staleness 0, no age): wait for an age.
            #expect(
                await eventually {
                    (try? metrics.expectGauge("flipt_snapshot_age_seconds", dimensions))?.lastValue != nil
                }
            )
            let age = try metrics.expectGauge("flipt_snapshot_age_seconds", dimensions)
            #expect(try metrics.expectGauge("flipt_snapshot_stale", dimensions).lastValue == 0)
            #expect((age.lastValue ?? -1) >= 0 && (age.lastValue ?? 99) < 600)

            // The server fails from now on: the snapshot grows old, then stale.
            server.enqueue(.respond(status: 503), times: 10_000)
            let stale = try metrics.expectGauge("flipt_snapshot_stale", dimensions)
            #expect(await eventually { stale.lastValue == 1 })
            #expect((age.lastValue ?? 0) > 2)
            #expect(
                metrics.counterTotal(
                    label: "flipt_sync_failures_total",
                    dimensions: dimensions + [("error", "http_503")]
                )
                    > 0
            )
            server.clearFaults()
            #expect(await eventually { stale.lastValue == 0 })
            await client.shutdown()
        }
    }

    @Test("without a metrics backend no gauge task runs and nothing is recorded")
    func noBackend() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            var options = testOptions(url: server.baseURL, cache: nil)
            options.metrics.countsEvaluations = true
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(20))
            // The opt-in needs a backend: without one, evaluations take the plain path and still answer.
            #expect(
                client.variantKey(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"], default: "x")
                    == "variant1"
            )
            await client.shutdown()
        }
    }

    @Test("each poll is a flipt.sync.fetch span with the namespace, the outcome, the status and the bytes")
    func fetchSpans() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(namespace: "shop", revision: 1), namespace: "shop")
            let tracer = InMemoryTracer()
            let client = try withTracer(tracer) {
                try FliptClient(namespace: "shop", options: testOptions(url: server.baseURL, cache: nil))
            }
            try await client.waitUntilReady(timeout: .seconds(20))
            #expect(
                await eventually { tracer.finishedSpans.filter { $0.operationName == "flipt.sync.fetch" }.count >= 2 }
            )
            server.enqueue(.respond(status: 503), times: 8)
            #expect(
                await eventually {
                    tracer.finishedSpans.contains {
                        $0.operationName == "flipt.sync.fetch" && $0.status?.code == .error
                    }
                }
            )
            await client.shutdown()

            let all = tracer.finishedSpans
            let spans = all.filter { $0.operationName == "flipt.sync.fetch" }
            #expect(spans.allSatisfy { $0.kind == .client })
            // The HTTP client's own spans (async-http-client traces with the tracer in force when it was made) nest
            // under the fetch's span.
            let fetchIDs = Set(spans.map(\.spanID))
            let others = all.filter { $0.operationName != "flipt.sync.fetch" }
            #expect(
                others.allSatisfy { $0.parentSpanID.map(fetchIDs.contains) == true },
                "\(others.map(\.operationName))"
            )
            let first = try #require(spans.first)
            #expect(first.attributes["flipt.namespace"]?.toSpanAttribute() == "shop")
            #expect(first.attributes["flipt.result"]?.toSpanAttribute() == "updated")
            #expect(first.attributes["http.response.status_code"]?.toSpanAttribute() == 200)
            let bytes = FixtureDocument.bytes(namespace: "shop", revision: 1).count
            #expect(first.attributes["flipt.snapshot.bytes"]?.toSpanAttribute() == .int64(Int64(bytes)))
            #expect(spans.contains { $0.attributes["flipt.result"]?.toSpanAttribute() == "not_modified" })
            let failed = try #require(spans.first { $0.status?.code == .error })
            #expect(failed.attributes["error.type"]?.toSpanAttribute() == "http_503")
            #expect(failed.attributes["http.response.status_code"]?.toSpanAttribute() == 503)
            #expect(!failed.errors.isEmpty)
        }
    }
}
