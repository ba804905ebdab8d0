import FliptTestSupport
import Foundation
import Metrics
import MetricsTestKit
import Synchronization
import Testing

@testable import FliptRelay

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The relay's metrics, recorded into swift-metrics' test backend bound to the task that creates the server (never
/// bootstrapped), through real sockets on 127.0.0.1; and the `/metrics` listener.
@Suite("Relay metrics", .timeLimit(.minutes(1)))
struct MetricsTests {
    static func requests(_ metrics: TestMetrics, _ route: String, _ status: Int) -> Int64 {
        metrics.counters(label: "flipt_relay_requests_total", dimensions: [("route", route), ("status", "\(status)")])
            .reduce(0) { $0 + $1.totalValue }
    }

    static func gauge(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) throws -> Double {
        try #require(try metrics.expectGauge(label, dimensions).lastValue)
    }

    @Test("requests by route and status, body bytes, open connections and streams, snapshot age per namespace")
    func answersAreCounted() async throws {
        let confirmed = Date().addingTimeInterval(-30)
        let served = ServedSnapshot(
            namespace: "default",
            environment: "default",
            document: RelayFixtures.document(),
            etag: "e1",
            origin: "test",
            lastConfirmedAt: confirmed
        )
        let other = RelayFixtures.served(namespace: "other")
        let metrics = TestMetrics()
        let catalog = SnapshotCatalog(snapshots: [served, other])
        try await withMetricsFactory(metrics) {
            try await RelayFixtures.withServer(catalog: catalog) { server, port in
                #expect(server.metrics != nil)
                let client = try RawHTTPClient(port: port)
                var bodyBytes = 0
                for (path, headers, status) in [
                    ("/internal/v1/evaluation/snapshot/namespace/default", [String](), 200),
                    ("/internal/v1/evaluation/snapshot/namespace/default", ["If-None-Match: e1"], 304),
                    ("/internal/v1/evaluation/snapshot/namespace/default", ["If-None-Match: e1"], 304),
                    ("/client/v2/environments/default/namespaces/default/snapshot", [], 200),
                    ("/internal/v1/evaluation/snapshot/namespace/missing", [], 404),
                    ("/health", [], 200),
                    ("/elsewhere", [], 404),
                ] {
                    try client.get(path, headers: headers)
                    let response = try client.readResponse()
                    #expect(response.status == status, "\(path)")
                    if path.hasPrefix("/internal") { bodyBytes += response.body.count }
                }
                try client.send("DELETE /health HTTP/1.1\r\nHost: test\r\n\r\n")
                #expect(try client.readResponse().status == 405)

                #expect(Self.requests(metrics, "v1_snapshot", 200) == 1)
                #expect(Self.requests(metrics, "v1_snapshot", 304) == 2)
                #expect(Self.requests(metrics, "v1_snapshot", 404) == 1)
                #expect(Self.requests(metrics, "v2_snapshot", 200) == 1)
                #expect(Self.requests(metrics, "health", 200) == 1)
                #expect(Self.requests(metrics, "health", 405) == 1)
                #expect(Self.requests(metrics, "other", 404) == 1)
                let sent = try metrics.expectCounter("flipt_relay_sent_body_bytes_total", [("route", "v1_snapshot")])
                #expect(sent.totalValue == Int64(bodyBytes))

                let stream = try RawHTTPClient(port: port)
                try stream.get("/client/v2/environments/default/namespaces/default/stream")
                #expect(try stream.readHead().status == 200)
                let message = try stream.readChunk()
                #expect(Self.requests(metrics, "v2_stream", 200) == 1)
                let streamed = try metrics.expectCounter("flipt_relay_sent_body_bytes_total", [("route", "v2_stream")])
                #expect(streamed.totalValue == Int64(message.count))

                server.updateMetrics()
                #expect(try Self.gauge(metrics, "flipt_relay_open_streams") == 1)
                #expect(try Self.gauge(metrics, "flipt_relay_open_connections") == 2)
                let age = try Self.gauge(
                    metrics,
                    "flipt_relay_snapshot_age_seconds",
                    [("namespace", "default"), ("environment", "default")]
                )
                #expect(age >= 30 && age < 3600, "\(age)")
                // A snapshot whose confirmation time is unknown has no age.
                #expect(
                    metrics.recorders(
                        label: "flipt_relay_snapshot_age_seconds",
                        dimensions: [("namespace", "other"), ("environment", "default")]
                    ).isEmpty
                )

                shutdown(stream.fd, Int32(SHUT_RDWR))
                let closed = await eventually(timeout: .seconds(10)) {
                    server.updateMetrics()
                    return (try? Self.gauge(metrics, "flipt_relay_open_streams")) == 0
                }
                #expect(closed)
            }
        }
    }

    @Test("a status outside the fixed table gets its own series; the age of a snapshot no longer served is removed")
    func otherStatusesAndVanishedSnapshots() throws {
        let metrics = TestMetrics()
        let relayMetrics = try #require(withMetricsFactory(metrics) { RelayMetrics.current() })
        relayMetrics.recordAnswer(route: .other, status: 418, bodyBytes: 5)
        relayMetrics.recordAnswer(route: .other, status: 418, bodyBytes: 0)
        #expect(
            try metrics.expectCounter("flipt_relay_requests_total", [("route", "other"), ("status", "418")]).totalValue
                == 2
        )
        #expect(try metrics.expectCounter("flipt_relay_sent_body_bytes_total", [("route", "other")]).totalValue == 5)

        let snapshot = ServedSnapshot(
            namespace: "gone",
            environment: "default",
            document: RelayFixtures.document(namespace: "gone"),
            origin: "test",
            lastConfirmedAt: Date(timeIntervalSince1970: 1_000)
        )
        let dimensions = [("namespace", "gone"), ("environment", "default")]
        relayMetrics.update(
            openConnections: 3,
            openStreams: 1,
            snapshots: [snapshot],
            now: Date(timeIntervalSince1970: 1_042)
        )
        #expect(try metrics.expectGauge("flipt_relay_snapshot_age_seconds", dimensions).lastValue == 42)
        relayMetrics.update(openConnections: 0, openStreams: 0, snapshots: [], now: Date(timeIntervalSince1970: 1_050))
        #expect(metrics.recorders(label: "flipt_relay_snapshot_age_seconds", dimensions: dimensions).isEmpty)
        #expect(try metrics.expectGauge("flipt_relay_open_connections").lastValue == 0)
    }

    @Test("a server created without a metrics backend records nothing")
    func noBackend() async throws {
        let metrics = TestMetrics()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [RelayFixtures.served()])) {
            server,
            port in
            #expect(server.metrics == nil)
            try withMetricsFactory(metrics) {
                let client = try RawHTTPClient(port: port)
                try client.get("/health")
                #expect(try client.readResponse().status == 200)
                server.updateMetrics()
            }
            #expect(metrics.counters.isEmpty)
            #expect(metrics.recorders.isEmpty)
        }
    }

    @Test("the metrics listener answers GET /metrics with the rendered text, 404 elsewhere, 405 to other methods")
    func listener() async throws {
        let renders = RenderCount()
        let server = MetricsServer(
            configuration: MetricsServer.Configuration(address: ListenAddress(host: "127.0.0.1", port: 0)) {
                Array("metric_total \(renders.next())\n".utf8)
            }
        )
        let bound = try await server.start()
        defer { server.stop() }
        let client = try RawHTTPClient(port: bound.port)
        try client.get("/metrics")
        let first = try client.readResponse()
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(first.text == "metric_total 1\n")
        try client.get("/metrics?name=x")
        #expect(try client.readResponse().text == "metric_total 2\n")
        try client.get("/")
        #expect(try client.readResponse().status == 404)
        try client.get("/metrics/extra")
        #expect(try client.readResponse().status == 404)
        try client.send("POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
        #expect(try client.readResponse().status == 405)
        try client.send("HEAD /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        let head = try client.readResponse(isHead: true)
        #expect(head.status == 200)
        #expect(client.isClosedByPeer())
        #expect(renders.count == 3)

        server.stop()
        let refused = await eventually(timeout: .seconds(10)) {
            (try? RawHTTPClient(port: bound.port)) == nil
        }
        #expect(refused)
    }
}

extension MetricsTests {
    @Test("the metrics listener closes a connection whose request passes 32 KiB; scrapes on one connection go on")
    func listenerRequestBudget() async throws {
        let server = MetricsServer(
            configuration: MetricsServer.Configuration(address: ListenAddress(host: "127.0.0.1", port: 0)) {
                Array("metric_total 1\n".utf8)
            }
        )
        let bound = try await server.start()
        defer { server.stop() }
        // A head padded with white space before a value, which the decoder does not count, or a long body.
        let padded = try RawHTTPClient(port: bound.port)
        try? padded.send(
            "GET /metrics HTTP/1.1\r\nHost: t\r\nX:" + String(repeating: " ", count: 100_000) + "y\r\n\r\n"
        )
        #expect(padded.readToEnd().isEmpty)
        #expect(padded.isClosedByPeer())
        let body = try RawHTTPClient(port: bound.port)
        try? body.send(
            "GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 40000\r\n\r\n" + String(repeating: "b", count: 40_000)
        )
        #expect(body.readToEnd().isEmpty)
        // A scraper that keeps its connection sends far more than 32 KiB over its life, one request at a time.
        let scraper = try RawHTTPClient(port: bound.port)
        let request = "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: " + String(repeating: "p", count: 1000) + "\r\n\r\n"
        for _ in 0..<100 {
            try scraper.send(request)
            #expect(try scraper.readResponse().status == 200)
        }
    }
}

/// Counts the renders of the listener test.
private final class RenderCount: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }

    var count: Int { value.withLock { $0 } }
}
