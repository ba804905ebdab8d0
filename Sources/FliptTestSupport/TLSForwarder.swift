#if canImport(NIOSSL)
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// A TLS front for a ``TestFliptServer``: accepts TLS on 127.0.0.1 and pipes the decrypted bytes to the server's
/// plain port, so every fault the server can inject is reachable over `https`.
///
/// Each accepted connection opens its own connection to the server first, then completes the TLS handshake; bytes
/// are copied both ways as they arrive, and closing or resetting either side closes the other. The forwarder counts
/// connections and handshakes, so tests can tell a client that gave up during the handshake from one that sent a
/// request. ``stop()`` closes the listener and every connection.
package final class TLSForwarder: Sendable {
    /// The TCP port on 127.0.0.1 the forwarder listens on.
    package let port: UInt16
    /// The server behind the forwarder.
    package let server: TestFliptServer
    private let listener: any Channel
    private let state: StateBox

    private struct State {
        var connections: [ObjectIdentifier: any Channel] = [:]
        var statistics = Statistics()
        var stopped = false
    }

    /// The mutable state, shared by reference with the channel handlers.
    private final class StateBox: Sendable {
        let mutex = Mutex(State())

        func withLock<T>(_ body: (inout State) -> T) -> T {
            mutex.withLock { body(&$0) }
        }
    }

    /// What the forwarder has seen.
    package struct Statistics: Sendable, Hashable {
        /// TCP connections accepted.
        package var connections = 0
        /// TLS handshakes completed.
        package var handshakes = 0
        /// TLS handshakes or sessions that failed with an error (a client rejecting the certificate, for example).
        package var failures = 0
    }

    /// The `https` URL of the server behind it: `https://127.0.0.1:<port><basePath>`.
    package var baseURL: URL { URL(string: "https://127.0.0.1:\(port)\(server.basePath)")! }

    /// Starts forwarding TLS connections on a free port of 127.0.0.1 to `server`.
    ///
    /// - Parameters:
    ///   - server: the plain HTTP server to forward to.
    ///   - certificate: the PEM certificate chain to present (by default one for 127.0.0.1 and localhost).
    ///   - privateKey: its PEM private key.
    package init(
        to server: TestFliptServer,
        certificate: String = TestCertificates.serverCertificate,
        privateKey: String = TestCertificates.serverPrivateKey
    ) throws {
        self.server = server
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map {
            NIOSSLCertificateSource.certificate($0)
        }
        let key = try NIOSSLPrivateKey(bytes: Array(privateKey.utf8), format: .pem)
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        )
        let state = StateBox()
        self.state = state
        let target = Int(server.port)
        let listener = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let accepted = state.withLock { state -> Bool in
                    guard !state.stopped else { return false }
                    state.statistics.connections += 1
                    state.connections[ObjectIdentifier(inbound)] = inbound
                    return true
                }
                guard accepted else { return inbound.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
                inbound.closeFuture.whenComplete { _ in
                    _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(inbound)) }
                }
                return ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: "127.0.0.1", port: target)
                    .flatMapThrowing { outbound in
                        outbound.closeFuture.whenComplete { _ in inbound.close(promise: nil) }
                        try outbound.pipeline.syncOperations.addHandler(Pipe(to: inbound))
                        try inbound.pipeline.syncOperations.addHandlers(
                            NIOSSLServerHandler(context: context),
                            HandshakeCounter(state: state),
                            Pipe(to: outbound)
                        )
                    }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        self.listener = listener
        self.port = UInt16(listener.localAddress?.port ?? 0)
    }

    deinit {
        stop()
    }

    /// Connections and handshakes so far.
    package var statistics: Statistics {
        state.withLock { $0.statistics }
    }

    /// Closes the listener and every forwarded connection; safe to call more than once.
    package func stop() {
        let connections: [any Channel] = state.withLock { state in
            guard !state.stopped else { return [] }
            state.stopped = true
            return Array(state.connections.values)
        }
        listener.close(promise: nil)
        for connection in connections { connection.close(promise: nil) }
    }

    /// Counts completed handshakes, and connections that end with an error.
    private final class HandshakeCounter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let state: StateBox

        init(state: StateBox) {
            self.state = state
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted = event {
                state.withLock { $0.statistics.handshakes += 1 }
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            state.withLock { $0.statistics.failures += 1 }
            context.close(promise: nil)
        }
    }

    /// Writes every buffer it reads to the peer channel, and closes the peer when its own channel closes.
    private final class Pipe: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let peer: any Channel

        init(to peer: any Channel) {
            self.peer = peer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// Runs `body` with a fresh ``TestFliptServer`` behind a ``TLSForwarder`` and stops both afterwards, even on error.
///
/// - Parameters:
///   - version: the Flipt generation the server imitates.
///   - certificate: the PEM certificate the forwarder presents.
///   - privateKey: its PEM private key.
///   - body: the test; it receives the plain server and the forwarder (whose ``TLSForwarder/baseURL`` is `https`).
package func withTLSTestServer<Result>(
    version: TestFliptServer.Version = .v2,
    certificate: String = TestCertificates.serverCertificate,
    privateKey: String = TestCertificates.serverPrivateKey,
    _ body: (TestFliptServer, TLSForwarder) async throws -> Result
) async throws -> Result {
    let server = try TestFliptServer(version: version)
    defer { server.stop() }
    let forwarder = try TLSForwarder(to: server, certificate: certificate, privateKey: privateKey)
    defer { forwarder.stop() }
    return try await body(server, forwarder)
}
#endif
