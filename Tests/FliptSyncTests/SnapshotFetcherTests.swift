import FliptEngine
import FliptSync
import FliptTestSupport
import Foundation
import Testing

@Suite("SnapshotFetcher against the loopback server", .timeLimit(.minutes(1)))
struct SnapshotFetcherTests {
    @Test("first fetch is unconditional and sends the protocol headers; the ETag then gives a 304")
    func conditionalFetch() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try makeFetcher(server) { $0.authentication = .clientToken("secret") }
            let first = try await fetcher.fetch(ifNoneMatch: nil)
            let fetched = try #require(first.fetched)
            #expect(fetched.etag == server.digest())
            #expect(fetched.document == FixtureDocument.bytes())
            #expect(fetched.snapshot.namespaceKey == "default")
            #expect(fetched.serverDate != nil)
            let second = try await fetcher.fetch(ifNoneMatch: fetched.etag)
            #expect(second.notModifiedETag == server.digest())

            let requests = server.requests
            #expect(requests.count == 2)
            let request = try #require(requests.first)
            #expect(request.method == "GET")
            #expect(request.path == "/internal/v1/evaluation/snapshot/namespace/default")
            #expect(request.rawQuery == nil)
            #expect(request.header("Accept") == "application/json")
            #expect(request.header("Accept-Encoding") == "gzip")
            #expect(request.header("X-Flipt-Accept-Server-Version") == "1.47.0")
            #expect(request.header("X-Flipt-Environment") == "default")
            #expect(request.header("Authorization") == "Bearer secret")
            #expect(request.header("User-Agent") == SyncConfiguration.defaultUserAgent)
            #expect(request.header("If-None-Match") == nil)
            #expect(requests[1].header("If-None-Match") == server.digest())
        }
    }
}

extension SnapshotFetcherTests {
    @Test("reference is percent-encoded as one query parameter")
    func referenceEncoding() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let reference = "feature/a b&c#d=é"
            let fetcher = try makeFetcher(server) { $0.reference = reference }
            _ = try await fetcher.fetch(ifNoneMatch: nil)
            let request = try #require(server.requests.first)
            #expect(request.rawQuery == "reference=feature%2Fa%20b%26c%23d%3D%C3%A9")
            #expect(request.queryValues("reference") == [reference])
        }
    }

    @Test("a URL with a path prefix works with and without a trailing slash", arguments: ["/flipt", "/flipt/"])
    func pathPrefix(suffix: String) async throws {
        try await withTestServer(basePath: "/flipt") { server in
            server.setDocument(FixtureDocument.bytes())
            let url = try #require(URL(string: "http://127.0.0.1:\(server.port)\(suffix)"))
            let fetcher = try makeFetcher(server) { $0.url = url }
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.map(\.path) == ["/flipt/internal/v1/evaluation/snapshot/namespace/default"])
        }
    }

    @Test("namespace and environment are percent-encoded in paths and sent in X-Flipt-Environment")
    func namespaceAndEnvironment() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(namespace: "my ns"), namespace: "my ns", environment: "staging")
            let fetcher = try makeFetcher(server) {
                $0.namespace = "my ns"
                $0.environment = "staging"
            }
            let fetched = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
            #expect(fetched.snapshot.namespaceKey == "my ns")
            let request = try #require(server.requests.first)
            #expect(request.path == "/internal/v1/evaluation/snapshot/namespace/my%20ns")
            #expect(request.header("X-Flipt-Environment") == "staging")
        }
    }

    @Test(
        "retryable statuses get 3 retries with full-jitter back-off, then the status error",
        arguments: [
            408, 429, 500, 501, 502, 503, 504, 505,
        ]
    )
    func retryableStatus(status: Int) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.status(status), times: 4)
            let clock = RecordingClock()
            let fetcher = try makeFetcher(server, clock: clock, seed: 7)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .httpStatus(status))
            #expect(error.attempts == 4)
            #expect(server.requests.count == 4)
            #expect(server.pendingFaultCount == 0)
            // The waits are exactly what the pure policy decides with the same random source.
            var policy = RetryPolicy()
            var random = RandomSource.seeded(7)
            var expected: [Duration] = []
            while case .retry(let delay) = policy.next(
                after: .response(status: status, retryAfter: nil),
                using: &random
            ) {
                expected.append(delay)
            }
            #expect(clock.sleeps == expected)
            #expect(clock.sleeps.count == 3)
            for (index, delay) in clock.sleeps.enumerated() { #expect(delay <= .seconds(1 << index)) }
        }
    }

    @Test("failures then success within one fetch recover in the same call")
    func recoversWithinRetries() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.status(503))
            server.enqueue(.status(504))
            server.enqueue(.status(502))
            let fetcher = try makeFetcher(server)
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.count == 4)
            #expect(fetcher.statistics == .init(attempts: 4, retries: 3))
        }
    }

    @Test("connections closed or reset without an answer are network errors after the retries")
    func closedWithoutAnswer() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            // libcurl itself re-sends a request once when a reused keep-alive connection closes before any byte of
            // the answer, so queue more faults than attempts.
            server.enqueue(.closeConnection, times: 4)
            server.enqueue(.resetConnection, times: 4)
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .network)
            #expect(error.attempts == 4)
            #expect(server.requests.count >= 4)
        }
    }

    @Test("other client errors fail at once", arguments: [400, 401, 403, 404, 409, 410, 422])
    func nonRetryableStatus(status: Int) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.status(status))
            let clock = RecordingClock()
            let fetcher = try makeFetcher(server, clock: clock)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == ((status == 401 || status == 403) ? .authentication(status) : .httpStatus(status)))
            #expect(error.attempts == 1)
            #expect(server.requests.count == 1)
            #expect(clock.sleeps.isEmpty)
        }
    }

    @Test("Retry-After is honoured, and capped at the policy's 30 s cap")
    func retryAfter() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.retryAfter("2"))
            server.enqueue(.retryAfter("3", status: 503))
            server.enqueue(.retryAfter("600"))
            let clock = RecordingClock()
            let fetcher = try makeFetcher(server, clock: clock)
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(clock.sleeps == [.seconds(2), .seconds(3), .seconds(30)])
        }
    }

    @Test("a refused connection is retried 3 times, then reported as a network error")
    func connectionRefused() async throws {
        let port = try TestFliptServer.unusedPort()
        let clock = RecordingClock()
        let url = try #require(URL(string: "http://127.0.0.1:\(port)"))
        let fetcher = try SnapshotFetcher(
            configuration: SyncConfiguration(url: url),
            transport: sharedTransport,
            clock: clock,
            random: .seeded(1)
        )
        let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
        #expect(error.kind == .network)
        #expect(error.attempts == 4)
        #expect(clock.sleeps.count == 3)
        #expect(error.message.contains("127.0.0.1:\(port)"))
    }

    @Test("a silent server hits the per-attempt deadline on every attempt")
    func silentServerTimesOut() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent, times: 2)
            let fetcher = try makeFetcher(server, clock: ContinuousClock()) {
                $0.requestTimeout = .milliseconds(200)
                $0.retryPolicy = RetryPolicy(maximumRetries: 1, baseDelay: .milliseconds(10))
            }
            let start = ContinuousClock.now
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            let elapsed = ContinuousClock.now - start
            #expect(error.kind == .timeout)
            #expect(error.attempts == 2)
            #expect(server.requests.count == 2)
            #expect(elapsed >= .milliseconds(400))
            #expect(elapsed < .seconds(3))
        }
    }

    @Test("a sub-second deadline covers a slow body, not only the headers")
    func slowBodyTimesOut() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(flagCount: 20))
            server.enqueue(.slowBody(chunkSize: 200, interval: .milliseconds(100)))
            let fetcher = try makeFetcher(server, clock: ContinuousClock()) {
                $0.requestTimeout = .milliseconds(300)
                $0.retryPolicy = RetryPolicy(maximumRetries: 0)
            }
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .timeout)
        }
    }

    @Test("a slow body within the deadline is received whole")
    func slowBodySucceeds() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.slowBody(chunkSize: 100, interval: .milliseconds(20)))
            let fetcher = try makeFetcher(server, clock: ContinuousClock()) { $0.requestTimeout = .seconds(5) }
            let fetched = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
            #expect(fetched.document == FixtureDocument.bytes())
        }
    }

    @Test("cancelling a fetch that waits on a silent server returns within 1 s")
    func cancelSilentFetch() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent)
            let fetcher = try makeFetcher(server)
            let task = Task { await syncError { try await fetcher.fetch(ifNoneMatch: nil) } }
            #expect(await server.wait { $0.requests.count == 1 })
            let start = ContinuousClock.now
            task.cancel()
            let error = await task.value
            #expect(ContinuousClock.now - start < .seconds(1))
            #expect(error?.kind == .cancelled)
            #expect(server.requests.count == 1)
        }
    }

    @Test("a truncated body is a network error, retried, and never a snapshot")
    func truncatedBody() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.truncatedBody(sentBytes: 50), times: 4)
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .network)
            #expect(server.requests.count == 4)
        }
    }

    @Test("invalid JSON is a bad document, with or without an ETag, and is not retried", arguments: [true, false])
    func invalidJSON(withETag: Bool) async throws {
        try await withTestServer { server in
            let headers = withETag ? [TestFliptServer.HeaderField("Etag", "abc")] : []
            server.enqueue(.respond(status: 200, headers: headers, body: Array("{\"namespace\":".utf8)))
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
            #expect(server.requests.count == 1)
        }
    }

    @Test("a body in a Content-Encoding the client does not decode is a bad document that names the encoding")
    func undecodedEncoding() async throws {
        try await withTestServer { server in
            let junk: [UInt8] = [0x1B, 0x00, 0xF8, 0x25, 0x00, 0xA2, 0x1A]
            server.enqueue(.respond(status: 200, headers: [.init("Content-Encoding", "br")], body: junk))
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
            #expect(error.message.contains("Content-Encoding br"), "\(error.message)")
            #expect(server.requests.count == 1)
            // Without an encoding, the same bytes are an invalid document, said as such.
            server.enqueue(.respond(status: 200, body: junk))
            let plain = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(plain.kind == .badDocument)
            #expect(!plain.message.contains("Content-Encoding"), "\(plain.message)")
        }
    }

    @Test("an error answer with a body over the document limit is still its status: retried if it may be")
    func largeErrorBodies() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 2 << 20)
            server.enqueue(.respond(status: 503, body: huge), times: 2)
            let fetcher = try makeFetcher(server) { $0.maximumDocumentSize = 64 * 1024 }
            // Two 503s with 2 MiB bodies, retried, then the document.
            guard case .modified = try await fetcher.fetch(ifNoneMatch: nil) else {
                Issue.record("the fetch did not recover after the 503s")
                return
            }
            #expect(server.requests.count == 3)
            server.enqueue(.respond(status: 404, body: huge))
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.httpStatus == 404)
            #expect(server.requests.count == 4)
        }
    }

    @Test(
        "schema-invalid documents are rejected whole",
        arguments: [
            #"{"namespace":{"key":"default"},"flags":[{"key":"f","enabled":true}]}"#,
            #"{"namespace":{"key":"default"},"flags":null}"#,
            #"{"flags":[]}"#,
            #"[]"#,
        ]
    )
    func schemaInvalid(document: String) async throws {
        try await withTestServer { server in
            server.setDocument(json: document)
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
        }
    }

    @Test("a document for another namespace is rejected, never served")
    func namespaceMismatch() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(namespace: "other"))
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
            #expect(error.message.contains("\"other\""))
            #expect(error.message.contains("\"default\""))
        }
    }

    @Test("304 to an unconditional request is an error")
    func notModifiedWithoutETag() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.respond(status: 304, headers: [.init("Etag", "x")]))
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .unexpectedResponse)
            #expect(server.requests.count == 1)
        }
    }

    @Test("a 304 carrying a different ETag keeps the stored one")
    func notModifiedOtherETag() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.respond(status: 304, headers: [.init("Etag", "other")]))
            let fetcher = try makeFetcher(server)
            #expect(try await fetcher.fetch(ifNoneMatch: "stored").notModifiedETag == "stored")
        }
    }

    @Test("204 and other non-200 2xx answers are errors, not retried", arguments: [201, 202, 204])
    func noContent(status: Int) async throws {
        try await withTestServer { server in
            server.enqueue(.respond(status: status))
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .unexpectedResponse)
            #expect(server.requests.count == 1)
        }
    }

    @Test("a 200 without ETag gives a snapshot without ETag")
    func noETag() async throws {
        try await withTestServer { server in
            server.enqueue(.respond(status: 200, body: FixtureDocument.bytes()))
            let fetcher = try makeFetcher(server)
            let fetched = try #require(try await fetcher.fetch(ifNoneMatch: "old").fetched)
            #expect(fetched.etag == nil)
        }
    }

    @Test("redirects are followed with the same headers", arguments: [301, 302, 307, 308])
    func redirect(status: Int) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.redirect(to: "/client/v2/environments/default/namespaces/default/snapshot", status: status))
            let fetcher = try makeFetcher(server) { $0.authentication = .jwt("jwt-value") }
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            let requests = server.requests
            #expect(
                requests.map(\.path) == [
                    "/internal/v1/evaluation/snapshot/namespace/default",
                    "/client/v2/environments/default/namespaces/default/snapshot",
                ]
            )
            #expect(requests.last?.header("Authorization") == "JWT jwt-value")
            #expect(requests.last?.header("X-Flipt-Environment") == "default")
        }
    }

    @Test("an unknown namespace is a 404 with the server's message")
    func unknownNamespace() async throws {
        try await withTestServer { server in
            let fetcher = try makeFetcher(server) { $0.namespace = "missing" }
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .httpStatus(404))
            #expect(error.message.contains("evaluation snapshot for namespace \"missing\" not found"))
        }
    }
}

@Suite("Authentication on the wire", .timeLimit(.minutes(1)))
struct AuthenticationTests {
    @Test("client tokens and JWTs are accepted; a rejected token is an authentication error without the token")
    func schemes() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.requireAuthentication(clientTokens: ["good-token"], jwtTokens: ["good-jwt"])
            for authentication in [Authentication.clientToken("good-token"), .jwt("good-jwt")] {
                let fetcher = try makeFetcher(server) { $0.authentication = authentication }
                #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            }
            for authentication in [Authentication.none, .clientToken("wrong-token"), .jwt("good-token")] {
                let fetcher = try makeFetcher(server) { $0.authentication = authentication }
                let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
                #expect(error.kind == .authentication(401))
                #expect(error.attempts == 1)
                #expect(!"\(error) \(error.message)".contains("-token"))
            }
            #expect(
                server.requests.map { $0.header("Authorization") } == [
                    "Bearer good-token", "JWT good-jwt", nil, "Bearer wrong-token", "JWT good-token",
                ]
            )
        }
    }

    @Test("a replaced credential is used by the next request")
    func rotation() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.requireAuthentication(clientTokens: ["new"])
            let fetcher = try makeFetcher(server) { $0.authentication = .clientToken("old") }
            #expect(await syncError { try await fetcher.fetch(ifNoneMatch: nil) }?.kind == .authentication(401))
            fetcher.updateAuthentication(.clientToken("new"))
            #expect(fetcher.authentication == .clientToken("new"))
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched != nil)
            #expect(server.requests.map { $0.header("Authorization") } == ["Bearer old", "Bearer new"])
        }
    }

    @Test("a token a header cannot carry fails the request with an error that does not hold it")
    func unsendableToken() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try makeFetcher(server)
            // The package-level fetcher takes any credential; FliptClient refuses these before they get here.
            fetcher.updateAuthentication(.clientToken("s3cr3t\r\nX-Injected: 1"))
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(!error.message.contains("s3cr3t"), "\(error.message)")
            #expect(error.message.contains("header value"), "\(error.message)")
            #expect(server.requests.allSatisfy { $0.header("X-Injected") == nil })
        }
    }

    @Test("descriptions and mirrors never show the token")
    func redaction() {
        let secret = "s3cr3t-value"
        for authentication in [Authentication.clientToken(secret), .jwt(secret)] {
            var dumped = ""
            dump(authentication, to: &dumped)
            #expect(!"\(authentication) \(String(reflecting: authentication)) \(dumped)".contains(secret))
            #expect(authentication.authorizationHeaderValue?.hasSuffix(secret) == true)
        }
        #expect(!HeaderField("Authorization", "Bearer \(secret)").description.contains(secret))
    }
}
