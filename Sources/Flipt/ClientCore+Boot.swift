import FliptEngine
import FliptStore
import Foundation

/// Boot: the cache file and the snapshot served before any network traffic.
extension ClientCore {
    /// Opens the cache file of `options` (shared with the other clients of the process), or nil without a cache.
    static func openStore(options: ClientOptions) throws(FliptError) -> SnapshotStore? {
        guard let path = options.cache.resolvedPath else { return nil }
        do {
            try CacheOptions.createDirectory(forCacheFile: path)
        } catch {
            throw FliptError(
                .invalidConfiguration,
                "Cannot create the cache directory \((path as NSString).deletingLastPathComponent): "
                    + "\(error.localizedDescription). Set ClientOptions.cache.location to a writable path, or .disabled."
            )
        }
        do {
            let store = try SharedResources.store(
                path: path,
                options: SnapshotStore.Options(generationsKept: options.cache.historyDepth, logger: options.logger)
            )
            if let recovery = store.recovery {
                options.logger.error(
                    "The cache file was damaged and was moved aside; a fresh one was created",
                    metadata: [
                        "reason": "\(recovery.reason)", "moved_to": "\(recovery.movedAsideTo)",
                        "salvaged_snapshots": "\(recovery.salvagedSnapshots)",
                    ]
                )
            }
            if let reason = store.readOnlyReason {
                options.logger.warning(
                    "The cache is read-only; cached snapshots are served but new ones are kept in memory only",
                    metadata: ["reason": "\(reason)"]
                )
            }
            return store
        } catch {
            throw FliptError(
                .invalidConfiguration,
                "The cache file \(path) cannot be used: \(error). Fix or remove the file, or set "
                    + "ClientOptions.cache.location to another path or .disabled.",
                underlying: error
            )
        }
    }

    /// The snapshot to serve before any network traffic: the last good cached one (falling back to older
    /// generations if the newest no longer decodes), else the seed (saved in the cache), else none. Sets the
    /// state's `served`, and its `pinnedByRollback` (from the row read when the cache's last good snapshot is
    /// served, else by asking the store).
    static func boot(
        sync: SnapshotSync,
        store: SnapshotStore?,
        options: ClientOptions,
        state: inout State
    ) throws(FliptError) {
        let (served, pinned) = try bootSnapshot(sync: sync, store: store, options: options, state: &state)
        state.served = served
        // Read here, with the boot snapshot, so that starting the sync later touches no SQLite on the caller's
        // thread.
        state.pinnedByRollback = pinned ?? ((try? store?.pin(for: sync.key)) != nil)
    }

    /// The snapshot to serve before any network traffic (see ``boot(sync:store:options:state:)``), and whether a
    /// rollback pins it when that is known from the row it was read from.
    private static func bootSnapshot(
        sync: SnapshotSync,
        store: SnapshotStore?,
        options: ClientOptions,
        state: inout State
    ) throws(FliptError) -> (Served?, pinned: Bool?) {
        let now = options.wallClock()
        if let store, let cached = sync.lastUsable(in: store, logger: options.logger) {
            // The pin of the key's last good row is the one `SnapshotStore.pin(for:)` reads.
            let metadata = cached.0.metadata
            return (
                Served(stored: cached.0, snapshot: cached.1, at: now), metadata.isLastGood ? metadata.isPinned : nil
            )
        }
        guard let seed = options.snapshot else { return (nil, nil) }
        let document: [UInt8]
        do {
            document = try SnapshotString.document(from: seed.utf8)
        } catch {
            throw FliptError(
                .invalidSnapshot,
                "The seed snapshot in ClientOptions.snapshot is not usable: \(error). Pass a string from "
                    + "getSnapshot() or `flipt-offline cache export`, or a snapshot document as JSON."
            )
        }
        let snapshot = try SnapshotSync.snapshot(of: document, namespace: sync.namespace, from: .seed)
        if let store, !store.isReadOnly {
            do {
                try store.save(
                    NewSnapshot(document: Data(document), etag: nil, fetchedAt: now, serverDate: nil, source: .seed),
                    for: sync.key
                )
            } catch {
                state.progress.wroteCache(problem: "\(error)", readOnly: false)
                options.logger.warning("Could not save the seed snapshot in the cache", metadata: ["error": "\(error)"])
            }
        }
        return (Served(fresh: snapshot, document: document, source: .seed, etag: nil, at: now), nil)
    }
}
