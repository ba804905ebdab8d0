import Flipt
import FliptEngine
import FliptStore
import Foundation

extension CacheOptionGroup {
    /// Opens the cache read-only, so that commands that only read work on a write-protected file and never
    /// change it.
    ///
    /// - Parameter integrityCheck: whether to run SQLite's quick check first and re-hash each document read
    ///   (off for `cache verify`, which runs the full checks itself and reports what it finds).
    func openForReading(integrityCheck: Bool = true) throws -> SnapshotStore {
        let path = self.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure(
                ExitStatus.noEntry,
                "there is no cache file at \(path); run `flipt-offline sync --cache \(path) --url URL` first, or "
                    + "pass the right --cache"
            )
        }
        do {
            return try SnapshotStore(
                path: path,
                options: SnapshotStore.Options(
                    checksIntegrityOnOpen: integrityCheck,
                    verifiesDocumentsOnRead: integrityCheck,
                    readOnly: true
                )
            )
        } catch {
            throw CommandFailure.cache(error, doing: "read the cache")
        }
    }

    /// Opens the cache for writing, creating it (and its directory, owner-only) when missing.
    ///
    /// A file that can only be opened read-only is an error: the command would otherwise seem to succeed
    /// without storing anything. A damaged file is moved aside by the store; a note on standard error says so.
    func openForWriting(generationsKept: Int = 3) throws -> SnapshotStore {
        let path = self.path
        do {
            try CacheOptions.createDirectory(forCacheFile: path)
        } catch {
            throw CommandFailure(
                ExitStatus.cache,
                "cannot create the cache directory \((path as NSString).deletingLastPathComponent) "
                    + "(\(error.localizedDescription)); create it or pass another --cache"
            )
        }
        let store: SnapshotStore
        do {
            store = try SnapshotStore(path: path, options: SnapshotStore.Options(generationsKept: generationsKept))
        } catch {
            throw CommandFailure.cache(error, doing: "open the cache for writing")
        }
        if let reason = store.readOnlyReason {
            throw CommandFailure(
                ExitStatus.cache,
                "the cache file \(path) can only be read (\(reason)); fix its permissions or pass another --cache"
            )
        }
        if let recovery = store.recovery {
            Terminal.note(
                "note: the cache file was damaged (\(recovery.reason.message)); it was moved to "
                    + "\(recovery.movedAsideTo) and \(recovery.salvagedSnapshots) snapshot(s) were salvaged into a "
                    + "fresh file"
            )
        }
        return store
    }
}

extension SnapshotStore {
    /// The last good snapshot of `key`, or a ``CommandFailure`` that says how to get one.
    func requireLastGood(for key: SnapshotKey) throws -> StoredSnapshot {
        let stored: StoredSnapshot?
        do {
            stored = try lastGood(for: key)
        } catch {
            throw CommandFailure.cache(error, doing: "read the last good snapshot")
        }
        guard let stored else {
            throw CommandFailure(
                ExitStatus.noEntry,
                "the cache holds no usable snapshot for \(key); run `flipt-offline sync` or `flipt-offline cache import`"
            )
        }
        if !stored.metadata.isLastGood {
            // A store that verifies documents on read fell back to an older generation.
            Terminal.note(
                "warning: the last good snapshot of \(key) failed its SHA-256 check; using generation "
                    + "\(stored.generation), the newest intact one; run `flipt-offline cache verify`"
            )
        }
        return stored
    }

    /// One stored generation of `key`, or a ``CommandFailure`` that lists the stored ones.
    func requireSnapshot(for key: SnapshotKey, generation: Int) throws -> StoredSnapshot {
        do {
            if let stored = try snapshot(for: key, generation: generation) { return stored }
            let stored = try history(for: key).map { String($0.generation) }
            throw CommandFailure(
                ExitStatus.noEntry,
                "generation \(generation) of \(key) is not stored (stored: \(stored.joined(separator: ", "))); "
                    + "see `flipt-offline cache history`"
            )
        } catch let error as StoreError {
            throw CommandFailure.cache(error, doing: "read generation \(generation)")
        }
    }
}

extension StoredSnapshot {
    /// The document decoded by the engine, or a ``CommandFailure`` saying the stored generation is unusable.
    func decoded() throws -> Snapshot {
        do {
            return try Snapshot(document: document)
        } catch {
            throw CommandFailure(
                ExitStatus.invalidDocument,
                "generation \(generation) of \(key) no longer decodes (\(error)); roll back with "
                    + "`flipt-offline cache rollback` or sync again"
            )
        }
    }
}
