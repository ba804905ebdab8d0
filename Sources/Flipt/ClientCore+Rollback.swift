import FliptEngine
import FliptStore
import FliptSync
import Foundation

extension ClientCore {
    /// Handles a fetched document while an operator's rollback pins the cache (`flipt-offline cache rollback`).
    ///
    /// Returns `false` when no pin holds this document off: the caller applies it as usual (the save lifts a pin
    /// of other content). Returns `true` when the document is the one rolled back from: the store keeps the
    /// pinned generation (and logs the attempt as held), and the client serves that generation, switching to it
    /// if it still served the document rolled back from.
    func holdsOffRollback(_ fetched: FetchedSnapshot, at now: Date, timing: SyncLoop.Timing) async -> Bool {
        guard let pin = await currentPin(), pin.rolledBackFromHash == SHA256.hex(fetched.document) else {
            return false
        }
        await persist(.updated(fetched), timing: timing, at: now, action: "record the held-off snapshot")
        logger.warning(
            """
            The server still sends the snapshot an operator rolled back from; serving the pinned generation \
            (`flipt-offline cache unpin` accepts the server's snapshot)
            """,
            metadata: ["namespace": "\(namespace)", "generation": "\(pin.generation)"]
        )
        await servePinned(pin, at: now)
        return true
    }

    /// After a `304 Not Modified`: when the snapshot in memory is the one an operator has since rolled back from,
    /// switch to the pinned generation (the server confirmed the document the rollback holds off).
    func servePinnedAfterConfirmation(at now: Date) async {
        guard let pin = await currentPin() else { return }
        let document = state.withLock { $0.served?.document }
        guard let document, document.contentHash() == pin.rolledBackFromHash else { return }
        await servePinned(pin, at: now)
    }

    /// The pin on the client's cache key, or `nil` (no cache, not pinned, or the cache unreadable), read on the
    /// store's thread.
    func currentPin() async -> RollbackPin? {
        guard let store else { return nil }
        let pin: RollbackPin?
        do {
            pin = try await store.pin(for: key)
        } catch {
            return nil
        }
        state.withLock { $0.pinnedByRollback = pin != nil }
        return pin
    }

    /// Loads the pinned generation and serves it, unless it is already served.
    private func servePinned(_ pin: RollbackPin, at now: Date) async {
        guard let store else { return }
        let stored: StoredSnapshot
        let snapshot: Snapshot
        do {
            guard let found = try await store.snapshot(for: key, generation: pin.generation) else { return }
            stored = found
            snapshot = try Snapshot(document: stored.document, namespace: namespace)
        } catch {
            logger.error(
                "Could not load the pinned generation from the cache",
                metadata: ["generation": "\(pin.generation)", "error": "\(error)"]
            )
            return
        }
        let served = Served(stored: stored, snapshot: snapshot, at: now)
        let current = state.withLock { $0.served?.document }
        if let current, current.count == served.document.count, current.contentHash() == served.document.contentHash() {
            return
        }
        _ = replace(with: served, at: now)
    }
}
