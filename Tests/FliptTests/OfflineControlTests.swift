import Flipt
import FliptSync
import FliptTestSupport
import FliptTesting
import Foundation
import Testing

/// `setOffline(_:)`, `ClientOptions.startsOffline` and `refresh()`, counting the requests the loopback server gets.
@Suite("Offline control and forced refresh")
struct OfflineControlTests {
    static func document(value: Bool) throws -> Data {
        let data = TestData()
        try data.update(.boolean("switch", value: value))
        return data.document
    }

    @Test("offline, polling stops and evaluations go on; online again, polling resumes")
    func pollingStops() async throws {
        try await withTemporaryDirectory { directory in
            try await withTestServer { server in
                server.setDocument(try Self.document(value: true))
                let client = try FliptClient(
                    options: testOptions(url: server.baseURL, cache: directory.path + "/cache.sqlite3")
                )
                #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .snapshot).count >= 3 })
                client.setOffline(true)
                #expect(client.isOffline)
                // A request already in flight may still arrive; after a settling second nothing else may.
                try await Task.sleep(for: .seconds(1))
                let settled = server.requests.count
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(server.requests.count == settled, "15 polls were due; offline, none may be sent")
                #expect(try client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)

                client.setOffline(false)
                #expect(!client.isOffline)
                #expect(await server.wait(timeout: .seconds(30)) { $0.requests.count >= settled + 3 })
                await client.shutdown()
            }
        }
    }

    @Test("back online, the client fetches at once, confirming the snapshot in use")
    func resumesAtOnce() async throws {
        try await withTestServer { server in
            server.setDocument(try Self.document(value: true))
            let client = try FliptClient(
                options: testOptions(url: server.baseURL, cache: nil, updateInterval: .seconds(3_600))
            )
            try await client.waitUntilReady(timeout: .seconds(30))
            #expect(server.requests.count == 1)
            client.setOffline(true)
            client.setOffline(true)
            client.setOffline(false)
            // The next poll is an hour away: a second request can only be the fetch on going online.
            #expect(await server.wait(timeout: .seconds(30)) { $0.requests.count == 2 })
            #expect(server.requests.last?.header("If-None-Match") == server.digest())
            await client.shutdown()
        }
    }

    @Test("offline, the stream closes; online again, it reopens and delivers changes")
    func streamingStops() async throws {
        try await withTestServer { server in
            server.setDocument(try Self.document(value: true))
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil, fetchMode: .streaming))
            #expect(await server.wait(timeout: .seconds(30)) { $0.openStreamCount == 1 })
            client.setOffline(true)
            #expect(await server.wait(timeout: .seconds(30)) { $0.openStreamCount == 0 })
            try await Task.sleep(for: .seconds(1))
            let settled = server.requests.count
            server.setDocument(try Self.document(value: false))
            try await Task.sleep(for: .seconds(1))
            #expect(server.requests.count == settled)
            #expect(try client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled, "offline: the old data")

            client.setOffline(false)
            #expect(await server.wait(timeout: .seconds(30)) { $0.openStreamCount == 1 })
            #expect(
                try await eventually { try !client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled }
            )
            await client.shutdown()
        }
    }

    @Test("a client that starts offline sends nothing and refuses to refresh until it goes online")
    func startsOffline() async throws {
        try await withTestServer { server in
            server.setDocument(try Self.document(value: false))
            var options = testOptions(url: server.baseURL, cache: nil)
            options.snapshot = String(decoding: try Self.document(value: true), as: UTF8.self)
            options.startsOffline = true
            let client = try FliptClient(options: options)
            #expect(client.isOffline)
            #expect(try client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled, "the seed answers")
            guard case .failed(let error) = await client.refresh() else {
                Issue.record("an offline client refreshed")
                return
            }
            #expect(error.code == .offline)
            try await Task.sleep(for: .seconds(1))
            #expect(server.requests.isEmpty)

            client.setOffline(false)
            try await client.waitUntilReady(timeout: .seconds(30))
            #expect(client.status.source == .network)
            #expect(try !client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)
            await client.shutdown()
        }
    }

    @Test("a client left to run() starts as it was set: offline before run() sends nothing until it goes online")
    func offlineBeforeRun() async throws {
        try await withTestServer { server in
            server.setDocument(try Self.document(value: true))
            var options = testOptions(url: server.baseURL, cache: nil)
            options.startsOffline = true
            let startsOffline = try FliptClient(options: options, startsSyncing: false)
            #expect(startsOffline.isOffline, "startsOffline holds before run()")
            startsOffline.close()

            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil), startsSyncing: false)
            #expect(!client.isOffline)
            client.setOffline(true)
            #expect(client.isOffline)
            let running = Task { try await client.run() }
            try await Task.sleep(for: .seconds(1))
            #expect(server.requests.isEmpty, "set offline before run(), the client must not fetch")
            #expect(client.isOffline)

            client.setOffline(false)
            try await client.waitUntilReady(timeout: .seconds(30))
            #expect(server.requests(to: .snapshot).count >= 1)
            client.close()
            try await running.value
        }
    }

    @Test("refresh() fetches now and says what happened: updated, not modified, failed")
    func refresh() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(try Self.document(value: true))
                var options = testOptions(url: server.baseURL, cache: cache, updateInterval: .seconds(3_600))
                options.startsOffline = true
                let client = try FliptClient(options: options)
                let events = client.events()
                client.setOffline(false)
                try await client.waitUntilReady(timeout: .seconds(30))

                server.setDocument(try Self.document(value: false))
                guard case .updated(let status, let changes) = await client.refresh() else {
                    Issue.record("refresh did not report the new snapshot")
                    return
                }
                #expect(changes == FlagChanges(changed: ["switch"]))
                #expect(status.etag == server.digest() && status.source == .network)
                #expect(try !client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)
                #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == server.digest())
                #expect(server.requests.count == 2)

                guard case .notModified(let confirmed) = await client.refresh() else {
                    Issue.record("refresh of an unchanged snapshot did not report not modified")
                    return
                }
                #expect(confirmed.etag == server.digest())
                #expect(server.requests.count == 3)
                #expect(server.requests.last?.header("If-None-Match") == server.digest())

                server.enqueue(.status(404))
                guard case .failed(let error) = await client.refresh() else {
                    Issue.record("refresh against a 404 did not fail")
                    return
                }
                #expect(error.code == .fetchFailed)
                #expect((error.underlying as? SyncError)?.httpStatus == 404)
                #expect(server.requests.count == 4, "a 404 is not retried")
                #expect(client.status.lastError == error)
                #expect(try !client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled, "fallback")

                guard case .notModified = await client.refresh() else {
                    Issue.record("refresh after the failure did not confirm the snapshot")
                    return
                }
                var seen: [String] = []
                for await event in events {
                    switch event {
                    case .snapshotReplaced: seen.append("replaced")
                    case .fetchFailed: seen.append("failed")
                    case .recovered: seen.append("recovered")
                    case .becameStale: seen.append("stale")
                    case .confirmed: continue  // each not-modified refresh; counted by the requests above
                    }
                    if seen.count == 4 { break }
                }
                #expect(seen == ["replaced", "replaced", "failed", "recovered"])
                await client.shutdown()
                guard case .failed(let closed) = await client.refresh() else {
                    Issue.record("a closed client refreshed")
                    return
                }
                #expect(closed.code == .closed)
            }
        }
    }
}
