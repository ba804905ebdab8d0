import Flipt
import FliptStore
import FliptTestSupport
import Foundation
import Testing

/// The served document is held gzip-compressed once a background task compacts it; everything that reads it
/// (getSnapshot(), the flag changes of the next replacement, the rollback checks) sees the same bytes as before.
@Suite("FliptClient holds the served document compressed")
struct HeldDocumentTests {
    /// A document large enough to be compacted (the threshold is 64 KiB), for `revision`.
    static func largeDocument(flagCount: Int = 400, revision: Int = 1) -> [UInt8] {
        let document = FixtureDocument.bytes(flagCount: flagCount, revision: revision)
        precondition(document.count > 128 * 1024, "the fixture is too small to be compacted")
        return document
    }

    @Test("a seeded and a cached snapshot are compacted, and getSnapshot() returns the document byte for byte")
    func snapshotRoundTrips() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let document = Self.largeDocument()
            var options = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: cache)
            options.startsOffline = true
            options.snapshot = String(decoding: document, as: UTF8.self)
            let seeded = try FliptClient(options: options)
            #expect(await eventually { seeded.holdsCompactDocument })
            #expect(try SnapshotString.document(from: seeded.getSnapshot().utf8) == document)
            await seeded.shutdown()

            // A second client boots from the cache file the first one wrote, with no seed.
            options.snapshot = nil
            let cached = try FliptClient(options: options)
            #expect(cached.status.source == .cache)
            #expect(await eventually { cached.holdsCompactDocument })
            let exported = try cached.getSnapshot()
            #expect(try SnapshotString.document(from: exported.utf8) == document)
            // The export seeds a client that answers as the original does.
            var reseeded = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: nil)
            reseeded.startsOffline = true
            reseeded.snapshot = exported
            let copy = try FliptClient(options: reseeded)
            for key in ["flag0", "flag2", "flag398"] {
                let mine = try copy.evaluateVariant(flagKey: key, entityID: "u1", context: ["fizz": "buzz"])
                let theirs = try cached.evaluateVariant(flagKey: key, entityID: "u1", context: ["fizz": "buzz"])
                #expect(mine.isMatch && mine.reason == .match)
                #expect(mine.variantKey == theirs.variantKey && mine.segmentKeys == theirs.segmentKeys)
            }
            await copy.shutdown()
            await cached.shutdown()
        }
    }

    @Test("a document below the threshold stays raw")
    func smallDocumentStaysRaw() async throws {
        var options = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: nil)
        options.startsOffline = true
        options.snapshot = FixtureDocument.json(flagCount: 2)
        let client = try FliptClient(options: options)
        client.compactHeldDocument()
        #expect(!client.holdsCompactDocument)
        #expect(try SnapshotString.document(from: client.getSnapshot().utf8) == FixtureDocument.bytes(flagCount: 2))
        await client.shutdown()
    }

    @Test("the first fetch after a start from the cache is compared with the compacted cached document")
    func changesAgainstCompactedDocument() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(Self.largeDocument())
                let first = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                try await first.waitUntilReady(timeout: .seconds(30))
                await first.shutdown()

                // One flag more, and every description changed (revision 2): the cached flags all change.
                server.setDocument(Self.largeDocument(flagCount: 401, revision: 2))
                var options = testOptions(url: server.baseURL, cache: cache)
                options.startsOffline = true
                let client = try FliptClient(options: options)
                #expect(await eventually { client.holdsCompactDocument })
                let events = client.events()
                client.setOffline(false)
                var changes: FlagChanges?
                for await event in events {
                    if case .snapshotReplaced(_, let replaced) = event {
                        changes = replaced
                        break
                    }
                }
                #expect(changes?.added == ["flag400"])
                #expect(changes?.removed == [])
                #expect(changes?.changed == (0..<400).map { "flag\($0)" })
                #expect(try servedRevision(client) == "revision 2")
                await client.shutdown()
            }
        }
    }
}
