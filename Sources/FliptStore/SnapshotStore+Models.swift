import Foundation

/// Where a stored snapshot came from.
package enum SnapshotSource: String, Hashable, Sendable, CaseIterable {
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
package struct NewSnapshot: Sendable {
    /// The document as received (JSON, UTF-8).
    package var document: Data
    /// The `ETag` response header, byte for byte, if the server sent one.
    package var etag: String?
    /// When the response arrived.
    package var fetchedAt: Date
    /// The server's `Date` response header, if it sent a valid one.
    package var serverDate: Date?
    /// Where the document came from.
    package var source: SnapshotSource

    /// Creates a snapshot to store.
    package init(
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
package struct SnapshotMetadata: Hashable, Sendable {
    /// The generation number: 1 for the first snapshot of a key, increasing with every new document.
    package var generation: Int
    /// Where the document came from.
    package var source: SnapshotSource
    /// The ETag the server sent with it.
    package var etag: String?
    /// When it was fetched (or, for an unchanged document fetched again, fetched last).
    package var fetchedAt: Date
    /// The server's `Date` header at the fetch.
    package var serverDate: Date?
    /// The latest time the server confirmed it current: the fetch, or a later `304 Not Modified`.
    package var lastConfirmedAt: Date
    /// SHA-256 of the document, lowercase hex.
    package var contentHash: String
    /// The document's size in bytes.
    package var size: Int
    /// Whether this generation is the key's last good snapshot, the one clients load.
    package var isLastGood: Bool
    /// Whether a rollback pins this generation as the last good one (see ``RollbackPin``): the server's copy of
    /// the document rolled back from is not stored again until the pin is lifted.
    package var isPinned: Bool = false
}

/// A rollback that holds: the generation an operator rolled back to, and the content rolled back from.
///
/// While a key is pinned, a document fetched from the server with the content rolled back from (same SHA-256)
/// is not stored: the pinned generation stays last good. Any other content from the server, an import,
/// ``SnapshotStore/unpin(for:)`` or another rollback lifts or moves the pin.
package struct RollbackPin: Hashable, Sendable {
    /// The pinned generation (the key's last good snapshot).
    package var generation: Int
    /// The generation that was last good when the operator rolled back.
    package var rolledBackFromGeneration: Int
    /// SHA-256 of the document rolled back from, lowercase hex.
    package var rolledBackFromHash: String
    /// When the rollback pinned it.
    package var pinnedAt: Date
}

/// A stored snapshot with its document.
package struct StoredSnapshot: Hashable, Sendable {
    /// The key it is stored under.
    package var key: SnapshotKey
    /// Its metadata.
    package var metadata: SnapshotMetadata
    /// The document, byte for byte as saved.
    package var document: Data

    /// The generation number.
    package var generation: Int { metadata.generation }
    /// The ETag to send as `If-None-Match`.
    package var etag: String? { metadata.etag }
    /// When it was fetched.
    package var fetchedAt: Date { metadata.fetchedAt }
    /// The server's `Date` header at the fetch.
    package var serverDate: Date? { metadata.serverDate }
    /// The latest time the server confirmed it current.
    package var lastConfirmedAt: Date { metadata.lastConfirmedAt }
    /// SHA-256 of the document, lowercase hex.
    package var contentHash: String { metadata.contentHash }
    /// The document's size in bytes.
    package var size: Int { metadata.size }
    /// Where it came from.
    package var source: SnapshotSource { metadata.source }
}

/// One sync attempt, for the bounded log that answers "why is this device stale?".
package struct SyncAttempt: Hashable, Sendable {
    /// How an attempt ended.
    package enum Outcome: String, Hashable, Sendable, CaseIterable {
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
    package var startedAt: Date
    /// How it ended.
    package var outcome: Outcome
    /// The HTTP status, if a response arrived.
    package var httpStatus: Int?
    /// A short class for a failure (`timeout`, `connection_refused`, `http_503`, `invalid_document`).
    ///
    /// Never put an error message here: messages can hold URLs with credentials or personal data.
    package var errorClass: String?
    /// How long the attempt took; the cache file keeps it in whole milliseconds, rounded up.
    package var duration: Duration

    /// Creates an attempt record.
    package init(
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
package struct CacheEntry: Hashable, Sendable {
    /// The key.
    package var key: SnapshotKey
    /// The last good snapshot's metadata, or `nil` if no snapshot was ever accepted.
    package var lastGood: SnapshotMetadata?
    /// How many generations are stored.
    package var generationCount: Int
    /// The most recent sync attempt, if any was recorded.
    package var lastAttempt: SyncAttempt?
    /// The rollback that pins the last good snapshot, if any.
    package var pin: RollbackPin? = nil
}

/// What ``SnapshotStore/verify()`` found.
package struct VerificationReport: Hashable, Sendable {
    /// A stored generation whose document no longer matches its content hash.
    package struct Mismatch: Hashable, Sendable {
        /// The key.
        package var key: SnapshotKey
        /// The generation.
        package var generation: Int
    }

    /// The lines of `PRAGMA integrity_check` other than `ok`.
    package var integrityProblems: [String]
    /// Generations whose document does not hash to the stored content hash.
    package var hashMismatches: [Mismatch]
    /// How many generations were hashed.
    package var snapshotsChecked: Int

    /// Whether the file passed every check.
    package var isHealthy: Bool { integrityProblems.isEmpty && hashMismatches.isEmpty }
}

/// What opening the store had to do to a damaged file.
package struct StoreRecovery: Hashable, Sendable {
    /// Why the old file was set aside.
    package var reason: StoreError
    /// Where the old file (and its `-wal`/`-shm`) now is; it is never deleted.
    package var movedAsideTo: String
    /// How many snapshots could be read from the old file, verified and copied into the fresh one.
    package var salvagedSnapshots: Int
}
