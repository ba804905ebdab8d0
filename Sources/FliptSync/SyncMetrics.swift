import Metrics
import Synchronization

/// The sync's metrics (swift-metrics), for one namespace: every fetch outcome by result and status, how long
/// polls take, and the bytes of the documents received.
///
/// Reported to `MetricsSystem.factory` as it is when the ``SyncLoop`` is created (an application's bootstrapped
/// backend, or a task-local factory). The library never bootstraps one: with no backend nothing is created and nothing is
/// recorded.
///
/// - `flipt_sync_fetches_total{namespace, result, status}`: `result` is `updated` (a new snapshot, polled or
///   streamed), `not_modified` (a `304`) or `failed` (nothing applied); `status` the HTTP status, or `none` when
///   no status was received (network, timeout, a bad stream line).
/// - `flipt_sync_fetch_duration_seconds{namespace}`: a timer of each poll or stream connection, retries included.
/// - `flipt_sync_received_bytes_total{namespace}`: the (decoded) bytes of every new document.
/// - `flipt_sync_failures_total{namespace, error}`: failed fetches by kind (``SyncError/errorClass``: `network`,
///   `timeout`, `http_503`, `auth_401`, `invalid_document`, …), which `status` alone cannot tell apart.
final class SyncMetrics: Sendable {
    /// The counters and timer of one namespace, created once; counters per outcome are created on first use.
    private struct Key: Hashable {
        var result: String
        var status: String
    }

    private let namespace: String
    private let factory: any MetricsFactory
    private let fetches = Mutex<[Key: Counter]>([:])
    private let failures = Mutex<[String: Counter]>([:])
    private let duration: Timer
    private let receivedBytes: Counter

    /// Metrics reported to `MetricsSystem.factory`, or nil when no backend is bootstrapped.
    static func current(namespace: String) -> SyncMetrics? {
        let factory = MetricsSystem.factory
        if factory is NOOPMetricsHandler { return nil }
        return SyncMetrics(namespace: namespace, factory: factory)
    }

    private init(namespace: String, factory: any MetricsFactory) {
        self.namespace = namespace
        self.factory = factory
        let dimensions = [("namespace", namespace)]
        duration = Timer(label: "flipt_sync_fetch_duration_seconds", dimensions: dimensions, factory: factory)
        receivedBytes = Counter(label: "flipt_sync_received_bytes_total", dimensions: dimensions, factory: factory)
    }

    /// Counts one event of the sync loop.
    func record(_ event: SyncLoop.Event, timing: SyncLoop.Timing) {
        switch event {
        case .updated(let fetched):
            count(result: "updated", status: String(fetched.status))
            receivedBytes.increment(by: fetched.document.count)
            // A stream message has no request of its own to time.
            if fetched.source != .stream { duration.record(duration: timing.duration) }
        case .unchanged:
            count(result: "not_modified", status: "304")
            duration.record(duration: timing.duration)
        case .failed(let error):
            count(result: "failed", status: error.httpStatus.map(String.init) ?? "none")
            countFailure(kind: error.errorClass)
            if timing.duration > .zero { duration.record(duration: timing.duration) }
        case .streamConnected, .streamEnded:
            break
        }
    }

    private func countFailure(kind: String) {
        let counter = failures.withLock { counters in
            if let counter = counters[kind] { return counter }
            let counter = Counter(
                label: "flipt_sync_failures_total",
                dimensions: [("namespace", namespace), ("error", kind)],
                factory: factory
            )
            counters[kind] = counter
            return counter
        }
        counter.increment()
    }

    private func count(result: String, status: String) {
        let key = Key(result: result, status: status)
        let counter = fetches.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "flipt_sync_fetches_total",
                dimensions: [("namespace", namespace), ("result", result), ("status", status)],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
