import FliptEngine
import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// Runs a sync loop in a task until `condition` holds on its events (or 30 s pass), then cancels it and checks that
/// it returned promptly.
func runLoop(
    _ fetcher: SnapshotFetcher,
    clock: any Clock<Duration> = RecordingClock(),
    etag: String? = nil,
    until condition: @escaping (EventLog) -> Bool
) async -> EventLog {
    let log = EventLog()
    let loop = SyncLoop(fetcher: fetcher, clock: clock, random: .seeded(3))
    let task = Task { await loop.run(etag: etag) { log.append($0) } }
    let reached = await log.wait(until: condition)
    #expect(reached, "the loop never reached the expected state; events: \(log.all)")
    let start = ContinuousClock.now
    task.cancel()
    await task.value
    #expect(ContinuousClock.now - start < .seconds(1))
    return log
}

@Suite("SyncLoop polling", .timeLimit(.minutes(1)))
struct PollingLoopTests {
    @Test("polls at the jittered interval; unchanged namespaces give 304s; a change is picked up")
    func polling() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let clock = RecordingClock()
            let fetcher = try makeFetcher(server) { $0.updateInterval = .milliseconds(500) }
            let log = await runLoop(fetcher, clock: clock) { $0.unchanged.count >= 3 }
            #expect(log.updates.count == 1)
            #expect(log.failures.isEmpty)
            let polls = clock.sleeps.prefix(3)
            #expect(polls.allSatisfy { $0 >= .milliseconds(450) && $0 <= .milliseconds(550) })
            #expect(Set(polls).count > 1, "jitter should vary the waits")
            let requests = server.requests
            #expect(requests.first?.header("If-None-Match") == nil)
            #expect(requests.dropFirst().allSatisfy { $0.header("If-None-Match") == server.digest() })

            server.setDocument(FixtureDocument.bytes(revision: 1))
            let first = try #require(log.updates.first)
            let second = await runLoop(fetcher, etag: first.etag) { $0.updates.count >= 1 }
            #expect(second.updates.first?.etag == server.digest())
            #expect(second.updates.first?.document == FixtureDocument.bytes(revision: 1))
        }
    }

    @Test("a cached ETag makes the first request conditional")
    func startsConditional() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try makeFetcher(server)
            let log = await runLoop(fetcher, etag: server.digest()) { $0.unchanged.count >= 1 }
            #expect(log.updates.isEmpty)
            #expect(server.requests.first?.header("If-None-Match") == server.digest())
        }
    }

    @Test("the ETag of an unparseable 200 is not kept: the next poll is unconditional, then recovers")
    func badDocumentETagNotKept() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.respond(status: 200, headers: [.init("Etag", "bad-etag")], body: Array("{oops".utf8)))
            let fetcher = try makeFetcher(server)
            let log = await runLoop(fetcher) { $0.updates.count >= 1 }
            #expect(log.failures.map(\.kind) == [.badDocument])
            let sent = server.requests.map { $0.header("If-None-Match") }
            #expect(Array(sent.prefix(2)) == [nil, nil])
        }
    }

    @Test("failures are reported and polling goes on with the last good ETag")
    func failuresKeepETag() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try makeFetcher(server)
            let etag = try #require(server.digest())
            server.enqueue(.status(500), times: 4)
            let log = await runLoop(fetcher, etag: etag) { $0.unchanged.count >= 1 }
            #expect(log.failures.map(\.kind) == [.httpStatus(500)])
            #expect(server.requests.allSatisfy { $0.header("If-None-Match") == etag })
        }
    }

    @Test("cancelling the loop during a hung poll returns at once")
    func cancelDuringHungPoll() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent)
            let fetcher = try makeFetcher(server)
            _ = await runLoop(fetcher) { _ in server.requests.count == 1 }
        }
    }
}

@Suite("SyncLoop streaming", .timeLimit(.minutes(1)))
struct StreamingLoopTests {
    private func streamingFetcher(
        _ server: TestFliptServer,
        configure: (inout SyncConfiguration) -> Void = { _ in }
    ) throws -> SnapshotFetcher {
        try makeFetcher(server) {
            $0.fetchMode = .streaming
            configure(&$0)
        }
    }

    private func line(_ revision: Int) -> String {
        "{\"result\":\(FixtureDocument.json(revision: revision))}\n"
    }

    @Test("fetches first, then streams; document changes are pushed over the same connection")
    func pushes() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try streamingFetcher(server) { $0.authentication = .clientToken("t") }
            let log = EventLog()
            let loop = SyncLoop(fetcher: fetcher, clock: RecordingClock(), random: .seeded(1))
            let task = Task { await loop.run(etag: nil) { log.append($0) } }
            #expect(await log.wait { $0.updates.count >= 2 })
            // Quiet for a while after the headers: the stream must survive (no idle timeout).
            try await Task.sleep(for: .milliseconds(1_500))
            server.setDocument(FixtureDocument.bytes(revision: 1))
            #expect(await log.wait { $0.updates.count >= 3 })
            task.cancel()
            await task.value
            let updates = log.updates
            #expect(updates.map(\.source) == [.snapshotEndpoint, .stream, .stream])
            #expect(updates[2].document == FixtureDocument.bytes(revision: 1))
            let stream = server.requests(to: .stream)
            #expect(stream.count == 1)
            #expect(stream.first?.path == "/client/v2/environments/default/namespaces/default/stream")
            #expect(stream.first?.rawQuery == nil)
            #expect(stream.first?.header("Accept") == "application/json")
            #expect(stream.first?.header("Authorization") == "Bearer t")
            #expect(stream.first?.header("X-Flipt-Accept-Server-Version") == "1.47.0")
            #expect(await server.wait { $0.openStreamCount == 0 })
        }
    }

    @Test("split, merged and unterminated lines are all applied in order")
    func framing() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let one = Array(line(1).utf8)
            let merged = line(2) + line(3)
            var last = line(4)
            last.removeLast()
            server.enqueue(
                .stream([
                    .headers, .chunk(Array(one[..<40])), .pause(.milliseconds(30)), .chunk(Array(one[40...])),
                    .text(merged), .text(last), .end,
                ]),
                on: .stream
            )
            let fetcher = try streamingFetcher(server)
            let log = await runLoop(fetcher) { $0.updates.count >= 5 }
            let revisions = log.updates.map { String(decoding: $0.document, as: UTF8.self) }
            #expect(Array(revisions.prefix(5)) == [0, 1, 2, 3, 4].map { FixtureDocument.json(revision: $0) })
            #expect(log.failures.isEmpty)
        }
    }

    @Test("blank lines are ignored; bad lines and error lines are reported; the stream stays open")
    func badLines() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(
                .stream([
                    .headers, .text("\n\r\n"), .text("garbage\n"),
                    .text("{\"error\":{\"code\":13,\"message\":\"boom\",\"details\":[]}}\n"),
                    .text("{\"result\":\(FixtureDocument.json(namespace: "other"))}\n"),
                    .text(line(7)), .hold,
                ]),
                on: .stream
            )
            let fetcher = try streamingFetcher(server)
            let log = await runLoop(fetcher) { $0.updates.count >= 2 }
            // Required, not expected: the lines below index the events, and a loop that never got there (a
            // starved machine) must fail this test, not crash the run.
            try #require(log.failures.map(\.kind) == [.badDocument, .streamError, .badDocument])
            try #require(log.updates.count >= 2)
            #expect(log.failures[1].message.contains("boom"))
            #expect(log.updates[1].document == FixtureDocument.bytes(revision: 7))
            #expect(server.requests(to: .stream).count == 1)
        }
    }

    @Test("a reset mid-stream is reported, then the stream reconnects after a short back-off")
    func resetReconnects() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.stream([.headers, .currentSnapshot, .reset]), on: .stream)
            let fetcher = try streamingFetcher(server)
            let log = await runLoop(fetcher) { $0.updates.count >= 3 }
            #expect(server.requests(to: .stream).count == 2)
            #expect(log.failures.first?.kind == .network)
            let delays = log.all.compactMap { if case .streamEnded(let delay) = $0 { delay } else { nil } }
            #expect(delays.first.map { $0 <= .seconds(1) } == true)
        }
    }

    @Test("connection errors back off with growing delays; a rotated credential is used on reconnect")
    func unauthorizedBackOff() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.requireAuthentication(clientTokens: ["good"])
            let fetcher = try streamingFetcher(server) { $0.authentication = .clientToken("bad") }
            let log = await runLoop(fetcher) { $0.failures.count >= 6 }
            let delays = log.all.compactMap { if case .streamEnded(let delay) = $0 { delay } else { nil } }
            var policy = ReconnectPolicy()
            var random = RandomSource.seeded(3)
            let expected = (0..<delays.count).map { _ in policy.next(afterConnectionDelivering: false, using: &random) }
            #expect(delays == expected)
            #expect(log.failures.allSatisfy { $0.kind == .authentication(401) })

            fetcher.updateAuthentication(.clientToken("good"))
            server.resetLog()
            let recovered = await runLoop(fetcher) { $0.updates.count >= 2 }
            #expect(recovered.updates.count >= 2)
            // A request the cancelled loop had already sent may be logged late, so check the newest ones.
            #expect(server.requests(to: .snapshot).last?.header("Authorization") == "Bearer good")
            #expect(server.requests(to: .stream).last?.header("Authorization") == "Bearer good")
        }
    }

    @Test("a 503 on connect is retried within the connection attempt")
    func connectRetries() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.status(503), on: .stream, times: 2)
            let fetcher = try streamingFetcher(server)
            let log = await runLoop(fetcher) { $0.updates.count >= 2 }
            #expect(log.failures.isEmpty)
            #expect(server.requests(to: .stream).count == 3)
        }
    }

    @Test(
        "closing while the stream waits for headers, or in silence after them, returns at once",
        arguments: [
            TestFliptServer.Fault.streamWithoutHeaders, .streamSilentAfterHeaders,
        ]
    )
    func cancelQuietStream(fault: TestFliptServer.Fault) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(fault, on: .stream)
            let fetcher = try streamingFetcher(server)
            _ = await runLoop(fetcher) { _ in server.openStreamCount == 1 }
            #expect(await server.wait { $0.openStreamCount == 0 })
        }
    }

    @Test("a stream against a Flipt v1 server fails with advice, and keeps retrying with back-off")
    func v1Server() async throws {
        try await withTestServer(version: .v1) { server in
            server.setDocument(FixtureDocument.bytes())
            let fetcher = try streamingFetcher(server)
            let log = await runLoop(fetcher) { $0.failures.count >= 2 }
            #expect(log.updates.count == 1)
            #expect(log.failures.first?.kind == .httpStatus(404))
            #expect(log.failures.first?.message.contains("v2") == true)
        }
    }

    @Test("an idle timeout shorter than the silence drops the stream (the knob works; the default is long)")
    func idleTimeout() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.streamSilentAfterHeaders, on: .stream)
            let transport = try URLSessionTransport(idleTimeout: .seconds(1))
            #expect(try URLSessionTransport().idleTimeout >= .seconds(86_400))
            let fetcher = try makeFetcher(server, transport: transport) { $0.fetchMode = .streaming }
            let log = await runLoop(fetcher) { $0.failures.contains { $0.kind == .timeout } }
            #expect(log.failures.first?.kind == .timeout)
        }
    }
}
