#if canImport(AsyncHTTPClient)
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// An ``HTTPTransport`` on AsyncHTTPClient and SwiftNIO SSL: the one ``SnapshotFetcher`` uses on Linux.
///
/// FoundationNetworking's URLSession cannot add a trust root or skip verification there, and it keeps a processor
/// core busy for as long as it waits for a response or for the rest of its body (its libcurl socket stays
/// registered for writing), which a device that polls a slow or silent server cannot afford. This transport waits
/// on epoll and costs nothing while the server is silent, quiet streams included. It works for `http` and `https`.
/// Trust is the system store plus every ``TLSOptions/additionalTrustRoots`` certificate, with host-name checks;
/// ``TLSOptions/insecureSkipVerify`` turns every check off and logs one warning when the transport is created.
///
/// It behaves like ``URLSessionTransport``: no cache, no cookies, `Accept-Encoding` as the request says, gzip and
/// deflate bodies decoded (see ``maximumDecompressionRatio``), redirects (301, 302, 303, 307, 308; at most 10) followed with the `Authorization` header dropped
/// once a redirect leaves the original scheme, host and port, body chunks handed on as they arrive, the same
/// ``SyncError`` kinds for the same failures, and a prompt ``SyncError/Kind/cancelled`` error when the calling task
/// is cancelled. ``idleTimeout`` bounds each silence of the connection; connecting is bounded by the idle timeout
/// or 30 seconds, whichever is shorter. Failed connections are not retried here: that is the caller's retry
/// policy's job.
///
/// The transport owns an `HTTPClient` on the shared event loop group, made by its first request: creating a
/// transport checks the TLS options and the proxy (and throws for bad ones) but starts no thread, so that a client
/// booting from its cache answers before the event loops exist (about 1.5 ms of a 1,000-flag cold boot here).
/// ``shutdown()`` closes the `HTTPClient`; releasing the last reference without that starts the same shutdown in the
/// background, without blocking. A stream keeps its transport alive until its body ends.
package final class AsyncHTTPClientTransport: HTTPTransport {
    /// The longest silence allowed on a connection, while waiting for the response or between body chunks.
    package let idleTimeout: Duration
    /// The checked trust roots, whether verification is off, and the proxy: what the `HTTPClient` is made from.
    private let trustRoots: [NIOSSLCertificate]
    private let skipsVerification: Bool
    private let proxy: HTTPProxy?
    private let client = Mutex(ClientState.notMade)
    private static let maximumRedirects = 10

    /// How many times its compressed size a gzip body may decode to: 200. A larger one fails with a
    /// ``SyncError/Kind/badDocument`` error as soon as it passes the ratio, so a gzip bomb costs at most 200 times
    /// the bytes received, never unbounded memory.
    ///
    /// Snapshot documents compress 10 to 50 times (the 10,000-flag fixture, whose flags differ only in their
    /// numbers, 42 times); deflate's own ceiling is about 1,000. The ratio is counted over the whole body, so a long
    /// stream of compressed messages is held to it as a whole, with no total-size cap to run into.
    package static let maximumDecompressionRatio = 200

    /// Creates a transport.
    ///
    /// - Parameters:
    ///   - tls: trust options; an unreadable CA file or text without a certificate throws a
    ///     ``SyncError/Kind/configuration`` error.
    ///   - idleTimeout: how long a connection may stay silent (default 7 days, since a quiet stream sends nothing
    ///     for hours; at least 1 ms).
    ///   - proxy: the proxy every request goes through, if any (``HTTPProxy/fromEnvironment(for:environment:)``
    ///     reads the usual environment variables).
    ///   - logger: receives one warning when certificate verification is disabled.
    package init(
        tls: TLSOptions = TLSOptions(),
        idleTimeout: Duration = .seconds(7 * 24 * 3_600),
        proxy: HTTPProxy? = nil,
        logger: Logger = .discarding
    ) throws(SyncError) {
        let trust = try TrustEvaluator(tls)
        var certificates: [NIOSSLCertificate] = []
        for der in trust.anchors {
            guard let certificate = try? NIOSSLCertificate(bytes: Array(der), format: .der) else {
                throw SyncError(
                    .configuration,
                    "A CA certificate in the trust roots is not a valid X.509 certificate; check the PEM file."
                )
            }
            certificates.append(certificate)
        }
        trustRoots = certificates
        skipsVerification = trust.insecureSkipVerify
        self.proxy = proxy
        self.idleTimeout = max(idleTimeout, .milliseconds(1))
        trust.warnIfUnverified(logger)
    }

    /// Where the `HTTPClient` is in its life.
    private enum ClientState {
        /// No request was sent yet.
        case notMade
        case made(HTTPClient)
        /// ``shutdown()`` ran; requests fail.
        case shutDown
    }

    /// Whether the `HTTPClient` exists: false until the first request, and again after ``shutdown()``.
    package var hasClient: Bool {
        client.withLock { state in
            if case .made = state { return true }
            return false
        }
    }

    /// The `HTTPClient`, made on the first call; nil after ``shutdown()``.
    private func madeClient() -> HTTPClient? {
        client.withLock { state in
            switch state {
            case .made(let client): return client
            case .shutDown: return nil
            case .notMade:
                let made = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration())
                state = .made(made)
                return made
            }
        }
    }

    /// The `HTTPClient`'s configuration: trust, timeouts, decompression, keepalive and proxy.
    private func configuration() -> HTTPClient.Configuration {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if !trustRoots.isEmpty { tlsConfiguration.additionalTrustRoots = [.certificates(trustRoots)] }
        if skipsVerification { tlsConfiguration.certificateVerification = .none }
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = tlsConfiguration
        configuration.redirectConfiguration = .disallow
        // Decoded per body part as it arrives: inflate is given each part whole, so a part that ends on a flush
        // (as every message of a gzip stream does) comes out whole, and no stream message waits for the next.
        configuration.decompression = .enabled(limit: .ratio(Self.maximumDecompressionRatio))
        configuration.timeout = HTTPClient.Configuration.Timeout(
            connect: Self.timeAmount(min(idleTimeout, .seconds(30))),
            read: Self.timeAmount(idleTimeout)
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.http1_1ConnectionDebugInitializer = { Self.enableKeepAlive(on: $0) }
        configuration.http2ConnectionDebugInitializer = { Self.enableKeepAlive(on: $0) }
        if let proxy {
            switch proxy.kind {
            case .http:
                let authorization = proxy.username.map {
                    HTTPClient.Authorization.basic(username: $0, password: proxy.password ?? "")
                }
                configuration.proxy = .server(host: proxy.host, port: proxy.port, authorization: authorization)
            case .socks5:
                configuration.proxy = .socksServer(host: proxy.host, port: proxy.port)
            }
        }
        return configuration
    }

    /// TCP keepalive on every connection: after ``keepAliveIdle`` of silence the kernel probes the peer every
    /// ``keepAliveInterval``, and fails the connection when ``keepAliveProbes`` probes in a row go unanswered.
    ///
    /// A device that loses its network in the middle of a request, or while a stream is quiet, is otherwise never
    /// told: nothing is sent, so nothing fails, and the request waits for as long as the idle timeout (days for a
    /// stream, or forever without a request timeout). With these values a vanished peer is noticed within about a
    /// minute of silence, the request fails as a timeout and the retry policy or the stream's reconnection
    /// takes over. A live but quiet connection costs one small packet each way per 30 seconds.
    static let keepAliveIdle = 30
    static let keepAliveInterval = 10
    static let keepAliveProbes = 3

    /// Turns TCP keepalive on for a new connection's socket; a socket that refuses (not TCP) is left as it is.
    @Sendable
    static func enableKeepAlive(on channel: any Channel) -> EventLoopFuture<Void> {
        let tcp = NIOBSDSocket.OptionLevel.tcp
        return channel.setOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .flatMap {
                channel.setOption(
                    ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPIDLE)),
                    value: keepAliveIdle
                )
            }
            .flatMap {
                channel.setOption(
                    ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPINTVL)),
                    value: keepAliveInterval
                )
            }
            .flatMap {
                channel.setOption(
                    ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPCNT)),
                    value: keepAliveProbes
                )
            }
            .recover { _ in }
    }

    deinit {
        // Non-blocking: the client keeps itself alive until its connections are closed.
        if case .made(let made) = client.withLock({ $0 }) { made.shutdown(queue: .global()) { _ in } }
    }

    /// Closes every connection and releases the client; requests after this fail with a network error.
    ///
    /// Calling it more than once is harmless.
    package func shutdown() async {
        let made = client.withLock { state -> HTTPClient? in
            defer { state = .shutDown }
            if case .made(let made) = state { return made }
            return nil
        }
        try? await made?.shutdown()
    }

    /// Sends a request and collects the whole body.
    package func send(_ request: TransportRequest) async throws(SyncError) -> TransportResponse {
        try await collect(request)
    }

    /// Sends a request; returns when the final response's headers arrive, with the body as a stream of chunks.
    package func openStream(_ request: TransportRequest) async throws(SyncError) -> TransportStreamResponse {
        let original = request.url
        var url = request.url
        var headers = request.headers
        var redirects = 0
        while true {
            let response = try await execute(url: url, headers: headers)
            guard let next = Self.redirectTarget(of: response, from: url) else {
                let head = TransportResponseHead(
                    status: Int(response.status.code),
                    headers: response.headers.map { HeaderField($0.name, $0.value) },
                    url: url
                )
                return TransportStreamResponse(head: head, body: body(of: response, url: url))
            }
            // A redirect's own body is small and unused; read it so the connection can be reused.
            _ = try? await response.body.collect(upTo: 65_536)
            redirects += 1
            guard redirects <= Self.maximumRedirects else {
                throw SyncError(
                    .network,
                    "The request to \(original.absoluteString) was redirected more than \(Self.maximumRedirects) "
                        + "times. Point the URL at the final address.",
                    url: original.absoluteString
                )
            }
            if !Self.sameOrigin(original, next) {
                headers.removeAll { $0.name.caseInsensitiveCompare("Authorization") == .orderedSame }
            }
            url = next
        }
    }

    /// One exchange, without following redirects; returns at the response head.
    private func execute(url: URL, headers: [HeaderField]) async throws(SyncError) -> HTTPClientResponse {
        if Task.isCancelled { throw SyncError.cancelled(url: url.absoluteString) }
        var outgoing = HTTPClientRequest(url: url.absoluteString)
        outgoing.method = .GET
        for field in headers { outgoing.headers.add(name: field.name, value: field.value) }
        guard let client = madeClient() else { throw Self.classify(HTTPClientError.alreadyShutdown, url: url) }
        do {
            // The deadline covers only the wait for the head; the read timeout bounds each silence.
            return try await client.execute(outgoing, deadline: .now() + .hours(24 * 365))
        } catch {
            throw Self.classify(error, url: url)
        }
    }

    /// The body as chunks, read by a task of its own that ends (cancelling the request) when iteration ends.
    private func body(of response: HTTPClientResponse, url: URL) -> AsyncThrowingStream<[UInt8], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let reader = Task { [self] in
            // The transport (and so its client) stays alive while the body is read.
            defer { withExtendedLifetime(self) {} }
            do {
                for try await buffer in response.body {
                    continuation.yield(Array(buffer.readableBytesView))
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: Self.classify(error, url: url))
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return stream
    }

    /// The URL a 301, 302, 303, 307 or 308 response points to, resolved against `url`; nil for anything else.
    static func redirectTarget(of response: HTTPClientResponse, from url: URL) -> URL? {
        guard [301, 302, 303, 307, 308].contains(response.status.code),
            let location = response.headers.first(name: "Location"),
            let target = URL(string: location, relativeTo: url)?.absoluteURL,
            let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { return nil }
        return target
    }

    /// Whether two URLs share scheme, host and port (default ports made explicit).
    static func sameOrigin(_ first: URL, _ second: URL) -> Bool {
        func origin(_ url: URL) -> (String, String, Int) {
            let scheme = url.scheme?.lowercased() ?? ""
            return (scheme, url.host?.lowercased() ?? "", url.port ?? (scheme == "https" ? 443 : 80))
        }
        return origin(first) == origin(second)
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !nanoseconds.overflow else { return .nanoseconds(.max) }
        return .nanoseconds(nanoseconds.partialValue + attoseconds / 1_000_000_000)
    }
}
#endif
