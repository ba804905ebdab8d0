import Foundation
import Logging

/// Keeps one namespace in sync by polling or streaming, and reports each outcome; runs until cancelled.
///
/// Polling: a conditional fetch at once, then one after every jittered ``SyncConfiguration/updateInterval`` counted
/// from the end of the previous fetch. Streaming: a conditional fetch at once, then the stream, read line by line
/// and reopened with ``ReconnectPolicy`` back-off whenever it ends. Failures are reported and never stop the loop;
/// the ETag only ever describes a snapshot that was accepted.
///
/// Metrics (swift-metrics, reported to the backend in force when the loop is created; nothing without one): `flipt_sync_fetches_total{namespace, result, status}` with `result` `updated`, `not_modified` or
/// `failed` and `status` the HTTP status or `none`; `flipt_sync_fetch_duration_seconds{namespace}`, a timer of
/// each poll and stream connection, retries included; `flipt_sync_received_bytes_total{namespace}`, the decoded
/// bytes of the new documents; `flipt_sync_failures_total{namespace, error}` by kind of failure. Each poll runs in a
/// `flipt.sync.fetch` span (swift-distributed-tracing) when a tracer is in force.
package struct SyncLoop: Sendable {
    /// One thing that happened.
    package enum Event: Sendable {
        /// A new valid snapshot arrived (from the snapshot endpoint or the stream).
        case updated(FetchedSnapshot)
        /// The server confirmed that the snapshot with this ETag is current (a `304`).
        case unchanged(etag: String)
        /// A fetch, a stream connection or a stream line failed; nothing was applied.
        case failed(SyncError)
        /// The stream is open: response headers arrived.
        case streamConnected
        /// The stream ended; the loop reconnects after `reconnectDelay`.
        case streamEnded(reconnectDelay: Duration)
    }

    /// The fetcher whose configuration and credential are used.
    package let fetcher: SnapshotFetcher
    private let clock: any Clock<Duration>
    private let random: RandomSource
    private let logger: Logger
    private let metrics: SyncMetrics?
    private let tracing: SyncTracing

    /// Creates a loop; its metrics go to the swift-metrics factory in force now (the bootstrapped backend, or a
    /// task-local one), none without a backend.
    ///
    /// - Parameters:
    ///   - fetcher: sends the requests.
    ///   - clock: measures the poll interval and the reconnect back-off.
    ///   - random: the jitter source.
    ///   - logger: silent by default.
    package init(
        fetcher: SnapshotFetcher,
        clock: any Clock<Duration> = ContinuousClock(),
        random: RandomSource = .system,
        logger: Logger = .discarding
    ) {
        self.fetcher = fetcher
        self.clock = clock
        self.random = random
        self.logger = logger
        self.metrics = SyncMetrics.current(namespace: fetcher.configuration.namespace)
        self.tracing = SyncTracing()
    }

    /// When the attempt behind an event started, and how long it took.
    package struct Timing: Sendable, Hashable {
        /// When the request (or the stream connection) started, on the wall clock.
        package var startedAt: Date
        /// How long the request took, retries included, on the monotonic clock; zero for a stream message.
        package var duration: Duration

        /// Creates a timing.
        package init(startedAt: Date, duration: Duration) {
            self.startedAt = startedAt
            self.duration = duration
        }
    }

    /// Runs until the task is cancelled, reporting every outcome in order.
    ///
    /// - Parameters:
    ///   - etag: the ETag of the snapshot the caller already has (from its cache), or nil.
    ///   - onEvent: awaited for each event before the loop goes on.
    package func run(etag: String?, onEvent: @Sendable (Event) async -> Void) async {
        await run(etag: etag, onTimedEvent: { event, _ in await onEvent(event) })
    }

    /// Runs until the task is cancelled, reporting every outcome in order with the timing of its attempt.
    ///
    /// - Parameters:
    ///   - etag: the ETag of the snapshot the caller already has (from its cache), or nil.
    ///   - onTimedEvent: awaited for each event before the loop goes on.
    ///
    /// Each outcome is also counted in the sync's metrics (see ``SyncLoop``) when a swift-metrics backend was in
    /// force when the loop was created.
    package func run(etag: String?, onTimedEvent: @Sendable (Event, Timing) async -> Void) async {
        await run(etag: etag, currentETag: nil, onTimedEvent: onTimedEvent)
    }

    /// Runs until the task is cancelled, asking `currentETag` for the ETag before each request and each stream
    /// connection instead of keeping its own: for a caller that also applies snapshots from elsewhere (a forced
    /// refresh), so that the next poll confirms the snapshot in use rather than the one the loop saw last.
    ///
    /// - Parameters:
    ///   - currentETag: the ETag of the snapshot the caller has now, or nil for an unconditional request.
    ///   - onTimedEvent: awaited for each event before the loop goes on.
    package func run(
        currentETag: @escaping @Sendable () -> String?,
        onTimedEvent: @Sendable (Event, Timing) async -> Void
    ) async {
        await run(etag: currentETag(), currentETag: currentETag, onTimedEvent: onTimedEvent)
    }

    private func run(
        etag: String?,
        currentETag: (@Sendable () -> String?)?,
        onTimedEvent: @Sendable (Event, Timing) async -> Void
    ) async {
        @Sendable func report(_ event: Event, _ timing: Timing) async {
            metrics?.record(event, timing: timing)
            await onTimedEvent(event, timing)
        }
        switch fetcher.configuration.fetchMode {
        case .polling: await poll(etag: etag, currentETag: currentETag, onEvent: report)
        case .streaming: await stream(etag: etag, currentETag: currentETag, onEvent: report)
        }
    }

    /// Fetches once now, outside the loop's schedule (a forced refresh): the same conditional request with the
    /// same retries, counted in the same metrics; the outcome is returned instead of reported.
    ///
    /// - Parameter etag: the ETag of the snapshot the caller has, or nil for an unconditional request.
    /// - Returns: ``Event/updated(_:)``, ``Event/unchanged(etag:)`` or ``Event/failed(_:)`` with the timing of
    ///   the attempt; a cancelled fetch is ``Event/failed(_:)`` with a ``SyncError/Kind/cancelled`` error.
    package func fetchNow(etag: String?) async -> (event: Event, timing: Timing) {
        let start = Self.startTiming()
        let event: Event
        do {
            switch try await fetcher.fetch(ifNoneMatch: etag) {
            case .modified(let fetched): event = .updated(fetched)
            case .notModified(let current): event = .unchanged(etag: current)
            }
        } catch {
            event = .failed(error)
        }
        let timing = Self.timing(since: start)
        if case .failed(let error) = event, error.kind == .cancelled {
            return (event, timing)
        }
        metrics?.record(event, timing: timing)
        return (event, timing)
    }

    /// Starts timing an attempt.
    private static func startTiming() -> (Date, ContinuousClock.Instant) { (Date(), .now) }

    private static func timing(since start: (Date, ContinuousClock.Instant)) -> Timing {
        Timing(startedAt: start.0, duration: .now - start.1)
    }

    /// The wait before the next poll: uniform in `interval × (1 ± jitter)`.
    package static func pollDelay(
        interval: Duration,
        jitter: Double,
        using random: inout some RandomNumberGenerator
    ) -> Duration {
        guard jitter > 0 else { return interval }
        let factor = 1 + jitter * Double.random(in: -1...1, using: &random)
        return interval * factor
    }

    private func poll(
        etag initial: String?,
        currentETag: (@Sendable () -> String?)?,
        onEvent: @Sendable (Event, Timing) async -> Void
    ) async {
        var etag = initial
        var random = self.random
        let configuration = fetcher.configuration
        while !Task.isCancelled {
            if let currentETag { etag = currentETag() }
            guard let next = await fetchOnce(etag: etag, onEvent: onEvent) else { return }
            etag = next.etag
            let delay = Self.pollDelay(
                interval: configuration.updateInterval,
                jitter: configuration.jitter,
                using: &random
            )
            do {
                try await clock.sleep(for: delay)
            } catch {
                return
            }
        }
    }

    /// One fetch; returns the ETag to use next (wrapped), or nil when cancelled.
    private func fetchOnce(etag: String?, onEvent: @Sendable (Event, Timing) async -> Void) async -> ETagBox? {
        let start = Self.startTiming()
        do {
            switch try await tracing.fetch(with: fetcher, ifNoneMatch: etag) {
            case .modified(let fetched):
                await onEvent(.updated(fetched), Self.timing(since: start))
                // A 200 without ETag means the next request must be unconditional.
                return ETagBox(etag: fetched.etag)
            case .notModified(let current):
                await onEvent(.unchanged(etag: current), Self.timing(since: start))
                return ETagBox(etag: current)
            }
        } catch {
            if error.kind == .cancelled || Task.isCancelled { return nil }
            logger.warning("flipt sync failed", metadata: ["error": "\(error.message)"])
            await onEvent(.failed(error), Self.timing(since: start))
            return ETagBox(etag: etag)
        }
    }

    private struct ETagBox {
        var etag: String?
    }

    private func stream(
        etag initial: String?,
        currentETag: (@Sendable () -> String?)?,
        onEvent: @Sendable (Event, Timing) async -> Void
    ) async {
        guard let first = await fetchOnce(etag: initial, onEvent: onEvent) else { return }
        var etag = first.etag
        var reconnect = fetcher.configuration.reconnectPolicy
        reconnect.reset()
        var random = self.random
        let namespace = fetcher.configuration.namespace
        let url = fetcher.configuration.streamURL.absoluteString
        while !Task.isCancelled {
            var delivered = false
            if let currentETag { etag = currentETag() }
            let connecting = Self.startTiming()
            do throws(SyncError) {
                let response = try await fetcher.openStream(etag: etag)
                await onEvent(.streamConnected, Self.timing(since: connecting))
                let received = { Timing(startedAt: Date(), duration: .zero) }
                var splitter = NDJSONSplitter(maximumLineLength: fetcher.configuration.maximumDocumentSize)
                func handle(_ line: [UInt8]) async {
                    switch StreamMessage(line: line) {
                    case .blank:
                        return
                    case .result(let document, let digest):
                        do {
                            let snapshot = try FetchedSnapshot.validate(document, namespace: namespace, url: url)
                            delivered = true
                            if let digest { etag = digest }
                            await onEvent(
                                .updated(
                                    FetchedSnapshot(
                                        snapshot: snapshot,
                                        document: document,
                                        etag: digest,
                                        serverDate: response.head.value(for: "Date").flatMap(HTTPDate.parse),
                                        status: 200,
                                        source: .stream
                                    )
                                ),
                                received()
                            )
                        } catch {
                            await onEvent(.failed(error), received())
                        }
                    case .error(let code, let message):
                        let codeText = code.map { " (code \($0))" } ?? ""
                        await onEvent(
                            .failed(
                                SyncError(
                                    .streamError,
                                    "The Flipt server reported an error on the stream\(codeText): \(message). The "
                                        + "stream will be reopened; the last good snapshot stays in use.",
                                    url: url
                                )
                            ),
                            received()
                        )
                    case .invalid(let reason):
                        await onEvent(
                            .failed(
                                SyncError(
                                    .badDocument,
                                    "The stream sent a line that is not a snapshot message (\(reason)). It was "
                                        + "ignored; the stream stays open.",
                                    url: url
                                )
                            ),
                            received()
                        )
                    }
                }
                do {
                    for try await chunk in response.body {
                        for line in try splitter.append(chunk) { await handle(line) }
                    }
                    if Task.isCancelled { return }
                    if let last = splitter.finish() { await handle(last) }
                } catch let error as NDJSONSplitter.LineTooLong {
                    throw SyncError(
                        .badDocument,
                        "A stream line exceeded \(error.limit) bytes, the largest snapshot document this client "
                            + "accepts (ClientOptions.maximumDocumentSize, --max-document-size); the connection "
                            + "was dropped and will be reopened.",
                        url: url
                    )
                } catch let error as SyncError {
                    throw error
                } catch {
                    throw SyncError(.network, "Reading the stream failed: \(error).", url: url)
                }
            } catch {
                if error.kind == .cancelled || Task.isCancelled { return }
                logger.warning("flipt stream failed", metadata: ["error": "\(error.message)"])
                await onEvent(.failed(error), Self.timing(since: connecting))
            }
            if Task.isCancelled { return }
            let delay = reconnect.next(afterConnectionDelivering: delivered, using: &random)
            await onEvent(.streamEnded(reconnectDelay: delay), Self.timing(since: connecting))
            do {
                try await clock.sleep(for: delay)
            } catch {
                return
            }
        }
    }
}
