import FliptRelay
import FliptTestSupport
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@Suite("TLS files")
struct TLSFilesTests {
    @Test("the test certificate and key load into a context that completes a handshake")
    func loadsAndServes() async throws {
        try await withPEMFiles(chain: TestCertificates.serverCertificate, key: TestCertificates.serverPrivateKey) {
            files in
            let loaded = try files.load()
            #expect(loaded.warnings.isEmpty)
            #expect(loaded.configuration.minimumTLSVersion == .tlsv12)
            #expect(loaded.configuration.certificateVerification == .none)
            let reply = try await exchange(serverContext: { loaded.context })
            #expect(reply == .echoed)
        }
    }

    @Test("TLS 1.1 clients are refused")
    func refusesOldTLS() async throws {
        try await withPEMFiles(chain: TestCertificates.serverCertificate, key: TestCertificates.serverPrivateKey) {
            files in
            let loaded = try files.load()
            let reply = try await exchange(serverContext: { loaded.context }) { configuration in
                configuration.minimumTLSVersion = .tlsv1
                configuration.maximumTLSVersion = .tlsv11
            }
            #expect(reply != .echoed)
        }
    }

    @Test("an RSA certificate and key load too")
    func rsa() async throws {
        try await withPEMFiles(chain: TestCertificates.rsaCertificate, key: TestCertificates.rsaPrivateKey) { files in
            let loaded = try files.load()
            // The certificate is self-signed (not a CA), so the chain is not checked; the handshake still proves
            // that the server holds the key, since its signature is checked against the certificate.
            let reply = try await exchange(serverContext: { loaded.context }) { configuration in
                configuration.certificateVerification = .none
            }
            #expect(reply == .echoed)
        }
    }

    @Test(
        "a key that is not the certificate's is refused, naming the key file",
        arguments: [
            (TestCertificates.serverCertificate, TestCertificates.otherNamePrivateKey),
            (TestCertificates.rsaCertificate, TestCertificates.serverPrivateKey),
            (TestCertificates.serverCertificate, TestCertificates.rsaPrivateKey),
        ]
    )
    func mismatchedKey(chain: String, key: String) async throws {
        try await withPEMFiles(chain: chain, key: key) { files in
            let error = try #require(throws: TLSFilesError.self) { try files.load() }
            #expect(error.path == files.privateKeyPath)
            #expect(error.reason.contains("does not belong to the first certificate of \(files.certificateChainPath)"))
        }
    }

    @Test(
        "unusable files are clear errors naming the file",
        arguments: [
            ("chain", "garbage, not a certificate", TestCertificates.serverPrivateKey, "is not PEM"),
            ("chain", TestCertificates.serverPrivateKey, TestCertificates.serverPrivateKey, "holds no certificate"),
            (
                "chain", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                TestCertificates.serverPrivateKey, "certificate 1 of the certificate chain file is not a valid X.509"
            ),
            ("key", TestCertificates.serverCertificate, "", "is not PEM"),
            ("key", TestCertificates.serverCertificate, TestCertificates.serverCertificate, "holds no private key"),
            ("key", TestCertificates.serverCertificate, TestCertificates.encryptedPrivateKey, "is encrypted"),
            (
                "key", TestCertificates.serverCertificate,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "could not be read"
            ),
        ]
    )
    func unusableFiles(culprit: String, chain: String, key: String, reason: String) async throws {
        try await withPEMFiles(chain: chain, key: key) { files in
            let error = try #require(throws: TLSFilesError.self) { try files.load() }
            #expect(error.path == (culprit == "chain" ? files.certificateChainPath : files.privateKeyPath))
            #expect(error.reason.contains(reason), "\(error)")
            #expect(error.description.hasPrefix(error.path + ": "))
        }
    }

    @Test("missing files and directories are clear errors")
    func missingFiles() async throws {
        let missing = TLSFiles(certificateChainPath: "/nonexistent/chain.pem", privateKeyPath: "/nonexistent/key.pem")
        let error = try #require(throws: TLSFilesError.self) { try missing.load() }
        #expect(
            error.description == "/nonexistent/chain.pem: the certificate chain file could not be read (no such file)."
        )
        try await withPEMFiles(chain: TestCertificates.serverCertificate, key: TestCertificates.serverPrivateKey) {
            files in
            var files = files
            files.clientCAPath = FileManager.default.temporaryDirectory.path
            let error = try #require(throws: TLSFilesError.self) { try files.load() }
            #expect(error.reason == "the client CA file could not be read (it is a directory)")
        }
    }

    @Test("an expired certificate, one not valid yet, and one about to expire are warnings")
    func validityWarnings() async throws {
        try await withPEMFiles(chain: TestCertificates.expiredCertificate, key: TestCertificates.expiredPrivateKey) {
            files in
            let loaded = try files.load()
            #expect(loaded.warnings.count == 1)
            #expect(loaded.warnings.first?.contains("expired on 2021-01-01T00:00:00Z") == true)
        }
        try await withPEMFiles(chain: TestCertificates.serverCertificate, key: TestCertificates.serverPrivateKey) {
            files in
            let notValidAfter = try files.load().notValidAfter
            let soon = try files.load(now: notValidAfter.addingTimeInterval(-2 * 24 * 3_600))
            #expect(soon.warnings.first?.contains("expires on 2125-01-01T00:00:00Z") == true)
            let early = try files.load(now: Date(timeIntervalSince1970: 0))
            #expect(early.warnings.first?.contains("is not valid until 2025-01-01T00:00:00Z") == true)
        }
    }

    @Test("with a client CA, a client must present a certificate that CA signed")
    func clientCertificates() async throws {
        try await withPEMFiles(
            chain: TestCertificates.serverCertificate,
            key: TestCertificates.serverPrivateKey,
            clientCA: TestCertificates.clientCACertificate
        ) { files in
            let loaded = try files.load()
            #expect(loaded.configuration.certificateVerification == .noHostnameVerification)
            let context = loaded.context
            let anonymous = try await exchange(serverContext: { context })
            #expect(anonymous != .echoed)

            let signed = try await exchange(serverContext: { context }) { configuration in
                configuration.certificateChain = try! NIOSSLCertificate.fromPEMBytes(
                    Array(TestCertificates.clientCertificate.utf8)
                ).map { .certificate($0) }
                configuration.privateKey = .privateKey(
                    try! NIOSSLPrivateKey(bytes: Array(TestCertificates.clientPrivateKey.utf8), format: .pem)
                )
            }
            #expect(signed == .echoed)

            // A certificate from another CA (the server's own, signed by the test CA) is refused.
            let foreign = try await exchange(serverContext: { context }) { configuration in
                configuration.certificateChain = try! NIOSSLCertificate.fromPEMBytes(
                    Array(TestCertificates.otherNameCertificate.utf8)
                ).map { .certificate($0) }
                configuration.privateKey = .privateKey(
                    try! NIOSSLPrivateKey(bytes: Array(TestCertificates.otherNamePrivateKey.utf8), format: .pem)
                )
            }
            #expect(foreign != .echoed)
        }
    }

    @Test("a client CA file without a certificate is an error naming it")
    func badClientCA() async throws {
        try await withPEMFiles(
            chain: TestCertificates.serverCertificate,
            key: TestCertificates.serverPrivateKey,
            clientCA: TestCertificates.clientPrivateKey
        ) { files in
            let error = try #require(throws: TLSFilesError.self) { try files.load() }
            #expect(error.path == files.clientCAPath)
            #expect(error.reason.contains("the client CA file holds no certificate"))
        }
    }

    @Test("reload: new files give a new context for new connections; bad files keep the old one")
    func reload() async throws {
        try await withPEMFiles(chain: TestCertificates.serverCertificate, key: TestCertificates.serverPrivateKey) {
            files in
            let holder = try ReloadableTLSContext(files: files)
            let first = holder.context

            try write(TestCertificates.otherNameCertificate, to: files.certificateChainPath)
            let error = try #require(throws: TLSFilesError.self) { try holder.reload() }
            #expect(error.path == files.privateKeyPath)
            #expect(holder.context === first)
            #expect(try await exchange(serverContext: { holder.context }) == .echoed)

            try write(TestCertificates.otherNamePrivateKey, to: files.privateKeyPath)
            let reloaded = try holder.reload()
            #expect(reloaded.warnings.isEmpty)
            #expect(holder.context !== first)
            // The new certificate names flipt.example.test only: a client checking for localhost now refuses it,
            // and one checking for the new name accepts it.
            #expect(try await exchange(serverContext: { holder.context }) != .echoed)
            #expect(try await exchange(serverContext: { holder.context }, hostname: "flipt.example.test") == .echoed)
        }
    }
}

// MARK: - Support

private func write(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// Runs `body` with the chain, key (and client CA) written to PEM files in a temporary directory.
private func withPEMFiles<Result>(
    chain: String,
    key: String,
    clientCA: String? = nil,
    _ body: (TLSFiles) async throws -> Result
) async throws -> Result {
    try await withTemporaryDirectory { directory in
        let files = TLSFiles(
            certificateChainPath: directory.appendingPathComponent("chain.pem").path,
            privateKeyPath: directory.appendingPathComponent("key.pem").path,
            clientCAPath: clientCA.map { _ in directory.appendingPathComponent("client-ca.pem").path }
        )
        try write(chain, to: files.certificateChainPath)
        try write(key, to: files.privateKeyPath)
        if let clientCA, let path = files.clientCAPath { try write(clientCA, to: path) }
        return try await body(files)
    }
}

/// How a TLS exchange with the loopback echo server ended.
enum ExchangeOutcome: Equatable {
    /// The client's bytes came back over TLS.
    case echoed
    /// The handshake or the session failed; the description says how.
    case failed(String)
}

/// Starts a TLS echo server on 127.0.0.1 whose connections take `serverContext()` when accepted, connects a client
/// trusting the test CA (checking `hostname`), sends a line and waits for it to come back.
private func exchange(
    serverContext: @escaping @Sendable () -> NIOSSLContext,
    hostname: String = "localhost",
    configureClient: (inout TLSConfiguration) -> Void = { _ in }
) async throws -> ExchangeOutcome {
    let group = MultiThreadedEventLoopGroup.singleton
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext()))
                try channel.pipeline.syncOperations.addHandler(EchoHandler())
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    defer { server.close(promise: nil) }
    let port = server.localAddress!.port!

    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.trustRoots = .certificates(
        try NIOSSLCertificate.fromPEMBytes(Array(TestCertificates.caCertificate.utf8))
    )
    configureClient(&configuration)
    let clientContext = try NIOSSLContext(configuration: configuration)
    let promise = group.next().makePromise(of: String.self)
    let client = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(context: clientContext, serverHostname: hostname)
                )
                try channel.pipeline.syncOperations.addHandler(ReplyCollector(promise: promise))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    defer { client.close(promise: nil) }
    // A refused handshake may close the channel before (or while) this is written; the reply says why.
    try? await client.writeAndFlush(ByteBuffer(string: "ping\n"))
    // Generous: the machine is busy. A refused handshake ends the connection with an error well before this.
    let timeout = group.next().scheduleTask(in: .seconds(30)) {
        promise.fail(ChannelError.connectTimeout(.seconds(30)))
    }
    defer { timeout.cancel() }
    do {
        let reply = try await promise.futureResult.get()
        return reply == "ping\n" ? .echoed : .failed("unexpected reply \(reply)")
    } catch {
        return .failed("\(error)")
    }
}

/// Writes back whatever it reads.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Completes a promise with the first bytes read, or fails it when the connection fails or ends first.
private final class ReplyCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<String>
    private var received = ""
    private var done = false

    init(promise: EventLoopPromise<String>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        if received.hasSuffix("\n") { finish(.success(received)) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ChannelError.eof))
    }

    private func finish(_ result: Result<String, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
