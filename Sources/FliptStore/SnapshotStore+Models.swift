import Foundation

/// Where a stored snapshot came from.
public enum SnapshotSource: String, Hashable, Sendable, CaseIterable {
    /// Fetched from the server with a 200.
    case network
    /// Supplied by the application at start (the official SDKs' `snapshot` option).
    case seed
    /// Imported by an operator (for example `flipt-offline import`).
    case imported = "import"
}

/// A snapshot document to store, already decoded and indexed by the engine without error.
///
/// The store keeps bytes and metadata and never parses flags; "last good" means "the engine accepted it",
/// so create a `NewSnapshot` only after the engine has built its index from `document`.
public struct NewSnapshot: Sendable {
    /// The document as received (JSON, UTF-8).
    public var document: Data
    /// The `ETag` response header, byte for byte, if the server sent one.
    public var etag: String?
    /// When the response arrived.
    public var fetchedAt: Date
    /// The server's `Date` response header, if it sent a valid one.
    public var serverDate: Date?
    /// Where the document came from.
    public var source: SnapshotSource

    /// Creates a snapshot to store.
    public init(
        document: Data,
        etag: String? = nil,
        fetchedAt: Date = Date(),
        serverDate: Date? = nil,
        source: SnapshotSource = .network
    ) {
        self.document = document
        self.etag = etag
        self.fetchedAt = fetchedAt
        self.serverDate = serverDate
        self.source = source
    }
}

/// The facts the store keeps about one stored snapshot generation (everything but the document).
public struct SnapshotMetadata: Hashable, Sendable {
    /// The generation number: 1 for the first snapshot of a key, increasing with every new document.
    public var generation: Int
    /// Where the document came from.
    public var source: SnapshotSource
    /// The ETag the server sent with it.
    public var etag: String?
    /// When it was fetched (or, for an unchanged document fetched again, fetched last).
    public var fetchedAt: Date
    /// The server's `Date` header at the fetch.
    public var serverDate: Date?
    /// The latest time the server confirmed it current: the fetch, or a later `304 Not Modified`.
    public var lastConfirmedAt: Date
    /// SHA-256 of the document, lowercase hex.
    public var contentHash: String
    /// The document's size in bytes.
    public var size: Int
    /// Whether this generation is the key's last good snapshot, the one clients load.
    public var isLastGood: Bool
    /// Whether a rollback pins this generation as the last good one (see ``RollbackPin``): the server's copy of
    /// the document rolled back from is not stored again until the pin is lifted.
    public var isPinned: Bool = false
}

/// A rollback that holds: the generation an operator rolled back to, and the content rolled back from.
///
/// While a key is pinned, a document fetched from the server with the content rolled back from (same SHA-256)
/// is not stored: the pinned generation stays last good. Any other content from the server, an import,
/// ``SnapshotStore/unpin(for:)`` or another rollback lifts or moves the pin.
public struct RollbackPin: Hashable, Sendable {
    /// The pinned generation (the key's last good snapshot).
    public var generation: Int
    /// The generation that was last good when the operator rolled back.
    public var rolledBackFromGeneration: Int
    /// SHA-256 of the document rolled back from, lowercase hex.
    public var rolledBackFromHash: String
    /// When the rollback pinned it.
    public var pinnedAt: Date
}

/// A stored snapshot with its document.
public struct StoredSnapshot: Hashable, Sendable {
    /// The key it is stored under.
    public var key: SnapshotKey
    /// Its metadata.
    public var metadata: SnapshotMetadata
    /// The document, byte for byte as saved.
    public var document: Data

    /// The generation number.
    public var generation: Int { metadata.generation }
    /// The ETag to send as `If-None-Match`.
    public var etag: String? { metadata.etag }
    /// When it was fetched.
    public var fetchedAt: Date { metadata.fetchedAt }
    /// The server's `Date` header at the fetch.
    public var serverDate: Date? { metadata.serverDate }
    /// The latest time the server confirmed it current.
    public var lastConfirmedAt: Date { metadata.lastConfirmedAt }
    /// SHA-256 of the document, lowercase hex.
    public var contentHash: String { metadata.contentHash }
    /// The document's size in bytes.
    public var size: Int { metadata.size }
    /// Where it came from.
    public var source: SnapshotSource { metadata.source }
}

/// One sync attempt, for the bounded log that answers "why is this device stale?".
public struct SyncAttempt: Hashable, Sendable {
    /// How an attempt ended.
    public enum Outcome: String, Hashable, Sendable, CaseIterable {
        /// A 200 with a document that was accepted and saved.
        case updated
        /// A 304: the cached snapshot is still current.
        case notModified = "not_modified"
        /// A 200 whose document the engine rejected; the last good snapshot was kept.
        case rejected
        /// No usable response: a network error, a timeout, an HTTP error status.
        case failed
    }

    /// When the attempt started.
    public var startedAt: Date
    /// How it ended.
    public var outcome: Outcome
    /// The HTTP status, if a response arrived.
    public var httpStatus: Int?
    /// A short class for a failure (`timeout`, `connection_refused`, `http_503`, `invalid_document`).
    ///
    /// Never put an error message here: messages can hold URLs with credentials or personal data.
    public var errorClass: String?
    /// How long the attempt took.
    public var duration: Duration

    /// Creates an attempt record.
    public init(
        startedAt: Date,
        outcome: Outcome,
        httpStatus: Int? = nil,
        errorClass: String? = nil,
        duration: Duration
    ) {
        self.startedAt = startedAt
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.errorClass = errorClass
        self.duration = duration
    }
}

/// A summary of one cache key: its last good snapshot, how many generations are kept, its last attempt.
public struct CacheEntry: Hashable, Sendable {
    /// The key.
    public var key: SnapshotKey
    /// The last good snapshot's metadata, or `nil` if no snapshot was ever accepted.
    public var lastGood: SnapshotMetadata?
    /// How many generations are stored.
    public var generationCount: Int
    /// The most recent sync attempt, if any was recorded.
    public var lastAttempt: SyncAttempt?
    /// The rollback that pins the last good snapshot, if any.
    public var pin: RollbackPin? = nil
}

/// What ``SnapshotStore/verify()`` found.
public struct VerificationReport: Hashable, Sendable {
    /// A stored generation whose document no longer matches its content hash.
    public struct Mismatch: Hashable, Sendable {
        /// The key.
        public var key: SnapshotKey
        /// The generation.
        public var generation: Int
    }

    /// The lines of `PRAGMA integrity_check` other than `ok`.
    public var integrityProblems: [String]
    /// Generations whose document does not hash to the stored content hash.
    public var hashMismatches: [Mismatch]
    /// How many generations were hashed.
    public var snapshotsChecked: Int

    /// Whether the file passed every check.
    public var isHealthy: Bool { integrityProblems.isEmpty && hashMismatches.isEmpty }
}

/// What opening the store had to do to a damaged file.
public struct StoreRecovery: Hashable, Sendable {
    /// Why the old file was set aside.
    public var reason: StoreError
    /// Where the old file (and its `-wal`/`-shm`) now is; it is never deleted.
    public var movedAsideTo: String
    /// How many snapshots could be read from the old file, verified and copied into the fresh one.
    public var salvagedSnapshots: Int
}
