import FliptTestSupport
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A TLS client connection for tests: sends bytes and collects what comes back as it arrives, so that whole
/// answers, streams and refused handshakes can be checked.
final class TLSTestClient: Sendable {
    /// What the connection received, and how it ended.
    private final class Received: Sendable {
        struct State {
            var bytes: [UInt8] = []
            var closed = false
            var failure: String?
        }
        let state = Mutex(State())
    }

    private let channel: any Channel
    private let received: Received

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Connects to 127.0.0.1:`port` over TLS, trusting the CA in `trusting` (PEM) and checking `hostname`, with
    /// `identity` (certificate and key PEM) as the client certificate when given.
    static func connect(
        port: UInt16,
        hostname: String = "localhost",
        trusting: String = TestCertificates.caCertificate,
        identity: (certificate: String, key: String)? = nil
    ) async throws -> TLSTestClient {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(trusting.utf8)))
        if let identity {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificate.utf8)).map {
                .certificate($0)
            }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.key.utf8), format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let received = Received()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: hostname)
                    )
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: Int(port)).get()
        return TLSTestClient(channel: channel, received: received)
    }

    /// Sends `text` as is.
    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    /// Sends a GET request with a Host header, the given extra header lines and, unless `keepAlive`,
    /// `Connection: close`.
    func get(_ path: String, headers: [String] = [], keepAlive: Bool = false) async throws {
        let lines = headers + (keepAlive ? [] : ["Connection: close"])
        try await send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    /// Everything received so far.
    var text: String { received.state.withLock { String(decoding: $0.bytes, as: UTF8.self) } }

    /// Whether the connection ended (closed by either side, or failed).
    var isClosed: Bool { received.state.withLock { $0.closed } }

    /// The error that ended the connection (a refused handshake, say), if any.
    var failure: String? { received.state.withLock { $0.failure } }

    /// Waits until the received text contains `expected`; returns whether it did within `timeout`.
    func waitFor(_ expected: String, timeout: Duration = .seconds(15)) async -> Bool {
        await eventually(timeout: timeout) { text.contains(expected) }
    }

    /// Waits until the connection ends; returns whether it did within `timeout`.
    func waitForClose(timeout: Duration = .seconds(15)) async -> Bool {
        await eventually(timeout: timeout) { isClosed }
    }

    /// The answer to a request sent with `Connection: close`: waits for the server to close, then parses status,
    /// header fields and body.
    func response() async throws -> RawHTTPClient.Response {
        guard await waitForClose() else {
            throw RawHTTPClient.Failure(description: "the server did not close the connection: \(text)")
        }
        let all = text
        guard let end = all.range(of: "\r\n\r\n") else {
            throw RawHTTPClient.Failure(description: "no complete answer (\(failure ?? "closed")): \(all)")
        }
        let lines = all[..<end.lowerBound].components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw RawHTTPClient.Failure(description: "bad status line \(lines[0])")
        }
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return RawHTTPClient.Response(status: status, headers: headers, body: Array(all[end.upperBound...].utf8))
    }

    /// The certificate the server presented.
    func peerCertificate() async throws -> NIOSSLCertificate? {
        try await channel.nioSSL_peerCertificate().get()
    }

    /// Closes the connection.
    func close() {
        channel.close(promise: nil)
    }

    /// Appends inbound bytes to ``Received``; records the end and its error.
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let received: Received

        init(received: Received) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.state.withLock { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.state.withLock { $0.closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            received.state.withLock { $0.failure = $0.failure ?? "\(error)" }
            context.close(promise: nil)
        }
    }
}
