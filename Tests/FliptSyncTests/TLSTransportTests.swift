#if canImport(AsyncHTTPClient)
import FliptSync
import FliptTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Runs `body` with an ``AsyncHTTPClientTransport`` and shuts it down afterwards.
func withClientTransport<Result>(
    tls: TLSOptions = TLSOptions(),
    logger: Logger = .discarding,
    _ body: (AsyncHTTPClientTransport) async throws -> Result
) async throws -> Result {
    let transport = try AsyncHTTPClientTransport(tls: tls, logger: logger)
    do {
        let result = try await body(transport)
        await transport.shutdown()
        return result
    } catch {
        await transport.shutdown()
        throw error
    }
}

/// A fetcher for `url` with no retries unless configured, a real clock and the given transport (nil: the default).
func tlsFetcher(
    _ url: URL,
    tls: TLSOptions = TLSOptions(),
    transport: (any HTTPTransport)? = nil,
    logger: Logger = .discarding,
    configure: (inout SyncConfiguration) -> Void = { _ in }
) throws -> SnapshotFetcher {
    var configuration = SyncConfiguration(url: url, authentication: .clientToken(TLSTransportTests.token), tls: tls)
    configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
    configure(&configuration)
    return try SnapshotFetcher(configuration: configuration, transport: transport, logger: logger)
}

@Suite("TLS options over a real TLS server on 127.0.0.1", .timeLimit(.minutes(1)))
struct TLSTransportTests {
    static let token = "tls-s3cr3t-token-41b7"
    static let trustTestCA = TLSOptions(additionalTrustRoots: [.pem(TestCertificates.caCertificate)])

    /// A file holding `text`, removed after `body`.
    static func withFile<Result>(_ text: String, _ body: (String) async throws -> Result) async throws -> Result {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString).pem").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    static func expectTLSFailure(_ error: SyncError?, _ forwarder: TLSForwarder, _ server: TestFliptServer) {
        let message = error?.message ?? "no error"
        #expect(error?.kind == .network, "\(message)")
        #expect(message.contains("TLS"), "\(message)")
        #expect(message.contains("--ca-cert"), "\(message)")
        #expect(message.contains("additionalTrustRoots"), "\(message)")
        #expect(error?.message.contains(token) == false)
        #expect(server.requests.isEmpty, "an HTTP request got through an untrusted TLS connection")
        #expect(forwarder.statistics.handshakes == 0)
    }

    @Test("the default options reject a server whose CA is not in the system store, and say what to do")
    func defaultOptionsRejectPrivateCA() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            // The fetcher's default transport (URLSession) and the AsyncHTTPClient transport agree.
            let fetcher = try tlsFetcher(forwarder.baseURL)
            Self.expectTLSFailure(await syncError { try await fetcher.fetch(ifNoneMatch: nil) }, forwarder, server)
            try await withClientTransport { transport in
                let fetcher = try tlsFetcher(forwarder.baseURL, transport: transport)
                Self.expectTLSFailure(await syncError { try await fetcher.fetch(ifNoneMatch: nil) }, forwarder, server)
            }
            #expect(forwarder.statistics.connections == 2)
        }
    }

    @Test(
        "an extra CA, as PEM text or a file, gives a full fetch: 200, then 304 to the ETag",
        arguments: [false, true]
    )
    func extraCA(fromFile: Bool) async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            try await Self.withFile(TestCertificates.caCertificate) { path in
                let root: TLSOptions.TrustRoot = fromFile ? .pemFile(path) : .pem(TestCertificates.caCertificate)
                // No transport given: the fetcher picks the one that honours the extra CA.
                let fetcher = try tlsFetcher(forwarder.baseURL, tls: TLSOptions(additionalTrustRoots: [root]))
                let fetched = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
                #expect(fetched.document == FixtureDocument.bytes())
                #expect(fetched.etag == server.digest())
                #expect(try await fetcher.fetch(ifNoneMatch: fetched.etag).notModifiedETag == server.digest())
            }
            let requests = server.requests
            #expect(requests.count == 2)
            #expect(requests.map { $0.header("Authorization") } == ["Bearer \(Self.token)", "Bearer \(Self.token)"])
            #expect(requests.map { $0.header("If-None-Match") } == [nil, server.digest()])
            #expect(requests.allSatisfy { $0.header("Accept-Encoding") == "gzip" })
            #expect(forwarder.statistics.handshakes >= 1)
        }
    }

    @Test("a CA that did not sign the server's certificate is refused before any HTTP request")
    func wrongCA() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try tlsFetcher(
                forwarder.baseURL,
                tls: TLSOptions(additionalTrustRoots: [.pem(TestCertificates.otherCACertificate)])
            )
            Self.expectTLSFailure(await syncError { try await fetcher.fetch(ifNoneMatch: nil) }, forwarder, server)
            #expect(forwarder.statistics.connections == 1)
        }
    }

    @Test("skip-verify accepts the server, logs one warning per transport, and never logs the token")
    func skipVerify() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            server.requireAuthentication(clientTokens: [Self.token])
            server.enqueue(.status(503))
            let log = LogRecorder()
            let fetcher = try tlsFetcher(
                forwarder.baseURL,
                tls: TLSOptions(insecureSkipVerify: true),
                logger: log.logger
            ) { $0.retryPolicy = RetryPolicy(maximumRetries: 2, baseDelay: .milliseconds(10)) }
            let fetched = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
            #expect(fetched.etag == server.digest())
            #expect(server.requests.count == 2)
            #expect(server.requests.last?.header("Authorization") == "Bearer \(Self.token)")
            #expect(log.warnings.count == 1)
            #expect(log.warnings.first?.contains("verification is disabled") == true)
            #expect(log.lines.count >= 2, "the retry was not logged, so the token check proves little")
            #expect(!log.lines.contains { $0.contains(Self.token) })

            _ = try AsyncHTTPClientTransport(tls: TLSOptions(insecureSkipVerify: true), logger: log.logger)
            #expect(log.warnings.count == 2)
            _ = try AsyncHTTPClientTransport(tls: Self.trustTestCA, logger: log.logger)
            #expect(log.warnings.count == 2)
        }
    }

    @Test("a certificate for another host name fails with the right CA and passes with skip-verify")
    func hostNameMismatch() async throws {
        try await withTLSTestServer(
            certificate: TestCertificates.otherNameCertificate,
            privateKey: TestCertificates.otherNamePrivateKey
        ) { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            let verified = try tlsFetcher(forwarder.baseURL, tls: Self.trustTestCA)
            Self.expectTLSFailure(await syncError { try await verified.fetch(ifNoneMatch: nil) }, forwarder, server)
            let unverified = try tlsFetcher(forwarder.baseURL, tls: TLSOptions(insecureSkipVerify: true))
            #expect(try await unverified.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.count == 1)
        }
    }

    @Test("the DNS name in the certificate is checked too: localhost passes")
    func localhostName() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            let url = try #require(URL(string: "https://localhost:\(forwarder.port)"))
            let fetcher = try tlsFetcher(url, tls: Self.trustTestCA)
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.first?.header("Host") == "localhost:\(forwarder.port)")
        }
    }
}

extension TLSTransportTests {
    @Test("the stream endpoint delivers each document as it changes, over TLS")
    func streaming() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            try await withClientTransport(tls: Self.trustTestCA) { transport in
                let fetcher = try tlsFetcher(forwarder.baseURL, transport: transport)
                let stream = try await fetcher.openStream(etag: nil)
                #expect(stream.head.status == 200)
                var splitter = NDJSONSplitter()
                var documents: [String] = []
                for try await chunk in stream.body {
                    for line in try splitter.append(chunk) {
                        guard case .result(let document, _) = StreamMessage(line: line) else { continue }
                        documents.append(String(decoding: document, as: UTF8.self))
                        // The second document exists only after the first arrived: chunks are not held back.
                        if documents.count == 1 { server.setDocument(FixtureDocument.bytes(revision: 2)) }
                    }
                    if documents.count >= 2 { break }
                }
                #expect(documents.count == 2)
                #expect(documents.first?.contains("revision 1") == true)
                #expect(documents.last?.contains("revision 2") == true)
            }
            // Leaving the loop cancelled the request: the server sees the stream end.
            #expect(await server.wait { $0.openStreamCount == 0 })
        }
    }

    @Test("cancelling a request hung on a silent TLS server ends it within 1 s")
    func cancelHungRequest() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent)
            try await withClientTransport(tls: Self.trustTestCA) { transport in
                let fetcher = try tlsFetcher(forwarder.baseURL, transport: transport)
                let task = Task { await syncError { try await fetcher.fetch(ifNoneMatch: nil) } }
                #expect(await server.wait { $0.requests.count == 1 })
                let start = ContinuousClock.now
                task.cancel()
                let error = await task.value
                #expect(ContinuousClock.now - start < .seconds(1))
                #expect(error?.kind == .cancelled)
            }
        }
    }

    @Test("a request timeout over TLS is a timeout error")
    func requestTimeout() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent)
            // Long enough for a TLS handshake on a busy machine, so the deadline hits the silent server.
            let fetcher = try tlsFetcher(forwarder.baseURL, tls: Self.trustTestCA) {
                $0.requestTimeout = .seconds(1)
            }
            let start = ContinuousClock.now
            let error = await syncError { try await fetcher.fetch(ifNoneMatch: nil) }
            #expect(error?.kind == .timeout)
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(server.requests.count == 1)
            #expect(forwarder.statistics.handshakes == 1)
        }
    }

    @Test("503 answers over TLS are retried until a snapshot arrives")
    func retryOn503() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.status(503), times: 2)
            let fetcher = try tlsFetcher(forwarder.baseURL, tls: Self.trustTestCA) {
                $0.retryPolicy = RetryPolicy(maximumRetries: 3, baseDelay: .milliseconds(10))
            }
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.count == 3)
            #expect(fetcher.statistics.retries == 2)
        }
    }

    @Test("a redirect to another port or scheme drops Authorization; a same-origin one keeps it")
    func redirects() async throws {
        try await withTLSTestServer { server, forwarder in
            server.setDocument(FixtureDocument.bytes())
            let second = try TLSForwarder(to: server)
            defer { second.stop() }
            let v2Path = "/client/v2/environments/default/namespaces/default/snapshot"
            let targets = [
                ("https://127.0.0.1:\(forwarder.port)\(v2Path)", true),
                (v2Path, true),
                ("https://127.0.0.1:\(second.port)\(v2Path)", false),
                ("http://127.0.0.1:\(server.port)\(v2Path)", false),
                ("https://localhost:\(forwarder.port)\(v2Path)", false),
            ]
            let fetcher = try tlsFetcher(forwarder.baseURL, tls: Self.trustTestCA)
            for (location, keeps) in targets {
                server.resetLog()
                server.enqueue(.redirect(to: location, status: 307))
                #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
                let requests = server.requests
                #expect(requests.map(\.path) == ["/internal/v1/evaluation/snapshot/namespace/default", v2Path])
                #expect(requests.first?.header("Authorization") == "Bearer \(Self.token)")
                #expect(requests.last?.header("Authorization") == (keeps ? "Bearer \(Self.token)" : nil), "\(location)")
                #expect(requests.last?.header("X-Flipt-Environment") == "default")
            }
            #expect(second.statistics.handshakes == 1)
        }
    }

    @Test("too many redirects are a network error")
    func redirectLoop() async throws {
        try await withTLSTestServer { server, forwarder in
            server.enqueue(.redirect(to: "/internal/v1/evaluation/snapshot/namespace/default"), times: 20)
            let fetcher = try tlsFetcher(forwarder.baseURL, tls: Self.trustTestCA)
            let error = await syncError { try await fetcher.fetch(ifNoneMatch: nil) }
            #expect(error?.kind == .network)
            #expect(error?.message.contains("redirected") == true)
            #expect(server.requests.count == 11)
        }
    }
}

@Suite("AsyncHTTPClientTransport over plain HTTP matches URLSessionTransport", .timeLimit(.minutes(1)))
struct TransportParityTests {
    /// Faults on the snapshot endpoint, each with the error kind both transports must report.
    static let faults: [(String, TestFliptServer.Fault?, SyncError.Kind?)] = [
        ("ok", nil, nil),
        ("closed", .closeConnection, .network),
        ("reset", .resetConnection, .network),
        ("truncated", .truncatedBody(sentBytes: 50), .network),
        ("silent", .silent, .timeout),
        ("503", .status(503), .httpStatus(503)),
        ("401", .status(401), .authentication(401)),
        ("garbage", .raw(Array("not http at all\r\n\r\n".utf8), close: true), .network),
    ]

    @Test("every fault gives the same error kind through both transports", arguments: 0..<faults.count)
    func sameKinds(index: Int) async throws {
        let (name, fault, kind) = Self.faults[index]
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            try await withClientTransport { client in
                for transport in [sessionTransport, client] as [any HTTPTransport] {
                    if let fault { server.enqueue(fault) }
                    // Long enough on a busy machine for every fault but the silent one to show itself.
                    let fetcher = try tlsFetcher(server.baseURL, transport: transport) {
                        $0.requestTimeout = .seconds(2)
                    }
                    let error = await syncError { try await fetcher.fetch(ifNoneMatch: nil) }
                    #expect(error?.kind == kind, "\(name) through \(type(of: transport)): \(String(describing: error))")
                }
            }
            #expect(server.requests.count == 2)
        }
    }

    @Test("a refused connection is the same network error through both transports")
    func refused() async throws {
        let url = try #require(URL(string: "http://127.0.0.1:\(try TestFliptServer.unusedPort())"))
        try await withClientTransport { client in
            var messages: [String] = []
            for transport in [sessionTransport, client] as [any HTTPTransport] {
                let error = await syncError { try await tlsFetcher(url, transport: transport).fetch(ifNoneMatch: nil) }
                #expect(error?.kind == .network)
                messages.append(error?.message ?? "")
            }
            #expect(messages[0] == messages[1])
            #expect(messages[1].contains("connection refused"))
        }
    }

    @Test("the protocol headers arrive as sent, with no Accept-Encoding of the transport's own")
    func headers() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            try await withClientTransport { client in
                let fetcher = try tlsFetcher(server.baseURL, transport: client) {
                    $0.namespace = "a b/ü"
                    $0.reference = "feature/x y"
                }
                server.setDocument(FixtureDocument.bytes(namespace: "a b/ü"), namespace: "a b/ü")
                #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            }
            let request = try #require(server.requests.first)
            #expect(request.path == "/internal/v1/evaluation/snapshot/namespace/a%20b%2F%C3%BC")
            #expect(request.queryValues("reference") == ["feature/x y"])
            #expect(request.headerValues("Accept-Encoding") == ["gzip"])
            #expect(request.header("Accept") == "application/json")
            #expect(request.header("User-Agent") == SyncConfiguration.defaultUserAgent)
            #expect(request.header("Authorization") == "Bearer \(TLSTransportTests.token)")
        }
    }

    @Test("a body arrives chunk by chunk, before the response ends")
    func chunksAsTheyArrive() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(flagCount: 20))
            server.enqueue(.slowBody(chunkSize: 100, interval: .milliseconds(100)))
            try await withClientTransport { client in
                let request = TransportRequest(url: SyncConfiguration(url: server.baseURL).snapshotURL, headers: [])
                let stream = try await client.openStream(request)
                var iterator = stream.body.makeAsyncIterator()
                let start = ContinuousClock.now
                let first = try await iterator.next()
                #expect(first?.isEmpty == false)
                #expect(ContinuousClock.now - start < .milliseconds(500), "the first chunk waited for the whole body")
            }
        }
    }

    @Test("the HTTP client is made by the first request, not by creating the transport")
    func clientMadeOnFirstRequest() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let transport = try AsyncHTTPClientTransport()
            #expect(!transport.hasClient)
            let fetched = try await tlsFetcher(server.baseURL, transport: transport).fetch(ifNoneMatch: nil)
            #expect(fetched.fetched?.document == FixtureDocument.bytes())
            #expect(transport.hasClient)
            // Later requests reuse it, and the shutdown closes it.
            _ = try await tlsFetcher(server.baseURL, transport: transport).fetch(ifNoneMatch: nil)
            #expect(server.requests.count == 2)
            await transport.shutdown()
            #expect(!transport.hasClient)
            let error = await syncError {
                try await tlsFetcher(server.baseURL, transport: transport).fetch(ifNoneMatch: nil)
            }
            #expect(error?.kind == .network)
            #expect(error?.message.contains("shut down") == true, "\(String(describing: error))")
        }
    }

    @Test("after shutdown, requests fail with a network error instead of hanging")
    func afterShutdown() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let client = try AsyncHTTPClientTransport()
            await client.shutdown()
            await client.shutdown()
            let error = await syncError {
                try await tlsFetcher(server.baseURL, transport: client).fetch(ifNoneMatch: nil)
            }
            #expect(error?.kind == .network)
        }
    }
}
#endif
