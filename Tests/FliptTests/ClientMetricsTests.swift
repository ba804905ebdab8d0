import Flipt
import FliptTestSupport
import Foundation
import Metrics
import MetricsTestKit
import Testing

/// A `FliptClient`'s sync metrics go to the factory in force where it is created (here a task-local test backend;
/// an application bootstraps one), although its sync runs in a task of its own.
@Suite("Client metrics", .timeLimit(.minutes(1)))
struct ClientMetricsTests {
    @Test("fetches of a client are counted by namespace, result and status")
    func fetchesAreCounted() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(namespace: "shop"), namespace: "shop")
            let metrics = TestMetrics()
            let options = testOptions(url: server.baseURL, cache: nil, updateInterval: .milliseconds(50))
            let client = try withMetricsFactory(metrics) { try FliptClient(namespace: "shop", options: options) }
            try await client.waitUntilReady(timeout: .seconds(20))
            let confirmed = await eventually {
                metrics.counters(
                    label: "flipt_sync_fetches_total",
                    dimensions: [("namespace", "shop"), ("result", "not_modified"), ("status", "304")]
                ).first.map { $0.totalValue >= 2 } ?? false
            }
            #expect(confirmed)
            await client.shutdown()
            let updated = try metrics.expectCounter(
                "flipt_sync_fetches_total",
                [("namespace", "shop"), ("result", "updated"), ("status", "200")]
            )
            #expect(updated.totalValue == 1)
            let requests = server.requests(to: .snapshot).count
            let counted = metrics.counters(label: "flipt_sync_fetches_total").reduce(0) { $0 + $1.totalValue }
            // Each request the server saw was counted, but for one that the shutdown may have cancelled.
            #expect(counted <= Int64(requests) && counted >= Int64(requests) - 1, "\(counted) of \(requests)")
        }
    }
}
