import Foundation

/// Where the snapshot that answered an evaluation came from, and how old it is: what a hook, a
/// ``EvaluationDetails`` value or an audit record needs to tell a fresh answer from one served offline.
///
/// The age is counted on the monotonic clock from the moment the server last sent or confirmed the snapshot, as in
/// ``ClientStatus/age``; ``age`` reads it when asked, so a value that is kept grows older with the snapshot.
public struct SnapshotProvenance: Sendable, Hashable {
    /// Where the snapshot came from: ``DataSource/network`` in this run, ``DataSource/cache`` from an earlier one,
    /// ``DataSource/seed``, or ``DataSource/none`` when there was no data.
    public let source: DataSource
    /// The ETag the server sent with the snapshot (it names the snapshot's generation on the server); nil for a
    /// seed, for no data, or when the server sent none.
    public let etag: String?
    /// When the snapshot was fetched (for a cached one, when it was first fetched; wall clock); nil without data.
    public let fetchedAt: Date?
    /// When the server last sent or confirmed the snapshot (wall clock); nil without data.
    public let lastConfirmedAt: Date?
    /// The monotonic instant the age counts from (``ClientCore/monotonicNanoseconds(at:)``): the last
    /// confirmation, moved back by the age the snapshot already had when it was loaded from the cache. An integer
    /// rather than a `ContinuousClock.Instant`, whose layout is resilient: copying this struct then costs no value
    /// witness calls, which hooks pay on every evaluation.
    let confirmedMark: Int64?

    /// No data: what evaluations see before a cached, seeded or fetched snapshot exists.
    public static var noData: SnapshotProvenance { SnapshotProvenance() }

    init(
        source: DataSource = .none,
        etag: String? = nil,
        fetchedAt: Date? = nil,
        lastConfirmedAt: Date? = nil,
        confirmedMark: Int64? = nil
    ) {
        self.source = source
        self.etag = etag
        self.fetchedAt = fetchedAt
        self.lastConfirmedAt = lastConfirmedAt
        self.confirmedMark = confirmedMark
    }

    /// The provenance of the snapshot a client serves.
    init(_ served: ClientCore.Served) {
        self.init(
            source: served.source,
            etag: served.etag,
            fetchedAt: served.fetchedAt,
            lastConfirmedAt: served.lastConfirmedAt,
            confirmedMark: ClientCore.monotonicNanoseconds(at: served.mark - served.ageAtMark)
        )
    }

    /// How long ago the server last sent or confirmed the snapshot, now; never negative, nil without data.
    public var age: Duration? { age(at: .now) }

    /// How long before `instant` the server last sent or confirmed the snapshot; never negative, nil without data.
    public func age(at instant: ContinuousClock.Instant) -> Duration? {
        guard let confirmedMark else { return nil }
        let age = ClientCore.monotonicNanoseconds(at: instant) - confirmedMark
        return .nanoseconds(max(age, 0))
    }
}
