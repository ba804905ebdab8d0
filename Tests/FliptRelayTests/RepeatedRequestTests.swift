import FliptTestSupport
import Foundation
import Synchronization
import Testing

@testable import FliptRelay

/// A connection that sends the same request bytes again (a polling client) is answered without the HTTP decoder,
/// from the head parsed the first time: the answers must be exactly those of a request parsed anew, made from the
/// current snapshot, tokens and clock, and only at a request boundary.
@Suite("Relay repeated requests", .serialized, .timeLimit(.minutes(1)))
struct RepeatedRequestTests {
    static let v1 = "/internal/v1/evaluation/snapshot/namespace/default"

    static func poll(etag: String? = nil, method: String = "GET") -> String {
        "\(method) \(v1) HTTP/1.1\r\nHost: test\r\nAccept: application/json\r\n"
            + (etag.map { "If-None-Match: \($0)\r\n" } ?? "") + "\r\n"
    }

    @Test("the same bytes again: 304 while the snapshot stays, 200 with the new one after a change, counted")
    func repeatedPollsFollowTheCatalog() async throws {
        let first = RelayFixtures.served(flag: "first")
        let catalog = SnapshotCatalog(snapshots: [first])
        try await RelayFixtures.withServer(catalog: catalog) { server, port in
            let client = try RawHTTPClient(port: port)
            let conditional = Self.poll(etag: first.etag)
            for _ in 0..<5 {
                try client.send(conditional)
                let response = try client.readResponse()
                #expect(response.status == 304)
                #expect(response.header("Etag") == first.etag)
                #expect(response.body.isEmpty)
            }
            let second = RelayFixtures.served(flag: "second")
            catalog.replace(with: [second])
            try client.send(conditional)
            let changed = try client.readResponse()
            #expect(changed.status == 200)
            #expect(changed.header("Etag") == second.etag)
            #expect(changed.body == second.document)

            // Unconditional polls, again and again: the document each time, whole.
            for _ in 0..<3 {
                try client.send(Self.poll())
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Content-Length") == String(second.document.count))
                #expect(response.body == second.document)
            }
            // HEAD again and again: the length, no body, and the connection still parses.
            for _ in 0..<3 {
                try client.send(Self.poll(method: "HEAD"))
                let response = try client.readResponse(isHead: true)
                #expect(response.status == 200)
                #expect(response.header("Content-Length") == String(second.document.count))
            }
            try client.send(Self.poll(etag: second.etag))
            #expect(try client.readResponse().status == 304)

            let statistics = server.statistics
            #expect(statistics.requests == 13)
            #expect(statistics.notModified == 6)
            #expect(statistics.snapshotsSent == 7)
        }
    }

    @Test("a small document replaced by another of the same length under the same ETag is sent anew, not reused")
    func sameETagOtherContent() async throws {
        let first = RelayFixtures.served(flag: "aaaa", etag: "\"fixed\"")
        let second = RelayFixtures.served(flag: "bbbb", etag: "\"fixed\"")
        #expect(first.document.count == second.document.count)
        let catalog = SnapshotCatalog(snapshots: [first])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.send(Self.poll())
            #expect(try client.readResponse().body == first.document)
            catalog.replace(with: [second])
            try client.send(Self.poll())
            let response = try client.readResponse()
            #expect(response.header("Etag") == "\"fixed\"")
            #expect(response.body == second.document)
        }
    }

    @Test("the same bytes again are authorized again: a token withdrawn meanwhile gets 403, restored 304")
    func repeatedPollsAreAuthorizedEachTime() async throws {
        let served = RelayFixtures.served()
        let withdrawn = Mutex(false)
        var configuration = RelayServer.Configuration()
        configuration.authorize = { _, namespace in
            withdrawn.withLock { $0 } ? .forbidden("namespace \(namespace ?? "") is not allowed") : .allowed
        }
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served]), configuration: configuration)
        {
            _,
            port in
            let client = try RawHTTPClient(port: port)
            let conditional = Self.poll(etag: served.etag)
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
            withdrawn.withLock { $0 = true }
            try client.send(conditional)
            let forbidden = try client.readResponse()
            #expect(forbidden.status == 403)
            #expect(forbidden.text.contains("\"code\":7"))
            withdrawn.withLock { $0 = false }
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
        }
    }

    @Test("the same bytes a second later carry a new Date; a shutdown closes the connection after the answer")
    func repeatedPollsGetTheCurrentDate() async throws {
        let served = RelayFixtures.served()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let client = try RawHTTPClient(port: port)
            let conditional = Self.poll(etag: served.etag)
            try client.send(conditional)
            let earlier = try #require(try client.readResponse().header("Date"))
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
            try await Task.sleep(for: .milliseconds(1_100))
            try client.send(conditional)
            let later = try client.readResponse()
            #expect(later.status == 304)
            #expect(later.header("Date") != earlier)
            #expect(later.header("Connection") == nil)

            // Once the server is stopping, the same bytes get an answer that closes the connection.
            server.stopRequested.store(true, ordering: .releasing)
            try client.send(conditional)
            let closing = try client.readResponse()
            #expect(closing.status == 304)
            #expect(closing.header("Connection") == "close")
            #expect(client.isClosedByPeer())
        }
    }

    @Test("the same bytes after the start of another request are part of that request, not a repeat")
    func repeatsOnlyAtARequestBoundary() async throws {
        let served = RelayFixtures.served()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            let conditional = Self.poll(etag: served.etag)
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
            // An unfinished request, then the same bytes as before: together they are one request for /elsewhere,
            // whose header X-Note holds the poll's request line. Whether the server reads them in one read or two,
            // the answer is the plain 404 of that one request.
            try client.send("GET /elsewhere HTTP/1.1\r\nX-Note: ")
            try await Task.sleep(for: .milliseconds(100))
            try client.send(conditional)
            let combined = try client.readResponse()
            #expect(combined.status == 404)
            #expect(combined.text == "404 page not found\n")
            // Two polls in one send (one read, most likely) and then one: three answers.
            try client.send(conditional + conditional)
            #expect(try client.readResponse().status == 304)
            #expect(try client.readResponse().status == 304)
            try client.send(conditional)
            #expect(try client.readResponse().status == 304)
        }
    }

    @Test("after a body, the start of another request in the same read is joined to the next read, not repeated")
    func partialRequestAfterBody() async throws {
        let served = RelayFixtures.served(etag: "p")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            let poll = Self.poll(etag: served.etag)
            try client.send(poll)
            #expect(try client.readResponse().status == 304)
            try client.send(poll)
            #expect(try client.readResponse().status == 304)
            // A request with a body, and in the same write the start of another, whose header X-Note then
            // takes the poll's bytes: one request for /elsewhere, answered with the plain 404.
            try client.send(
                "GET /x HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nabGET /elsewhere HTTP/1.1\r\nX-Note: "
            )
            #expect(try client.readResponse().status == 404)
            try await Task.sleep(for: .milliseconds(100))
            try client.send(poll)
            let joined = try client.readResponse()
            #expect(joined.status == 404)
            #expect(joined.text == "404 page not found\n")
            try client.send(poll)
            let last = try client.readResponse()
            #expect(last.status == 304, "\(last.status) \(last.headers) \(last.text)")
        }
    }

    @Test("a request with a body or an Upgrade field, sent again, is parsed again")
    func bodiesAndUpgradesAreParsedAgain() async throws {
        let served = RelayFixtures.served()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { server, port in
            let client = try RawHTTPClient(port: port)
            let withBody = "GET \(Self.v1) HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab"
            for _ in 0..<3 {
                try client.send(withBody)
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == served.document)
            }
            let upgrade = "GET \(Self.v1) HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            try client.send(upgrade)
            let first = try client.readResponse()
            #expect(first.status == 200)
            #expect(first.body == served.document)
            #expect(server.statistics.snapshotsSent == 4)
        }
    }
}
