import FliptEngine
import FliptStore
import FliptSync
import Foundation
import Logging

/// The sync layer under ``FliptClient`` and `flipt-offline sync`: the checks that turn options into a sync
/// configuration, the fetcher and loop of one namespace, the check of a document given by hand or read back from
/// the cache, and what each fetch outcome writes to the cache and to the sync status.
///
/// Both go through it, so that they accept the same URLs, check documents the same way and leave the same rows in
/// the cache for the same outcome. It does not hold the snapshot in use (the client does), and it throws cache
/// failures to its caller: `sync` stops on one, the client notes it in its status and keeps serving.
package struct SnapshotSync: Sendable {
    /// The namespace synced.
    package let namespace: String
    /// The checked configuration.
    package let configuration: SyncConfiguration
    /// The cache entry that fetches of this configuration write to.
    package let key: SnapshotKey
    /// Sends the requests.
    package let fetcher: SnapshotFetcher
    /// The background loop (and one-off fetches); made here so that its metrics go to the factory in force where
    /// the layer is made.
    package let loop: SyncLoop

    /// Checks `options` for `namespace` and makes the fetcher and loop.
    ///
    /// - Parameters:
    ///   - transport: the HTTP client for the checked configuration (the client's shared or given one; `sync`'s
    ///     own with an idle timeout).
    /// - Throws: ``FliptError/Code/invalidConfiguration`` naming what to change.
    package init(
        namespace: String,
        options: ClientOptions,
        transport: (SyncConfiguration) throws(SyncError) -> any HTTPTransport
    ) throws(FliptError) {
        let configuration = try Self.configuration(namespace: namespace, options: options)
        do throws(SyncError) {
            fetcher = try SnapshotFetcher(
                configuration: configuration,
                transport: try transport(configuration),
                logger: options.logger
            )
        } catch {
            throw FliptError(.invalidConfiguration, error.message, underlying: error)
        }
        self.namespace = namespace
        self.configuration = configuration
        loop = SyncLoop(fetcher: fetcher, logger: options.logger)
        key = SnapshotKey(
            url: configuration.url,
            environment: configuration.environment,
            namespace: namespace,
            reference: configuration.reference
        )
    }

    // MARK: Configuration

    /// The one URL rule: an `http` or `https` URL with a host (a path prefix and a trailing slash are fine).
    ///
    /// - Throws: ``FliptError/Code/invalidConfiguration`` saying so.
    package static func serverURL(_ text: String) throws(FliptError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw FliptError(
                .invalidConfiguration,
                "The Flipt URL \"\(text)\" is not an http or https URL with a host; use one such as "
                    + "http://localhost:8080."
            )
        }
        return url
    }

    /// The sync configuration of `options` for `namespace`, after every check of the options.
    ///
    /// - Throws: ``FliptError/Code/invalidConfiguration`` naming what to change.
    package static func configuration(
        namespace: String,
        options: ClientOptions
    ) throws(FliptError) -> SyncConfiguration {
        guard !isBlank(namespace) else {
            throw FliptError(.invalidConfiguration, "The namespace is empty; pass a namespace key such as \"default\".")
        }
        let url = try serverURL(options.url)
        guard options.cache.historyDepth >= 1 else {
            throw FliptError(.invalidConfiguration, "The cache history depth must be at least 1.")
        }
        if let maximumAge = options.cache.maximumAge, maximumAge <= .zero {
            throw FliptError(.invalidConfiguration, "The maximum age must be positive; use nil for no limit.")
        }
        var configuration = SyncConfiguration(
            url: url,
            namespace: namespace,
            environment: options.environment,
            reference: options.reference,
            authentication: options.authentication,
            requestTimeout: options.requestTimeout,
            updateInterval: options.updateInterval,
            jitter: options.updateJitter,
            fetchMode: options.fetchMode,
            tls: options.tls,
            retryPolicy: options.retryPolicy,
            reconnectPolicy: options.reconnectPolicy
        )
        configuration.maximumDocumentSize = options.maximumDocumentSize
        do throws(SyncError) {
            try configuration.validate()
        } catch {
            throw FliptError(.invalidConfiguration, error.message, underlying: error)
        }
        return configuration
    }

    /// Whether `text` is empty or holds only what `CharacterSet.whitespaces` holds (Unicode's space separators,
    /// the tab, and the zero-width space that Foundation's set adds): the namespace check, without Foundation's
    /// bridged `trimmingCharacters(in:)`, which cost ~0.3 ms of a cold boot here (its first call builds NSString
    /// machinery).
    package static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy {
            $0 == "\t" || $0 == "\u{200B}" || $0.properties.generalCategory == .spaceSeparator
        }
    }

    // MARK: Documents

    /// Where a document checked by ``snapshot(of:namespace:from:)`` came from, for its error message.
    package enum DocumentOrigin: Sendable {
        /// ``ClientOptions/snapshot``.
        case seed
        /// A replacement fed in process (`FliptTesting`).
        case replacement
    }

    /// Decodes a document given to the client and checks that it is a snapshot of `namespace`.
    ///
    /// - Throws: ``FliptError/Code/invalidSnapshot`` saying what is wrong and what to pass instead.
    package static func snapshot(
        of document: [UInt8],
        namespace: String,
        from origin: DocumentOrigin
    ) throws(FliptError) -> Snapshot {
        do throws(SnapshotRejection) {
            return try Snapshot(document: document, namespace: namespace)
        } catch {
            let message =
                switch (origin, error) {
                case (.seed, .undecodable(let reason)):
                    "The seed snapshot in ClientOptions.snapshot is not a valid snapshot document (\(reason)). Pass a "
                        + "string from getSnapshot() or `flipt-offline cache export`, or a snapshot document as JSON."
                case (.seed, .otherNamespace(let found)):
                    "The seed snapshot is of namespace \"\(found)\", but the client is for \"\(namespace)\"."
                case (.replacement, .undecodable(let reason)):
                    "The replacement is not a valid snapshot document (\(reason))."
                case (.replacement, .otherNamespace(let found)):
                    "The replacement is a snapshot of namespace \"\(found)\", but the client is for \"\(namespace)\"."
                }
            throw FliptError(.invalidSnapshot, message, underlying: error)
        }
    }

    /// The newest usable cached snapshot of ``key``: the last good one, or, when that no longer decodes as a
    /// snapshot of the namespace (say, after a downgrade), the newest older generation that does. Problems are
    /// logged, never thrown: without a usable cached snapshot the caller starts without one.
    package func lastUsable(in store: SnapshotStore, logger: Logger) -> (StoredSnapshot, Snapshot)? {
        func usable(_ stored: StoredSnapshot) -> (StoredSnapshot, Snapshot)? {
            do throws(SnapshotRejection) {
                return (stored, try Snapshot(document: stored.document, namespace: namespace))
            } catch {
                logger.error(
                    "A cached snapshot cannot be used; skipping it",
                    metadata: ["generation": "\(stored.generation)", "error": "\(error)"]
                )
                return nil
            }
        }
        do {
            guard let lastGood = try store.lastGood(for: key) else { return nil }
            if let found = usable(lastGood) { return found }
            for older in try store.history(for: key) where older.generation != lastGood.generation {
                guard let stored = try store.snapshot(for: key, generation: older.generation),
                    let found = usable(stored)
                else { continue }
                logger.warning(
                    "The newest cached snapshot could not be used; serving an older generation",
                    metadata: ["generation": "\(stored.generation)"]
                )
                return found
            }
        } catch {
            logger.error("Could not read the cache; starting without cached data", metadata: ["error": "\(error)"])
        }
        return nil
    }

    // MARK: Outcomes

    /// Writes what a fetch outcome means for the cache, `now` being when it is recorded: a new document becomes
    /// the next generation with its attempt (the store keeps a rollback's pinned generation when the document is
    /// the one rolled back from), a `304` confirms the last good snapshot, and a failure only adds an attempt row,
    /// so that nothing that failed replaces or deletes the last good snapshot. Stream events write nothing.
    ///
    /// - Returns: the last good snapshot's metadata after the write; nil after a failure, a stream event, or a
    ///   `304` with nothing cached.
    /// - Throws: the store's error; nothing was written then.
    @discardableResult
    package func record(
        _ event: SyncLoop.Event,
        timing: SyncLoop.Timing,
        at now: Date,
        in store: SnapshotStore
    ) async throws(StoreError) -> SnapshotMetadata? {
        switch event {
        case .updated(let fetched):
            return try await store.save(
                NewSnapshot(
                    document: Data(fetched.document),
                    etag: fetched.etag,
                    fetchedAt: now,
                    serverDate: fetched.serverDate,
                    source: .network
                ),
                for: key,
                attempt: SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: .updated,
                    httpStatus: fetched.status,
                    duration: timing.duration
                )
            )
        case .unchanged:
            return try await store.recordNotModified(
                for: key,
                at: now,
                attempt: SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: .notModified,
                    httpStatus: 304,
                    duration: timing.duration
                )
            )
        case .failed(let error):
            try await store.recordAttempt(
                SyncAttempt(
                    startedAt: timing.startedAt,
                    outcome: Self.attemptOutcome(of: error),
                    httpStatus: error.httpStatus,
                    errorClass: error.errorClass,
                    duration: timing.duration
                ),
                for: key
            )
            return nil
        case .streamConnected, .streamEnded:
            return nil
        }
    }

    /// What ``syncOnce(into:)`` did.
    package struct Round: Sendable {
        /// The last good snapshot before the fetch, whose ETag the request carried.
        package var previous: StoredSnapshot?
        /// The fetch's outcome: ``SyncLoop/Event/updated(_:)``, ``SyncLoop/Event/unchanged(etag:)`` or
        /// ``SyncLoop/Event/failed(_:)``.
        package var event: SyncLoop.Event
        /// When the fetch started and how long it took, retries included.
        package var timing: SyncLoop.Timing
        /// The cache write of the outcome: the last good snapshot's metadata after it, or the store's error.
        package var written: Result<SnapshotMetadata?, StoreError>
    }

    /// One conditional fetch into `store` (`flipt-offline sync`): the request carries the ETag of the cached last
    /// good snapshot, and the outcome is written as ``record(_:timing:at:in:)`` writes it, at the time it ends.
    ///
    /// - Throws: the store's error when the last good snapshot cannot be read; nothing was fetched then.
    package func syncOnce(into store: SnapshotStore) async throws(StoreError) -> Round {
        let previous = try await store.lastGood(for: key)
        let (event, timing) = await loop.fetchNow(etag: previous?.etag)
        let written: Result<SnapshotMetadata?, StoreError>
        do throws(StoreError) {
            written = .success(try await record(event, timing: timing, at: Date(), in: store))
        } catch {
            written = .failure(error)
        }
        return Round(previous: previous, event: event, timing: timing, written: written)
    }

    /// How a failed fetch is logged: `rejected` for a document the engine refused, `failed` otherwise.
    package static func attemptOutcome(of error: SyncError) -> SyncAttempt.Outcome {
        error.kind == .badDocument ? .rejected : .failed
    }
}

/// What the fetches of one namespace left behind for a status: when the last attempt was, whether one succeeded,
/// the latest failure, the latest cache problem. Its transitions are plain functions, tested as values.
package struct SyncProgress: Sendable, Hashable {
    /// When the latest fetch ended (or a replacement was applied).
    package var lastAttemptAt: Date?
    /// The latest fetch error; nil once a fetch succeeds.
    package var failure: FliptError?
    /// Whether any fetch has succeeded (a new snapshot or a `304`).
    package var hasFetched = false
    /// Why the cache cannot be written, or the latest write's error; nil after a good write.
    package var cacheProblem: String?
    /// Whether the snapshot in use was reported stale since the last success.
    package var staleReported = false

    /// Creates the progress of a client that has not fetched yet.
    package init(cacheProblem: String? = nil) {
        self.cacheProblem = cacheProblem
    }

    /// A fetch succeeded (or a snapshot was applied) at `now`. Returns whether this ends a failure or a staleness.
    package mutating func succeeded(at now: Date) -> Bool {
        let recovered = failure != nil || staleReported
        failure = nil
        staleReported = false
        lastAttemptAt = now
        hasFetched = true
        return recovered
    }

    /// A fetch failed at `now`.
    package mutating func failed(_ error: FliptError, at now: Date) {
        failure = error
        lastAttemptAt = now
    }

    /// A cache write ended: `problem` is its error, nil for a good write (which clears an earlier problem unless
    /// the cache is read-only, a problem no write clears).
    package mutating func wroteCache(problem: String?, readOnly: Bool) {
        if let problem {
            cacheProblem = problem
        } else if !readOnly {
            cacheProblem = nil
        }
    }

    /// The snapshot in use passed the maximum age; returns whether this is the first report since the last success.
    package mutating func becameStale() -> Bool {
        if staleReported { return false }
        staleReported = true
        return true
    }
}
