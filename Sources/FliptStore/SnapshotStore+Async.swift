import Foundation

/// The async forms of the store's methods: each runs the synchronous form on the store's own thread and suspends
/// the calling task until it is done, so that no thread of Swift's cooperative pool waits on SQLite (a lock held
/// by another process, a busy file being switched to WAL, a migration). Async code picks these forms by itself.
extension SnapshotStore {
    /// Opens the cache at `path` as the synchronous initialiser does, on the store's own thread: the open
    /// retries, the integrity checks and the migrations block that thread, not the calling task's.
    package convenience init(path: String, options: Options = Options()) async throws(StoreError) {
        let thread = StoreThread(name: SnapshotStore.threadName)
        let opened = try await thread.run { () throws(StoreError) in
            try SnapshotStore.openFile(path: path, options: options)
        }
        self.init(path: path, options: options, opened: opened, thread: thread)
    }

    /// The name of the store threads, as `top -H` and debuggers show it (Linux keeps 15 characters).
    static let threadName = "flipt-store"

    /// ``lastGood(for:)``, run on the store's thread.
    package func lastGood(for key: SnapshotKey) async throws(StoreError) -> StoredSnapshot? {
        try await thread.run { () throws(StoreError) in try self.lastGood(for: key) }
    }

    /// ``snapshot(for:generation:)``, run on the store's thread.
    package func snapshot(for key: SnapshotKey, generation: Int) async throws(StoreError) -> StoredSnapshot? {
        try await thread.run { () throws(StoreError) in try self.snapshot(for: key, generation: generation) }
    }

    /// ``history(for:)``, run on the store's thread.
    package func history(for key: SnapshotKey) async throws(StoreError) -> [SnapshotMetadata] {
        try await thread.run { () throws(StoreError) in try self.history(for: key) }
    }

    /// ``attempts(for:limit:)``, run on the store's thread.
    package func attempts(for key: SnapshotKey, limit: Int = 20) async throws(StoreError) -> [SyncAttempt] {
        try await thread.run { () throws(StoreError) in try self.attempts(for: key, limit: limit) }
    }

    /// ``entries()``, run on the store's thread.
    package func entries() async throws(StoreError) -> [CacheEntry] {
        try await thread.run { () throws(StoreError) in try self.entries() }
    }

    /// ``changeCounter()``, run on the store's thread.
    package func changeCounter() async throws(StoreError) -> Int64 {
        try await thread.run { () throws(StoreError) in try self.changeCounter() }
    }

    /// ``keys()``, run on the store's thread.
    package func keys() async throws(StoreError) -> [SnapshotKey] {
        try await thread.run { () throws(StoreError) in try self.keys() }
    }

    /// ``save(_:for:attempt:)``, run on the store's thread, then a ``checkpoint()`` there, so that the document is
    /// in the database file, not only in the write-ahead log, when the process stops without closing the store.
    @discardableResult
    package func save(
        _ snapshot: NewSnapshot,
        for key: SnapshotKey,
        attempt: SyncAttempt? = nil
    ) async throws(StoreError) -> SnapshotMetadata {
        try await thread.run { () throws(StoreError) in
            let saved = try self.save(snapshot, for: key, attempt: attempt)
            self.checkpoint()
            return saved
        }
    }

    /// ``recordNotModified(for:at:attempt:)``, run on the store's thread.
    @discardableResult
    package func recordNotModified(
        for key: SnapshotKey,
        at date: Date,
        attempt: SyncAttempt? = nil
    ) async throws(StoreError) -> SnapshotMetadata? {
        try await thread.run { () throws(StoreError) in try self.recordNotModified(for: key, at: date, attempt: attempt)
        }
    }

    /// ``recordAttempt(_:for:)``, run on the store's thread.
    package func recordAttempt(_ attempt: SyncAttempt, for key: SnapshotKey) async throws(StoreError) {
        try await thread.run { () throws(StoreError) in try self.recordAttempt(attempt, for: key) }
    }

    /// ``rollback(for:to:pinning:)``, run on the store's thread.
    @discardableResult
    package func rollback(
        for key: SnapshotKey,
        to generation: Int,
        pinning: Bool = true
    ) async throws(StoreError) -> SnapshotMetadata {
        try await thread.run { () throws(StoreError) in try self.rollback(for: key, to: generation, pinning: pinning) }
    }

    /// ``pin(for:)``, run on the store's thread.
    package func pin(for key: SnapshotKey) async throws(StoreError) -> RollbackPin? {
        try await thread.run { () throws(StoreError) in try self.pin(for: key) }
    }

    /// ``unpin(for:)``, run on the store's thread.
    @discardableResult
    package func unpin(for key: SnapshotKey) async throws(StoreError) -> RollbackPin? {
        try await thread.run { () throws(StoreError) in try self.unpin(for: key) }
    }

    /// ``prune(keeping:)``, run on the store's thread.
    @discardableResult
    package func prune(keeping generationsKept: Int? = nil) async throws(StoreError) -> Int {
        try await thread.run { () throws(StoreError) in try self.prune(keeping: generationsKept) }
    }

    /// ``removeEntry(for:)``, run on the store's thread.
    @discardableResult
    package func removeEntry(for key: SnapshotKey) async throws(StoreError) -> Bool {
        try await thread.run { () throws(StoreError) in try self.removeEntry(for: key) }
    }

    /// ``verify()``, run on the store's thread.
    package func verify() async throws(StoreError) -> VerificationReport {
        try await thread.run { () throws(StoreError) in try self.verify() }
    }

    /// ``appliedMigrations()``, run on the store's thread.
    package func appliedMigrations() async throws(StoreError) -> [(name: String, appliedAt: Date?)] {
        try await thread.run { () throws(StoreError) in try self.appliedMigrations() }
    }
}
