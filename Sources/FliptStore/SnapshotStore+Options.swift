import Logging

extension SnapshotStore {
    /// How a ``SnapshotStore`` opens and maintains its file.
    package struct Options: Sendable {
        /// How many snapshot generations to keep per key, the last good one always included (default 3).
        package var generationsKept: Int
        /// How many sync attempts to keep per key (default 100).
        package var attemptsKept: Int
        /// How long to wait for another connection's lock before failing with ``StoreError/Code/busy``.
        package var busyTimeout: Duration
        /// An upper bound on the file size in bytes (`PRAGMA max_page_count`); writes beyond it fail with
        /// ``StoreError/Code/full`` and leave the last good snapshot in place. `nil` for no limit.
        package var sizeLimit: Int?
        /// Whether to run a full `PRAGMA quick_check` at open (default `false`).
        ///
        /// The full check reads every page, which roughly doubles a cold load when the cache holds megabytes of
        /// documents. Without it the store still checks its bookkeeping tables at open, verifies each document
        /// it serves against its SHA-256, and moves a file aside as soon as SQLite reports it damaged.
        package var checksIntegrityOnOpen: Bool
        /// Whether ``SnapshotStore/lastGood(for:)`` re-hashes the document before serving it (default `false`).
        ///
        /// SQLite finds structural damage by itself, and the engine rejects a document that no longer parses;
        /// this check also catches bytes changed in place, at the cost of a SHA-256 pass (about 7 ms per MB
        /// here, most of what reading adds to a cold load). ``SnapshotStore/verify()`` always checks every hash.
        package var verifiesDocumentsOnRead: Bool
        /// Open read-only even when the file is writable (for inspection tools).
        package var readOnly: Bool
        /// Whether every commit is on stable storage before it returns (default `true`).
        ///
        /// With `true` (`PRAGMA synchronous = FULL`) a write syncs the write-ahead log at each commit, so a
        /// snapshot reported saved survives a power cut: what an edge device that loses power needs, and
        /// cheap because writes are rare (one per fetched snapshot or sync attempt). With `false`
        /// (`synchronous = NORMAL`) the file still cannot be corrupted, but the last commits before a power cut
        /// may be lost. `flipt-bench store` measures the save time of both.
        package var syncsEachCommit: Bool
        /// Where the store reports recoveries and fallbacks (a no-op logger by default).
        package var logger: Logger

        /// Creates options; every parameter has the default described on its property.
        package init(
            generationsKept: Int = 3,
            attemptsKept: Int = 100,
            busyTimeout: Duration = .seconds(5),
            sizeLimit: Int? = nil,
            checksIntegrityOnOpen: Bool = false,
            verifiesDocumentsOnRead: Bool = false,
            readOnly: Bool = false,
            syncsEachCommit: Bool = true,
            logger: Logger = Logger(label: "flipt.store", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.generationsKept = generationsKept
            self.attemptsKept = attemptsKept
            self.busyTimeout = busyTimeout
            self.sizeLimit = sizeLimit
            self.checksIntegrityOnOpen = checksIntegrityOnOpen
            self.verifiesDocumentsOnRead = verifiesDocumentsOnRead
            self.readOnly = readOnly
            self.syncsEachCommit = syncsEachCommit
            self.logger = logger
        }
    }
}
