import FliptEngine
import FliptStore
import FliptSync
import Foundation
import Logging
import Synchronization

/// The state behind a ``FliptClient``, shared between the evaluating threads and the background sync task.
///
/// One lock (``Locked``, a pthread mutex) guards a small struct whose main field is the snapshot in use. Evaluation copies what it needs
/// out under the lock and evaluates outside it; a new snapshot is validated (by the sync layer) outside the lock,
/// swapped inside it, and persisted after. Subscribers are told outside the lock.
final class ClientCore: Sendable {
    /// The snapshot in use, with its provenance and the monotonic mark its age is counted from.
    struct Served: Sendable {
        var evaluator: Evaluator
        var document: [UInt8]
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
    }

    /// A task waiting in ``FliptClient/waitUntilReady(timeout:)``.
    enum Waiter {
        case waiting(CheckedContinuation<Void, Never>)
        case cancelled
    }

    /// What an evaluation needs, rebuilt whenever the snapshot or the fetch state changes and published in a
    /// ``FastPathSlot``, so that an evaluation reads it without a lock.
    final class FastPath: Sendable {
        /// The evaluator of the snapshot in use; without data, one over an empty snapshot that is never used.
        /// Not optional, so that an evaluation borrows it from this object instead of copying it out.
        let evaluator: Evaluator
        /// Whether there is a snapshot to evaluate.
        let hasData: Bool
        /// The error evaluations throw: the latest fetch failed and the strategy is ``ErrorStrategy/fail``.
        let failure: FliptError?
        /// With ``StaleBehavior/fail``: when the snapshot in use passes the maximum age, in
        /// ``ClientCore/monotonicNanoseconds()``; `Int64.max` for never.
        let staleDeadline: Int64
        /// Data, no failure and no deadline: an evaluation needs no other check.
        let isPlain: Bool
        /// Where the snapshot in use came from, for hooks and evaluation details.
        let provenance: SnapshotProvenance

        init(
            evaluator: Evaluator? = nil,
            failure: FliptError? = nil,
            staleDeadline: Int64 = .max,
            provenance: SnapshotProvenance = .noData
        ) {
            self.evaluator = evaluator ?? Self.placeholder
            self.hasData = evaluator != nil
            self.failure = failure
            self.staleDeadline = staleDeadline
            self.isPlain = evaluator != nil && failure == nil && staleDeadline == .max
            self.provenance = provenance
        }

        private static let placeholder = Evaluator(snapshot: Snapshot.empty, namespace: "")
    }

    /// The monotonic clock (`ContinuousClock`) in nanoseconds, as a plain integer that is cheap to compare.
    @inline(__always)
    static func monotonicNanoseconds(at instant: ContinuousClock.Instant = .now) -> Int64 {
        let components = (instant - Self.monotonicOrigin).components
        return components.seconds &* 1_000_000_000 &+ components.attoseconds / 1_000_000_000
    }

    private static let monotonicOrigin = ContinuousClock.now

    struct State {
        /// Under ``ErrorStrategy/fail``, whether a fetch failure makes evaluations throw.
        let failsOnFetchError: Bool
        /// The maximum age when stale snapshots are refused.
        let refusalAge: Duration?
        var served: Served? { didSet { refreshFastPath() } }
        /// The latest fetch error; nil once a fetch succeeds.
        var fetchFailure: FliptError? { didSet { refreshFastPath() } }
        /// Where evaluations read the fast path; ``refreshFastPath()`` publishes a new one on every change.
        let fastPaths = FastPathSlot(FastPath())
        var lastAttemptAt: Date?
        var hasFetched = false
        var cacheProblem: String?
        /// Whether an operator's rollback pins the cached snapshot (`flipt-offline cache rollback`).
        var pinnedByRollback = false
        var staleReported = false
        var closed = false
        /// Whether ``start()`` ran (the sync runs, or ran until ``close()``).
        var started = false
        /// Tasks in ``FliptClient/run()`` waiting for ``close()``.
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        /// The staleness watch (with a maximum age); it runs online and offline.
        var syncTask: Task<Void, Never>?
        /// The sync loop, or after ``FliptClient/setOffline(_:)`` the cancelled one (a new loop waits for it to end).
        var loopTask: Task<Void, Never>?
        var isOffline = false
        var subscribers: [Int: AsyncStream<ClientEvent>.Continuation] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextID = 0

        init(failsOnFetchError: Bool, refusalAge: Duration?) {
            self.failsOnFetchError = failsOnFetchError
            self.refusalAge = refusalAge
        }

        private mutating func refreshFastPath() {
            var deadline = Int64.max
            if let refusalAge, let served {
                deadline = ClientCore.monotonicNanoseconds(at: served.mark + (refusalAge - served.ageAtMark))
            }
            fastPaths.publish(
                FastPath(
                    evaluator: served?.evaluator,
                    failure: failsOnFetchError ? fetchFailure : nil,
                    staleDeadline: deadline,
                    provenance: served.map(SnapshotProvenance.init) ?? .noData
                )
            )
        }
    }

    let namespace: String
    let options: ClientOptions
    let key: SnapshotKey
    let store: SnapshotStore?
    let fetcher: SnapshotFetcher
    /// The background loop; made here so that its metrics go to the factory in force where the client is created.
    let loop: SyncLoop
    let logger: Logger
    let state: Locked<State>
    /// The state's fast path slot, read by evaluations without the state lock.
    let fastPaths: FastPathSlot
    /// The flag fingerprints of the snapshot in use (nil until the first replacement needs them); its lock
    /// serialises replacements, so that each one's changes are computed against the snapshot it replaces.
    let fingerprints = Locked<FlagFingerprints?>(nil)
    /// Hooks, the evaluation error log and the client's metrics.
    let instrumentation: ClientInstrumentation

    init(namespace: String, options: ClientOptions) throws(FliptError) {
        self.namespace = namespace
        self.options = options
        self.logger = options.logger
        let configuration = try Self.syncConfiguration(namespace: namespace, options: options)
        do throws(SyncError) {
            let transport: any HTTPTransport
            if let given = options.transport {
                transport = given.base
            } else {
                transport = try SharedResources.transport(for: configuration, logger: options.logger)
            }
            fetcher = try SnapshotFetcher(configuration: configuration, transport: transport, logger: options.logger)
        } catch {
            throw FliptError(.invalidConfiguration, error.message, underlying: error)
        }
        loop = SyncLoop(fetcher: fetcher, logger: options.logger)
        instrumentation = ClientInstrumentation(namespace: namespace, options: options)
        key = SnapshotKey(
            url: configuration.url,
            environment: options.environment,
            namespace: namespace,
            reference: options.reference
        )
        store = try Self.openStore(options: options)
        var initial = State(
            failsOnFetchError: options.errorStrategy == .fail,
            refusalAge: options.cache.staleBehavior == .fail ? options.cache.maximumAge : nil
        )
        if let store, store.isReadOnly {
            initial.cacheProblem = store.readOnlyReason
        }
        initial.served = try Self.bootSnapshot(
            namespace: namespace,
            key: key,
            store: store,
            options: options,
            state: &initial
        )
        state = Locked(initial)
        fastPaths = initial.fastPaths
    }

    // MARK: Configuration

    private static func syncConfiguration(
        namespace: String,
        options: ClientOptions
    ) throws(FliptError) -> SyncConfiguration {
        guard !namespace.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FliptError(.invalidConfiguration, "The namespace is empty; pass a namespace key such as \"default\".")
        }
        let url = try options.validatedURL()
        guard options.cache.historyDepth >= 1 else {
            throw FliptError(.invalidConfiguration, "The cache history depth must be at least 1.")
        }
        if let maximumAge = options.cache.maximumAge, maximumAge <= .zero {
            throw FliptError(.invalidConfiguration, "The maximum age must be positive; use nil for no limit.")
        }
        return SyncConfiguration(
            url: url,
            namespace: namespace,
            environment: options.environment,
            reference: options.reference,
            authentication: options.authentication,
            requestTimeout: options.requestTimeout,
            updateInterval: options.updateInterval,
            jitter: options.updateJitter,
            fetchMode: options.fetchMode,
            tls: options.tls,
            retryPolicy: options.retryPolicy,
            reconnectPolicy: options.reconnectPolicy
        )
    }

    private static func openStore(options: ClientOptions) throws(FliptError) -> SnapshotStore? {
        guard let path = options.cache.resolvedPath else { return nil }
        do {
            try CacheOptions.createDirectory(forCacheFile: path)
        } catch {
            throw FliptError(
                .invalidConfiguration,
                "Cannot create the cache directory \((path as NSString).deletingLastPathComponent): "
                    + "\(error.localizedDescription). Set ClientOptions.cache.location to a writable path, or .disabled."
            )
        }
        do {
            let store = try SharedResources.store(
                path: path,
                options: SnapshotStore.Options(generationsKept: options.cache.historyDepth, logger: options.logger)
            )
            if let recovery = store.recovery {
                options.logger.error(
                    "The cache file was damaged and was moved aside; a fresh one was created",
                    metadata: [
                        "reason": "\(recovery.reason)", "moved_to": "\(recovery.movedAsideTo)",
                        "salvaged_snapshots": "\(recovery.salvagedSnapshots)",
                    ]
                )
            }
            if let reason = store.readOnlyReason {
                options.logger.warning(
                    "The cache is read-only; cached snapshots are served but new ones are kept in memory only",
                    metadata: ["reason": "\(reason)"]
                )
            }
            return store
        } catch {
            throw FliptError(
                .invalidConfiguration,
                "The cache file \(path) cannot be used: \(error). Fix or remove the file, or set "
                    + "ClientOptions.cache.location to another path or .disabled.",
                underlying: error
            )
        }
    }

    // MARK: Boot

    /// The snapshot to serve before any network traffic: the last good cached one (falling back to older
    /// generations if the newest no longer decodes), else the seed, else none.
    private static func bootSnapshot(
        namespace: String,
        key: SnapshotKey,
        store: SnapshotStore?,
        options: ClientOptions,
        state: inout State
    ) throws(FliptError) -> Served? {
        let now = options.wallClock()
        if let store {
            if let cached = loadCached(namespace: namespace, key: key, store: store, logger: options.logger) {
                // A confirmation time in the future (the clock was moved back) counts as age zero, never negative.
                let age = max(0, now.timeIntervalSince(cached.lastConfirmedAt))
                return Served(
                    evaluator: cached.evaluator,
                    document: cached.document,
                    source: .cache,
                    etag: cached.etag,
                    fetchedAt: cached.fetchedAt,
                    lastConfirmedAt: cached.lastConfirmedAt,
                    ageAtMark: .seconds(age),
                    mark: .now
                )
            }
        }
        guard let seed = options.snapshot else { return nil }
        let document: [UInt8]
        do {
            document = try SnapshotString.document(from: seed.utf8)
        } catch {
            throw FliptError(
                .invalidSnapshot,
                "The seed snapshot in ClientOptions.snapshot is not usable: \(error). Pass a string from "
                    + "getSnapshot() or `flipt-offline cache export`, or a snapshot document as JSON."
            )
        }
        let snapshot: Snapshot
        do {
            snapshot = try Snapshot(document: document)
        } catch {
            throw FliptError(
                .invalidSnapshot,
                "The seed snapshot in ClientOptions.snapshot is not a valid snapshot document (\(error)). Pass a "
                    + "string from getSnapshot() or a snapshot document as JSON.",
                underlying: error
            )
        }
        guard snapshot.namespaceKey == namespace else {
            throw FliptError(
                .invalidSnapshot,
                "The seed snapshot is of namespace \"\(snapshot.namespaceKey)\", but the client is for \"\(namespace)\"."
            )
        }
        if let store, !store.isReadOnly {
            do {
                try store.save(
                    NewSnapshot(document: Data(document), etag: nil, fetchedAt: now, serverDate: nil, source: .seed),
                    for: key
                )
            } catch {
                state.cacheProblem = "\(error)"
                options.logger.warning("Could not save the seed snapshot in the cache", metadata: ["error": "\(error)"])
            }
        }
        return Served(
            evaluator: Evaluator(snapshot: snapshot, namespace: namespace),
            document: document,
            source: .seed,
            etag: nil,
            fetchedAt: now,
            lastConfirmedAt: now,
            ageAtMark: .zero,
            mark: .now
        )
    }

    private struct Cached {
        var evaluator: Evaluator
        var document: [UInt8]
        var etag: String?
        var fetchedAt: Date
        var lastConfirmedAt: Date
    }

    private static func loadCached(
        namespace: String,
        key: SnapshotKey,
        store: SnapshotStore,
        logger: Logger
    ) -> Cached? {
        do {
            guard let lastGood = try store.lastGood(for: key) else { return nil }
            if let cached = decode(lastGood, namespace: namespace, logger: logger) { return cached }
            // Only when the last good generation no longer decodes (say, after a downgrade) are older ones read.
            for older in try store.history(for: key) where older.generation != lastGood.generation {
                guard let stored = try store.snapshot(for: key, generation: older.generation),
                    let cached = decode(stored, namespace: namespace, logger: logger)
                else { continue }
                logger.warning(
                    "The newest cached snapshot could not be used; serving an older generation",
                    metadata: ["generation": "\(stored.generation)"]
                )
                return cached
            }
        } catch {
            logger.error("Could not read the cache; starting without cached data", metadata: ["error": "\(error)"])
        }
        return nil
    }

    private static func decode(_ stored: StoredSnapshot, namespace: String, logger: Logger) -> Cached? {
        let document = [UInt8](stored.document)
        do {
            let snapshot = try Snapshot(document: document)
            guard snapshot.namespaceKey == namespace else { return nil }
            return Cached(
                evaluator: Evaluator(snapshot: snapshot, namespace: namespace),
                document: document,
                etag: stored.etag,
                fetchedAt: stored.fetchedAt,
                lastConfirmedAt: stored.lastConfirmedAt
            )
        } catch {
            logger.error(
                "A cached snapshot does not decode; skipping it",
                metadata: ["generation": "\(stored.generation)", "error": "\(error)"]
            )
            return nil
        }
    }

    // MARK: Evaluation

    /// The evaluator to use now (retained), or the error evaluations must throw.
    func currentEvaluator() throws(FliptError) -> Evaluator {
        try evaluate { $0 }
    }

    /// Runs `body` with the evaluator of the current snapshot, borrowed from the fast path without a lock or a
    /// retain; throws instead when evaluations must fail (a failed fetch under ``ErrorStrategy/fail``, no data, a
    /// stale snapshot under ``StaleBehavior/fail``), and converts the engine's errors.
    @inline(__always)
    func evaluate<Result>(_ body: (Evaluator) throws(EvaluationError) -> Result) throws(FliptError) -> Result {
        var stale = false
        let result = try fastPaths.read { (fast) throws(FliptError) -> Result? in
            if _slowPath(!fast.isPlain) {
                if let failure = fast.failure { throw failure }
                guard fast.hasData else { throw noDataError() }
                // The stale error reads the state, whose lock a writer may hold while it waits for this read.
                if Self.monotonicNanoseconds() > fast.staleDeadline {
                    stale = true
                    return nil
                }
            }
            do throws(EvaluationError) {
                return try body(fast.evaluator)
            } catch {
                throw FliptError(error)
            }
        }
        guard !stale, let result else { throw staleError() }
        return result
    }

    private func staleError() -> FliptError {
        let age = state.withLock { $0.served?.age(at: .now) } ?? .zero
        let maximumAge = options.cache.maximumAge ?? .zero
        return FliptError(
            .stale,
            "The snapshot of namespace \"\(namespace)\" is \(Self.describe(age)) old, beyond the maximum age of "
                + "\(Self.describe(maximumAge)); the server has not confirmed it since. Check the network, or use "
                + "StaleBehavior.serveStale to keep serving it."
        )
    }

    private func noDataError() -> FliptError {
        FliptError(
            .noData,
            "No flag data yet for namespace \"\(namespace)\": the cache holds no snapshot for it and the first fetch "
                + "from \(key.serverURL) has not completed. Wait with waitUntilReady(timeout:), or pass a seed "
                + "snapshot in ClientOptions.snapshot."
        )
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        if seconds < 1 { return String(format: "%.0f ms", seconds * 1000) }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86400)
    }

    // MARK: Status

    func status() -> ClientStatus {
        state.withLock { status(of: $0, now: .now) }
    }

    func status(of state: State, now: ContinuousClock.Instant) -> ClientStatus {
        let served = state.served
        let age = served?.age(at: now)
        var isStale = false
        if let age, let maximumAge = options.cache.maximumAge { isStale = age > maximumAge }
        return ClientStatus(
            source: served?.source ?? .none,
            etag: served?.etag,
            fetchedAt: served?.fetchedAt,
            lastConfirmedAt: served?.lastConfirmedAt,
            age: age,
            isStale: isStale,
            lastError: state.fetchFailure,
            lastAttemptAt: state.lastAttemptAt,
            hasFetched: state.hasFetched,
            cachePath: store?.path,
            cacheProblem: state.cacheProblem,
            flagCount: served?.evaluator.snapshot.flagCount ?? 0,
            isPinnedByRollback: state.pinnedByRollback
        )
    }

    // MARK: Events

    func events() -> AsyncStream<ClientEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ClientEvent.self,
            bufferingPolicy: .bufferingNewest(256)
        )
        let id: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ events: [ClientEvent]) {
        guard !events.isEmpty else { return }
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers {
            for event in events { subscriber.yield(event) }
        }
    }

    // MARK: Readiness

    func waitUntilReady(timeout: Duration) async throws(FliptError) {
        if state.withLock({ $0.hasFetched }) { return }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let ready = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.readySignal(id: id) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        let (closed, hasFetched, failure) = state.withLock { ($0.closed, $0.hasFetched, $0.fetchFailure) }
        if hasFetched || ready && !closed { return }
        if closed { throw FliptError(.closed, "The client was closed while waiting for fresh flag data.") }
        let reason = failure.map { " The last fetch failed: \($0.message)" } ?? " No fetch has completed yet."
        throw FliptError(
            .timedOut,
            "No fresh flag data arrived within \(Self.describe(timeout)).\(reason)",
            underlying: failure
        )
    }

    /// Returns true once a fetch has succeeded, false when the client closed or the wait was cancelled.
    private func readySignal(id: Int) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.hasFetched || state.closed { return true }
                    if case .cancelled = state.waiters[id] {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return state.withLock { $0.hasFetched }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if case .waiting(let continuation) = state.waiters[id] {
                    state.waiters[id] = nil
                    return continuation
                }
                state.waiters[id] = .cancelled
                return nil
            }
            continuation?.resume()
        }
    }

    // MARK: Lifecycle

    func close() {
        let (tasks, subscribers, waiters, closeWaiters) = state.withLock { state in
            guard !state.closed else {
                return (
                    [Task<Void, Never>?](), [AsyncStream<ClientEvent>.Continuation](), [Waiter](),
                    [CheckedContinuation<Void, Never>]()
                )
            }
            state.closed = true
            let result = (
                [state.syncTask, state.loopTask], Array(state.subscribers.values), Array(state.waiters.values),
                state.closeWaiters
            )
            state.syncTask = nil
            state.loopTask = nil
            state.subscribers = [:]
            state.waiters = [:]
            state.closeWaiters = []
            return result
        }
        for task in tasks { task?.cancel() }
        for subscriber in subscribers { subscriber.finish() }
        for case .waiting(let continuation) in waiters { continuation.resume() }
        for continuation in closeWaiters { continuation.resume() }
    }

    /// Returns once ``close()`` has been called.
    func waitUntilClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let closed = state.withLock { state -> Bool in
                if state.closed { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if closed { continuation.resume() }
        }
    }

    /// Waits until the background task has ended (after ``close()``).
    func closeAndWait() async {
        let tasks = state.withLock { [$0.syncTask, $0.loopTask] }
        close()
        for task in tasks { await task?.value }
    }
}
