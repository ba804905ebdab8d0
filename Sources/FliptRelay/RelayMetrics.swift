import Foundation
import Metrics
import Synchronization

/// The relay's metrics (swift-metrics), reported to `MetricsSystem.factory` as it is when the server is created.
///
/// The library never bootstraps a backend: with none, ``RelayServer`` creates no `RelayMetrics` and records
/// nothing. Metric objects are made once, or on their first use, never per request; an answer costs two atomic
/// loads and two counter increments.
///
/// - `flipt_relay_requests_total{route, status}`: answers by route (`v1_snapshot`, `v2_snapshot`, `v2_stream`,
///   `health`, `other`) and HTTP status; a stream counts once, when it opens. The share of `304`s is
///   `status="304"` over all snapshot answers.
/// - `flipt_relay_sent_body_bytes_total{route}`: body bytes written (documents, stream messages, error bodies).
/// - `flipt_relay_refused_connections_total`: connections answered `503` past the connection limit.
/// - `flipt_relay_open_connections`, `flipt_relay_open_streams`: gauges, set by ``update(openConnections:openStreams:snapshots:now:)``.
/// - `flipt_relay_snapshot_age_seconds{namespace, environment}`: seconds since the upstream server last sent or
///   confirmed each served snapshot (snapshots from document files, whose age is unknown, have none), set by
///   ``update(openConnections:openStreams:snapshots:now:)``.
final class RelayMetrics: Sendable {
    /// The route label of an answer.
    enum Route: Int, CaseIterable, Sendable {
        case v1Snapshot, v2Snapshot, v2Stream, health, other

        var label: String {
            switch self {
            case .v1Snapshot: "v1_snapshot"
            case .v2Snapshot: "v2_snapshot"
            case .v2Stream: "v2_stream"
            case .health: "health"
            case .other: "other"
            }
        }
    }

    /// The statuses the relay answers with, each with a counter slot per route; any other gets a counter made
    /// under a lock on first use.
    static let statuses: [UInt] = [200, 304, 400, 401, 403, 404, 405, 408, 413, 414, 431, 503, 505]

    private let factory: any MetricsFactory
    /// `Route.allCases.count × statuses.count` slots, route-major.
    private let requestSlots: [LazyCounter]
    private let otherRequests = Mutex<[String: Counter]>([:])
    private let sentBytes: [LazyCounter]
    let refusedConnections: Counter
    private let openConnections: Gauge
    private let openStreams: Gauge
    private let ages = Mutex<[String: Gauge]>([:])

    /// Metrics reported to `MetricsSystem.factory`, or nil when no backend is bootstrapped.
    static func current() -> RelayMetrics? {
        let factory = MetricsSystem.factory
        if factory is NOOPMetricsHandler { return nil }
        return RelayMetrics(factory: factory)
    }

    private init(factory: any MetricsFactory) {
        self.factory = factory
        var slots: [LazyCounter] = []
        for route in Route.allCases {
            for status in Self.statuses {
                slots.append(
                    LazyCounter(
                        label: "flipt_relay_requests_total",
                        dimensions: [("route", route.label), ("status", String(status))],
                        factory: factory
                    )
                )
            }
        }
        requestSlots = slots
        sentBytes = Route.allCases.map {
            LazyCounter(label: "flipt_relay_sent_body_bytes_total", dimensions: [("route", $0.label)], factory: factory)
        }
        refusedConnections = Counter(label: "flipt_relay_refused_connections_total", factory: factory)
        openConnections = Gauge(label: "flipt_relay_open_connections", factory: factory)
        openStreams = Gauge(label: "flipt_relay_open_streams", factory: factory)
    }

    /// Counts one answer (or a stream opening) and the body bytes it sends.
    func recordAnswer(route: Route, status: UInt, bodyBytes: Int) {
        if let index = Self.statusIndex(status) {
            requestSlots[route.rawValue * Self.statuses.count + index].counter.increment()
        } else {
            countOther(route: route, status: status)
        }
        if bodyBytes > 0 { sentBytes[route.rawValue].counter.increment(by: bodyBytes) }
    }

    /// Counts body bytes sent outside an answer (a stream message).
    func recordSent(route: Route, bodyBytes: Int) {
        sentBytes[route.rawValue].counter.increment(by: bodyBytes)
    }

    @inline(__always)
    private static func statusIndex(_ status: UInt) -> Int? {
        switch status {
        case 200: 0
        case 304: 1
        case 400: 2
        case 401: 3
        case 403: 4
        case 404: 5
        case 405: 6
        case 408: 7
        case 413: 8
        case 414: 9
        case 431: 10
        case 503: 11
        case 505: 12
        default: nil
        }
    }

    private func countOther(route: Route, status: UInt) {
        let key = "\(route.label) \(status)"
        let counter = otherRequests.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "flipt_relay_requests_total",
                dimensions: [("route", route.label), ("status", String(status))],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// Sets the gauges: open connections and streams, and the age of each served snapshot whose confirmation
    /// time is known. The age gauges of snapshots no longer served are removed.
    func update(openConnections: Int, openStreams: Int, snapshots: [ServedSnapshot], now: Date) {
        self.openConnections.record(openConnections)
        self.openStreams.record(openStreams)
        ages.withLock { gauges in
            var seen = Set<String>()
            for snapshot in snapshots {
                guard let confirmed = snapshot.lastConfirmedAt else { continue }
                let key = "\(snapshot.environment)/\(snapshot.namespace)"
                seen.insert(key)
                let gauge =
                    gauges[key]
                    ?? Gauge(
                        label: "flipt_relay_snapshot_age_seconds",
                        dimensions: [("namespace", snapshot.namespace), ("environment", snapshot.environment)],
                        factory: factory
                    )
                gauges[key] = gauge
                gauge.record(max(0, now.timeIntervalSince(confirmed)))
            }
            for (key, gauge) in gauges where !seen.contains(key) {
                gauge.destroy()
                gauges[key] = nil
            }
        }
    }
}

/// A counter made on its first use, then read without a lock.
final class LazyCounter: Sendable {
    private let reference = AtomicLazyReference<Counter>()
    private let label: String
    private let dimensions: [(String, String)]
    private let factory: any MetricsFactory

    init(label: String, dimensions: [(String, String)], factory: any MetricsFactory) {
        self.label = label
        self.dimensions = dimensions
        self.factory = factory
    }

    /// The counter; made on the first call (two racing first calls keep one, and the backend returns the same
    /// series for both).
    var counter: Counter {
        if let counter = reference.load() { return counter }
        return reference.storeIfNil(Counter(label: label, dimensions: dimensions, factory: factory))
    }
}

extension RelayRoute {
    /// The route label of answers to this route.
    var metricsRoute: RelayMetrics.Route {
        switch self {
        case .snapshot(_, let environment): environment == nil ? .v1Snapshot : .v2Snapshot
        case .stream: .v2Stream
        case .health: .health
        case .unknownAPI, .unknown: .other
        }
    }
}
