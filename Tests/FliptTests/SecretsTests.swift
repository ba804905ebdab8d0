import Flipt
import FliptSync
import FliptTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@Suite("Secrets never reach the cache file, the logs or error messages; files are owner-only")
struct SecretsTests {
    static let token = "s3cr3t-token-7d1e9b"
    static let otherToken = "0ther-s3cr3t-55aa"

    static func files(in directory: String) throws -> [(String, Data)] {
        try FileManager.default.contentsOfDirectory(atPath: directory).map { name in
            (name, try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
        }
    }

    static func expectNoSecrets(in texts: [String], _ place: String) {
        for text in texts {
            for secret in [token, otherToken] {
                #expect(!text.contains(secret), "a token appeared in \(place): \(text)")
            }
        }
    }

    static func expectNoSecrets(inFilesOf directory: String) throws {
        let files = try files(in: directory)
        #expect(files.contains { $0.0.hasSuffix(".sqlite3") })
        for (name, bytes) in files {
            for secret in [token, otherToken] {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "a token appeared in \(name)")
            }
        }
    }

    @Test("tokens appear in no file, log line, status, event or error, through successes and failures")
    func tokensStayOut() async throws {
        try await withTemporaryDirectory { root in
            let directory = root.path + "/state/flipt"  // created by the client
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                server.requireAuthentication(clientTokens: [Self.token])
                let collector = LogRecorder()
                var options = testOptions(
                    url: server.baseURL,
                    cache: directory + "/cache.sqlite3",
                    strategy: .fail,
                    authentication: .clientToken(Self.otherToken)
                )
                options.logger = collector.logger
                let client = try FliptClient(options: options)
                let events = client.events()
                var messages: [String] = []

                // A rejected credential, then the right one, then failures of every kind.
                #expect(await eventually { client.status.lastError != nil })
                do {
                    _ = try client.evaluateBoolean(flagKey: "flag1", entityID: "u")
                } catch {
                    messages.append("\(error)")
                    messages.append(String(reflecting: error))
                }
                try client.updateAuthentication(.clientToken(Self.token))
                try await client.waitUntilReady(timeout: .seconds(30))
                server.enqueue(.status(503), times: 4)
                server.enqueue(.respond(status: 200, body: Array("{not json".utf8)))
                server.setDocument(FixtureDocument.bytes(revision: 2))
                #expect(await eventually { (try? servedRevision(client)) == "revision 2" })
                // While the client runs, the WAL holds the latest writes: search it too.
                try Self.expectNoSecrets(inFilesOf: directory)
                await client.shutdown()
                for await event in events {
                    messages.append(String(reflecting: event))
                }
                messages.append(String(reflecting: client.status))
                messages.append(String(reflecting: options.authentication))
                messages.append("\(options)")
                try Self.expectNoSecrets(inFilesOf: directory)
                let lines = collector.lines
                #expect(lines.count > 5, "the logger saw too little to prove anything")
                Self.expectNoSecrets(in: lines, "the logs")
                Self.expectNoSecrets(in: messages, "errors, events or status")

                // Owner-only: the directory the client created, and the cache file.
                let attributes = try FileManager.default.attributesOfItem(atPath: directory)
                #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o777 } == 0o700)
                let fileAttributes = try FileManager.default.attributesOfItem(atPath: directory + "/cache.sqlite3")
                #expect((fileAttributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
            }
        }
    }

    @Test("a URL with credentials in it is refused without echoing them")
    func credentialsInURL() {
        let error = #expect(throws: FliptError.self) {
            try FliptClient(
                options: ClientOptions(
                    url: "https://admin:\(Self.token)@flipt.example.com",
                    cache: CacheOptions(location: .disabled)
                )
            )
        }
        #expect(error?.code == .invalidConfiguration)
        Self.expectNoSecrets(in: [error.map { String(reflecting: $0) } ?? ""], "the configuration error")
    }

    @Test("TLS verification is on unless explicitly disabled")
    func verificationOnByDefault() throws {
        #expect(ClientOptions().tls.insecureSkipVerify == false)
        #expect(ClientOptions().tls.additionalTrustRoots.isEmpty)
    }

    #if canImport(NIOSSL)
    @Test("skip-verify works against a self-signed TLS server, warns once, and keeps the token out of the logs")
    func skipVerifyOverTLS() async throws {
        let server = try TestFliptServer()
        defer { server.stop() }
        let forwarder = try TLSForwarder(to: server)
        defer { forwarder.stop() }
        server.setDocument(FixtureDocument.bytes(revision: 1))
        server.requireAuthentication(clientTokens: [Self.token])
        server.enqueue(.status(503))
        let collector = LogRecorder()
        var options = testOptions(url: forwarder.baseURL, cache: nil, authentication: .clientToken(Self.token))
        options.tls = TLSOptions(insecureSkipVerify: true)
        options.logger = collector.logger
        let client = try FliptClient(options: options)
        try await client.waitUntilReady(timeout: .seconds(30))
        #expect(try servedRevision(client) == "revision 1")
        await client.shutdown()
        #expect(server.requests.contains { $0.header("Authorization") == "Bearer \(Self.token)" })
        let lines = collector.lines
        #expect(lines.filter { $0.hasPrefix("warning") && $0.contains("verification is disabled") }.count == 1)
        #expect(lines.count > 2, "the logger saw too little to prove anything")
        Self.expectNoSecrets(in: lines, "the logs")
    }
    #endif
}

extension SecretsTests {
    @Test(
        "updateAuthentication refuses an empty token or one with control characters, naming no part of it",
        arguments: ["", "s3cr3t\r\nX-Injected: 1", "s3cr3t\n", "s3cr3t\u{0}", "s3cr3t\u{7F}"]
    )
    func unusableTokenUpdates(token: String) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let client = try FliptClient(
                options: testOptions(
                    url: server.baseURL,
                    cache: nil,
                    updateInterval: .seconds(3_600),
                    authentication: .clientToken("in-use")
                )
            )
            try await client.waitUntilReady(timeout: .seconds(30))
            for authentication in [Authentication.clientToken(token), .jwt(token)] {
                #expect {
                    try client.updateAuthentication(authentication)
                } throws: { error in
                    guard let error = error as? FliptError else { return false }
                    return error.code == .invalidConfiguration && (token.isEmpty || !error.message.contains("s3cr3t"))
                }
            }
            // The credential in use is kept; a tab inside a token is a legal header character.
            _ = await client.refresh()
            #expect(server.requests.last?.header("Authorization") == "Bearer in-use")
            try client.updateAuthentication(.clientToken("with\ttab"))
            _ = await client.refresh()
            #expect(server.requests.last?.header("Authorization") == "Bearer with\ttab")
            await client.shutdown()
        }
    }
}
