import Foundation
import Logging
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The standard ``HTTPTransport``: one ephemeral `URLSession` with a session-level data delegate.
///
/// No cache, no cookies, `Accept-Encoding` as the request says, redirects followed (the `Authorization` header is
/// dropped when a redirect leaves the original scheme, host and port). Bodies are delivered chunk by chunk as they
/// arrive, which is also how streams work on Linux, where `bytes(for:)` does not exist. URLSession's own timeout
/// is an *idle* timeout; it is set to ``idleTimeout`` (long by default, since a quiet stream sends nothing for
/// hours). Total per-attempt deadlines are the caller's job (``SnapshotFetcher`` does it). Cancelling the calling
/// task cancels the `URLSessionTask`.
///
/// On Apple platforms every ``TLSOptions`` works through the session delegate. On Linux, FoundationNetworking
/// (libcurl) always verifies certificates against the system bundle and offers no hook to add a trust root or to
/// skip verification, so there ``init(tls:idleTimeout:logger:)`` throws a ``SyncError/Kind/configuration`` error
/// for those options instead of ignoring them. There it also keeps a processor core busy for as long as it waits
/// for a response, so ``SnapshotFetcher`` uses ``AsyncHTTPClientTransport`` on Linux and this transport on Apple
/// platforms.
package final class URLSessionTransport: HTTPTransport {
    /// The idle timeout given to URLSession for every request.
    package let idleTimeout: Duration
    private let session: URLSession
    private let events: SessionEvents

    /// Creates a transport.
    ///
    /// - Parameters:
    ///   - tls: trust options; on Linux only the defaults (see the type's discussion).
    ///   - idleTimeout: how long a connection may stay silent before URLSession gives up (default 7 days; whole
    ///     seconds, at least 1).
    ///   - logger: receives a warning when certificate verification is disabled.
    package init(
        tls: TLSOptions = TLSOptions(),
        idleTimeout: Duration = .seconds(7 * 24 * 3_600),
        logger: Logger = .discarding
    ) throws(SyncError) {
        let trust = try TrustEvaluator(tls)
        #if canImport(FoundationNetworking)
        if trust.isCustom {
            throw SyncError(
                .configuration,
                "URLSession on Linux cannot use extra CA certificates or skip certificate verification: "
                    + "FoundationNetworking's libcurl backend only reads the system bundle. Use "
                    + "AsyncHTTPClientTransport (SnapshotFetcher and FliptClient do so by default for these options)."
            )
        }
        #endif
        trust.warnIfUnverified(logger)
        self.idleTimeout = max(idleTimeout, .seconds(1))
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.timeoutIntervalForRequest = self.idleTimeout.seconds.rounded(.up)
        configuration.timeoutIntervalForResource = self.idleTimeout.seconds.rounded(.up)
        events = SessionEvents(trust: trust)
        session = URLSession(configuration: configuration, delegate: events, delegateQueue: nil)
    }

    deinit {
        session.invalidateAndCancel()
    }

    /// Cancels every request in flight and invalidates the session; requests after this fail.
    package func shutdown() async {
        session.invalidateAndCancel()
    }

    /// Sends a request and collects the whole body.
    package func send(_ request: TransportRequest) async throws(SyncError) -> TransportResponse {
        try await collect(request)
    }

    /// Sends a request; returns when the response headers arrive, with the body as a stream of chunks.
    package func openStream(_ request: TransportRequest) async throws(SyncError) -> TransportStreamResponse {
        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = "GET"
        urlRequest.cachePolicy = .reloadIgnoringLocalCacheData
        urlRequest.timeoutInterval = idleTimeout.seconds.rounded(.up)
        for field in request.headers { urlRequest.setValue(field.value, forHTTPHeaderField: field.name) }
        let task = session.dataTask(with: urlRequest)
        let (body, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let exchange = Exchange(url: request.url, body: continuation)
        events.register(exchange, for: task.taskIdentifier)
        let handle = TaskHandle(task)
        continuation.onTermination = { _ in handle.cancel() }
        let head = await withTaskCancellationHandler {
            await exchange.head(starting: handle)
        } onCancel: {
            handle.cancel()
        }
        return TransportStreamResponse(head: try head.get(), body: body)
    }
}

extension Logger {
    /// A logger that discards everything: the default of every type in this module.
    package static var discarding: Logger {
        Logger(label: "flipt.sync", factory: { _ in SwiftLogNoOpLogHandler() })
    }
}

/// A `URLSessionTask` shared with cancellation handlers.
// `URLSessionTask` is thread-safe for `resume` and `cancel` (they hop to the session's queue), but it is not
// declared Sendable on every platform; this wrapper only exposes those two calls.
final class TaskHandle: @unchecked Sendable {
    private let task: URLSessionTask

    init(_ task: URLSessionTask) {
        self.task = task
    }

    func resume() { task.resume() }
    func cancel() { task.cancel() }
}

/// The state of one request: the response head (awaited once) and the body continuation.
final class Exchange: Sendable {
    let url: URL
    let body: AsyncThrowingStream<[UInt8], any Error>.Continuation
    private let state = Mutex<State>(State())

    private struct State {
        var waiter: CheckedContinuation<Result<TransportResponseHead, SyncError>, Never>?
        var outcome: Result<TransportResponseHead, SyncError>?
    }

    init(url: URL, body: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        self.url = url
        self.body = body
    }

    /// Starts the task and waits for the response head (or the failure that prevented it).
    func head(starting task: TaskHandle) async -> Result<TransportResponseHead, SyncError> {
        await withCheckedContinuation { continuation in
            let early: Result<TransportResponseHead, SyncError>? = state.withLock { state in
                if let outcome = state.outcome { return outcome }
                state.waiter = continuation
                return nil
            }
            if let early {
                continuation.resume(returning: early)
            } else if Task.isCancelled {
                resolve(.failure(.cancelled(url: url.absoluteString)))
                task.cancel()
            } else {
                task.resume()
            }
        }
    }

    func resolve(_ outcome: Result<TransportResponseHead, SyncError>) {
        let waiter: CheckedContinuation<Result<TransportResponseHead, SyncError>, Never>? = state.withLock { state in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }

    func complete(with error: (any Error)?) {
        if let error {
            let failure = Self.classify(error, url: url)
            resolve(.failure(failure))
            body.finish(throwing: failure)
        } else {
            resolve(.failure(SyncError(.network, "The connection closed before a response arrived.")))
            body.finish()
        }
    }

    /// Maps a URLSession error to a ``SyncError`` with advice.
    static func classify(_ error: any Error, url: URL) -> SyncError {
        guard let urlError = error as? URLError else {
            return TransportFailure.other("\(error)").error(url: url)
        }
        let failure: TransportFailure
        switch urlError.code {
        case .cancelled: failure = .cancelled
        case .timedOut: failure = .timedOut
        case .cannotFindHost, .dnsLookupFailed: failure = .hostNotFound
        case .cannotConnectToHost: failure = .refused
        case .networkConnectionLost: failure = .connectionLost
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
            .serverCertificateHasUnknownRoot, .serverCertificateNotYetValid, .clientCertificateRejected,
            .clientCertificateRequired:
            failure = .tls("URLError \(urlError.code.rawValue)")
        case .notConnectedToInternet: failure = .offline
        case .unknown where Self.isCertificateProblem(urlError.localizedDescription):
            // FoundationNetworking reports libcurl's certificate errors as code -1 with curl's text.
            failure = .tls("URLError \(urlError.code.rawValue): \(urlError.localizedDescription)")
        default: failure = .other("URLError \(urlError.code.rawValue): \(urlError.localizedDescription)")
        }
        return failure.error(url: url)
    }

    /// Whether libcurl's error text is about TLS or the server's certificate.
    static func isCertificateProblem(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.contains("ssl") || lowered.contains("tls") || lowered.contains("certificate")
    }
}

/// The session-level delegate: routes every callback to the ``Exchange`` of its task.
// NSObject subclasses cannot be checked for Sendable; the only stored state is behind a Mutex.
final class SessionEvents: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let exchanges = Mutex<[Int: Exchange]>([:])
    private let trust: TrustEvaluator

    init(trust: TrustEvaluator) {
        self.trust = trust
    }

    func register(_ exchange: Exchange, for taskIdentifier: Int) {
        exchanges.withLock { $0[taskIdentifier] = exchange }
    }

    private func exchange(for task: URLSessionTask) -> Exchange? {
        exchanges.withLock { $0[task.taskIdentifier] }
    }

    func urlSession(
        _ session: URLSession,
        dataTask: URLSessionDataTask,
        didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        if let exchange = exchange(for: dataTask) {
            let http = response as? HTTPURLResponse
            var headers: [HeaderField] = []
            for (name, value) in http?.allHeaderFields ?? [:] {
                headers.append(HeaderField(String(describing: name), String(describing: value)))
            }
            headers.sort { $0.name.lowercased() < $1.name.lowercased() }
            exchange.resolve(
                .success(TransportResponseHead(status: http?.statusCode ?? 0, headers: headers, url: response.url))
            )
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        exchange(for: dataTask)?.body.yield(Array(data))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let exchange = exchanges.withLock { $0.removeValue(forKey: task.taskIdentifier) }
        exchange?.complete(with: error)
    }

    func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        var next = request
        let from = task.originalRequest?.url
        let to = request.url
        if from?.scheme != to?.scheme || from?.host != to?.host || from?.port != to?.port {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(next)
    }

    #if canImport(Security)
    func urlSession(
        _ session: URLSession,
        didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        trust.evaluate(challenge, completionHandler: completionHandler)
    }
    #endif
}
