import Dispatch
import FliptStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps a ``SnapshotCatalog`` equal to the last good snapshots of a cache file that other processes write.
///
/// On Linux it sleeps until inotify reports a write in the cache's directory; elsewhere (or when inotify cannot be
/// used) it wakes every ``interval`` (20 ms by default). Then it looks at the size, time and identity of the cache
/// file and its write-ahead log (two `stat` calls: a commit by another process changes them), and every
/// ``changeCounterInterval`` (250 ms) it also reads the file's change counter (SQLite's `PRAGMA data_version`, no
/// table read), which catches the rare commit that leaves both files looking the same. Only when one of them
/// moved does it read the entry list (a few small queries, no documents), and it loads a document only when an
/// entry's content hash or ETag changed; the entry list is also read every ``fullCheckInterval`` (5 s) whatever
/// they say. So a change reaches the catalog, and its open streams, a few tens of milliseconds after the writer
/// commits, and a quiet cache costs almost nothing. New documents are compressed for gzip clients on the
/// watcher's thread, off the event loops.
/// Documents given at start (``fixedSnapshots``) fill in the namespaces and environments the cache does not hold.
///
/// It is a swift-service-lifecycle `Service`: ``run()`` checks until the task is cancelled or shut down gracefully.
package final class CacheWatcher: Service, Sendable {
    /// Which cache entries to serve when the cache holds a namespace from several servers or references.
    package struct Selection: Sendable {
        /// Serve only entries of this server (a URL; compared after the store's normalisation).
        package var serverURL: String?
        /// Serve only entries with this reference; nil prefers entries without one.
        package var reference: String?

        /// Creates a selection; nil fields do not filter.
        package init(serverURL: String? = nil, reference: String? = nil) {
            self.serverURL = serverURL.map { url in
                URL(string: url).map { SnapshotKey(url: $0, environment: "", namespace: "").serverURL } ?? url
            }
            self.reference = reference
        }
    }

    /// The cache.
    package let store: SnapshotStore
    /// The catalog kept up to date.
    package let catalog: SnapshotCatalog
    /// Which entries are served.
    package let selection: Selection
    /// Snapshots served where the cache has none for the same namespace and environment.
    package let fixedSnapshots: [ServedSnapshot]
    /// How often the cache file and its write-ahead log are looked at (`stat`).
    package let interval: Duration
    /// How often the cache's change counter (`PRAGMA data_version`) is read.
    package let changeCounterInterval: Duration
    /// How often the entry list is read even if the change counter did not move.
    package let fullCheckInterval: Duration
    private let logger: Logger
    private let state = Mutex(State())
    /// Wakes the checking thread early (``stop()``) and tells when it has ended.
    private let signal = NSCondition()

    private struct State {
        var loaded: [SnapshotKey: ServedSnapshot] = [:]
        var reported: Set<String> = []
        var lastProblem: String?
        var phase = Phase.idle
        /// Tasks waiting in ``run()`` for the thread to end.
        var waiting: [CheckedContinuation<Void, Never>] = []
        #if os(Linux)
        var events: DirectoryEvents?
        #endif
    }

    /// Where the watcher is in its life; it moves forward only.
    enum Phase: Equatable {
        /// Not started.
        case idle
        /// The checking thread runs.
        case checking
        /// Told to stop; the thread is ending.
        case stopping
        /// The thread has ended (or was never started before ``stop()``).
        case stopped

        /// The phase after a start request; `startsThread` when this request starts the thread.
        func starting() -> (phase: Phase, startsThread: Bool) {
            self == .idle ? (.checking, true) : (self, false)
        }

        /// The phase after a stop request; `wakesThread` when a running thread must be woken to end.
        func stopping() -> (phase: Phase, wakesThread: Bool) {
            switch self {
            case .idle: (.stopped, false)
            case .checking: (.stopping, true)
            case .stopping, .stopped: (self, false)
            }
        }
    }

    /// Creates a watcher; call ``refresh()`` once to fill the catalog, then ``start()``.
    package init(
        store: SnapshotStore,
        catalog: SnapshotCatalog,
        selection: Selection = Selection(),
        fixedSnapshots: [ServedSnapshot] = [],
        interval: Duration = .milliseconds(20),
        changeCounterInterval: Duration = .milliseconds(250),
        fullCheckInterval: Duration = .seconds(5),
        logger: Logger = Logger(label: "flipt.relay", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.store = store
        self.catalog = catalog
        self.selection = selection
        self.fixedSnapshots = fixedSnapshots
        self.interval = interval
        self.changeCounterInterval = changeCounterInterval
        self.fullCheckInterval = fullCheckInterval
        self.logger = logger
    }

    /// Reads the cache once and updates the catalog; returns whether a served document or ETag changed.
    @discardableResult
    package func refresh() throws(StoreError) -> Bool {
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
        // Compressed here, after the new documents are served to identity clients, so that no event loop
        // compresses a large document (gzip clients asking meanwhile get it uncompressed, or wait on a stream).
        for (key, snapshot) in loaded where previous[key]?.version != snapshot.version {
            snapshot.prepareGzip()
        }
        if changed {
            for snapshot in catalog.snapshots {
                let place = "\(snapshot.environment)/\(snapshot.namespace)"
                let facts = "etag \(snapshot.etag), \(snapshot.documentSize) bytes, from \(snapshot.origin)"
                logger.info("serving \(place): \(facts)")
            }
        }
        return changed
    }

    /// Starts checking the cache on a background thread, until ``stop()``: its files every ``interval``, its
    /// change counter every ``changeCounterInterval``, its entry list when either moved or ``fullCheckInterval``
    /// passed.
    package func start() {
        let startsThread = state.withLock { state in
            let (phase, startsThread) = state.phase.starting()
            state.phase = phase
            return startsThread
        }
        guard startsThread else { return }
        let thread = Thread { [self] in
            check()
            let waiting = state.withLock { state in
                defer { state.waiting = [] }
                state.phase = .stopped
                return state.waiting
            }
            signal.lock()
            signal.broadcast()
            signal.unlock()
            for continuation in waiting { continuation.resume() }
        }
        thread.name = "flipt-relay-cache-watcher"
        thread.start()
    }

    /// Checks until the task is cancelled or a graceful shutdown is triggered, then stops and returns once the
    /// checking thread has ended. Starts the checks unless ``start()`` did.
    package func run() async throws {
        start()
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ended = state.withLock { state -> Bool in
                    if state.phase == .stopped { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if ended { continuation.resume() }
            }
        } onCancelOrGracefulShutdown: {
            self.requestStop()
        }
    }

    /// Stops the background checks and waits for the thread to end (for synchronous callers; async code runs the
    /// watcher as a service instead).
    package func stop() {
        requestStop()
        signal.lock()
        while state.withLock({ $0.phase != .stopped }) { signal.wait() }
        signal.unlock()
    }

    /// Asks the checking thread to end, without waiting.
    private func requestStop() {
        let wakesThread = state.withLock { state in
            let (phase, wakesThread) = state.phase.stopping()
            state.phase = phase
            return wakesThread
        }
        guard wakesThread else { return }
        signal.lock()
        signal.broadcast()
        signal.unlock()
        #if os(Linux)
        state.withLock { $0.events }?.interrupt()
        #endif
    }

    /// The checking loop of the thread, until a stop is requested.
    private func check() {
        #if os(Linux)
        let events = DirectoryEvents(directory: (store.path as NSString).deletingLastPathComponent)
        state.withLock { $0.events = events }
        #endif
        var lastFiles: [FileState?] = []
        var lastCounter: Int64?
        var lastCounterCheck = ContinuousClock.now
        var lastFullCheck = ContinuousClock.now
        var woken = false
        while state.withLock({ $0.phase == .checking }) {
            do {
                // Read before the entry list, so that a commit during the refresh is seen next time.
                let now = ContinuousClock.now
                let files = [FileState(path: store.path), FileState(path: store.path + "-wal")]
                var due = files != lastFiles || now - lastFullCheck >= fullCheckInterval
                var counter = lastCounter
                // After a write in the directory the counter is read too: a commit may have changed the files
                // before it became visible, so that they already looked the same at the last check.
                if due || woken || now - lastCounterCheck >= changeCounterInterval {
                    counter = try store.changeCounter()
                    lastCounterCheck = now
                    due = due || counter != lastCounter
                }
                if due {
                    try refresh()
                    lastFiles = files
                    lastCounter = counter
                    lastFullCheck = now
                }
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
            #if os(Linux)
            if let events {
                // Woken by a write in the directory, by a stop, or for the next change-counter check. After a
                // write, the writer is let finish its commit (quiet for 5 ms, at most 50 ms) before the check.
                woken = events.wait(timeout: changeCounterInterval)
                if woken {
                    let settled = ContinuousClock.now + .milliseconds(50)
                    while events.wait(timeout: .milliseconds(5)) && ContinuousClock.now < settled {}
                }
                continue
            }
            #endif
            // Without inotify: look again after `interval`, or at once when a stop is requested.
            signal.lock()
            if state.withLock({ $0.phase == .checking }) {
                _ = signal.wait(until: Date().addingTimeInterval(Double(interval.milliseconds) / 1000))
            }
            signal.unlock()
        }
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

/// What `stat` says about a file that changes when it is written: size, modification time, identity.
private struct FileState: Equatable {
    var size: Int64
    var seconds: Int
    var nanoseconds: Int
    var inode: UInt64

    /// nil when the file does not exist (or cannot be looked at).
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        size = Int64(info.st_size)
        inode = UInt64(info.st_ino)
        #if canImport(Darwin)
        seconds = Int(info.st_mtimespec.tv_sec)
        nanoseconds = Int(info.st_mtimespec.tv_nsec)
        #else
        seconds = Int(info.st_mtim.tv_sec)
        nanoseconds = Int(info.st_mtim.tv_nsec)
        #endif
    }
}

#if os(Linux)
/// Writes in one directory, from inotify: ``wait(timeout:)`` returns when a file in it was created, written,
/// moved in or removed, when ``interrupt()`` is called, or after the timeout, whichever comes first.
private final class DirectoryEvents: Sendable {
    private let inotify: Int32
    /// A pipe: ``interrupt()`` writes a byte to its second end, ``wait(timeout:)`` polls the first.
    private let wakeUp: (read: Int32, write: Int32)

    /// nil when inotify cannot watch the directory (no such directory, no watches left).
    init?(directory: String) {
        let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else { return nil }
        let mask = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_DELETE)
        var ends: [Int32] = [-1, -1]
        guard inotify_add_watch(inotify, directory.isEmpty ? "." : directory, mask) >= 0, pipe(&ends) == 0 else {
            close(inotify)
            return nil
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        self.inotify = inotify
        self.wakeUp = (ends[0], ends[1])
    }

    deinit {
        close(inotify)
        close(wakeUp.read)
        close(wakeUp.write)
    }

    /// Waits for an event or the timeout, then drains what is pending (the caller checks the files itself);
    /// returns whether something happened (an event or an interruption) before the timeout.
    @discardableResult
    func wait(timeout: Duration) -> Bool {
        var descriptors = [
            pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeUp.read, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, 2, Int32(clamping: timeout.milliseconds))
        guard ready > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        for descriptor in [inotify, wakeUp.read] {
            while buffer.withUnsafeMutableBytes({ read(descriptor, $0.baseAddress, $0.count) }) > 0 {}
        }
        return true
    }

    /// Ends a ``wait(timeout:)`` in progress, or the next one, at once.
    func interrupt() {
        var byte: UInt8 = 1
        _ = write(wakeUp.write, &byte, 1)
    }
}
#endif
