import FliptSync
import Foundation

/// Where the snapshot a client evaluates against came from.
public enum DataSource: String, Sendable, Hashable, CaseIterable {
    /// Fetched from the Flipt server in this run.
    case network
    /// Loaded from the cache file at start-up (fetched in an earlier run, seeded, or imported by an operator).
    case cache
    /// The ``ClientOptions/snapshot`` seed given in the options.
    case seed
    /// No data yet: evaluations throw ``FliptError/Code/noData`` until the first fetch completes.
    case none
}

/// Where a client's flag data came from, how old it is, and how the last fetch went.
public struct ClientStatus: Sendable, Hashable {
    /// Where the snapshot in use came from.
    public var source: DataSource
    /// The ETag of the snapshot in use, as the server sent it.
    public var etag: String?
    /// When the snapshot in use was fetched (for a cached one, when it was first fetched; wall clock).
    public var fetchedAt: Date?
    /// When the server last sent or confirmed (with a `304`) the snapshot in use (wall clock).
    public var lastConfirmedAt: Date?
    /// How long ago the server last sent or confirmed the snapshot, never negative. While the client runs
    /// it is measured on a monotonic clock, so moving the wall clock does not change it.
    public var age: Duration?
    /// Whether ``age`` is beyond ``CacheOptions/maximumAge``.
    public var isStale: Bool
    /// The error of the latest fetch, or nil when it succeeded (or none has completed yet).
    public var lastError: FliptError?
    /// When the latest fetch completed, successfully or not.
    public var lastAttemptAt: Date?
    /// Whether a fetch has succeeded (200 or 304) since the client started.
    public var hasFetched: Bool
    /// The cache file, or nil when the cache is disabled.
    public var cachePath: String?
    /// Why the cache cannot be written, when it is read-only or failed; the client then serves from memory.
    public var cacheProblem: String?
    /// How many flags the snapshot in use holds.
    public var flagCount: Int
    /// Whether an operator's rollback pins the cached snapshot (`flipt-offline cache rollback`): the server's
    /// copy of the document rolled back from is not served until `flipt-offline cache unpin` or a new document.
    public var isPinnedByRollback: Bool = false
}

/// A change a client went through, delivered by ``FliptClient/events()``.
public enum ClientEvent: Sendable, Hashable {
    /// A new snapshot replaced the one in use (from the network, a stream message, a ``FliptClient/refresh()``,
    /// or a `FliptTesting` update), with the flags it added, removed or changed, compared by content.
    case snapshotReplaced(ClientStatus, changes: FlagChanges)
    /// The snapshot in use became older than ``CacheOptions/maximumAge``.
    case becameStale(ClientStatus)
    /// A fetch failed; under ``ErrorStrategy/fallback`` nothing that is served changed.
    case fetchFailed(FliptError)
    /// A fetch succeeded after one or more failures, or a stale snapshot was confirmed or replaced.
    case recovered(ClientStatus)
    /// The server confirmed the snapshot in use (a `304 Not Modified`): nothing changed but its age.
    case confirmed(ClientStatus)
}
