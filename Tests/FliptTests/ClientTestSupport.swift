import Flipt
import FliptStore
import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// Options for a test client: a fast poll, no jitter, short retry back-off, the given cache file.
func testOptions(
    url: URL,
    cache: String?,
    strategy: ErrorStrategy = .fallback,
    fetchMode: FetchMode = .polling,
    updateInterval: Duration = .milliseconds(100),
    authentication: Authentication = .none,
    maximumAge: Duration? = nil,
    staleBehavior: StaleBehavior = .serveStale,
    requestTimeout: Duration? = nil
) -> ClientOptions {
    var options = ClientOptions(
        url: url.absoluteString,
        requestTimeout: requestTimeout,
        updateInterval: updateInterval,
        updateJitter: 0,
        authentication: authentication,
        fetchMode: fetchMode,
        errorStrategy: strategy,
        cache: CacheOptions(
            location: cache.map { .file($0) } ?? .disabled,
            maximumAge: maximumAge,
            staleBehavior: staleBehavior
        )
    )
    options.retryPolicy = RetryPolicy(maximumRetries: 3, baseDelay: .milliseconds(10), maximumDelay: .milliseconds(40))
    options.reconnectPolicy = ReconnectPolicy(baseDelay: .milliseconds(10), maximumDelay: .milliseconds(50))
    return options
}

/// The description of the first flag: `revision N` in ``FixtureDocument`` documents, so it tells which revision
/// a client serves.
func servedRevision(_ client: FliptClient) throws -> String? {
    try client.listFlags().first?.description
}

/// The last good snapshot in the cache file, read with a separate store connection as an operator would.
func lastGoodInFile(path: String, url: URL, namespace: String = "default") throws -> StoredSnapshot? {
    let store = try SnapshotStore(path: path, options: SnapshotStore.Options(readOnly: true))
    return try store.lastGood(for: SnapshotKey(url: url, environment: "default", namespace: namespace))
}
