import Crypto
import FliptStore
import FliptTestSupport
import Foundation
import NIOSSL
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built `flipt-offline serve` with TLS, client certificates and client tokens, run as an operator would:
/// PEM and tokens files on disk, SIGHUP to reload them, other processes writing the cache.
@Suite("flipt-offline serve with TLS and client tokens", .serialized, .timeLimit(.minutes(2)))
struct SecureServeTests {
    static let e1 = "/internal/v1/evaluation/snapshot/namespace/"
    static let stream = "/client/v2/environments/default/namespaces/default/stream"

    /// May read the default namespace only.
    static let defaultToken = "tok-default-7Q2wXr"
    /// Listed by its SHA-256 only; may read every namespace.
    static let hashedToken = "tok-every-9ZxLm4"
    /// In no file.
    static let wrongToken = "tok-wrong-0k1Ja8"

    static func sha256(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02X", $0) }.joined()
    }

    static func document(namespace: String = "default", flag: String) -> String {
        "{\"namespace\":{\"key\":\"\(namespace)\"},\"flags\":[{\"key\":\"\(flag)\",\"name\":\"\",\"enabled\":true}]}"
    }

    /// The files an operator would give `serve`, in a temporary directory.
    struct Files {
        let directory: URL

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        @discardableResult
        func write(_ text: String, to name: String) throws -> String {
            let path = path(name)
            // Written beside and renamed, as an operator's deploy step would, so a reader never sees half a file.
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            return path
        }
    }

    /// Runs `body` with the server certificate and key, the client CA, two documents (namespaces `default` and
    /// `other`) and a tokens file written (`defaultToken` for `default`, `hashedToken` as `sha256:` for all).
    static func withFiles<T>(_ body: (Files) async throws -> T) async throws -> T {
        try await withTemporaryDirectory { directory in
            let files = Files(directory: directory)
            try files.write(TestCertificates.serverCertificate, to: "chain.pem")
            try files.write(TestCertificates.serverPrivateKey, to: "key.pem")
            try files.write(TestCertificates.clientCACertificate, to: "client-ca.pem")
            try files.write(document(flag: "in-default"), to: "default.json")
            try files.write(document(namespace: "other", flag: "in-other"), to: "other.json")
            try files.write(
                "# test tokens\n\(defaultToken) default\nsha256:\(sha256(hashedToken))\n",
                to: "tokens.txt"
            )
            return try await body(files)
        }
    }

    /// Starts `serve` on 127.0.0.1 and a free port; returns it and the port its start-up line names.
    static func startServe(_ arguments: [String], scheme: String = "https") async throws -> (ToolProcess, UInt16) {
        let serve = try ToolProcess(["serve", "--listen", "127.0.0.1:0", "--log-level", "debug"] + arguments)
        let port = try await serve.waitForStandardError(matching: "listening on \(scheme)://127\\.0\\.0\\.1:([0-9]+)")
        return (serve, try #require(UInt16(port)))
    }

    /// One request over a new TLS connection; the answer.
    static func tlsGet(
        _ port: UInt16,
        _ path: String,
        headers: [String] = [],
        identity: (certificate: String, key: String)? = nil
    ) async throws -> RawHTTPClient.Response {
        let client = try await TLSTestClient.connect(port: port, identity: identity)
        try await client.get(path, headers: headers)
        return try await client.response()
    }

    static func bearer(_ token: String) -> [String] { ["Authorization: Bearer \(token)"] }

    static func errorBody(_ response: RawHTTPClient.Response) -> (code: Int?, message: String?) {
        let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return (object?["code"] as? Int, object?["message"] as? String)
    }

    static let clientIdentity = (TestCertificates.clientCertificate, TestCertificates.clientPrivateKey)

    /// How many times `text` occurs in `serve`'s standard error.
    static func occurrences(of text: String, in serve: ToolProcess) -> Int {
        serve.stderr.components(separatedBy: text).count - 1
    }

    @Test("over https with tokens: 200 for a token's namespaces, 401 without or with an unknown one, 403 beyond it")
    func httpsAndTokens() async throws {
        try await Self.withFiles { files in
            let (serve, port) = try await Self.startServe([
                "--document", files.path("default.json"), "--document", files.path("other.json"),
                "--tls-cert", files.path("chain.pem"), "--tls-key", files.path("key.pem"),
                "--client-tokens", files.path("tokens.txt"),
            ])
            defer { serve.send(SIGKILL) }
            _ = try await serve.waitForStandardError(
                matching: "clients must present a client token \\(2 client tokens from"
            )

            let allowed = try await Self.tlsGet(port, Self.e1 + "default", headers: Self.bearer(Self.defaultToken))
            #expect(allowed.status == 200)
            #expect(allowed.text == Self.document(flag: "in-default"))
            #expect(allowed.header("Etag") != nil)
            #expect(allowed.header("Cache-Control") == "private, no-cache")
            // The sha256: entry, for both namespaces, and a scheme in another case.
            for namespace in ["default", "other"] {
                let hashed = try await Self.tlsGet(port, Self.e1 + namespace, headers: Self.bearer(Self.hashedToken))
                #expect(hashed.status == 200)
                #expect(hashed.text.contains("in-\(namespace)"))
            }
            let lowercase = try await Self.tlsGet(
                port,
                Self.e1 + "other",
                headers: ["Authorization: bearer \(Self.hashedToken)"]
            )
            #expect(lowercase.status == 200)
            // Flipt's cookie for browsers.
            let cookie = try await Self.tlsGet(
                port,
                Self.e1 + "other",
                headers: ["Cookie: theme=dark; flipt_client_token=\(Self.hashedToken)"]
            )
            #expect(cookie.status == 200)

            for headers in [[], Self.bearer(Self.wrongToken), ["Authorization: JWT \(Self.hashedToken)"]] {
                let refused = try await Self.tlsGet(port, Self.e1 + "default", headers: headers)
                #expect(refused.status == 401, "\(headers)")
                #expect(refused.header("WWW-Authenticate") == "Bearer")
                #expect(Self.errorBody(refused).code == 16)
                #expect(Self.errorBody(refused).message == "request was not authenticated")
                #expect(!refused.text.contains("in-default"))
            }
            let forbidden = try await Self.tlsGet(port, Self.e1 + "other", headers: Self.bearer(Self.defaultToken))
            #expect(forbidden.status == 403)
            #expect(Self.errorBody(forbidden).code == 7)
            #expect(!forbidden.text.contains("in-other"))
            let streamRefused = try await Self.tlsGet(port, Self.stream)
            #expect(streamRefused.status == 401)
            let health = try await Self.tlsGet(port, "/health")
            #expect(health.status == 200)

            // A stream with the token gets the snapshot.
            let stream = try await TLSTestClient.connect(port: port)
            try await stream.get(Self.stream, headers: Self.bearer(Self.defaultToken), keepAlive: true)
            #expect(await stream.waitFor("in-default"))

            // Plain HTTP on the TLS port gets no HTTP answer.
            let plain = try RawHTTPClient(port: port)
            try plain.get("/health")
            #expect(!String(decoding: plain.readToEnd(), as: UTF8.self).contains("HTTP/1.1"))

            serve.send(SIGTERM)
            #expect(await serve.waitForExit() == 0)
            let log = serve.stderr
            #expect(log.contains("GET \(Self.e1)default 401"))
            #expect(log.contains("GET \(Self.e1)other 403"))
            for token in [Self.defaultToken, Self.hashedToken, Self.wrongToken] {
                #expect(!log.contains(token), "a token is in the log")
            }
        }
    }

    @Test("--client-ca: a client certificate from that CA is required; with --client-tokens too, both must pass")
    func clientCertificates() async throws {
        try await Self.withFiles { files in
            let tls = [
                "--document", files.path("default.json"), "--tls-cert", files.path("chain.pem"), "--tls-key",
                files.path("key.pem"), "--client-ca", files.path("client-ca.pem"),
            ]
            let (certificatesOnly, port) = try await Self.startServe(tls)
            defer { certificatesOnly.send(SIGKILL) }
            _ = try await certificatesOnly.waitForStandardError(
                matching: "clients must present a client certificate signed by a CA in .*client-ca\\.pem"
            )
            let signed = try await Self.tlsGet(port, Self.e1 + "default", identity: Self.clientIdentity)
            #expect(signed.status == 200)
            #expect(signed.text.contains("in-default"))

            let anonymous = try await TLSTestClient.connect(port: port)
            try? await anonymous.get(Self.e1 + "default")
            #expect(await anonymous.waitForClose())
            #expect(!anonymous.text.contains("HTTP/1.1"))
            // A certificate that the test CA signed, not the client CA.
            let foreign = try await TLSTestClient.connect(
                port: port,
                identity: (TestCertificates.otherNameCertificate, TestCertificates.otherNamePrivateKey)
            )
            try? await foreign.get(Self.e1 + "default")
            #expect(await foreign.waitForClose())
            #expect(!foreign.text.contains("HTTP/1.1"))
            certificatesOnly.send(SIGTERM)
            #expect(await certificatesOnly.waitForExit() == 0)

            let (both, bothPort) = try await Self.startServe(tls + ["--client-tokens", files.path("tokens.txt")])
            defer { both.send(SIGKILL) }
            _ = try await both.waitForStandardError(
                matching: "clients must present a client token .* and a client certificate signed by a CA in"
            )
            let certificateAndToken = try await Self.tlsGet(
                bothPort,
                Self.e1 + "default",
                headers: Self.bearer(Self.defaultToken),
                identity: Self.clientIdentity
            )
            #expect(certificateAndToken.status == 200)
            let certificateNoToken = try await Self.tlsGet(bothPort, Self.e1 + "default", identity: Self.clientIdentity)
            #expect(certificateNoToken.status == 401)
            let tokenNoCertificate = try await TLSTestClient.connect(port: bothPort)
            try? await tokenNoCertificate.get(Self.e1 + "default", headers: Self.bearer(Self.defaultToken))
            #expect(await tokenNoCertificate.waitForClose())
            #expect(!tokenNoCertificate.text.contains("HTTP/1.1"))
            both.send(SIGTERM)
            #expect(await both.waitForExit() == 0)
        }
    }

    @Test("secure by default: beyond loopback, serve needs tokens, a client CA or --allow-anonymous")
    func secureByDefault() async throws {
        try await Self.withFiles { files in
            for listen in ["0.0.0.0:0", "[::]:0"] {
                let refused = try ToolProcess(["serve", "--document", files.path("default.json"), "--listen", listen])
                #expect(await refused.waitForExit() == 64)
                #expect(refused.stderr.contains("--listen \(listen) is reachable beyond this machine"))
                #expect(refused.stderr.contains("--client-tokens FILE"))
                #expect(refused.stderr.contains("--allow-anonymous"))
            }

            let anonymous = try ToolProcess([
                "serve", "--document", files.path("default.json"), "--listen", "0.0.0.0:0", "--allow-anonymous",
            ])
            defer { anonymous.send(SIGKILL) }
            let port = try #require(
                UInt16(
                    try await anonymous.waitForStandardError(matching: "listening on http://127\\.0\\.0\\.1:([0-9]+)")
                )
            )
            _ = try await anonymous.waitForStandardError(
                matching: "anyone who can reach 0\\.0\\.0\\.0:\(port) reads every"
            )
            // SIGHUP has nothing to reload, and does not end it.
            anonymous.send(SIGHUP)
            _ = try await anonymous.waitForStandardError(matching: "SIGHUP: nothing to reload")
            let client = try RawHTTPClient(port: port)
            try client.get(Self.e1 + "default")
            #expect(try client.readResponse().status == 200)
            anonymous.send(SIGTERM)
            #expect(await anonymous.waitForExit() == 0)

            let tokens = try ToolProcess([
                "serve", "--document", files.path("default.json"), "--listen", "0.0.0.0:0", "--client-tokens",
                files.path("tokens.txt"),
            ])
            defer { tokens.send(SIGKILL) }
            let tokensPort = try #require(
                UInt16(try await tokens.waitForStandardError(matching: "listening on http://127\\.0\\.0\\.1:([0-9]+)"))
            )
            _ = try await tokens.waitForStandardError(matching: "client tokens travel in clear text without TLS")
            let refusedClient = try RawHTTPClient(port: tokensPort)
            try refusedClient.get(Self.e1 + "default")
            #expect(try refusedClient.readResponse().status == 401)
            tokens.send(SIGTERM)
            #expect(await tokens.waitForExit() == 0)
        }
    }

    @Test(
        "unusable options and files: usage errors exit 64, unusable TLS or tokens files exit 40 naming the file",
        arguments: [
            (["--tls-cert", "{chain.pem}"], 64, "--tls-cert needs --tls-key"),
            (["--tls-key", "{key.pem}"], 64, "--tls-key needs --tls-cert"),
            (["--client-ca", "{client-ca.pem}"], 64, "--client-ca checks client certificates"),
            (
                ["--client-ca", "{client-ca.pem}", "--client-tokens", "{tokens.txt}"], 64,
                "--client-ca checks client certificates"
            ),
            (["--tls-cert", "{missing.pem}", "--tls-key", "{key.pem}"], 40, "{missing.pem}: the certificate chain"),
            (
                ["--tls-cert", "{chain.pem}", "--tls-key", "{other-key.pem}"], 40,
                "{other-key.pem}: the private key does"
            ),
            (["--tls-cert", "{key.pem}", "--tls-key", "{key.pem}"], 40, "{key.pem}: the certificate chain file holds"),
            (
                ["--tls-cert", "{chain.pem}", "--tls-key", "{key.pem}", "--client-ca", "{key.pem}"], 40,
                "{key.pem}: the client CA file holds no certificate"
            ),
            (["--client-tokens", "{bad-tokens.txt}"], 40, "{bad-tokens.txt}, line 3: a sha256: entry needs"),
            (["--client-tokens", "{missing.txt}"], 40, "{missing.txt}: the client tokens file could not be read"),
        ] as [([String], Int32, String)]
    )
    func refusals(arguments: [String], status: Int32, message: String) async throws {
        try await Self.withFiles { files in
            try files.write(TestCertificates.otherNamePrivateKey, to: "other-key.pem")
            try files.write("\(Self.defaultToken)\n\nsha256:0123\n", to: "bad-tokens.txt")
            func resolve(_ text: String) -> String {
                var text = text
                while let open = text.firstIndex(of: "{"), let close = text.firstIndex(of: "}") {
                    text.replaceSubrange(open...close, with: files.path(String(text[text.index(after: open)..<close])))
                }
                return text
            }
            let serve = try ToolProcess(
                ["serve", "--document", files.path("default.json"), "--listen", "127.0.0.1:0"] + arguments.map(resolve)
            )
            #expect(await serve.waitForExit() == status)
            #expect(serve.stderr.contains(resolve(message)), "\(serve.stderr)")
            #expect(!serve.stderr.contains(Self.defaultToken))
        }
    }

    @Test("SIGHUP re-reads the tokens: a new token works, a removed one gets 401, a stream opened before stays")
    func reloadTokens() async throws {
        try await Self.withFiles { files in
            let writer = try CacheFile(path: files.path("cache.sqlite3"))
            let cache = writer.path
            try writer.publish(flag: "first", etag: "e1")
            let (serve, port) = try await Self.startServe(
                ["--cache", cache, "--client-tokens", files.path("tokens.txt")],
                scheme: "http"
            )
            defer { serve.send(SIGKILL) }
            func status(_ token: String) throws -> Int {
                let client = try RawHTTPClient(port: port)
                try client.get(Self.e1 + "default", headers: Self.bearer(token))
                return try client.readResponse().status
            }
            #expect(try status(Self.defaultToken) == 200)
            #expect(try status(Self.wrongToken) == 401)

            let stream = try RawHTTPClient(port: port, timeout: .seconds(30))
            try stream.get(Self.stream, headers: Self.bearer(Self.defaultToken))
            #expect(try stream.readHead().status == 200)
            #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("\"first\""))

            // defaultToken removed, wrongToken added.
            try files.write("\(Self.wrongToken)\nsha256:\(Self.sha256(Self.hashedToken)) default\n", to: "tokens.txt")
            serve.send(SIGHUP)
            _ = try await serve.waitForStandardError(matching: "reloaded the client tokens: 2 client tokens")
            #expect(try status(Self.wrongToken) == 200)
            #expect(try status(Self.defaultToken) == 401)
            #expect(try status(Self.hashedToken) == 200)

            // The stream opened with the removed token stays open and still gets changes.
            try writer.publish(flag: "second", etag: "e2")
            #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("\"second\""))

            // A broken file: the error names it and its line, the tokens in use stay.
            try files.write("\(Self.defaultToken)\nsha256:nothex\n", to: "tokens.txt")
            serve.send(SIGHUP)
            _ = try await serve.waitForStandardError(
                matching:
                    "the client tokens were not reloaded, the ones read before stay in use: .*tokens\\.txt, line 2"
            )
            #expect(try status(Self.wrongToken) == 200)
            #expect(try status(Self.defaultToken) == 401)
            // So does a file that is gone.
            try FileManager.default.removeItem(atPath: files.path("tokens.txt"))
            serve.send(SIGHUP)
            #expect(
                await eventually(timeout: .seconds(15)) {
                    Self.occurrences(of: "the client tokens were not reloaded", in: serve) == 2
                }
            )
            #expect(serve.stderr.contains("tokens.txt: the client tokens file could not be read (no such file)"))
            #expect(try status(Self.wrongToken) == 200)

            try writer.publish(flag: "third", etag: "e3")
            #expect(String(decoding: try stream.readChunk(), as: UTF8.self).contains("\"third\""))
            serve.send(SIGTERM)
            #expect(try stream.readChunk().isEmpty)
            #expect(await serve.waitForExit() == 0)
            for token in [Self.defaultToken, Self.hashedToken, Self.wrongToken] {
                #expect(!serve.stderr.contains(token), "a token is in the log")
            }
        }
    }

    @Test("SIGHUP re-reads the TLS files: new connections see the new certificate, an open TLS stream stays")
    func reloadTLS() async throws {
        try await Self.withFiles { files in
            let writer = try CacheFile(path: files.path("cache.sqlite3"))
            let cache = writer.path
            try writer.publish(flag: "first", etag: "e1")
            let (serve, port) = try await Self.startServe([
                "--cache", cache, "--tls-cert", files.path("chain.pem"), "--tls-key", files.path("key.pem"),
            ])
            defer { serve.send(SIGKILL) }
            let original = try NIOSSLCertificate(bytes: Array(TestCertificates.serverCertificate.utf8), format: .pem)
            let replacement = try NIOSSLCertificate(
                bytes: Array(TestCertificates.otherNameCertificate.utf8),
                format: .pem
            )

            let stream = try await TLSTestClient.connect(port: port)
            try await stream.get(Self.stream, keepAlive: true)
            #expect(await stream.waitFor("\"first\""))
            #expect(try await stream.peerCertificate() == original)

            try files.write(TestCertificates.otherNameCertificate, to: "chain.pem")
            try files.write(TestCertificates.otherNamePrivateKey, to: "key.pem")
            serve.send(SIGHUP)
            _ = try await serve.waitForStandardError(matching: "reloaded the TLS files: certificate chain")
            // The new certificate names flipt.example.test only.
            let renewed = try await TLSTestClient.connect(port: port, hostname: "flipt.example.test")
            try await renewed.get("/health", keepAlive: true)
            #expect(await renewed.waitFor("SERVING"))
            #expect(try await renewed.peerCertificate() == replacement)

            // The stream opened before keeps its connection and gets the next change.
            try writer.publish(flag: "second", etag: "e2")
            #expect(await stream.waitFor("\"second\""))
            #expect(!stream.isClosed)

            // A key that is not the certificate's: logged with the key file named, the context in use stays.
            try files.write(TestCertificates.serverPrivateKey, to: "key.pem")
            serve.send(SIGHUP)
            _ = try await serve.waitForStandardError(
                matching: "the TLS files were not reloaded, the ones loaded before stay in use: .*key\\.pem: the "
                    + "private key does not belong"
            )
            let afterFailure = try await TLSTestClient.connect(port: port, hostname: "flipt.example.test")
            try await afterFailure.get("/health", keepAlive: true)
            #expect(await afterFailure.waitFor("SERVING"))
            #expect(try await afterFailure.peerCertificate() == replacement)

            try writer.publish(flag: "third", etag: "e3")
            #expect(await stream.waitFor("\"third\""))
            serve.send(SIGTERM)
            #expect(await serve.waitForExit() == 0)
            #expect(await stream.waitForClose())
        }
    }
}

/// A cache file that a test writes snapshots of namespace `default` into while `serve` reads it, as `run` would.
private struct CacheFile {
    let path: String
    private let store: SnapshotStore
    private let key = SnapshotKey(
        url: URL(string: "http://upstream.test")!,
        environment: "default",
        namespace: "default"
    )

    init(path: String) throws {
        self.path = path
        store = try SnapshotStore(path: path)
    }

    /// Saves a document with the one flag `flag` as the new last good snapshot, with `etag`.
    func publish(flag: String, etag: String) throws {
        try store.save(NewSnapshot(document: Data(SecureServeTests.document(flag: flag).utf8), etag: etag), for: key)
    }
}
