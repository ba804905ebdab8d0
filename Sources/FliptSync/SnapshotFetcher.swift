import FliptEngine
import Foundation
import Logging
import Synchronization

/// Fetches the snapshot of one namespace: conditional GETs with retries, deadlines and validation.
///
/// Every request carries `Accept: application/json`, `Accept-Encoding: gzip`, `X-Flipt-Accept-Server-Version`,
/// `X-Flipt-Environment`, `Authorization` (when configured), `User-Agent`, and `If-None-Match` with the stored ETag
/// verbatim. Flipt compresses snapshots and streams for such requests (a 10,000-flag document travels in a few
/// percent of its size); the transport decodes them, so documents, ETags and stream messages are as without. The credential can be replaced at any time; the next request uses
/// it. Cancelling the calling task ends any wait at once.
package final class SnapshotFetcher: Sendable {
    /// The configuration in use (its ``SyncConfiguration/authentication`` is the initial credential).
    package let configuration: SyncConfiguration
    /// Sends the requests.
    package let transport: any HTTPTransport
    private let clock: any Clock<Duration>
    private let random: RandomSource
    private let logger: Logger
    private let credential: Mutex<Authentication>
    private let counters = Mutex(Counters())

    /// Request counters, for diagnostics and tests.
    package struct Counters: Sendable, Hashable {
        /// HTTP attempts started (snapshot and stream, retries included).
        package var attempts = 0
        /// Retries scheduled.
        package var retries = 0

        /// Creates counters.
        package init(attempts: Int = 0, retries: Int = 0) {
            self.attempts = attempts
            self.retries = retries
        }
    }

    /// Creates a fetcher.
    ///
    /// - Parameters:
    ///   - configuration: validated here; an invalid one throws a ``SyncError/Kind/configuration`` error.
    ///   - transport: the HTTP client; by default, with the configuration's TLS options, an
    ///     ``AsyncHTTPClientTransport`` on Linux (through the proxy the environment names, see ``HTTPProxy``) and a
    ///     ``URLSessionTransport`` elsewhere (with the system's proxy settings).
    ///   - clock: used for back-off waits and per-attempt deadlines.
    ///   - random: the jitter source.
    ///   - logger: receives retries and failures (never credentials); silent by default.
    package init(
        configuration: SyncConfiguration,
        transport: (any HTTPTransport)? = nil,
        clock: any Clock<Duration> = ContinuousClock(),
        random: RandomSource = .system,
        logger: Logger = .discarding
    ) throws(SyncError) {
        try configuration.validate()
        self.configuration = configuration
        if let transport {
            self.transport = transport
        } else {
            self.transport = try Self.defaultTransport(for: configuration, logger: logger)
        }
        self.clock = clock
        self.random = random
        self.logger = logger
        self.credential = Mutex(configuration.authentication)
    }

    /// The transport a fetcher creates when given none: ``AsyncHTTPClientTransport`` on Linux (never
    /// FoundationNetworking's URLSession, which busy-waits on a silent connection), through the proxy the
    /// environment names (see ``HTTPProxy``); ``URLSessionTransport`` elsewhere.
    ///
    /// - Parameters:
    ///   - configuration: its TLS options and URL (for the proxy) are used.
    ///   - idleTimeout: the longest silence allowed on a connection (default 7 days, since a quiet stream sends
    ///     nothing for hours). A one-shot fetch can give a short one, so that a server that stops answering ends it.
    ///   - logger: receives the proxy in use and a warning when certificate verification is off.
    /// - Throws: a ``SyncError/Kind/configuration`` error for unusable TLS options or proxy variables.
    package static func defaultTransport(
        for configuration: SyncConfiguration,
        idleTimeout: Duration = .seconds(7 * 24 * 3_600),
        logger: Logger = .discarding
    ) throws(SyncError) -> any HTTPTransport & AnyObject {
        try defaultTransport(url: configuration.url, tls: configuration.tls, idleTimeout: idleTimeout, logger: logger)
    }

    /// The transport a fetcher creates when given none (see ``defaultTransport(for:idleTimeout:logger:)``), for
    /// requests to `url` with the trust settings `tls`: one connection pool that several fetchers of the same
    /// server (one per namespace) can share. It is a class, so that a table of shared transports can hold it weakly
    /// without a dynamic cast (casting an `any HTTPTransport` to `AnyObject` cost ~0.3 ms of a cold boot here).
    ///
    /// - Throws: a ``SyncError/Kind/configuration`` error for unusable TLS options or proxy variables.
    package static func defaultTransport(
        url: URL,
        tls: TLSOptions,
        idleTimeout: Duration = .seconds(7 * 24 * 3_600),
        logger: Logger = .discarding
    ) throws(SyncError) -> any HTTPTransport & AnyObject {
        #if canImport(FoundationNetworking) && canImport(AsyncHTTPClient)
        let proxy = try HTTPProxy.fromEnvironment(for: url)
        if let proxy { logger.info("Requests go through a proxy", metadata: ["proxy": "\(proxy)"]) }
        return try AsyncHTTPClientTransport(tls: tls, idleTimeout: idleTimeout, proxy: proxy, logger: logger)
        #else
        return try URLSessionTransport(tls: tls, idleTimeout: idleTimeout, logger: logger)
        #endif
    }

    /// The credential the next request will carry.
    package var authentication: Authentication {
        credential.withLock { $0 }
    }

    /// Replaces the credential; the next request and the next stream connection use it.
    package func updateAuthentication(_ authentication: Authentication) {
        credential.withLock { $0 = authentication }
    }

    /// Attempts and retries so far.
    package var statistics: Counters {
        counters.withLock { $0 }
    }

    /// Fetches the snapshot once, retrying transient failures.
    ///
    /// - Parameter etag: the stored ETag, sent as `If-None-Match`; nil for an unconditional request.
    /// - Returns: ``FetchOutcome/modified(_:)`` with a validated snapshot, or ``FetchOutcome/notModified(etag:)``.
    /// - Throws: a classified ``SyncError``: statuses, network, timeouts, bad documents, unexpected answers
    ///   (204, a 304 to a request without `If-None-Match`), and cancellation.
    package func fetch(ifNoneMatch etag: String?) async throws(SyncError) -> FetchOutcome {
        let url = configuration.snapshotURL
        let target = url.absoluteString
        let response = try await withRetries(url: url) { () async throws(SyncError) -> TransportResponse in
            let response = try await self.attempt(self.request(for: url, etag: etag))
            guard response.head.status == 200 || response.head.status == 304 else {
                throw Self.error(for: response, url: target)
            }
            return response
        }
        switch response.head.status {
        case 200:
            let snapshot: Snapshot
            do throws(SyncError) {
                snapshot = try FetchedSnapshot.validate(response.body, namespace: configuration.namespace, url: target)
            } catch {
                throw Self.explainingEncoding(of: response.head, error)
            }
            return .modified(
                FetchedSnapshot(
                    snapshot: snapshot,
                    document: response.body,
                    etag: response.head.value(for: "ETag"),
                    serverDate: response.head.value(for: "Date").flatMap(HTTPDate.parse),
                    status: 200,
                    source: .snapshotEndpoint
                )
            )
        case 304:
            guard let etag else {
                throw SyncError(
                    .unexpectedResponse,
                    "The server answered 304 Not Modified to a request without If-None-Match, so there is no "
                        + "snapshot to use. Check for a caching proxy between the client and Flipt.",
                    url: target
                )
            }
            return .notModified(etag: etag)
        default:
            throw Self.error(for: response, url: target)
        }
    }

    /// `error`, or, when the body that failed came with a `Content-Encoding` the transport left encoded (such as
    /// `br`, which a proxy may add although the request asked for gzip only), an error that says so.
    static func explainingEncoding(of head: TransportResponseHead, _ error: SyncError) -> SyncError {
        guard error.kind == .badDocument, let encoding = head.value(for: "Content-Encoding") else { return error }
        let decoded: Set<String> = ["gzip", "x-gzip", "deflate", "identity", ""]
        let codings = encoding.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let other = codings.first(where: { !decoded.contains($0) }) else { return error }
        var explained = error
        explained.message =
            "The server's answer is encoded with Content-Encoding \(other), which this client did not ask for "
            + "(it sends Accept-Encoding: gzip) and does not decode; nothing from it was used. A proxy between "
            + "the client and Flipt may be re-encoding answers: let it pass gzip or identity."
        return explained
    }

    /// Opens the stream endpoint, retrying the connection like a request; returns once a `200` arrives.
    ///
    /// - Parameter etag: sent as `If-None-Match` (the server ignores it on streams).
    package func openStream(etag: String?) async throws(SyncError) -> TransportStreamResponse {
        let url = configuration.streamURL
        return try await withRetries(url: url) { () async throws(SyncError) -> TransportStreamResponse in
            let request = self.request(for: url, etag: etag)
            self.counters.withLock { $0.attempts += 1 }
            let stream = try await self.transport.openStream(request)
            guard stream.head.status == 200 else {
                var body: [UInt8] = []
                // Error bodies are small; read at most 64 KiB of them for the message.
                do {
                    for try await chunk in stream.body {
                        body += chunk
                        if body.count > errorBodyLimit { break }
                    }
                } catch {}
                throw Self.error(for: TransportResponse(head: stream.head, body: body), url: url.absoluteString)
            }
            return stream
        }
    }

    // MARK: - Requests

    /// The request headers of protocol-spec §2.1, plus `Accept-Encoding: gzip` (the official engine sends none, so
    /// it gets identity; gzip costs a device on a metered link a few percent of the bytes).
    func request(for url: URL, etag: String?) -> TransportRequest {
        var headers = [
            HeaderField("Accept", "application/json"),
            HeaderField("Accept-Encoding", "gzip"),
            HeaderField("X-Flipt-Accept-Server-Version", configuration.acceptServerVersion),
        ]
        if let etag { headers.append(HeaderField("If-None-Match", etag)) }
        headers.append(HeaderField("X-Flipt-Environment", configuration.environment))
        if let authorization = authentication.authorizationHeaderValue {
            headers.append(HeaderField("Authorization", authorization))
        }
        headers.append(HeaderField("User-Agent", configuration.userAgent))
        return TransportRequest(url: url, headers: headers, maximumBodySize: configuration.maximumDocumentSize)
    }

    /// One attempt under the per-attempt deadline.
    private func attempt(_ request: TransportRequest) async throws(SyncError) -> TransportResponse {
        counters.withLock { $0.attempts += 1 }
        let transport = self.transport
        guard let timeout = configuration.requestTimeout else {
            return try await transport.send(request)
        }
        return try await Deadline.run(timeout, clock: clock, url: request.url.absoluteString) {
            () async throws(SyncError) -> TransportResponse in
            try await transport.send(request)
        }
    }

    /// Runs `operation` until it succeeds with a non-retryable status or the policy gives up.
    private func withRetries<Response: Sendable>(
        url: URL,
        _ operation: () async throws(SyncError) -> Response
    ) async throws(SyncError) -> Response {
        var policy = configuration.retryPolicy
        policy.reset()
        var random = self.random
        var attempts = 0
        while true {
            if Task.isCancelled { throw SyncError.cancelled(url: url.absoluteString) }
            attempts += 1
            let outcome: RetryPolicy.Outcome
            let failure: SyncError
            do {
                let response = try await operation()
                return response
            } catch {
                guard error.kind != .cancelled else { throw error }
                failure = error
                switch error.kind {
                case .httpStatus(let status):
                    outcome = .response(status: status, retryAfter: error.retryAfter)
                default:
                    outcome = .failure(error.kind)
                }
            }
            switch policy.next(after: outcome, using: &random) {
            case .stop:
                var final = failure
                final.attempts = attempts
                final.retryAfter = nil
                logger.debug(
                    "flipt request failed",
                    metadata: ["url": "\(url.absoluteString)", "attempts": "\(attempts)", "error": "\(final.message)"]
                )
                throw final
            case .retry(let delay):
                counters.withLock { $0.retries += 1 }
                logger.info(
                    "retrying flipt request",
                    metadata: ["url": "\(url.absoluteString)", "delay": "\(delay)", "error": "\(failure.message)"]
                )
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    throw SyncError.cancelled(url: url.absoluteString)
                }
            }
        }
    }

    /// The error for a response that is neither 200 nor 304, carrying `Retry-After` for the retry policy.
    static func error(for response: TransportResponse, url: String) -> SyncError {
        let status = response.head.status
        let detail = serverMessage(in: response.body).map { " The server said: \($0)." } ?? ""
        var error: SyncError
        switch status {
        case 401, 403:
            error = SyncError(
                .authentication(status),
                "The Flipt server rejected the credential (\(status)).\(detail) Check the client token or JWT and "
                    + "that it may read this namespace.",
                url: url
            )
        case 404:
            error = SyncError(
                .httpStatus(404),
                "The Flipt server has no such namespace or endpoint (404).\(detail) Check the URL, namespace and "
                    + "environment; streaming needs Flipt v2.",
                url: url
            )
        case 200..<300:
            error = SyncError(
                .unexpectedResponse,
                "The server answered \(status) without a snapshot. Check that the URL points at Flipt.",
                url: url
            )
        case 300..<400:
            error = SyncError(
                .unexpectedResponse,
                "The server answered \(status) and the redirect could not be followed. Point the URL at the "
                    + "final address.",
                url: url
            )
        case 408, 429, 500..<600:
            error = SyncError(
                .httpStatus(status),
                "The Flipt server answered \(status).\(detail) This is usually temporary; the last good snapshot "
                    + "stays in use.",
                url: url
            )
        default:
            error = SyncError(
                .httpStatus(status),
                "The Flipt server answered \(status).\(detail) Check the client's URL, namespace and options.",
                url: url
            )
        }
        error.retryAfter = response.head.value(for: "Retry-After").flatMap {
            HTTPDate.retryAfter($0, now: Date(), serverDate: response.head.value(for: "Date").flatMap(HTTPDate.parse))
        }
        return error
    }

    /// The `message` of a gateway-style JSON error body, shortened.
    private static func serverMessage(in body: [UInt8]) -> String? {
        guard !body.isEmpty,
            let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let message = object["message"] as? String, !message.isEmpty
        else { return nil }
        return message.count > 200 ? String(message.prefix(200)) + "…" : message
    }
}
