import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// The relay's HTTP behaviour, through real sockets on 127.0.0.1.
@Suite("Relay server", .timeLimit(.minutes(1)))
struct RelayServerTests {
    @Test("E1 and E2 answer 200 with the document, Etag and Content-Type; a trailing slash is accepted")
    func snapshotEndpoints() async throws {
        let served = RelayFixtures.served(etag: "abc123")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            for path in [
                "/internal/v1/evaluation/snapshot/namespace/default",
                "/internal/v1/evaluation/snapshot/namespace/default/",
                "/client/v2/environments/default/namespaces/default/snapshot",
                "/client/v2/environments/default/namespaces/default/snapshot//",
                "/internal/v1/evaluation/snapshot/namespace/default?reference=main&pretty",
            ] {
                let client = try RawHTTPClient(port: port)
                try client.get(path)
                let response = try client.readResponse()
                #expect(response.status == 200, "\(path)")
                #expect(response.header("Etag") == "abc123", "\(path)")
                #expect(response.header("Content-Type") == "application/json", "\(path)")
                #expect(response.body == served.document, "\(path)")
                #expect(response.header("Date")?.hasSuffix(" GMT") == true)
            }
        }
    }

    @Test("without a stored ETag, the Etag is the document's SHA-256")
    func contentHashETag() {
        let served = ServedSnapshot(namespace: "n", environment: "e", document: Array("abc".utf8), origin: "t")
        #expect(served.etag == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("If-None-Match naming the ETag (exact, quoted, weak, listed, *, several fields) gets 304; others 200")
    func conditionalRequests() async throws {
        let served = RelayFixtures.served(etag: "v1-etag")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let client = try RawHTTPClient(port: port)
            let path = "/internal/v1/evaluation/snapshot/namespace/default"
            try client.get(path, headers: ["If-None-Match: v1-etag"])
            let notModified = try client.readResponse()
            #expect(notModified.status == 304)
            #expect(notModified.header("Etag") == "v1-etag")
            #expect(notModified.header("Content-Length") == nil)
            #expect(notModified.body.isEmpty)
            // The same connection goes on: the 304 had no body to skip.
            let naming: [[String]] = [
                ["If-None-Match: \"v1-etag\""], ["If-None-Match: W/v1-etag"], ["If-None-Match: W/\"v1-etag\""],
                ["If-None-Match: *"], ["If-None-Match: \"other\", W/\"v1-etag\""], ["If-None-Match: a,v1-etag"],
                ["If-None-Match: \"a,b\",\tv1-etag "], ["If-None-Match: other", "If-None-Match: v1-etag"],
            ]
            for headers in naming {
                try client.get(path, headers: headers)
                let response = try client.readResponse()
                #expect(response.status == 304, "\(headers)")
                #expect(response.header("Etag") == "v1-etag", "\(headers)")
                #expect(response.body.isEmpty, "\(headers)")
            }
            for other in ["V1-ETAG", "v1-eta", "\"v1-etag\"x", "\"v1-etag, other\"", "W/", "\"\"", "other, v1-etag2"] {
                try client.get(path, headers: ["If-None-Match: \(other)"])
                let response = try client.readResponse()
                #expect(response.status == 200, "\(other)")
                #expect(response.body == served.document)
            }
            #expect(server.statistics.notModified == 1 + naming.count)
        }
    }

    @Test("If-None-Match lists: members split at commas outside quotes, W/ and quotes ignored, compared exactly")
    func entityTagLists() {
        let etag = "778d2031"
        for field in [
            etag, "\"\(etag)\"", "W/\(etag)", "W/\"\(etag)\"", "*", " *", "x, \(etag)", "\"x,y\" ,W/\"\(etag)\"",
            "\t\(etag)\t", ",,\(etag),,",
        ] {
            #expect(EntityTagCondition.matches(field, etag: etag), "\(field)")
        }
        for field in ["", ",", "W/", "\"\"", "\"\(etag)", "\(etag)x", "\"x,\(etag)\"", "W/W/\(etag)", "**"] {
            #expect(!EntityTagCondition.matches(field, etag: etag), "\(field)")
        }
        // An ETag that is itself quoted (another server's, passed through) matches its unquoted and weak forms.
        #expect(EntityTagCondition.matches("W/abc", etag: "\"abc\""))
        #expect(EntityTagCondition.matches("abc", etag: "\"abc\""))
    }

    @Test("an unknown namespace gets 404 with Flipt's JSON error body")
    func unknownNamespace() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [RelayFixtures.served()])) { _, port in
            for path in [
                "/internal/v1/evaluation/snapshot/namespace/nope",
                "/client/v2/environments/default/namespaces/nope/snapshot",
            ] {
                let client = try RawHTTPClient(port: port)
                try client.get(path)
                let response = try client.readResponse()
                #expect(response.status == 404)
                #expect(response.header("Content-Type") == "application/json")
                let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                #expect(body?["code"] as? Int == 5)
                #expect(body?["message"] as? String == "evaluation snapshot for namespace \"nope\" not found")
                #expect((body?["details"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test("unknown paths: JSON 404 under the APIs, the plain-text 404 elsewhere; /health answers 200")
    func otherPaths() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get("/internal/v1/evaluation/snapshot/namespace/")
            let api = try client.readResponse()
            #expect(api.status == 404)
            #expect(api.text == "{\"code\":5,\"message\":\"Not Found\",\"details\":[]}")
            try client.get("/client/v2/environments/default/namespaces/default/other")
            #expect(try client.readResponse().status == 404)
            try client.get("/favicon.ico")
            let plain = try client.readResponse()
            #expect(plain.status == 404)
            #expect(plain.header("Content-Type")?.hasPrefix("text/plain") == true)
            #expect(plain.text == "404 page not found\n")
            try client.get("/health")
            let health = try client.readResponse()
            #expect(health.status == 200)
            #expect(health.text == "{\"status\":\"SERVING\"}")
        }
    }

    @Test("HEAD answers the headers of GET with no body; other methods get 405")
    func methods() async throws {
        let served = RelayFixtures.served()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.send("HEAD /internal/v1/evaluation/snapshot/namespace/default HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try client.readResponse(isHead: true)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "\(served.document.count)")
            try client.send(
                "POST /internal/v1/evaluation/snapshot/namespace/default HTTP/1.1\r\n"
                    + "Host: t\r\nContent-Length: 3\r\n\r\nabc"
            )
            let post = try client.readResponse()
            #expect(post.status == 405)
            #expect(post.header("Allow") == "GET, HEAD")
            // The body was consumed: the connection still works.
            try client.get("/health")
            #expect(try client.readResponse().status == 200)
        }
    }

    @Test(
        "malformed requests get 400 (or 505, 431, 413) and the connection closes",
        arguments: [
            ("GARBAGE\r\n\r\n", 400),
            ("GET /health\r\n\r\n", 400),
            ("GET /health HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400),
            ("GET health HTTP/1.1\r\nHost: t\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\n\r\n", 400),
            ("GET /health HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("GET /health FTP/1.0\r\nHost: t\r\n\r\n", 400),
            ("G(T /health HTTP/1.1\r\nHost: t\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\n folded: yes\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n", 413),
            ("\u{1}\u{2}\u{3}\u{4}\r\n\r\n", 400),
        ]
    )
    func badRequests(request: String, status: Int) async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { server, port in
            let client = try RawHTTPClient(port: port)
            try client.send(request)
            let response = try client.readResponse()
            #expect(response.status == status)
            #expect(response.header("Connection") == "close")
            #expect(response.header("Content-Type") == "application/json")
            #expect(client.isClosedByPeer())
            // The server goes on serving others.
            let other = try RawHTTPClient(port: port)
            try other.get("/health")
            #expect(try other.readResponse().status == 200)
            #expect(server.statistics.errors == 1)
        }
    }

    @Test("a request head over the limit gets 431; random bytes never stop the server")
    func oversizedAndRandom() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(), configuration: .init(maxHeadSize: 1024)) {
            _,
            port in
            let client = try RawHTTPClient(port: port)
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "a", count: 4096))
            #expect(try client.readResponse().status == 431)
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<50 {
                let noise = (0..<Int.random(in: 1...600, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                let random = try RawHTTPClient(port: port, timeout: .milliseconds(200))
                try? random.send(noise + Array("\r\n\r\n".utf8))
            }
            let after = try RawHTTPClient(port: port)
            try after.get("/health")
            #expect(try after.readResponse().status == 200)
        }
    }

    /// Request heads over the 16 KiB limit whose header names and values alone are under it.
    enum OversizedHead: CaseIterable, CustomTestStringConvertible {
        /// 2,000 fields of 7 bytes of name and value: 14,000 bytes by the decoder's count, ~21,000 as sent.
        case manyShortFields
        /// White space before a value, which the decoder skips without counting it.
        case paddedValue
        /// The same, in a head far larger than any read.
        case paddedValueOfOneMegabyte

        var fields: String {
            switch self {
            case .manyShortFields: (0..<2000).map { "X-\($0 + 1000): y\r\n" }.joined()
            case .paddedValue: "X-Padded:" + String(repeating: " ", count: 40_000) + "y\r\n"
            case .paddedValueOfOneMegabyte: "X-Padded:" + String(repeating: " ", count: 1_000_000) + "y\r\n"
            }
        }

        var testDescription: String { "\(self)" }
    }

    @Test(
        "the head limit counts the head as sent: many short fields or padded values over it get 431, a line 414",
        arguments: OversizedHead.allCases
    )
    func headLimitCountsBytesAsSent(head: OversizedHead) async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { server, port in
            let client = try RawHTTPClient(port: port)
            // The server may close before it has read everything sent.
            try? client.send("GET /health HTTP/1.1\r\nHost: t\r\n" + head.fields + "\r\n")
            let response = try client.readResponse()
            #expect(response.status == 431)
            #expect(String(decoding: response.body, as: UTF8.self).contains("larger than 16384 bytes"))
            let long = try RawHTTPClient(port: port)
            try? long.send("GET /" + String(repeating: "a", count: 20_000))
            #expect(try long.readResponse().status == 414)
            let after = try RawHTTPClient(port: port)
            try after.get("/health")
            #expect(try after.readResponse().status == 200)
        }
    }

    @Test("a head just within the limit is served, and so is a request sent after it in the same write")
    func headWithinLimit() async throws {
        let served = RelayFixtures.served(etag: "w")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let path = "/internal/v1/evaluation/snapshot/namespace/default"
            let start = "GET \(path) HTTP/1.1\r\nHost: t\r\nX-Pad: "
            let pad = String(repeating: "p", count: 16 * 1024 - start.utf8.count - 4)
            let head = start + pad + "\r\n\r\n"
            #expect(head.utf8.count == 16 * 1024)
            let client = try RawHTTPClient(port: port)
            try client.send(head + "GET \(path) HTTP/1.1\r\nHost: t\r\nIf-None-Match: w\r\n\r\n" + head)
            #expect(try client.readResponse().status == 200)
            #expect(try client.readResponse().status == 304)
            #expect(try client.readResponse().status == 200)
            // One byte more is over.
            try client.send(start + pad + "p\r\n\r\n")
            #expect(try client.readResponse().status == 431)
        }
    }

    @Test("keep-alive: several requests on one connection, pipelined ones included; Connection: close ends it")
    func keepAlive() async throws {
        let served = RelayFixtures.served(etag: "k")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let client = try RawHTTPClient(port: port)
            for _ in 0..<5 {
                try client.get("/internal/v1/evaluation/snapshot/namespace/default")
                #expect(try client.readResponse().status == 200)
            }
            let path = "/internal/v1/evaluation/snapshot/namespace/default"
            try client.send(
                "GET \(path) HTTP/1.1\r\nHost: t\r\n\r\nGET \(path) HTTP/1.1\r\nHost: t\r\nIf-None-Match: k\r\n\r\n"
            )
            #expect(try client.readResponse().status == 200)
            #expect(try client.readResponse().status == 304)
            #expect(server.statistics.openConnections == 1)
            try client.get("/health", headers: ["Connection: close"])
            let last = try client.readResponse()
            #expect(last.header("Connection") == "close")
            #expect(client.isClosedByPeer())
            // HTTP/1.0 closes by default.
            let old = try RawHTTPClient(port: port)
            try old.send("GET /health HTTP/1.0\r\n\r\n")
            #expect(try old.readResponse().status == 200)
            #expect(old.isClosedByPeer())
        }
    }

    @Test("an idle kept-alive connection is closed after the idle timeout")
    func idleTimeout() async throws {
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(idleTimeout: .milliseconds(200))
        ) {
            server,
            port in
            let client = try RawHTTPClient(port: port, timeout: .seconds(10))
            try client.get("/health")
            #expect(try client.readResponse().status == 200)
            let started = ContinuousClock.now
            #expect(client.isClosedByPeer())
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(await eventually { server.statistics.openConnections == 0 })
        }
    }

    @Test("the environment: the path's or environmentKey if held, else X-Flipt-Environment, else the default")
    func environments() async throws {
        let catalog = SnapshotCatalog(
            defaultEnvironment: "default",
            snapshots: [
                RelayFixtures.served(environment: "default", flag: "in-default"),
                RelayFixtures.served(environment: "prod", flag: "in-prod"),
                RelayFixtures.served(namespace: "solo", environment: "staging", flag: "in-staging"),
            ]
        )
        try await RelayFixtures.withServer(catalog: catalog) { _, port throws in
            let flag = { (path: String, headers: [String]) throws -> String in
                try Self.firstFlag(port: port, path: path, headers: headers)
            }
            let e1 = "/internal/v1/evaluation/snapshot/namespace/default"
            #expect(try flag(e1, []) == "in-default")
            #expect(try flag(e1, ["X-Flipt-Environment: prod"]) == "in-prod")
            #expect(try flag(e1, ["X-Flipt-Environment: unknown"]) == "in-default")
            #expect(try flag(e1 + "?environmentKey=prod", []) == "in-prod")
            #expect(try flag(e1 + "?environment_key=prod", ["X-Flipt-Environment: default"]) == "in-prod")
            let e2 = "/client/v2/environments/prod/namespaces/default/snapshot"
            #expect(try flag(e2, []) == "in-prod")
            #expect(try flag(e2, ["X-Flipt-Environment: default"]) == "in-prod")
            let unknownPath = "/client/v2/environments/nope/namespaces/default/snapshot"
            #expect(try flag(unknownPath, ["X-Flipt-Environment: prod"]) == "in-prod")
            #expect(try flag(unknownPath, []) == "in-default")
            // A namespace held in one environment only is served whatever the request names.
            #expect(try flag("/internal/v1/evaluation/snapshot/namespace/solo", []) == "in-staging")
            #expect(
                try flag("/client/v2/environments/default/namespaces/solo/snapshot", ["X-Flipt-Environment: x"])
                    == "in-staging"
            )
        }
    }

    static func firstFlag(port: UInt16, path: String, headers: [String]) throws -> String {
        let client = try RawHTTPClient(port: port)
        try client.get(path, headers: headers)
        let response = try client.readResponse()
        guard response.status == 200 else { return "status \(response.status)" }
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return ((object?["flags"] as? [[String: Any]])?.first?["key"] as? String) ?? "?"
    }

    @Test("a namespace held in several environments, none of them the default, is a 404 that names them")
    func ambiguousEnvironment() async throws {
        let catalog = SnapshotCatalog(
            defaultEnvironment: "default",
            snapshots: [
                RelayFixtures.served(environment: "a"), RelayFixtures.served(environment: "b"),
            ]
        )
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get("/internal/v1/evaluation/snapshot/namespace/default")
            let response = try client.readResponse()
            #expect(response.status == 404)
            #expect(response.text.contains("environments a, b"))
        }
    }

    @Test("250 clients at once, each with a few requests on its own connection, all answered")
    func manyClients() async throws {
        let served = RelayFixtures.served(etag: "many")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for index in 0..<250 {
                    group.addTask {
                        let client = try RawHTTPClient(port: port, timeout: .seconds(20))
                        var statuses: [Int] = []
                        for request in 0..<4 {
                            let conditional = (index + request) % 2 == 0 ? ["If-None-Match: many"] : []
                            try client.get("/internal/v1/evaluation/snapshot/namespace/default", headers: conditional)
                            statuses.append(try client.readResponse().status)
                        }
                        return statuses
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == 1000)
            #expect(statuses.filter { $0 == 200 }.count == 500)
            #expect(statuses.filter { $0 == 304 }.count == 500)
            #expect(server.statistics.errors == 0)
        }
    }

    @Test("connections beyond the limit get 503 and are closed; the others are served")
    func connectionLimit() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(), configuration: .init(maxConnections: 2)) {
            server,
            port in
            let first = try RawHTTPClient(port: port)
            let second = try RawHTTPClient(port: port)
            try first.get("/health")
            try second.get("/health")
            #expect(try first.readResponse().status == 200)
            #expect(try second.readResponse().status == 200)
            let third = try RawHTTPClient(port: port)
            let refused = try third.readResponse()
            #expect(refused.status == 503)
            #expect(third.isClosedByPeer())
            #expect(server.statistics.refusedConnections == 1)
        }
    }

    @Test("stop closes every connection and the listening socket; stopping twice is fine")
    func stopping() async throws {
        let server = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog()
        )
        let port = try await server.start().port
        let client = try RawHTTPClient(port: port)
        try client.get("/health")
        #expect(try client.readResponse().status == 200)
        await server.shutdown()
        #expect(client.isClosedByPeer())
        #expect(server.statistics.openConnections == 0)
        #expect(throws: RawHTTPClient.Failure.self) { try RawHTTPClient(port: port) }
        await server.shutdown()
    }

    @Test("listening on an address in use fails with a message naming the address and what to do")
    func addressInUse() async throws {
        let first = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog()
        )
        let port = try await first.start().port
        let second = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: port)),
            catalog: SnapshotCatalog()
        )
        await #expect {
            try await second.start()
        } throws: { error in
            let text = "\(error)"
            return text.contains("127.0.0.1:\(port)") && text.contains("bind") && text.contains("--listen")
        }
        await first.shutdown()
    }
}
