import FliptSync
import FliptTestSupport
import Foundation
import Metrics
import MetricsTestKit
import Testing

/// The sync loop's metrics, recorded into swift-metrics' test backend bound to the task (never bootstrapped).
@Suite("Sync metrics", .timeLimit(.minutes(1)))
struct SyncMetricsTests {
    static func dimensions(_ result: String, _ status: String) -> [(String, String)] {
        [("namespace", "default"), ("result", result), ("status", status)]
    }

    @Test("each outcome is counted by result and status; polls are timed; document bytes are counted")
    func pollingOutcomes() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.respond(status: 404, body: Array("{\"code\":5,\"message\":\"not found\"}".utf8)))
            let fetcher = try makeFetcher(server)
            let metrics = TestMetrics()
            let log = await withMetricsFactory(metrics) {
                await runLoop(fetcher) { $0.unchanged.count >= 2 }
            }
            #expect(log.failures.count == 1)
            #expect(log.updates.count == 1)
            let failed = try metrics.expectCounter("flipt_sync_fetches_total", Self.dimensions("failed", "404"))
            #expect(failed.totalValue == 1)
            let updated = try metrics.expectCounter("flipt_sync_fetches_total", Self.dimensions("updated", "200"))
            #expect(updated.totalValue == 1)
            let confirmed = try metrics.expectCounter(
                "flipt_sync_fetches_total",
                Self.dimensions("not_modified", "304")
            )
            #expect(confirmed.totalValue == Int64(log.unchanged.count))
            let bytes = try metrics.expectCounter("flipt_sync_received_bytes_total", [("namespace", "default")])
            #expect(bytes.totalValue == Int64(FixtureDocument.bytes().count))
            let timer = try metrics.expectTimer("flipt_sync_fetch_duration_seconds", [("namespace", "default")])
            #expect(timer.values.count == 2 + log.unchanged.count)
            #expect(timer.values.allSatisfy { $0 > 0 })
        }
    }

    @Test("a network failure has status none; without a backend nothing is recorded anywhere")
    func networkFailure() async throws {
        let port = try TestFliptServer.unusedPort()
        var configuration = SyncConfiguration(url: URL(string: "http://127.0.0.1:\(port)")!)
        configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
        let fetcher = try SnapshotFetcher(configuration: configuration, transport: sharedTransport)
        let metrics = TestMetrics()
        let log = await withMetricsFactory(metrics) {
            await runLoop(fetcher, clock: RecordingClock()) { $0.failures.count >= 2 }
        }
        let failed = try metrics.expectCounter("flipt_sync_fetches_total", Self.dimensions("failed", "none"))
        #expect(failed.totalValue == Int64(log.failures.count))
        #expect(metrics.counters(label: "flipt_sync_fetches_total").count == 1)

        // The same loop outside the task-local factory reports to the global one: nothing in this backend.
        metrics.reset()
        _ = await runLoop(fetcher, clock: RecordingClock()) { $0.failures.count >= 1 }
        #expect(metrics.counters.isEmpty)
    }
}
