import Flipt
import FliptStore
import FliptSync
import FliptTestSupport
import Foundation
import Synchronization
import Testing

@Suite("FliptClient against a real cache file and a loopback server")
struct FliptClientTests {
    @Test("a cold start with the server down answers from the cache before any request")
    func coldStartOffline() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let server = try TestFliptServer()
            let url = server.baseURL
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let first = try FliptClient(options: testOptions(url: url, cache: cache))
            try await first.waitUntilReady(timeout: .seconds(30))
            let online = try first.evaluateVariant(flagKey: "flag0", entityID: "user-1", context: ["fizz": "buzz"])
            await first.shutdown()
            let digest = server.digest()
            server.stop()

            for strategy in ErrorStrategy.allCases {
                let client = try FliptClient(options: testOptions(url: url, cache: cache, strategy: strategy))
                // No await between construction and evaluation: the answer comes from the cache file.
                let offline = try client.evaluateVariant(
                    flagKey: "flag0",
                    entityID: "user-1",
                    context: ["fizz": "buzz"]
                )
                #expect(offline.variantKey == online.variantKey)
                #expect(offline.isMatch && offline.reason == .match)
                #expect(try servedRevision(client) == "revision 1")
                let status = client.status
                #expect(status.source == .cache)
                #expect(status.etag == digest)
                #expect(status.hasFetched == false)
                #expect(await eventually { client.status.lastError != nil })
                #expect(client.status.lastError?.code == .fetchFailed)
                switch strategy {
                case .fallback:
                    #expect(try servedRevision(client) == "revision 1")
                case .fail:
                    #expect(throws: FliptError.self) { try client.evaluateBoolean(flagKey: "flag1", entityID: "u") }
                }
                await client.shutdown()
            }
            // Nothing that failed touched the file: the snapshot fetched online is still the last good one.
            #expect(try lastGoodInFile(path: cache, url: url)?.etag == digest)
        }
    }

    @Test("the first evaluation answers from the cache while the first request hangs", .timeLimit(.minutes(1)))
    func cacheAnswersWhileRequestHangs() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let first = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await first.waitUntilReady(timeout: .seconds(30))
                await first.shutdown()
                server.setDocument(FixtureDocument.bytes(revision: 2))
                server.resetLog()
                server.enqueue(.silent)
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                #expect(try servedRevision(client) == "revision 1")
                #expect(await server.wait(timeout: .seconds(30)) { !$0.requests(to: .snapshot).isEmpty })
                #expect(try servedRevision(client) == "revision 1")
                #expect(client.status.source == .cache)
                // The hung request is cut short by nothing but close(); it must return promptly.
                let clock = ContinuousClock()
                let elapsed = await clock.measure { await client.shutdown() }
                #expect(elapsed < .seconds(1))
            }
        }
    }

    @Test("a restart after a failed fetch keeps the last good snapshot", arguments: ErrorStrategy.allCases)
    func restartAfterFailure(strategy: ErrorStrategy) async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let options = testOptions(url: server.baseURL, cache: cache, strategy: strategy)
                let client = try FliptClient(options: options)
                try await client.waitUntilReady(timeout: .seconds(30))
                let goodETag = server.digest()
                // From now on every request fails: 503 (retried, then given up) on every attempt.
                server.enqueue(.status(503), times: 1_000)
                #expect(await eventually { client.status.lastError != nil })
                if strategy == .fail {
                    let error = #expect(throws: FliptError.self) {
                        try client.evaluateVariant(flagKey: "flag0", entityID: "u")
                    }
                    #expect(error?.code == .fetchFailed)
                    #expect(error?.message.contains("503") == true)
                } else {
                    #expect(try servedRevision(client) == "revision 1")
                }
                await client.shutdown()
                #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == goodETag)

                let restarted = try FliptClient(options: options)
                #expect(try servedRevision(restarted) == "revision 1")
                #expect(restarted.status.source == .cache)
                // The server recovers with new content: both strategies pick it up.
                server.clearFaults()
                server.setDocument(FixtureDocument.bytes(revision: 2))
                #expect(await eventually { (try? servedRevision(restarted)) == "revision 2" })
                #expect(restarted.status.lastError == nil)
                await restarted.shutdown()
            }
        }
    }

    @Test("a bad document never replaces the snapshot in memory or in the file")
    func badDocumentIsRejected() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                let events = client.events()
                try await client.waitUntilReady(timeout: .seconds(30))
                let goodETag = server.digest()
                let bad: [[UInt8]] = [
                    Array(#"{"namespace":{"key":"default"},"flags":[{"key":"f","enabled":true}]}"#.utf8),
                    Array(#"{"namespace":{"key":"other"},"flags":[]}"#.utf8),
                    Array("not json at all".utf8),
                ]
                for document in bad {
                    server.setDocument(document)
                    var failure: FliptError?
                    for await event in events {
                        if case .fetchFailed(let error) = event {
                            failure = error
                            break
                        }
                    }
                    #expect(failure?.code == .fetchFailed)
                    #expect((failure?.underlying as? SyncError)?.kind == .badDocument)
                    #expect(try servedRevision(client) == "revision 1")
                    #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == goodETag)
                }
                await client.shutdown()
                let store = try await SnapshotStore(path: cache, options: SnapshotStore.Options(readOnly: true))
                let key = SnapshotKey(url: server.baseURL, environment: "default", namespace: "default")
                await #expect(try store.history(for: key).count == 1)
                await #expect(try store.attempts(for: key).contains { $0.outcome == .rejected })
            }
        }
    }

    @Test("when the newest cached generation no longer decodes, start-up serves the previous one")
    func olderGenerationFallback() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let url = try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await client.waitUntilReady(timeout: .seconds(30))
                server.setDocument(FixtureDocument.bytes(revision: 2))
                #expect(await eventually { (try? servedRevision(client)) == "revision 2" })
                await client.shutdown()
                return server.baseURL
            }
            // Valid JSON, but not a document the engine accepts (flags lack `name` and `enabled`).
            let sqlite = Process()
            sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            sqlite.arguments = [
                cache,
                """
                UPDATE snapshots SET document = '{"namespace":{"key":"default"},"flags":[{"key":"x"}]}'
                WHERE id = (SELECT last_good_snapshot_id FROM cache_entries);
                """,
            ]
            try sqlite.run()
            sqlite.waitUntilExit()
            #expect(sqlite.terminationStatus == 0)
            let offline = try FliptClient(
                options: testOptions(url: url, cache: cache)
            )
            #expect(try servedRevision(offline) == "revision 1")
            #expect(offline.status.source == .cache)
            await offline.shutdown()
        }
    }

    @Test("a 304 confirms the cached snapshot and sends the ETag verbatim")
    func notModified() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await client.waitUntilReady(timeout: .seconds(30))
                let fetchedAt = try #require(client.status.fetchedAt)
                #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .snapshot).count >= 3 })
                let requests = server.requests(to: .snapshot)
                #expect(requests[0].header("If-None-Match") == nil)
                #expect(requests[1].header("If-None-Match") == server.digest())
                #expect(await eventually { (client.status.lastConfirmedAt ?? .distantPast) > fetchedAt })
                #expect(client.status.fetchedAt == fetchedAt)
                await client.shutdown()
                let stored = try #require(try lastGoodInFile(path: cache, url: server.baseURL))
                #expect(stored.lastConfirmedAt > stored.fetchedAt)
                #expect(stored.generation == 1)
                // The attempt log says what happened, when each attempt started and how long it took.
                let log = try await SnapshotStore(path: cache, options: SnapshotStore.Options(readOnly: true))
                    .attempts(for: SnapshotKey(url: server.baseURL, environment: "default", namespace: "default"))
                #expect(log.contains { $0.outcome == .updated && $0.httpStatus == 200 })
                #expect(log.contains { $0.outcome == .notModified && $0.httpStatus == 304 })
                #expect(log.allSatisfy { $0.duration > .zero && $0.startedAt <= stored.lastConfirmedAt })

                // After a restart, the very first request is already conditional on the cached ETag.
                server.resetLog()
                let restarted = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await restarted.waitUntilReady(timeout: .seconds(30))
                #expect(server.requests(to: .snapshot).first?.header("If-None-Match") == server.digest())
                #expect(restarted.status.source == .cache)
                await restarted.shutdown()
            }
        }
    }

    @Test("streaming updates reach evaluations and the cache", .timeLimit(.minutes(1)))
    func streamingUpdates() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let client = try FliptClient(
                    options: testOptions(url: server.baseURL, cache: cache, fetchMode: .streaming)
                )
                try await client.waitUntilReady(timeout: .seconds(30))
                #expect(await server.wait(timeout: .seconds(30)) { $0.openStreamCount == 1 })
                for revision in 2...4 {
                    server.setDocument(FixtureDocument.bytes(revision: revision))
                    #expect(await eventually { (try? servedRevision(client)) == "revision \(revision)" })
                }
                #expect(client.status.source == .network)
                #expect(server.requests(to: .snapshot).count == 1)
                await client.shutdown()
                // Stream messages carry no ETag header: the document's `digest` stands in when it has one (this
                // fixture has none), so what is checked here is that the file holds the last streamed document.
                let stored = try #require(try lastGoodInFile(path: cache, url: server.baseURL))
                #expect([UInt8](stored.document) == FixtureDocument.bytes(revision: 4))
                #expect(stored.source == .network)
            }
        }
    }

    @Test("past the maximum age a snapshot is reported stale, and served or refused as configured")
    func maximumAge() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let server = try TestFliptServer()
            defer { server.stop() }
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let url = server.baseURL
            let seeding = try FliptClient(options: testOptions(url: url, cache: cache))
            try await seeding.waitUntilReady(timeout: .seconds(30))
            await seeding.shutdown()
            server.stop()

            // The age counts from the seeding client's fetch: 2 s leaves room for its shutdown and this start on a
            // busy machine (400 ms was exceeded with the whole suite running in parallel).
            let serving = try FliptClient(
                options: testOptions(url: url, cache: cache, maximumAge: .seconds(2))
            )
            let events = serving.events()
            #expect(serving.status.isStale == false)
            var stale: ClientStatus?
            for await event in events {
                if case .becameStale(let status) = event {
                    stale = status
                    break
                }
            }
            #expect(stale?.isStale == true)
            #expect((stale?.age ?? .zero) > .seconds(2))
            #expect(try servedRevision(serving) == "revision 1")
            await serving.shutdown()

            let refusing = try FliptClient(
                options: testOptions(url: url, cache: cache, maximumAge: .seconds(2), staleBehavior: .fail)
            )
            #expect(await eventually { refusing.status.isStale })
            let error = #expect(throws: FliptError.self) {
                try refusing.evaluateBoolean(flagKey: "flag1", entityID: "u")
            }
            #expect(error?.code == .stale)
            await refusing.shutdown()
        }
    }

    @Test("a credential replaced at runtime is used by the next request, and never written to the file")
    func credentialRotation() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                server.requireAuthentication(clientTokens: ["fresh-token-4f2a"])
                let client = try FliptClient(
                    options: testOptions(
                        url: server.baseURL,
                        cache: cache,
                        strategy: .fail,
                        authentication: .clientToken("expired-token-91c3")
                    )
                )
                #expect(await eventually { client.status.lastError != nil })
                let underlying = client.status.lastError?.underlying as? SyncError
                #expect(underlying?.kind == .authentication(401))
                try client.updateAuthentication(.clientToken("fresh-token-4f2a"))
                try await client.waitUntilReady(timeout: .seconds(30))
                #expect(try servedRevision(client) == "revision 1")
                let headers = server.requests(to: .snapshot).compactMap { $0.header("Authorization") }
                #expect(headers.first == "Bearer expired-token-91c3")
                #expect(headers.last == "Bearer fresh-token-4f2a")
                await client.shutdown()
                for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
                    let bytes = try Data(contentsOf: directory.appendingPathComponent(file))
                    for token in ["expired-token-91c3", "fresh-token-4f2a"] {
                        #expect(bytes.range(of: Data(token.utf8)) == nil, "\(token) found in \(file)")
                    }
                }
            }
        }
    }

    @Test("close() returns promptly with a hung request, and is idempotent", .timeLimit(.minutes(1)))
    func closeDuringHungRequest() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            server.enqueue(.silent, times: 10)
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil))
            #expect(await server.wait(timeout: .seconds(30)) { !$0.requests.isEmpty })
            let clock = ContinuousClock()
            let elapsed = await clock.measure {
                client.close()
                client.close()
                await client.shutdown()
            }
            // The request has no timeout: without a prompt close this would wait for the test's time limit. 5 s
            // leaves room for a busy machine (1.2 s was seen with the whole suite running in parallel).
            #expect(elapsed < .seconds(5))
            let error = await #expect(throws: FliptError.self) { try await client.waitUntilReady(timeout: .seconds(1)) }
            #expect(error?.code == .closed)
        }
    }

    @Test("many threads evaluate while snapshots are swapped", .timeLimit(.minutes(1)))
    func concurrentEvaluationDuringSwaps() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(flagCount: 4, revision: 0))
            let client = try FliptClient(
                options: testOptions(url: server.baseURL, cache: nil, updateInterval: .milliseconds(5))
            )
            try await client.waitUntilReady(timeout: .seconds(30))
            let stop = Atomic<Bool>(false)
            let evaluations = Atomic<Int>(0)
            let failures = Atomic<Int>(0)
            let threads = (0..<4).map { index in
                Thread {
                    while !stop.load(ordering: .relaxed) {
                        do {
                            let variant = try client.evaluateVariant(
                                flagKey: "flag0",
                                entityID: "entity-\(index)",
                                context: ["fizz": "buzz"]
                            )
                            let boolean = try client.evaluateBoolean(flagKey: "flag1", entityID: "entity-\(index)")
                            if variant.variantKey != "variant1" || !boolean.isEnabled {
                                failures.add(1, ordering: .relaxed)
                            }
                            _ = try client.listFlags()
                        } catch {
                            failures.add(1, ordering: .relaxed)
                        }
                        evaluations.add(1, ordering: .relaxed)
                    }
                }
            }
            for thread in threads { thread.start() }
            for revision in 1...40 {
                server.setDocument(FixtureDocument.bytes(flagCount: 4, revision: revision))
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await eventually { (try? servedRevision(client)) == "revision 40" })
            stop.store(true, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(50))
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(evaluations.load(ordering: .relaxed) > 1_000)
            await client.shutdown()
        }
    }
}
