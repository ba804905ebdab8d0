import FliptEngine
import FliptStore
import FliptSync
import Foundation
import Logging

/// The state behind a ``FliptClient``, shared between the evaluating threads and the background sync task.
///
/// One lock (``Locked``, a pthread mutex) guards a small struct whose main field is the snapshot in use. Evaluation
/// reads what it needs from the fast path without the lock (ClientCore+FastPath); a new snapshot is validated (by
/// the sync layer, ``SnapshotSync``) outside the lock, swapped inside it, and persisted after (ClientCore+Sync).
/// Subscribers and waiters are told outside the lock (ClientCore+Events). The file per concern: this one holds the
/// state and its making, ClientCore+Boot the first snapshot, ClientCore+Lifecycle start, offline and close.
final class ClientCore: Sendable {
    /// The snapshot in use, with its provenance and the monotonic mark its age is counted from.
    struct Served: Sendable {
        var evaluator: Evaluator
        /// The document, kept compressed once a background task has compacted it (it is read only for
        /// getSnapshot(), the rollback checks and the flag changes of the next replacement).
        var document: HeldDocument
        var source: DataSource
        var etag: String?
        var fetchedAt: Date
        var lastConfirmedAt: Date
        /// The snapshot's age at `mark`. Age now = `ageAtMark + (now − mark)` on the monotonic clock, so wall
        /// clock jumps while running change nothing.
        var ageAtMark: Duration
        var mark: ContinuousClock.Instant

        func age(at now: ContinuousClock.Instant) -> Duration {
            let elapsed = now - mark
            return ageAtMark + (elapsed > .zero ? elapsed : .zero)
        }

        /// A snapshot received or given at `now`: fetched and confirmed then, of age zero.
        init(fresh snapshot: Snapshot, document: [UInt8], source: DataSource, etag: String?, at now: Date) {
            evaluator = Evaluator(snapshot: snapshot, namespace: snapshot.namespaceKey)
            self.document = HeldDocument(document)
            self.document.compactInBackground()
            self.source = source
            self.etag = etag
            fetchedAt = now
            lastConfirmedAt = now
            ageAtMark = .zero
            mark = .now
        }

        /// A snapshot read from the cache at `now`; its age counts from when the server last confirmed it (a time
        /// in the future, after the clock was moved back, counts as age zero, never negative).
        init(stored: StoredSnapshot, snapshot: Snapshot, at now: Date) {
            evaluator = Evaluator(snapshot: snapshot, namespace: snapshot.namespaceKey)
            document = HeldDocument(stored.document)
            document.compactInBackground()
            source = .cache
            etag = stored.etag
            fetchedAt = stored.fetchedAt
            lastConfirmedAt = stored.lastConfirmedAt
            ageAtMark = .seconds(max(0, now.timeIntervalSince(stored.lastConfirmedAt)))
            mark = .now
        }
    }

    /// The client's lifecycle with its real tasks and waiters.
    typealias Lifecycle = ClientLifecycle<Task<Void, Never>, CheckedContinuation<Void, Never>>

    struct State {
        /// Under ``ErrorStrategy/fail``, whether a fetch failure makes evaluations throw.
        let failsOnFetchError: Bool
        /// The maximum age when stale snapshots are refused.
        let refusalAge: Duration?
        var served: Served? { didSet { refreshFastPath() } }
        /// What the fetches left behind: the latest failure (which the fast path reads), attempt time, cache problem.
        var progress: SyncProgress { didSet { refreshFastPath() } }
        /// Where evaluations read the fast path; ``refreshFastPath()`` publishes a new one on every change.
        let fastPaths = FastPathSlot(FastPath())
        /// Whether an operator's rollback pins the cached snapshot (`flipt-offline cache rollback`).
        var pinnedByRollback = false
        var lifecycle: Lifecycle
        var subscribers: [Int: AsyncStream<ClientEvent>.Continuation] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextID = 0

        init(failsOnFetchError: Bool, refusalAge: Duration?, offline: Bool, cacheProblem: String?) {
            self.failsOnFetchError = failsOnFetchError
            self.refusalAge = refusalAge
            self.progress = SyncProgress(cacheProblem: cacheProblem)
            self.lifecycle = Lifecycle(offline: offline)
        }

        private mutating func refreshFastPath() {
            var deadline = Int64.max
            if let refusalAge, let served {
                deadline = ClientCore.monotonicNanoseconds(at: served.mark + (refusalAge - served.ageAtMark))
            }
            fastPaths.publish(
                FastPath(
                    evaluator: served?.evaluator,
                    failure: failsOnFetchError ? progress.failure : nil,
                    staleDeadline: deadline,
                    provenance: served.map(SnapshotProvenance.init) ?? .noData
                )
            )
        }
    }

    let namespace: String
    let options: ClientOptions
    /// The sync layer: checked configuration, fetcher, loop, cache key, and the cache writes of fetch outcomes.
    let sync: SnapshotSync
    let store: SnapshotStore?
    let logger: Logger
    let state: Locked<State>
    /// The state's fast path slot, read by evaluations without the state lock.
    let fastPaths: FastPathSlot
    /// The flag fingerprints of the snapshot in use (nil until the first replacement needs them); its lock
    /// serialises replacements, so that each one's changes are computed against the snapshot it replaces.
    let fingerprints = Locked<FlagFingerprints?>(nil)
    /// Hooks, the evaluation error log and the client's metrics.
    let instrumentation: ClientInstrumentation

    /// The cache entry of this client.
    var key: SnapshotKey { sync.key }
    /// Sends the client's requests.
    var fetcher: SnapshotFetcher { sync.fetcher }
    /// The background loop.
    var loop: SyncLoop { sync.loop }

    init(namespace: String, options: ClientOptions) throws(FliptError) {
        self.namespace = namespace
        self.options = options
        self.logger = options.logger
        sync = try SnapshotSync(namespace: namespace, options: options) { (configuration) throws(SyncError) in
            if let given = options.transport { return given.base }
            return try SharedResources.transport(for: configuration, logger: options.logger)
        }
        instrumentation = ClientInstrumentation(namespace: namespace, options: options)
        store = try Self.openStore(options: options)
        var initial = State(
            failsOnFetchError: options.errorStrategy == .fail,
            refusalAge: options.cache.staleBehavior == .fail ? options.cache.maximumAge : nil,
            offline: options.startsOffline || options.isFedInProcess,
            cacheProblem: store.flatMap { $0.isReadOnly ? $0.readOnlyReason : nil }
        )
        try Self.boot(sync: sync, store: store, options: options, state: &initial)
        state = Locked(initial)
        fastPaths = initial.fastPaths
    }
}
