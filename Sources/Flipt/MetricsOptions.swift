/// What a ``FliptClient`` reports to swift-metrics beyond its fetches, in ``ClientOptions/metrics``.
///
/// The client reports to the swift-metrics backend in force where it is created (the application's bootstrapped
/// one, or a task-local factory); the library never bootstraps one, and with none nothing is created or recorded.
/// Always reported with a backend: the sync's fetches (`flipt_sync_fetches_total`, `flipt_sync_failures_total`,
/// `flipt_sync_fetch_duration_seconds`, `flipt_sync_received_bytes_total`), the snapshot's age and staleness
/// (`flipt_snapshot_age_seconds`, `flipt_snapshot_stale`) and the evaluations answered with the caller's default
/// (`flipt_evaluation_defaults_total`). Opt-in, because it costs time on every evaluation: evaluations by flag and
/// reason (`flipt_evaluations_total`). The "Hooks and metrics" article lists every metric with its dimensions.
public struct MetricsOptions: Sendable, Hashable {
    /// Whether to count every evaluation in `flipt_evaluations_total{namespace, flag, reason}` (default false).
    /// Costs a counter lookup and increment per evaluation, and turns on the hook machinery (see the article for
    /// the measured cost).
    public var countsEvaluations: Bool
    /// How often the snapshot age and staleness gauges are refreshed between fetches (default 10 s).
    public var gaugeInterval: Duration

    /// Creates metrics options; every parameter has the default described on its property.
    public init(countsEvaluations: Bool = false, gaugeInterval: Duration = .seconds(10)) {
        self.countsEvaluations = countsEvaluations
        self.gaugeInterval = gaugeInterval
    }
}
