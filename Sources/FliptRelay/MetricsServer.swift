import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A small HTTP/1.1 server that answers `GET /metrics` with what ``Configuration/render`` returns (the Prometheus
/// text format, for `flipt-offline serve --metrics-listen`), on an address of its own, apart from the relay's.
///
/// Any other path gets `404`, any other method `405`. A connection is closed when a request (head and body, as
/// sent) passes 32 KiB, or when it is silent for 30 seconds. It runs on the relay's event loops. As a
/// swift-service-lifecycle `Service`, ``run()`` serves until the task is cancelled or a graceful shutdown is
/// triggered; ``start()`` binds beforehand when the caller needs the bound address first.
package final class MetricsServer: Service, Sendable {
    /// Where to listen and what to answer.
    package struct Configuration: Sendable {
        /// Where to listen.
        package var address: ListenAddress
        /// The body of each answer to `GET /metrics`, made anew for each request (on an event loop: keep it quick).
        package var render: @Sendable () -> [UInt8]
        /// The `Content-Type` of the answers (default: Prometheus's text format, version 0.0.4).
        package var contentType: String
        /// Where problems are logged.
        package var logger: Logger

        /// Creates a configuration.
        package init(
            address: ListenAddress,
            contentType: String = "text/plain; version=0.0.4; charset=utf-8",
            logger: Logger = Logger(label: "flipt.metrics", factory: { _ in SwiftLogNoOpLogHandler() }),
            render: @escaping @Sendable () -> [UInt8]
        ) {
            self.address = address
            self.render = render
            self.contentType = contentType
            self.logger = logger
        }
    }

    private enum Phase {
        case idle
        case listening(any Channel, ListenAddress)
        case stopped
    }

    private struct State {
        var phase = Phase.idle
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    /// The configuration.
    package let configuration: Configuration
    private let state = Mutex(State())
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// Creates a server; nothing listens until ``start()`` or ``run()``.
    package init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Where the server listens (with the real port when port 0 was asked), or nil when it is not listening.
    package var boundAddress: ListenAddress? {
        state.withLock { state in
            if case .listening(_, let address) = state.phase { return address }
            return nil
        }
    }

    /// Binds and starts answering; returns the bound address. Calling it again while listening returns the same
    /// address.
    ///
    /// - Throws: ``RelaySocketError`` when the address cannot be resolved or bound, or the server was stopped.
    @discardableResult
    package func start() async throws(RelaySocketError) -> ListenAddress {
        if let boundAddress { return boundAddress }
        let address = configuration.address
        let channel: any Channel
        do {
            channel = try await bootstrap().bind(host: address.host, port: Int(address.port)).get()
        } catch {
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw RelaySocketError(operation: "bind", address: address.description, reason: reason)
        }
        let bound = ListenAddress(host: address.host, port: UInt16(channel.localAddress?.port ?? Int(address.port)))
        let kept = state.withLock { state -> Bool in
            guard case .idle = state.phase else { return false }
            state.phase = .listening(channel, bound)
            return true
        }
        guard kept else {
            channel.close(promise: nil)
            throw RelaySocketError(operation: "start", address: address.description, reason: "the server was stopped")
        }
        return bound
    }

    /// Serves until the task is cancelled or a graceful shutdown is triggered, then closes the listener and every
    /// connection. Binds first unless ``start()`` did.
    package func run() async throws {
        if boundAddress == nil { try await start() }
        let listener: (any Channel)? = state.withLock { state in
            if case .listening(let channel, _) = state.phase { return channel }
            return nil
        }
        guard let listener else { return }
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await listener.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            self.stop()
        }
        stop()
    }

    /// Closes the listener and every connection; idempotent.
    package func stop() {
        let (listener, connections): ((any Channel)?, [any Channel]) = state.withLock { state in
            defer {
                state.phase = .stopped
                state.connections = [:]
            }
            if case .listening(let channel, _) = state.phase { return (channel, Array(state.connections.values)) }
            return (nil, Array(state.connections.values))
        }
        listener?.close(promise: nil)
        for connection in connections { connection.close(promise: nil) }
    }

    private func bootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                let id = ObjectIdentifier(channel)
                let admitted = state.withLock { state -> Bool in
                    guard case .listening = state.phase else { return false }
                    state.connections[id] = channel
                    return true
                }
                guard admitted else {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                channel.closeFuture.whenComplete { [self] _ in
                    state.withLock { _ = $0.connections.removeValue(forKey: id) }
                }
                var limits = NIOHTTPDecoderLimitConfiguration()
                limits.maxHeaderFieldSize = 16 * 1024
                limits.maxHeaderListSize = 16 * 1024
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(IdleStateHandler(allTimeout: .seconds(30)))
                    let budget = RequestByteBudget(limit: 32 * 1024)
                    try pipeline.addHandler(budget)
                    try pipeline.addHandler(HTTPResponseEncoder())
                    try pipeline.addHandler(
                        ByteToMessageHandler(
                            HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)
                        )
                    )
                    try pipeline.addHandler(
                        MetricsHTTPHandler(
                            render: configuration.render,
                            contentType: configuration.contentType,
                            logger: configuration.logger,
                            budget: budget
                        )
                    )
                }
            }
    }
}

/// Closes a connection whose current request has sent more than `limit` bytes. The decoder's own limits count
/// only header names and values, so without it a client could send a head padded with white space, or a body,
/// of any size; ``MetricsHTTPHandler`` starts the count again after each request.
private final class RequestByteBudget: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limit: Int
    private var used = 0

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        used += unwrapInboundIn(data).readableBytes
        guard used <= limit else {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// A request was read whole; bytes after it count toward the next.
    func requestCompleted() {
        used = 0
    }
}

/// Answers the requests of one connection to the metrics server.
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private let contentType: String
    private let logger: Logger
    private let budget: RequestByteBudget
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8], contentType: String, logger: Logger, budget: RequestByteBudget) {
        self.render = render
        self.contentType = contentType
        self.logger = logger
        self.budget = budget
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            budget.requestCompleted()
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var headers: HTTPHeaders = ["Cache-Control": "no-store"]
        let status: HTTPResponseStatus
        var body: ByteBuffer
        if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            body = ByteBuffer(string: "method not allowed: use GET\n")
        } else if path == "/metrics" {
            status = .ok
            headers.add(name: "Content-Type", value: contentType)
            body = ByteBuffer(bytes: render())
        } else {
            status = .notFound
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            body = ByteBuffer(string: "not found: the metrics are at /metrics\n")
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        if head.method == .HEAD { body.clear() }
        let version: HTTPVersion = head.version.minor == 0 ? .http1_0 : .http1_1
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))),
            promise: nil
        )
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { result in
            if case .failure = result { context.close(promise: nil) } else if !keepAlive { context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("metrics connection failed: \(error)")
        context.close(promise: nil)
    }
}
