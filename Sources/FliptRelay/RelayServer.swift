import FliptStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// What the server's authorization hook decided for one request.
package enum AuthorizationDecision: Sendable, Hashable {
    /// The request is answered.
    case allowed
    /// No credentials, or unknown ones: `401` with Flipt's JSON error body carrying the message.
    case unauthorized(String)
    /// Known credentials that may not read what was asked: `403` with Flipt's JSON error body.
    case forbidden(String)
}

/// A socket call of the relay failed: which call, for which address, and the system's reason.
package struct RelaySocketError: Error, CustomStringConvertible, Sendable {
    /// The call that failed, for example `bind`.
    package var operation: String
    /// The address concerned, as given on the command line.
    package var address: String
    /// The system's explanation.
    package var reason: String

    /// Creates an error.
    package init(operation: String, address: String, reason: String) {
        self.operation = operation
        self.address = address
        self.reason = reason
    }

    /// A sentence naming the call, the address and the reason, with what to do for the usual causes.
    package var description: String {
        var text = "cannot listen on \(address): \(operation) failed: \(reason)"
        if operation == "bind" {
            text += "; choose another address or port with --listen, or stop the process that uses it"
        } else if operation == "getaddrinfo" {
            text += "; give a numeric address such as 127.0.0.1:8080 or [::1]:8080"
        }
        return text
    }
}

/// An HTTP/1.1 server on SwiftNIO that answers Flipt's snapshot API from a ``SnapshotCatalog``, so that official
/// Flipt SDKs and other devices can use it as their Flipt server.
///
/// Endpoints: `GET /internal/v1/evaluation/snapshot/namespace/{ns}`,
/// `GET /client/v2/environments/{env}/namespaces/{ns}/snapshot` (both with `Etag` and exact-match
/// `If-None-Match` → `304`), `GET /client/v2/environments/{env}/namespaces/{ns}/stream` (one
/// `{"result":…}` line per snapshot, chunked, pushed when the catalog changes) and `GET /health`.
///
/// Connections are served on event loops (no thread per connection). Every answer is a precomputed document
/// shared by all connections. Connections are capped (``Configuration/maxConnections``), request heads are bounded,
/// slow, silent and idle clients time out, and none of that keeps anyone else from being served.
///
/// As a swift-service-lifecycle `Service`, ``run()`` serves until the task is cancelled or a graceful shutdown
/// is triggered; ``start()`` binds beforehand when the caller needs the bound address first, and ``shutdown()``
/// stops it outside a service group.
package final class RelayServer: Service, Sendable {
    /// Limits, timeouts and hooks of the server.
    package struct Configuration: Sendable {
        /// Where to listen.
        package var address: ListenAddress
        /// Connections served at once (default 10,000); more are answered `503` with `Retry-After: 1` and closed.
        /// Lowered at start to fit the open-file limit (see ``raisesOpenFileLimit``).
        package var maxConnections: Int
        /// The longest request line (method, target, version) accepted; longer gets `414` (default 8 KiB).
        package var maxRequestLineLength: Int
        /// The largest request head (request line and header fields) accepted; larger gets `431` (default 16 KiB).
        package var maxHeadSize: Int
        /// The largest request body accepted (and discarded); larger gets `413` (default 64 KiB).
        package var maxBodySize: Int
        /// How long a client may take to send a whole request, head and body, from its first byte (default 10 s);
        /// then `408` and the connection closes. One deadline per request, not per read.
        package var requestTimeout: Duration
        /// How long a kept-alive connection may stay silent between requests before it is closed (default 75 s).
        package var idleTimeout: Duration
        /// How long a graceful shutdown waits for answers being written or requests being read before it closes
        /// the connections that are left (default 5 s).
        package var shutdownGracePeriod: Duration
        /// Whether answers depend on the request's `Authorization` header (client tokens): snapshot answers are
        /// then `Cache-Control: private, no-cache` and vary on `Authorization` too (default false).
        package var requiresAuthorization: Bool
        /// Decides, for each request to the snapshot API, whether it is answered; the namespace is the one asked
        /// for (nil for paths of the API that name none). `/health` is not asked. Default: everything allowed.
        package var authorize: @Sendable (_ request: HTTPRequestHead, _ namespace: String?) -> AuthorizationDecision
        /// Read for each new connection: a TLS context to serve it with, or nil for plain HTTP (the default).
        /// Returning another context later (after the files were re-read) changes new connections only. The TLS
        /// handshake must be complete within ``requestTimeout``.
        package var tlsContext: @Sendable () -> NIOSSLContext?
        /// Whether ``RelayServer/start()`` raises the process's open-file soft limit to its hard limit, and lowers
        /// the connection limit to fit inside it (default true).
        package var raisesOpenFileLimit: Bool
        /// At most one log line per kind of refusal or error in this time; the next says how many were not
        /// logged (default 10 s).
        package var refusalLogInterval: Duration
        /// Where requests (debug, with the client's address), refusals and problems (warning) are logged.
        package var logger: Logger
        /// How many event-loop threads serve the connections (each connection stays on one); nil (the default):
        /// one per core, on SwiftNIO's shared group. With fewer threads than cores, the server leaves cores to
        /// the other processes of a busy machine, at the cost of throughput for large documents.
        package var eventLoops: Int?
        /// Whether each event loop, after a round of reads it answered, yields its core to the other runnable
        /// threads before it waits for more (``CoreSharing``; default true): on a busy machine the processes
        /// beside the relay, its clients there included, are not held back for whole scheduler ticks.
        package var yieldsCore: Bool

        /// Creates a configuration; every parameter has the default described on its property.
        package init(
            address: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080),
            maxConnections: Int = 10_000,
            maxRequestLineLength: Int = 8 * 1024,
            maxHeadSize: Int = 16 * 1024,
            maxBodySize: Int = 64 * 1024,
            requestTimeout: Duration = .seconds(10),
            idleTimeout: Duration = .seconds(75),
            shutdownGracePeriod: Duration = .seconds(5),
            requiresAuthorization: Bool = false,
            authorize: @escaping @Sendable (_ request: HTTPRequestHead, _ namespace: String?) -> AuthorizationDecision =
                { _, _ in .allowed },
            tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil },
            raisesOpenFileLimit: Bool = true,
            refusalLogInterval: Duration = .seconds(10),
            logger: Logger = Logger(label: "flipt.relay", factory: { _ in SwiftLogNoOpLogHandler() }),
            eventLoops: Int? = nil,
            yieldsCore: Bool = true
        ) {
            self.address = address
            self.maxConnections = maxConnections
            self.maxRequestLineLength = maxRequestLineLength
            self.maxHeadSize = maxHeadSize
            self.maxBodySize = maxBodySize
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.shutdownGracePeriod = shutdownGracePeriod
            self.requiresAuthorization = requiresAuthorization
            self.authorize = authorize
            self.tlsContext = tlsContext
            self.raisesOpenFileLimit = raisesOpenFileLimit
            self.refusalLogInterval = refusalLogInterval
            self.logger = logger
            self.eventLoops = eventLoops
            self.yieldsCore = yieldsCore
        }
    }

    /// Counters since the server started.
    package struct Statistics: Sendable, Hashable {
        /// Requests answered (a stream counts once, when it opens).
        package var requests: Int
        /// `200` answers to snapshot requests.
        package var snapshotsSent: Int
        /// `304` answers.
        package var notModified: Int
        /// `4xx` and `5xx` answers.
        package var errors: Int
        /// Connections refused because ``Configuration/maxConnections`` were open.
        package var refusedConnections: Int
        /// Connections open now.
        package var openConnections: Int
        /// Streams open now.
        package var openStreams: Int
    }

    /// The configuration.
    package let configuration: Configuration
    /// What the server serves.
    package let catalog: SnapshotCatalog
    var logger: Logger { configuration.logger }
    /// Refusals and errors, at most one line per kind per ``Configuration/refusalLogInterval``.
    let problems: RateLimitedLog
    /// The metrics, when a swift-metrics backend was bootstrapped before the server was created; else nil, and
    /// nothing is recorded.
    let metrics: RelayMetrics?

    private let group: any EventLoopGroup
    /// The threads made for ``Configuration/eventLoops``, released once the server stopped; nil when the server
    /// runs on SwiftNIO's shared group.
    private let ownGroup: MultiThreadedEventLoopGroup?
    private let state = Mutex(State())
    /// One per event loop that served a connection, by the loop's identity (``Configuration/yieldsCore``).
    private let coreSharing = Mutex<[ObjectIdentifier: CoreSharing]>([:])
    let requests = Atomic<Int>(0)
    let snapshotsSent = Atomic<Int>(0)
    let notModified = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let refusedConnections = Atomic<Int>(0)
    let openStreams = Atomic<Int>(0)
    /// Set when a shutdown begins, before the connections are told: answers from then on close their connection.
    let stopRequested = Atomic<Bool>(false)
    /// Connections that received part of a request and not all of it.
    let requestsBeingRead = Atomic<Int>(0)

    private enum Phase {
        case idle
        case starting
        case listening(any Channel)
        case stopping
        case stopped
    }

    private struct State {
        var phase = Phase.idle
        var boundAddress: ListenAddress?
        var connectionLimit = 0
        var channels: [ObjectIdentifier: any Channel] = [:]
        var listenerOpen = false
        var graceTimer: Scheduled<Void>?
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var addressWaiters: [CheckedContinuation<ListenAddress?, Never>] = []
    }

    /// Creates a server; nothing listens until ``start()`` or ``run()``.
    package init(configuration: Configuration = Configuration(), catalog: SnapshotCatalog) {
        self.configuration = configuration
        self.catalog = catalog
        self.problems = RateLimitedLog(logger: configuration.logger, interval: configuration.refusalLogInterval)
        self.metrics = RelayMetrics.current()
        if let eventLoops = configuration.eventLoops {
            let own = MultiThreadedEventLoopGroup(numberOfThreads: max(1, eventLoops))
            self.ownGroup = own
            self.group = own
        } else {
            self.ownGroup = nil
            self.group = MultiThreadedEventLoopGroup.singleton
        }
    }

    /// Where the server listens (with the real port when port 0 was asked), or nil before it is bound.
    package var boundAddress: ListenAddress? { state.withLock { $0.boundAddress } }

    /// Waits until the server is bound and returns where it listens (the real port when port 0 was asked); nil
    /// when binding failed or the server stopped first. For callers of ``run()`` that need the port.
    package func listeningAddress() async -> ListenAddress? {
        await withCheckedContinuation { continuation in
            let known: ListenAddress?? = state.withLock { state in
                switch state.phase {
                case .listening: return .some(state.boundAddress)
                case .stopping, .stopped: return .some(nil)
                case .idle, .starting:
                    state.addressWaiters.append(continuation)
                    return .none
                }
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    /// The connection limit in force: ``Configuration/maxConnections``, lowered to fit the open-file limit.
    package var connectionLimit: Int {
        state.withLock { $0.connectionLimit == 0 ? configuration.maxConnections : $0.connectionLimit }
    }

    /// Whether a shutdown was asked for.
    package var isStopping: Bool {
        state.withLock { state in
            switch state.phase {
            case .stopping, .stopped: true
            case .idle, .starting, .listening: false
            }
        }
    }

    /// The counters.
    package var statistics: Statistics {
        Statistics(
            requests: requests.load(ordering: .relaxed),
            snapshotsSent: snapshotsSent.load(ordering: .relaxed),
            notModified: notModified.load(ordering: .relaxed),
            errors: errors.load(ordering: .relaxed),
            refusedConnections: refusedConnections.load(ordering: .relaxed),
            openConnections: state.withLock { $0.channels.count },
            openStreams: openStreams.load(ordering: .relaxed)
        )
    }

    /// Sets the metrics that are read rather than counted (open connections and streams, the age of each served
    /// snapshot) to their current values; call it before the metrics are exported (the `/metrics` endpoint of
    /// `flipt-offline serve --metrics-listen` does, on each scrape).
    ///
    /// The server reports to the swift-metrics backend bootstrapped (`MetricsSystem.bootstrap`) before it was
    /// created, and records nothing without one; the library never bootstraps one. Metrics:
    /// `flipt_relay_requests_total{route, status}` (`route` is `v1_snapshot`, `v2_snapshot`, `v2_stream`,
    /// `health` or `other`; a stream counts when it opens), `flipt_relay_sent_body_bytes_total{route}`,
    /// `flipt_relay_refused_connections_total`, `flipt_relay_open_connections`, `flipt_relay_open_streams` and
    /// `flipt_relay_snapshot_age_seconds{namespace, environment}` (seconds since the upstream server last sent or
    /// confirmed the snapshot; none for snapshots from document files).
    package func updateMetrics() {
        guard let metrics else { return }
        metrics.update(
            openConnections: state.withLock { $0.channels.count },
            openStreams: openStreams.load(ordering: .relaxed),
            snapshots: catalog.snapshots,
            now: Date()
        )
    }

    /// How many times the event loops yielded their cores after a round of answers (``Configuration/yieldsCore``).
    package var coreYields: Int { coreSharing.withLock { $0.values.reduce(0) { $0 + $1.yields } } }

    /// The event loop's ``CoreSharing``, made on first use; called on `eventLoop`.
    private func coreSharing(on eventLoop: any EventLoop) -> CoreSharing {
        coreSharing.withLock { known in
            if let sharing = known[ObjectIdentifier(eventLoop)] { return sharing }
            let made = CoreSharing(eventLoop: eventLoop)
            known[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }

    /// The connections open now (for tests).
    var openChannels: [any Channel] { state.withLock { Array($0.channels.values) } }

    // MARK: Lifecycle

    /// Binds and starts accepting connections; returns the bound address. Calling it again while the server
    /// listens returns the same address.
    ///
    /// - Throws: ``RelaySocketError`` when the address cannot be resolved or bound (in use, not local), or the
    ///   server was stopped.
    @discardableResult
    package func start() async throws(RelaySocketError) -> ListenAddress {
        let address = configuration.address
        let alreadyBound: ListenAddress?? = state.withLock { state in
            switch state.phase {
            case .idle:
                state.phase = .starting
                return .none
            case .listening: return .some(state.boundAddress)
            case .starting, .stopping, .stopped: return .some(nil)
            }
        }
        if let alreadyBound {
            guard let bound = alreadyBound else {
                throw RelaySocketError(
                    operation: "start",
                    address: address.description,
                    reason: "the server is starting, stopping or stopped"
                )
            }
            return bound
        }
        let limit = decideConnectionLimit()
        let channel: any Channel
        do {
            channel = try await bootstrap().bind(host: address.host, port: Int(address.port)).get()
        } catch {
            let failure = Self.socketError(error, address: address)
            let waiters = state.withLock { state in
                state.phase = .stopped
                defer { state.addressWaiters = [] }
                return (state.addressWaiters, state.stopWaiters)
            }
            for waiter in waiters.0 { waiter.resume(returning: nil) }
            for waiter in waiters.1 { waiter.resume() }
            releaseThreads()
            throw failure
        }
        let bound = ListenAddress(host: address.host, port: UInt16(channel.localAddress?.port ?? Int(address.port)))
        let (keep, waiters): (Bool, [CheckedContinuation<ListenAddress?, Never>]) = state.withLock { state in
            state.boundAddress = bound
            state.connectionLimit = limit
            state.listenerOpen = true
            defer { state.addressWaiters = [] }
            if case .starting = state.phase {
                state.phase = .listening(channel)
                return (true, state.addressWaiters)
            }
            return (false, state.addressWaiters)
        }
        channel.closeFuture.whenComplete { [self] _ in listenerClosed() }
        if !keep {
            // A shutdown came while binding.
            channel.close(promise: nil)
        }
        for waiter in waiters { waiter.resume(returning: keep ? bound : nil) }
        return bound
    }

    /// Serves until the task is cancelled or a graceful shutdown is triggered, then stops: no new connections,
    /// open streams end with the chunked terminator, answers being written and requests being read finish
    /// (for at most ``Configuration/shutdownGracePeriod``), the other connections close. Binds first unless
    /// ``start()`` did.
    package func run() async throws {
        if boundAddress == nil { try await start() }
        await withTaskCancellationOrGracefulShutdownHandler {
            await self.waitUntilStopped()
        } onCancelOrGracefulShutdown: {
            self.beginShutdown()
        }
    }

    /// Stops the server as a graceful shutdown of ``run()`` does and waits until every connection is closed.
    /// Idempotent; a server never started just becomes stopped.
    package func shutdown() async {
        beginShutdown()
        await waitUntilStopped()
    }

    /// Starts stopping, without waiting; idempotent.
    func beginShutdown() {
        stopRequested.store(true, ordering: .releasing)
        enum Step {
            case nothing
            case finished([CheckedContinuation<Void, Never>], [CheckedContinuation<ListenAddress?, Never>])
            case close(any Channel, [any Channel])
        }
        let step: Step = state.withLock { state in
            switch state.phase {
            case .idle:
                state.phase = .stopped
                defer {
                    state.stopWaiters = []
                    state.addressWaiters = []
                }
                return .finished(state.stopWaiters, state.addressWaiters)
            case .starting:
                state.phase = .stopping
                return .nothing
            case .listening(let listener):
                state.phase = .stopping
                let grace = TimeAmount.nanoseconds(configuration.shutdownGracePeriod.nanoseconds)
                state.graceTimer = group.next().scheduleTask(in: grace) { [self] in forceClose() }
                return .close(listener, Array(state.channels.values))
            case .stopping, .stopped:
                return .nothing
            }
        }
        switch step {
        case .nothing: break
        case .finished(let stopWaiters, let addressWaiters):
            for waiter in addressWaiters { waiter.resume(returning: nil) }
            for waiter in stopWaiters { waiter.resume() }
            releaseThreads()
        case .close(let listener, let channels):
            logger.debug("stopping: \(channels.count) connections open")
            listener.close(promise: nil)
            for channel in channels {
                channel.pipeline.fireUserInboundEventTriggered(RelayShutdownEvent())
            }
        }
    }

    /// Waits until the server stopped.
    private func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if case .stopped = state.phase { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func forceClose() {
        let channels = state.withLock { Array($0.channels.values) }
        if !channels.isEmpty {
            logger.debug("stopping: closing the \(channels.count) connections still open after the grace period")
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private func listenerClosed() {
        state.withLock { $0.listenerOpen = false }
        finishIfStopped()
    }

    private func finishIfStopped() {
        let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { state in
            guard case .stopping = state.phase, !state.listenerOpen, state.channels.isEmpty else { return nil }
            state.phase = .stopped
            state.graceTimer?.cancel()
            state.graceTimer = nil
            defer { state.stopWaiters = [] }
            return state.stopWaiters
        }
        guard let waiters else { return }
        for waiter in waiters { waiter.resume() }
        releaseThreads()
    }

    /// Ends the threads of ``Configuration/eventLoops`` once the server stopped (in the background: this may
    /// run on one of them). Nothing for SwiftNIO's shared group.
    private func releaseThreads() {
        ownGroup?.shutdownGracefully(queue: .global()) { [logger] error in
            if let error { logger.debug("the relay's event-loop threads did not stop cleanly: \(error)") }
        }
    }

    // MARK: Connections

    private func bootstrap() -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptProblemHandler(problems: problems))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 4)
        #if os(Linux)
        let tcp = NIOBSDSocket.OptionLevel.tcp
        for (name, value) in [
            (TCP_KEEPIDLE, Self.keepAliveIdle), (TCP_KEEPINTVL, Self.keepAliveInterval),
            (TCP_KEEPCNT, Self.keepAliveProbes),
        ] {
            bootstrap = bootstrap.childChannelOption(
                ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: name)),
                value: value
            )
        }
        #endif
        return bootstrap.childChannelInitializer { [self] channel in initialize(channel) }
    }

    /// Seconds of silence before the first keepalive probe on an accepted connection.
    static let keepAliveIdle: SocketOptionValue = 30
    /// Seconds between keepalive probes.
    static let keepAliveInterval: SocketOptionValue = 10
    /// Unanswered probes after which the connection is dropped (a vanished client is noticed in about 60 s).
    static let keepAliveProbes: SocketOptionValue = 3

    private func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        let id = ObjectIdentifier(channel)
        enum Admission {
            case admitted
            case full(Int)
            case stopping
        }
        let admission: Admission = state.withLock { state in
            guard case .listening = state.phase else { return .stopping }
            guard state.channels.count < state.connectionLimit else { return .full(state.connectionLimit) }
            state.channels[id] = channel
            return .admitted
        }
        let client = Self.describe(channel.remoteAddress)
        switch admission {
        case .stopping:
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        case .full(let limit):
            refusedConnections.add(1, ordering: .relaxed)
            errors.add(1, ordering: .relaxed)
            metrics?.refusedConnections.increment()
            problems.log(
                .warning,
                kind: "connection limit",
                "refused a connection from \(client): \(limit) connections are open (--max-connections)"
            )
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RefusalHandler())
            }
        case .admitted:
            channel.closeFuture.whenComplete { [self] _ in
                state.withLock { _ = $0.channels.removeValue(forKey: id) }
                finishIfStopped()
            }
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = max(configuration.maxHeadSize, configuration.maxRequestLineLength)
            limits.maxHeaderListSize = configuration.maxHeadSize
            return channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                let tlsContext = configuration.tlsContext()
                if let tls = tlsContext {
                    try pipeline.addHandler(NIOSSLServerHandler(context: tls))
                    let handshakeTimeout = TimeAmount.nanoseconds(configuration.requestTimeout.nanoseconds)
                    try pipeline.addHandler(
                        TLSHandshakeDeadline(timeout: handshakeTimeout, problems: problems, client: client)
                    )
                }
                let guardHandler = ConnectionGuard(
                    server: self,
                    requestTimeout: TimeAmount.nanoseconds(configuration.requestTimeout.nanoseconds),
                    idleTimeout: TimeAmount.nanoseconds(configuration.idleTimeout.nanoseconds),
                    maxHeadSize: configuration.maxHeadSize
                )
                try pipeline.addHandler(guardHandler)
                try pipeline.addHandler(
                    ByteToMessageHandler(
                        HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)
                    )
                )
                try pipeline.addHandler(
                    RelayHTTPHandler(
                        server: self,
                        connectionGuard: guardHandler,
                        client: client,
                        sendsFiles: tlsContext == nil,
                        coreSharing: configuration.yieldsCore ? coreSharing(on: channel.eventLoop) : nil
                    )
                )
            }
        }
    }

    /// The decided connection limit, after raising the open-file limit when configured to; logs what it did.
    private func decideConnectionLimit() -> Int {
        let asked = max(1, configuration.maxConnections)
        guard configuration.raisesOpenFileLimit, let files = OpenFileLimit.raiseToHardLimit() else { return asked }
        let raised =
            files.after > files.before
            ? "raised from \(files.before) to \(files.after)" : "\(files.after), its hard limit"
        let fitting = max(1, files.after - OpenFileLimit.headroom)
        if fitting < asked {
            let advice = "raise the hard limit (ulimit -Hn, LimitNOFILE=) for more"
            let kept = "\(OpenFileLimit.headroom) descriptors kept for the rest"
            logger.notice(
                "the open-file limit is \(raised): serving at most \(fitting) connections instead of \(asked) (\(kept)); \(advice)"
            )
            return fitting
        }
        logger.info("open-file limit \(raised); serving at most \(asked) connections")
        return asked
    }

    /// `host:port` of a peer, for logs.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown client" }
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    private static func socketError(_ error: any Error, address: ListenAddress) -> RelaySocketError {
        if let error = error as? IOError {
            return RelaySocketError(
                operation: "bind",
                address: address.description,
                reason: String(cString: strerror(error.errnoCode))
            )
        }
        if error is SocketAddressError {
            return RelaySocketError(
                operation: "getaddrinfo",
                address: address.description,
                reason: "the host cannot be resolved"
            )
        }
        return RelaySocketError(operation: "listen", address: address.description, reason: "\(error)")
    }

    /// Counts one answer by its status (and, with metrics, by route, with the body bytes sent: none for `HEAD`).
    func record(_ answer: RelayAnswer, route: RelayMetrics.Route, method: HTTPMethod) {
        record(status: answer.status, route: route, bodyBytes: method == .HEAD ? 0 : answer.body.readableBytes)
    }

    /// Counts one answer by its status (and, with metrics, by route, with its body bytes).
    func record(status: HTTPResponseStatus, route: RelayMetrics.Route, bodyBytes: Int) {
        requests.add(1, ordering: .relaxed)
        switch status.code {
        case 200: break
        case 304: notModified.add(1, ordering: .relaxed)
        case 400...: errors.add(1, ordering: .relaxed)
        default: break
        }
        metrics?.recordAnswer(route: route, status: status.code, bodyBytes: bodyBytes)
    }
}

/// Sent to every connection's pipeline when the server stops.
struct RelayShutdownEvent: Sendable {}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// Logs the listening socket's errors (accept failing for want of file descriptors), rate-limited, and passes
/// them on to NIO's accept back-off.
private final class AcceptProblemHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let problems: RateLimitedLog

    init(problems: RateLimitedLog) {
        self.problems = problems
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        problems.log(
            .warning,
            kind: "accept",
            "accepting a connection failed (\(error)); raise the open-file limit (ulimit -n) or lower the number "
                + "of clients"
        )
        context.fireErrorCaught(error)
    }
}

/// Answers a connection past the connection limit with `503` and `Retry-After: 1` before reading anything, then
/// closes it: the output first, so that the answer is not lost to a reset, and the rest when the client closes
/// or after 2 seconds.
private final class RefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var answered = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { answer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        answer(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func answer(context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        let bytes = RelayAnswer.tooManyConnections(date: HTTPDate.now())
        context.writeAndFlush(NIOAny(bytes)).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
        }
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
            context.close(promise: nil)
        }
    }
}
