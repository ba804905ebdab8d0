import Flipt
import FliptTestSupport
import FliptTesting
import Foundation
import Testing

/// Flag-change events of fetched snapshots, against the loopback server with a real cache file.
@Suite("Flag changes of fetched snapshots")
struct FlagChangeTests {
    /// Flags `a` (boolean), `b` (variant, with a rule on segment `beta`) and `c` (boolean), added in `order`.
    static func data(order: [String] = ["a", "b", "c"], betaPlan: String = "pro") throws -> TestData {
        let data = TestData()
        try data.update(.all("beta", .string("plan", .equals(betaPlan))))
        let flags: [String: TestData.Flag] = [
            "a": .boolean("a", value: true),
            "b": .variant("b", variants: ["off", "on"], default: "off").rule(matching: ["beta"], serve: "on"),
            "c": .boolean("c", value: false).rollout(percentage: 50, value: true),
        ]
        for key in order { try data.update(flags[key]!) }
        return data
    }

    /// The next snapshot replacement's changes.
    static func nextReplacement(_ events: AsyncStream<ClientEvent>) async -> FlagChanges? {
        for await event in events {
            if case .snapshotReplaced(_, let changes) = event { return changes }
        }
        return nil
    }

    @Test("each replacement tells the flags added, removed and changed, by content, not by position")
    func changesByContent() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(try Self.data().document)
                // Offline at first, so that the events of the first fetch are seen too.
                var options = testOptions(url: server.baseURL, cache: cache)
                options.startsOffline = true
                let client = try FliptClient(options: options)
                let events = client.events()
                let changesOfB = client.changes(of: "b")
                client.setOffline(false)
                #expect(await Self.nextReplacement(events) == FlagChanges(added: ["a", "b", "c"]))

                // The same flags in another order, with other white space: a new document, no flag changed.
                let moved = try Self.data(order: ["c", "b", "a"]).json.replacingOccurrences(of: "},{", with: "},\n  {")
                server.setDocument(json: moved)
                #expect(await Self.nextReplacement(events) == FlagChanges())

                // The segment `beta` changes: only `b`, which uses it, changes.
                server.setDocument(try Self.data(betaPlan: "team").document)
                #expect(await Self.nextReplacement(events) == FlagChanges(changed: ["b"]))
                #expect(
                    try client.evaluateVariant(flagKey: "b", entityID: "u1", context: ["plan": "team"]).variantKey
                        == "on"
                )

                // `c` goes, `d` comes.
                let next = try Self.data(order: ["a", "b"], betaPlan: "team")
                try next.update(.boolean("d"))
                server.setDocument(next.document)
                #expect(await Self.nextReplacement(events) == FlagChanges(added: ["d"], removed: ["c"]))
                #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == server.digest())

                var iterator = changesOfB.makeAsyncIterator()
                #expect(await iterator.next()?.kind == .added)
                let change = await iterator.next()
                #expect(change?.kind == .changed)
                #expect(change?.status.source == .network)
                await client.shutdown()
                #expect(await iterator.next() == nil)
            }
        }
    }

    @Test("the first fetch after a start from the cache is compared with the cached snapshot")
    func firstFetchAfterCachedStart() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(try Self.data().document)
                let first = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await first.waitUntilReady(timeout: .seconds(30))
                await first.shutdown()

                let changed = try Self.data()
                try changed.update(.boolean("a", value: false))
                server.setDocument(changed.document)
                var options = testOptions(url: server.baseURL, cache: cache)
                options.startsOffline = true
                let restarted = try FliptClient(options: options)
                #expect(restarted.status.source == .cache)
                let events = restarted.events()
                restarted.setOffline(false)
                #expect(await Self.nextReplacement(events) == FlagChanges(changed: ["a"]))
                await restarted.shutdown()
            }
        }
    }
}
