import Flipt
import FliptEngine
import FliptStore
import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// The sync layer shared by the client and `flipt-offline sync`: the URL rule and the other checks, the document
/// check, and the cache rows each fetch outcome leaves (against a loopback server and a real SQLite file).
@Suite("Sync layer")
struct SnapshotSyncTests {
    @Test(
        "one URL rule: http or https with a host",
        arguments: ["http://localhost:8080", "https://flipt.example.com/prefix/", "HTTPS://Flipt.Example.com"]
    )
    func acceptedURL(text: String) throws {
        #expect(try SnapshotSync.serverURL(text).absoluteString == text)
    }

    @Test(
        "the URL rule refuses other schemes and URLs without a host, saying http or https",
        arguments: ["ftp://example.com", "file:///tmp/flipt", "not a url", "localhost:8080", "https://", "ws://h"]
    )
    func refusedURL(text: String) {
        let error = #expect(throws: FliptError.self) { try SnapshotSync.serverURL(text) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("is not an http or https URL") == true, "\(error?.message ?? "")")
        // The client's initialiser applies the same rule with the same message.
        let fromClient = #expect(throws: FliptError.self) {
            try FliptClient(options: ClientOptions(url: text, cache: CacheOptions(location: .disabled)))
        }
        #expect(fromClient?.message == error?.message)
        let fromTransport = #expect(throws: FliptError.self) { try ClientOptions(url: text).makeTransport() }
        #expect(fromTransport?.message == error?.message)
    }

    @Test(
        "the other checks name what to change",
        arguments: [
            ("  ", ClientOptions(), "namespace is empty"),
            ("default", ClientOptions(cache: CacheOptions(historyDepth: 0)), "history depth"),
            ("default", ClientOptions(cache: CacheOptions(maximumAge: .zero)), "maximum age"),
            ("default", ClientOptions(updateInterval: .zero), "update interval"),
            ("default", ClientOptions(updateJitter: 2), "jitter"),
            ("default", ClientOptions(authentication: .clientToken("a\nb")), "line break"),
        ]
    )
    func otherChecks(namespace: String, options: ClientOptions, mention: String) {
        let error = #expect(throws: FliptError.self) {
            try SnapshotSync.configuration(namespace: namespace, options: options)
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
    }

    @Test("a checked configuration carries the options")
    func configuration() throws {
        var options = ClientOptions(
            url: "https://flipt.example.com/flipt",
            environment: "staging",
            requestTimeout: .seconds(5),
            updateInterval: .seconds(30),
            updateJitter: 0.2,
            reference: "main",
            fetchMode: .streaming
        )
        options.retryPolicy = RetryPolicy(maximumRetries: 1)
        let configuration = try SnapshotSync.configuration(namespace: "production", options: options)
        #expect(configuration.url.absoluteString == "https://flipt.example.com/flipt")
        #expect(configuration.namespace == "production")
        #expect(configuration.environment == "staging")
        #expect(configuration.reference == "main")
        #expect(configuration.requestTimeout == .seconds(5))
        #expect(configuration.updateInterval == .seconds(30))
        #expect(configuration.jitter == 0.2)
        #expect(configuration.fetchMode == .streaming)
        #expect(configuration.retryPolicy.maximumRetries == 1)
    }

    @Test("documents given by hand: decoded and checked for the namespace, with a message for each origin")
    func documents() throws {
        let good = FixtureDocument.bytes(namespace: "production", flagCount: 3)
        let snapshot = try SnapshotSync.snapshot(of: good, namespace: "production", from: .seed)
        #expect(snapshot.flagCount == 3)

        let other = #expect(throws: FliptError.self) {
            try SnapshotSync.snapshot(of: good, namespace: "default", from: .seed)
        }
        #expect(other?.code == .invalidSnapshot)
        #expect(other?.message.contains("of namespace \"production\", but the client is for \"default\"") == true)

        let broken = Array(#"{"namespace":{"key":"production"},"flags":[{"key":1}]}"#.utf8)
        let seed = #expect(throws: FliptError.self) {
            try SnapshotSync.snapshot(of: broken, namespace: "production", from: .seed)
        }
        #expect(seed?.message.hasPrefix("The seed snapshot in ClientOptions.snapshot is not a valid snapshot") == true)
        let replacement = #expect(throws: FliptError.self) {
            try SnapshotSync.snapshot(of: broken, namespace: "production", from: .replacement)
        }
        #expect(replacement?.message.hasPrefix("The replacement is not a valid snapshot document") == true)
    }

    @Test("a fetch outcome's rows: a 200 saves a generation, a 304 confirms it, failures only add attempts")
    func outcomes() async throws {
        try await withTemporaryDirectory { directory in
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let options = testOptions(url: server.baseURL, cache: nil)
                let sync = try SnapshotSync(namespace: "default", options: options) {
                    (configuration) throws(SyncError) in
                    try SnapshotFetcher.defaultTransport(for: configuration)
                }
                let store = try await SnapshotStore(path: directory.appendingPathComponent("cache.sqlite3").path)

                let (updated, updatedTiming) = await sync.loop.fetchNow(etag: nil)
                guard case .updated(let fetched) = updated else {
                    Issue.record("expected a new snapshot, got \(updated)")
                    return
                }
                let fetchedAt = Date(timeIntervalSince1970: 1_800_000_000)
                let saved = try #require(
                    try await sync.record(updated, timing: updatedTiming, at: fetchedAt, in: store)
                )
                #expect(saved.generation == 1)
                #expect(saved.etag == fetched.etag)
                #expect(saved.fetchedAt == fetchedAt)
                #expect(try await store.lastGood(for: sync.key)?.document == Data(FixtureDocument.bytes(revision: 1)))

                let (unchanged, unchangedTiming) = await sync.loop.fetchNow(etag: fetched.etag)
                guard case .unchanged = unchanged else {
                    Issue.record("expected a 304, got \(unchanged)")
                    return
                }
                let confirmedAt = fetchedAt + 60
                let confirmed = try #require(
                    try await sync.record(unchanged, timing: unchangedTiming, at: confirmedAt, in: store)
                )
                #expect(confirmed.generation == 1)
                #expect(confirmed.lastConfirmedAt == confirmedAt)

                server.enqueue(.status(500), times: 4)
                let (failed, failedTiming) = await sync.loop.fetchNow(etag: fetched.etag)
                #expect(try await sync.record(failed, timing: failedTiming, at: confirmedAt + 60, in: store) == nil)

                server.setDocument(json: #"{"namespace":{"key":"default"},"flags":[{"key":1}]}"#)
                let (rejected, rejectedTiming) = await sync.loop.fetchNow(etag: fetched.etag)
                #expect(
                    try await sync.record(rejected, timing: rejectedTiming, at: confirmedAt + 120, in: store) == nil
                )

                let attempts = try await store.attempts(for: sync.key).map { ($0.outcome, $0.httpStatus) }
                #expect(attempts.map(\.0) == [.rejected, .failed, .notModified, .updated])
                #expect(attempts.map(\.1) == [nil, 500, 304, 200])
                let lastGood = try #require(try await store.lastGood(for: sync.key))
                #expect(lastGood.generation == 1, "nothing that failed replaces the last good snapshot")
                #expect(lastGood.document == Data(FixtureDocument.bytes(revision: 1)))
            }
        }
    }

    @Test("the newest usable cached snapshot: a generation of another namespace is skipped for an older one")
    func lastUsable() async throws {
        try await withTemporaryDirectory { directory in
            let sync = try SnapshotSync(
                namespace: "default",
                options: ClientOptions(url: "http://127.0.0.1:9", cache: CacheOptions(location: .disabled))
            ) { (configuration) throws(SyncError) in
                try SnapshotFetcher.defaultTransport(for: configuration)
            }
            let store = try await SnapshotStore(path: directory.appendingPathComponent("cache.sqlite3").path)
            let log = LogRecorder()
            #expect(sync.lastUsable(in: store, logger: log.logger) == nil)
            try await store.save(NewSnapshot(document: Data(FixtureDocument.bytes(revision: 1))), for: sync.key)
            try await store.save(NewSnapshot(document: Data(FixtureDocument.bytes(namespace: "other"))), for: sync.key)
            let (stored, snapshot) = try #require(sync.lastUsable(in: store, logger: log.logger))
            #expect(stored.generation == 1)
            #expect(snapshot.namespaceKey == "default")
            #expect(log.matching("a snapshot of namespace \"other\"").count == 1, "\(log.lines)")
            #expect(log.matching("serving an older generation").count == 1, "\(log.lines)")
        }
    }

    @Test("progress: a success ends a failure or staleness once; cache problems clear only on a writable cache")
    func progress() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var progress = SyncProgress()
        #expect(progress == SyncProgress())
        let first = progress.succeeded(at: start)
        #expect(!first, "a first success recovers from nothing")
        #expect(progress.hasFetched && progress.lastAttemptAt == start)

        let failure = FliptError(.fetchFailed, "the server answered 500")
        progress.failed(failure, at: start + 1)
        #expect(progress.failure == failure && progress.lastAttemptAt == start + 1 && progress.hasFetched)
        let afterFailure = progress.succeeded(at: start + 2)
        #expect(afterFailure, "a success after a failure recovers")
        #expect(progress.failure == nil)

        let firstReport = progress.becameStale()
        let secondReport = progress.becameStale()
        #expect(firstReport && !secondReport, "staleness is reported once until the next success")
        let afterStale = progress.succeeded(at: start + 3)
        let plain = progress.succeeded(at: start + 4)
        #expect(afterStale && !plain)

        progress.wroteCache(problem: "disk I/O error", readOnly: false)
        #expect(progress.cacheProblem == "disk I/O error")
        progress.wroteCache(problem: nil, readOnly: false)
        #expect(progress.cacheProblem == nil)
        var readOnly = SyncProgress(cacheProblem: "the file is read-only")
        readOnly.wroteCache(problem: nil, readOnly: true)
        #expect(readOnly.cacheProblem == "the file is read-only")
    }
}
