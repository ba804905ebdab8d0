import FliptTestSupport
import Foundation
import NIOHTTP1
import Testing

@testable import FliptRelay

/// TLS files and client tokens combined into a relay's configuration, and their reload, in process.
@Suite("Relay security: TLS and client tokens wired into the server")
struct RelaySecurityTests {
    /// The test server certificate and key written to `chain.pem` and `key.pem` in `directory`, and a reloadable
    /// TLS context over them.
    static func serverTLS(in directory: URL) throws -> (context: ReloadableTLSContext, chain: URL, key: URL) {
        let chain = directory.appendingPathComponent("chain.pem")
        let key = directory.appendingPathComponent("key.pem")
        try Data(TestCertificates.serverCertificate.utf8).write(to: chain)
        try Data(TestCertificates.serverPrivateKey.utf8).write(to: key)
        let context = try ReloadableTLSContext(
            files: TLSFiles(certificateChainPath: chain.path, privateKeyPath: key.path)
        )
        return (context, chain, key)
    }

    static let token = "relay-security-token-K7"

    @Test(
        "the flipt_client_token cookie is read as Flipt reads it",
        arguments: [
            (["flipt_client_token=abc"], "abc"),
            (["a=1; flipt_client_token=abc; b=2"], "abc"),
            (["a=1;flipt_client_token=\"abc\""], "abc"),
            (["a=1", "flipt_client_token=abc "], "abc"),
            (["flipt_client_token="], nil),
            (["xflipt_client_token=abc"], nil),
            ([], nil),
        ] as [([String], String?)]
    )
    func cookie(values: [String], token: String?) {
        var headers = HTTPHeaders()
        for value in values { headers.add(name: "Cookie", value: value) }
        #expect(RelaySecurity.cookieToken(in: headers) == token)
    }

    @Test("applied to a server: requests are checked with the tokens in use, and a reload changes them")
    func appliedAndReloaded() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("tokens").path
            try Data("\(Self.token) default\n".utf8).write(to: URL(fileURLWithPath: path))
            let security = RelaySecurity(tls: nil, tokens: try ClientTokenFile(path: path))
            #expect(
                security.requirements == ["a client token (1 client token from \(path) (1 limited to some namespaces))"]
            )
            var configuration = RelayServer.Configuration()
            security.apply(to: &configuration)
            #expect(configuration.requiresAuthorization)
            #expect(configuration.tlsContext() == nil)
            let catalog = SnapshotCatalog(snapshots: [RelayFixtures.served(), RelayFixtures.served(namespace: "b")])
            try await RelayFixtures.withServer(catalog: catalog, configuration: configuration) { _, port in
                func status(_ namespace: String, _ headers: [String]) throws -> Int {
                    let client = try RawHTTPClient(port: port)
                    try client.get("/internal/v1/evaluation/snapshot/namespace/\(namespace)", headers: headers)
                    return try client.readResponse().status
                }
                #expect(try status("default", ["Authorization: Bearer \(Self.token)"]) == 200)
                #expect(try status("b", ["Authorization: Bearer \(Self.token)"]) == 403)
                #expect(try status("default", []) == 401)

                try Data("\(Self.token) b\n".utf8).write(to: URL(fileURLWithPath: path))
                let outcomes = security.reload()
                #expect(outcomes.count == 1)
                guard case .reloaded(let sentence) = outcomes.first else {
                    Issue.record("not reloaded: \(outcomes)")
                    return
                }
                #expect(sentence.hasPrefix("reloaded the client tokens: 1 client token from \(path)"))
                #expect(try status("default", ["Authorization: Bearer \(Self.token)"]) == 403)
                #expect(try status("b", ["Authorization: Bearer \(Self.token)"]) == 200)

                try Data("sha256:zz\n".utf8).write(to: URL(fileURLWithPath: path))
                let logs = LogRecorder(level: .debug)
                #expect(!security.reload(logger: logs.logger))
                #expect(logs.matching("error the client tokens were not reloaded").count == 1)
                #expect(logs.lines.allSatisfy { !$0.contains(Self.token) })
                #expect(try status("b", ["Authorization: Bearer \(Self.token)"]) == 200)
            }
        }
    }

    @Test("TLS files: the context in use serves each new connection; a reload logs warnings and failures")
    func tlsReloadOutcomes() async throws {
        try await withTemporaryDirectory { directory in
            let (tls, chain, key) = try Self.serverTLS(in: directory)
            let security = RelaySecurity(tls: tls, tokens: nil)
            #expect(security.requirements.isEmpty)
            #expect(!security.requiresClientCertificates)
            var configuration = RelayServer.Configuration()
            security.apply(to: &configuration)
            #expect(!configuration.requiresAuthorization)
            #expect(configuration.tlsContext() === tls.context)

            // An expired certificate still loads, with a warning.
            try Data(TestCertificates.expiredCertificate.utf8).write(to: chain)
            try Data(TestCertificates.expiredPrivateKey.utf8).write(to: key)
            let logs = LogRecorder(level: .debug)
            #expect(security.reload(logger: logs.logger))
            #expect(logs.matching("notice reloaded the TLS files: certificate chain \(chain.path)").count == 1)
            #expect(logs.matching("warning The certificate in \(chain.path) expired on 2021-01-01").count == 1)
            #expect(configuration.tlsContext() === tls.context)

            try Data("not PEM".utf8).write(to: key)
            let failed = LogRecorder(level: .debug)
            #expect(!security.reload(logger: failed.logger))
            #expect(failed.matching("error the TLS files were not reloaded").first?.contains(key.path) == true)
        }
    }

    @Test("a TLS handshake must be complete within the request timeout; a completed one is not cut by it")
    func handshakeDeadline() async throws {
        try await withTemporaryDirectory { directory in
            let tls = try Self.serverTLS(in: directory).context
            var configuration = RelayServer.Configuration(
                requestTimeout: .milliseconds(500),
                idleTimeout: .seconds(120)
            )
            RelaySecurity(tls: tls, tokens: nil).apply(to: &configuration)
            try await RelayFixtures.withServer(catalog: SnapshotCatalog(), configuration: configuration) { _, port in
                // Silent, and the first byte of a handshake record only: closed long before the idle timeout.
                for bytes in [[], [0x16]] as [[UInt8]] {
                    let slow = try RawHTTPClient(port: port, timeout: .seconds(30))
                    try slow.send(bytes)
                    #expect(slow.isClosedByPeer())
                }
                // A client that completed its handshake may wait longer than that before its request.
                let client = try await TLSTestClient.connect(port: port)
                try await client.send("")
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(!client.isClosed)
                try await client.get("/health")
                #expect(try await client.response().status == 200)
            }
        }
    }
}

extension RelaySecurityTests {
    @Test(
        "request logs keep the path and the parameters the relay reads; other query values and userinfo are redacted"
    )
    func requestLogsRedactQueries() async throws {
        let log = LogRecorder(level: .debug)
        let served = RelayFixtures.served(etag: "q")
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(snapshots: [served]),
            configuration: .init(logger: log.logger)
        ) { _, port in
            let path = "/internal/v1/evaluation/snapshot/namespace/default"
            let client = try RawHTTPClient(port: port)
            try client.get(path + "?token=s3cret-one&reference=main&api%5Fkey=s3cret-two&flag")
            #expect(try client.readResponse().status == 200)
            try client.send(
                "GET http://user:s3cret-three@relay\(path)?environmentKey=default HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            #expect(try client.readResponse().status == 200)
            // A refused request is logged the same way, and so is one the decoder cannot read.
            try client.send("POST \(path)?password=s3cret-four HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            #expect(try client.readResponse().status == 405)
            let malformed = try RawHTTPClient(port: port)
            try malformed.send("GET \(path)?secret=s3cret-five HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
            #expect(try malformed.readResponse().status == 400)
            #expect(
                await eventually(timeout: .seconds(10)) { log.matching("refused a request").count == 1 },
                "\(log.lines)"
            )
            #expect(log.lines.allSatisfy { !$0.contains("s3cret") }, "\(log.lines)")
            #expect(log.matching("GET \(path)?token=REDACTED&reference=main&api%5Fkey=REDACTED&flag 200").count == 1)
            #expect(log.matching("GET \(path)?environmentKey=default 200").count == 1)
            #expect(log.matching("POST \(path)?password=REDACTED").count == 1)
            #expect(log.matching("\(path)?secret=REDACTED").count == 1)
        }
    }
}
