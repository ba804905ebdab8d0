import FliptStore
import FliptSync
import Foundation
import Logging

/// What a client does when fetching flag state fails.
public enum ErrorStrategy: String, Sendable, Hashable, CaseIterable {
    /// Evaluations throw the fetch error while the latest fetch has failed, and recover on the next good fetch.
    case fail
    /// Evaluations keep answering from the last good snapshot; nothing that failed replaces or deletes it.
    case fallback
}

/// What a client does with a snapshot older than ``CacheOptions/maximumAge``.
public enum StaleBehavior: String, Sendable, Hashable, CaseIterable {
    /// Keep answering from it, and report it as stale in ``ClientStatus`` and ``ClientEvent``.
    case serveStale
    /// Throw ``FliptError/Code/stale`` from evaluations until a fetch confirms or replaces it.
    case fail
}

/// Where and how the client keeps its snapshot cache, the SQLite file that lets it start offline.
public struct CacheOptions: Sendable {
    /// Where the cache file lives.
    public enum Location: Sendable, Hashable {
        /// The per-user default, ``CacheOptions/defaultPath``.
        case automatic
        /// A file at this path; its directory is created (owner-only) when missing.
        case file(String)
        /// No cache file: the client keeps snapshots in memory only, as the official SDKs do.
        case disabled
    }

    /// Where the cache file lives (default: ``Location/automatic``).
    public var location: Location
    /// How many snapshot generations to keep per namespace so that an operator can roll back (default 3).
    public var historyDepth: Int
    /// How old a snapshot may get, counted from when the server last sent or confirmed it, before the client
    /// reports it as stale; `nil` (the default) for no limit.
    public var maximumAge: Duration?
    /// What evaluations do with a stale snapshot (default: ``StaleBehavior/serveStale``).
    public var staleBehavior: StaleBehavior

    /// Creates cache options; every parameter has the default described on its property.
    public init(
        location: Location = .automatic,
        historyDepth: Int = 3,
        maximumAge: Duration? = nil,
        staleBehavior: StaleBehavior = .serveStale
    ) {
        self.location = location
        self.historyDepth = historyDepth
        self.maximumAge = maximumAge
        self.staleBehavior = staleBehavior
    }

    /// The per-user default cache file.
    ///
    /// `$FLIPT_OFFLINE_CACHE` when set; otherwise on Linux `$XDG_STATE_HOME/flipt-offline/cache.sqlite3`
    /// (`~/.local/state/…`), and on Apple platforms `Application Support/flipt-offline/cache.sqlite3`. State,
    /// not a cache directory: the system must not purge the last good snapshot.
    public static var defaultPath: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["FLIPT_OFFLINE_CACHE"], !path.isEmpty { return path }
        #if canImport(Darwin)
        let base =
            FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask).first?.path
            ?? NSTemporaryDirectory()
        #else
        let base =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".local/state")
        #endif
        return ((base as NSString).appendingPathComponent("flipt-offline") as NSString)
            .appendingPathComponent("cache.sqlite3")
    }

    /// Creates the directory of the cache file `path` (and its parents), owner-only, when it does not exist.
    ///
    /// - Throws: the file system's error; callers wrap it in their own message.
    package static func createDirectory(forCacheFile path: String) throws {
        // Checked with one `stat` first: the usual directory exists, and the first use of `FileManager.default`
        // costs a cold boot ~40 µs of runtime type lookups.
        let directory = SnapshotStore.directory(of: path)
        guard SnapshotStore.kind(of: directory) == .missing else { return }
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
    }

    /// The resolved file path, or nil when the cache is disabled.
    var resolvedPath: String? {
        switch location {
        case .automatic: Self.defaultPath
        case .file(let path): path
        case .disabled: nil
        }
    }
}

/// Everything a ``FliptClient`` can be configured with; the names and defaults follow the official Flipt SDKs.
public struct ClientOptions: Sendable {
    /// The Flipt server (default `http://localhost:8080`). A path prefix and a trailing slash are fine.
    public var url: String
    /// The environment (Flipt v2), sent as `X-Flipt-Environment` (default `default`).
    public var environment: String
    /// A total limit for each request attempt, headers and body; `nil` (the default) for none.
    /// Sub-second values work. Polling only: a stream has no timeout.
    public var requestTimeout: Duration?
    /// How often to poll (default 120 s). Sub-second values work.
    public var updateInterval: Duration
    /// A random spread of the poll interval, as a fraction (default 0.1: ±10 %), so that a fleet of devices does
    /// not poll in lock-step. 0 polls at exactly ``updateInterval``.
    public var updateJitter: Double
    /// How requests authenticate (default: none). Replace it at runtime with
    /// ``FliptClient/updateAuthentication(_:)``.
    public var authentication: Authentication
    /// The reference (branch, tag or commit on Flipt v1 with git storage); `nil` (the default) for none.
    public var reference: String?
    /// Polling (the default) or streaming (Flipt v2).
    public var fetchMode: FetchMode
    /// What evaluations do after a failed fetch (default ``ErrorStrategy/fail``, as in the official SDKs).
    public var errorStrategy: ErrorStrategy
    /// A snapshot to start from when the cache has none for this namespace: a string from
    /// ``FliptClient/getSnapshot()``, or a snapshot document as JSON.
    public var snapshot: String?
    /// TLS trust settings (default: the system trust store).
    public var tls: TLSOptions
    /// The snapshot cache (default: a per-user SQLite file).
    public var cache: CacheOptions
    /// Where the client logs fetches, failures and cache problems (default: nowhere). Tokens are never logged.
    public var logger: Logger
    /// The HTTP client to fetch with; nil (the default) for the process's shared one for ``url``'s server and ``tls``.
    ///
    /// With nil, the clients of several namespaces of one server already share one connection pool (a stream
    /// still holds a connection of its own), released with the last client that uses it; their cache file is
    /// likewise opened once. Give a transport from ``makeTransport()`` to own its lifetime instead: a client never
    /// shuts down a transport it was given; its owner calls `shutdown()` once, after shutting down every client
    /// that uses it. ``tls`` is then the transport's: it is not read.
    public var transport: SharedTransport?
    /// Whether the client starts offline (default `false`): no polling or streaming until
    /// ``FliptClient/setOffline(_:)`` is called with `false`; evaluations answer from the cache or the seed.
    public var startsOffline = false
    /// Whether the snapshot is supplied in process (by `FliptTesting`) through ``FliptClient/replaceSnapshot(with:)``
    /// instead of a server: no sync loop ever runs and ``FliptClient/setOffline(_:)`` does nothing.
    package var isFedInProcess = false
    /// Hooks that run around every evaluation, in this order (see ``EvaluationHook``); none by default. Set after
    /// creating the options: `options.hooks = [exporter]`.
    public var hooks: [any EvaluationHook] = []
    /// What the client reports to swift-metrics beyond its fetches (see ``MetricsOptions``).
    public var metrics = MetricsOptions()
    /// The largest snapshot document the client accepts, in bytes as decoded (default 64 MiB, five times a
    /// 10,000-flag document; at least 1024).
    ///
    /// A polled response or a stream message over it fails the fetch as an invalid document, without being read
    /// further, and the last good snapshot stays in use: a server, proxy or captive portal that sends without end
    /// cannot use up the device's memory. The official engine has no such limit.
    public var maximumDocumentSize = SyncConfiguration.defaultMaximumDocumentSize
    /// Retries of one request: 3 retries, full-jitter back-off from 1 s, capped at 30 s. Package-visible so that
    /// tests can shorten the waits; the policy itself is fixed for users.
    package var retryPolicy = RetryPolicy()
    /// Stream reconnection back-off: full jitter from 1 s, capped at 30 s, reset by a good message.
    package var reconnectPolicy = ReconnectPolicy()
    /// The wall clock, for the times written to the cache and shown in the status. Ages and the maximum age are
    /// measured on the monotonic clock while the client runs; package-visible so that tests can move this one.
    package var wallClock: @Sendable () -> Date = { Date() }

    /// Creates options; every parameter has the default described on its property.
    public init(
        url: String = "http://localhost:8080",
        environment: String = "default",
        requestTimeout: Duration? = nil,
        updateInterval: Duration = .seconds(120),
        updateJitter: Double = 0.1,
        authentication: Authentication = .none,
        reference: String? = nil,
        fetchMode: FetchMode = .polling,
        errorStrategy: ErrorStrategy = .fail,
        snapshot: String? = nil,
        tls: TLSOptions = TLSOptions(),
        cache: CacheOptions = CacheOptions(),
        logger: Logger = Logger(label: "flipt", factory: { _ in SwiftLogNoOpLogHandler() }),
        transport: SharedTransport? = nil
    ) {
        self.url = url
        self.environment = environment
        self.requestTimeout = requestTimeout
        self.updateInterval = updateInterval
        self.updateJitter = updateJitter
        self.authentication = authentication
        self.reference = reference
        self.fetchMode = fetchMode
        self.errorStrategy = errorStrategy
        self.snapshot = snapshot
        self.tls = tls
        self.cache = cache
        self.logger = logger
        self.transport = transport
    }

    /// Creates the HTTP client a ``FliptClient`` makes for itself with these options (for ``url``, with ``tls``
    /// and the proxy the environment names), to share among several clients as their ``transport``.
    ///
    /// The caller owns it: call its ``SharedTransport/shutdown()`` once every client using it has shut down.
    /// - Throws: ``FliptError/Code/invalidConfiguration`` for an invalid URL, unusable TLS options or proxy
    ///   variables.
    public func makeTransport() throws(FliptError) -> SharedTransport {
        let url = try validatedURL()
        do {
            return SharedTransport(try SnapshotFetcher.defaultTransport(url: url, tls: tls, logger: logger))
        } catch {
            throw FliptError(.invalidConfiguration, error.message, underlying: error)
        }
    }

    /// ``url`` parsed, or the error that says it is not usable (the sync layer's one URL rule).
    func validatedURL() throws(FliptError) -> URL {
        try SnapshotSync.serverURL(url)
    }
}
