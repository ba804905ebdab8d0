import Dispatch
import FliptStore
import Foundation
import Logging
import Synchronization

/// Keeps a ``SnapshotCatalog`` equal to the last good snapshots of a cache file that other processes write.
///
/// Every ``interval`` it reads the cache's entry list (a few small queries, no documents) and loads a document only
/// when an entry's content hash or ETag changed. Documents given at start (``fixedSnapshots``) fill in the
/// namespaces and environments the cache does not hold.
public final class CacheWatcher: Sendable {
    /// Which cache entries to serve when the cache holds a namespace from several servers or references.
    public struct Selection: Sendable {
        /// Serve only entries of this server (a URL; compared after the store's normalisation).
        public var serverURL: String?
        /// Serve only entries with this reference; nil prefers entries without one.
        public var reference: String?

        /// Creates a selection; nil fields do not filter.
        public init(serverURL: String? = nil, reference: String? = nil) {
            self.serverURL = serverURL.map { url in
                URL(string: url).map { SnapshotKey(url: $0, environment: "", namespace: "").serverURL } ?? url
            }
            self.reference = reference
        }
    }

    /// The cache.
    public let store: SnapshotStore
    /// The catalog kept up to date.
    public let catalog: SnapshotCatalog
    /// Which entries are served.
    public let selection: Selection
    /// Snapshots served where the cache has none for the same namespace and environment.
    public let fixedSnapshots: [ServedSnapshot]
    /// How often the cache is checked.
    public let interval: Duration
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    private struct State {
        var loaded: [SnapshotKey: ServedSnapshot] = [:]
        var reported: Set<String> = []
        var lastProblem: String?
        var isRunning = false
        var isStopping = false
    }

    /// Creates a watcher; call ``refresh()`` once to fill the catalog, then ``start()``.
    public init(
        store: SnapshotStore,
        catalog: SnapshotCatalog,
        selection: Selection = Selection(),
        fixedSnapshots: [ServedSnapshot] = [],
        interval: Duration = .milliseconds(250),
        logger: Logger = Logger(label: "flipt.relay", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.store = store
        self.catalog = catalog
        self.selection = selection
        self.fixedSnapshots = fixedSnapshots
        self.interval = interval
        self.logger = logger
    }

    /// Reads the cache once and updates the catalog; returns whether a served document or ETag changed.
    @discardableResult
    public func refresh() throws(StoreError) -> Bool {
        let entries = try store.entries().filter { entry in
            entry.lastGood != nil && (selection.serverURL.map { $0 == entry.key.serverURL } ?? true)
                && (selection.reference.map { $0 == entry.key.reference } ?? true)
        }
        var chosen: [String: CacheEntry] = [:]
        for (place, candidates) in Dictionary(grouping: entries, by: { "\($0.key.environment)/\($0.key.namespace)" }) {
            let best = candidates.max { Self.preference($0) < Self.preference($1) }!
            chosen[place] = best
            if candidates.count > 1 { reportAmbiguity(place: place, candidates: candidates, chosen: best) }
        }
        let previous = state.withLock { $0.loaded }
        var loaded: [SnapshotKey: ServedSnapshot] = [:]
        for entry in chosen.values {
            guard let metadata = entry.lastGood else { continue }
            let etag = metadata.etag.flatMap { $0.isEmpty ? nil : $0 } ?? metadata.contentHash
            if let known = previous[entry.key], known.version == etag + " " + metadata.contentHash {
                loaded[entry.key] = known.confirmed(at: metadata.lastConfirmedAt)
            } else if let stored = try store.lastGood(for: entry.key) {
                loaded[entry.key] = ServedSnapshot(
                    namespace: entry.key.namespace,
                    environment: entry.key.environment,
                    document: Array(stored.document),
                    etag: stored.etag,
                    origin: "cache \(entry.key)",
                    lastConfirmedAt: stored.lastConfirmedAt,
                    contentHash: stored.contentHash
                )
            }
        }
        state.withLock { $0.loaded = loaded }
        let fromCache = Set(loaded.values.map { "\($0.environment)/\($0.namespace)" })
        let fixed = fixedSnapshots.filter { !fromCache.contains("\($0.environment)/\($0.namespace)") }
        let changed = catalog.replace(with: fixed + loaded.values.sorted { $0.origin < $1.origin })
        if changed {
            for snapshot in catalog.snapshots {
                let place = "\(snapshot.environment)/\(snapshot.namespace)"
                let facts = "etag \(snapshot.etag), \(snapshot.documentSize) bytes, from \(snapshot.origin)"
                logger.info("serving \(place): \(facts)")
            }
        }
        return changed
    }

    /// Starts checking the cache every ``interval`` on a background thread, until ``stop()``.
    public func start() {
        let alreadyRunning = state.withLock { state in
            defer { state.isRunning = true }
            return state.isRunning || state.isStopping
        }
        if alreadyRunning { return }
        let thread = Thread { [self] in
            defer { finished.signal() }
            while !state.withLock({ $0.isStopping }) {
                do {
                    try refresh()
                    if let problem = state.withLock({ state in
                        defer { state.lastProblem = nil }
                        return state.lastProblem
                    }) {
                        logger.notice("the cache is readable again (after: \(problem))")
                    }
                } catch {
                    let message = "\(error)"
                    let isNew = state.withLock { state in
                        defer { state.lastProblem = message }
                        return state.lastProblem != message
                    }
                    if isNew {
                        logger.warning("cannot read the cache; still serving the last snapshots read: \(message)")
                    }
                }
                _ = wake.wait(timeout: .now() + .milliseconds(Int(interval.milliseconds)))
            }
        }
        thread.name = "flipt-relay-cache-watcher"
        thread.start()
    }

    /// Stops the background checks and waits for the thread to end.
    public func stop() {
        let wasRunning = state.withLock { state in
            defer { state.isStopping = true }
            return state.isRunning && !state.isStopping
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
    }

    /// The order of preference between entries for one place: the wanted reference, then the freshest.
    private static func preference(_ entry: CacheEntry) -> (Int, Date) {
        (entry.key.reference.isEmpty ? 1 : 0, entry.lastGood?.lastConfirmedAt ?? .distantPast)
    }

    private func reportAmbiguity(place: String, candidates: [CacheEntry], chosen: CacheEntry) {
        let summary = candidates.map(\.key.description).sorted().joined(separator: "; ")
        let isNew = state.withLock { $0.reported.insert(summary).inserted }
        guard isNew else { return }
        let advice = "choose with --url and --reference"
        logger.warning("the cache holds \(place) several times (\(summary)); serving \(chosen.key); \(advice)")
    }
}
