import FliptTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import FliptRelay

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits and bad input: each refusal has its status, closes its connection, and leaves everyone else served.
@Suite("Relay limits", .timeLimit(.minutes(2)))
struct LimitsTests {
    static let e1 = "/internal/v1/evaluation/snapshot/namespace/default"

    /// Whether `client` has bytes (or an end of file) to read within `timeout`.
    static func readable(_ client: RawHTTPClient, within timeout: Duration) -> Bool {
        var descriptor = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
        return poll(
            &descriptor,
            1,
            Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        ) > 0
    }

    /// A normal client on a new connection gets `/health`.
    static func expectServed(port: UInt16) throws {
        let client = try RawHTTPClient(port: port, timeout: .seconds(30))
        try client.get("/health")
        #expect(try client.readResponse().status == 200)
    }

    @Test("one deadline for the whole request: a head sent one byte at a time gets 408 and the connection closes")
    func slowHead() async throws {
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(requestTimeout: .seconds(1))
        ) { _, port in
            let client = try RawHTTPClient(port: port, timeout: .seconds(30))
            let request = Array("GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: \(String(repeating: "a", count: 200))".utf8)
            var sent = 0
            // A byte every 100 ms never lets a per-read timer expire; the request's deadline does.
            while sent < request.count, !Self.readable(client, within: .milliseconds(100)) {
                try client.send([request[sent]])
                sent += 1
            }
            #expect(sent < request.count, "no answer while the head was still coming")
            let response = try client.readResponse()
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            #expect(client.isClosedByPeer())
            try Self.expectServed(port: port)
        }
    }

    @Test("a pipelined request begun in the read that ended the one before it has the request deadline, not idle")
    func pipelinedPartialRequest() async throws {
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(requestTimeout: .seconds(1), idleTimeout: .seconds(120))
        ) { _, port in
            let client = try RawHTTPClient(port: port, timeout: .seconds(60))
            // One write: a whole request and the first bytes of the next, which then never comes.
            try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHo")
            #expect(try client.readResponse().status == 200)
            // Timed by the idle timeout, the connection would be closed after 120 s with no answer.
            let late = try client.readResponse()
            #expect(late.status == 408)
            #expect(client.isClosedByPeer())
            // Whole pipelined requests leave the connection idle: both answered, and it stays open.
            let whole = try RawHTTPClient(port: port, timeout: .seconds(3))
            try whole.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try whole.readResponse().status == 200)
            #expect(try whole.readResponse().status == 200)
            #expect(!whole.isClosedByPeer())
        }
    }

    @Test("a body sent slowly counts against the same deadline")
    func slowBody() async throws {
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(requestTimeout: .seconds(1))
        ) { _, port in
            let client = try RawHTTPClient(port: port, timeout: .seconds(30))
            try client.send("POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            var sent = 0
            while sent < 1000, !Self.readable(client, within: .milliseconds(100)) {
                try client.send("x")
                sent += 1
            }
            #expect(try client.readResponse().status == 408)
            #expect(client.isClosedByPeer())
        }
    }

    @Test("a request line over the limit gets 414, a head over the limit 431; both close")
    func oversized() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { _, port in
            let long = try RawHTTPClient(port: port)
            try long.send("GET /health?\(String(repeating: "q", count: 10_000)) HTTP/1.1\r\nHost: t\r\n\r\n")
            let uriTooLong = try long.readResponse()
            #expect(uriTooLong.status == 414)
            #expect(uriTooLong.header("Content-Type") == "application/json")
            #expect(long.isClosedByPeer())

            let endless = try RawHTTPClient(port: port)
            try endless.send("GET /health?\(String(repeating: "q", count: 40_000))")
            #expect(try endless.readResponse().status == 414)

            let headers = try RawHTTPClient(port: port)
            let many = (0..<40).map { "X-Field-\($0): \(String(repeating: "v", count: 500))\r\n" }.joined()
            try headers.send("GET /health HTTP/1.1\r\nHost: t\r\n\(many)\r\n")
            #expect(try headers.readResponse().status == 431)
            #expect(headers.isClosedByPeer())
            try Self.expectServed(port: port)
        }
    }

    @Test(
        "duplicate or malformed Content-Length, Transfer-Encoding bodies and duplicate Host get 400",
        arguments: [
            "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "Content-Length: 3, 3\r\n\r\nabc",
            "Content-Length: 1x\r\n\r\na",
            "Content-Length: +3\r\n\r\nabc",
            "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "Host: other\r\n\r\n",
        ]
    )
    func smuggling(headers: String) async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { server, port in
            let client = try RawHTTPClient(port: port)
            try client.send("POST /health HTTP/1.1\r\nHost: t\r\n" + headers)
            let response = try client.readResponse()
            #expect(response.status == 400)
            #expect(response.header("Connection") == "close")
            #expect(client.isClosedByPeer())
            #expect(server.statistics.errors == 1)
            try Self.expectServed(port: port)
        }
    }

    @Test("methods other than GET and HEAD get 405 with Allow", arguments: ["PUT", "DELETE", "OPTIONS", "PATCH"])
    func otherMethods(method: String) async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [RelayFixtures.served()])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.send("\(method) \(Self.e1) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD")
            let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            #expect(body?["code"] as? Int == 12)
        }
    }

    @Test("past maxConnections: 503 with Retry-After: 1, closed, logged once per interval; others still served")
    func connectionLimit() async throws {
        let log = LogRecorder(level: .debug)
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(maxConnections: 3, refusalLogInterval: .seconds(3600), logger: log.logger)
        ) { server, port in
            let held = try (0..<3).map { _ in try RawHTTPClient(port: port) }
            for client in held {
                try client.get("/health")
                #expect(try client.readResponse().status == 200)
            }
            for _ in 0..<20 {
                let refused = try RawHTTPClient(port: port)
                let response = try refused.readResponse()
                #expect(response.status == 503)
                #expect(response.header("Retry-After") == "1")
                #expect(response.header("Connection") == "close")
                #expect(refused.isClosedByPeer())
            }
            #expect(server.statistics.refusedConnections == 20)
            #expect(log.matching("refused a connection").count == 1)
            // The held connections are still served, and a freed slot is taken again.
            try held[0].get("/health")
            #expect(try held[0].readResponse().status == 200)
            try held[1].get("/health", headers: ["Connection: close"])
            #expect(try held[1].readResponse().status == 200)
            #expect(await eventually(timeout: .seconds(30)) { server.statistics.openConnections == 2 })
            try Self.expectServed(port: port)
        }
    }

    @Test("the open-file soft limit is raised to the hard limit, and the connection limit fits inside it")
    func openFileLimit() async throws {
        let log = LogRecorder(level: .debug)
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(maxConnections: 100_000_000, logger: log.logger)
        ) { server, _ in
            var limit = rlimit()
            #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
            #expect(limit.rlim_cur == limit.rlim_max || limit.rlim_cur >= 1 << 20)
            #expect(server.connectionLimit == Int(clamping: limit.rlim_cur) - OpenFileLimit.headroom)
            #expect(log.matching("serving at most \(server.connectionLimit) connections").count == 1)
        }
    }

    @Test("request logs (debug) name the client's address; refusals are rate-limited per kind")
    func logs() async throws {
        let log = LogRecorder(level: .debug)
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(),
            configuration: .init(refusalLogInterval: .seconds(3600), logger: log.logger)
        ) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get("/health")
            #expect(try client.readResponse().status == 200)
            #expect(await eventually { !log.matching("GET /health 200").isEmpty })
            #expect(log.matching("GET /health 200").first?.contains("from 127.0.0.1:") == true)
            for _ in 0..<10 {
                let bad = try RawHTTPClient(port: port)
                try bad.send("GARBAGE\r\n\r\n")
                #expect(try bad.readResponse().status == 400)
            }
            #expect(log.matching("refused a request").count == 1)
            let next = try RawHTTPClient(port: port)
            try next.send("GARBAGE\r\n\r\n")
            _ = try next.readResponse()
            #expect(log.matching("refused a request").count == 1)
        }
    }

    @Test("accepted sockets have TCP keepalive (30 s idle, 10 s interval, 3 probes) and TCP_NODELAY")
    func keepAlive() async throws {
        try await RelayFixtures.withServer(catalog: SnapshotCatalog()) { server, port in
            let client = try RawHTTPClient(port: port)
            try client.get("/health")
            #expect(try client.readResponse().status == 200)
            let channel = try #require(server.openChannels.first)
            let tcp = NIOBSDSocket.OptionLevel.tcp
            func option(_ level: NIOBSDSocket.OptionLevel, _ name: Int32) async throws -> SocketOptionValue {
                try await channel.getOption(
                    ChannelOptions.Types.SocketOption(level: level, name: .init(rawValue: name))
                )
                .get()
            }
            #expect(try await option(.socket, SO_KEEPALIVE) != 0)
            #expect(try await option(tcp, Int32(TCP_NODELAY)) != 0)
            #expect(try await option(tcp, TCP_KEEPIDLE) == 30)
            #expect(try await option(tcp, TCP_KEEPINTVL) == 10)
            #expect(try await option(tcp, TCP_KEEPCNT) == 3)
        }
    }

    @Test("silent, slow and unanswered-stream connections do not keep a normal client from being served")
    func abuseDoesNotStopOthers() async throws {
        try await RelayFixtures.withServer(
            catalog: SnapshotCatalog(snapshots: [RelayFixtures.served(etag: "here")])
        ) { server, port in
            let silent = try (0..<150).map { _ in try RawHTTPClient(port: port) }
            let slow = try (0..<150).map { _ in try RawHTTPClient(port: port) }
            for client in slow { try client.send("GET /health HTTP/1.1\r\nHo") }
            let streams = try (0..<150).map { _ in try RawHTTPClient(port: port) }
            for client in streams { try client.get("/client/v2/environments/default/namespaces/absent/stream") }
            #expect(await eventually(timeout: .seconds(30)) { server.statistics.openStreams == 150 })
            #expect(server.catalog.subscriberCount == 150)
            let client = try RawHTTPClient(port: port, timeout: .seconds(30))
            try client.get(Self.e1)
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Etag") == "here")
            #expect(silent.count + slow.count == 300)
        }
    }
}
