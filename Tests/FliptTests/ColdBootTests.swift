import FliptSync
import FliptTestSupport
import Foundation
import Testing

@testable import Flipt
@testable import FliptStore

/// What a cold boot leaves for later, and the cheaper forms of what it still does: the HTTP client is made by the
/// first request (the sync still happens), the namespace check and the cache path's identity match the Foundation
/// forms they replace.
@Suite("Cold boot")
struct ColdBootTests {
    #if canImport(AsyncHTTPClient)
    @Test("a client answers from the cache before its HTTP client exists, and makes it when it syncs")
    func transportMadeBySync() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 2))
                // A first client only writes its seed to the cache: no request, so the shared transport is unused.
                var seeded = testOptions(url: server.baseURL, cache: cache)
                seeded.snapshot = FixtureDocument.json(revision: 1)
                let writer = try FliptClient(options: seeded, startsSyncing: false)

                let client = try FliptClient(
                    options: testOptions(url: server.baseURL, cache: cache),
                    startsSyncing: false
                )
                #expect(try servedRevision(client) == "revision 1")
                #expect(client.status.source == .cache)
                let transport = try #require(client.core.fetcher.transport as? AsyncHTTPClientTransport)
                #expect(!transport.hasClient)
                #expect(server.requests(to: .snapshot).isEmpty)

                let running = Task { try await client.run() }
                try await client.waitUntilReady(timeout: .seconds(30))
                #expect(transport.hasClient)
                #expect(await eventually { (try? servedRevision(client)) == "revision 2" })
                let fetched = Data(FixtureDocument.bytes(revision: 2))
                #expect(
                    await eventually { (try? lastGoodInFile(path: cache, url: server.baseURL))?.document == fetched }
                )
                await client.shutdown()
                try await running.value
                writer.close()
            }
        }
    }
    #endif

    @Test("a blank namespace is what trimming CharacterSet.whitespaces would empty, for every BMP scalar")
    func blankNamespaces() {
        for value in UInt32(0)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = String(Character(scalar))
            let trimmed = text.trimmingCharacters(in: .whitespaces).isEmpty
            #expect(SnapshotSync.isBlank(text) == trimmed, "U+\(String(value, radix: 16))")
        }
        for text in ["", " ", "\t \u{3000}\u{A0}", " default ", "\n", " \r\n", "\u{200B}", "a"] {
            #expect(
                SnapshotSync.isBlank(text) == text.trimmingCharacters(in: .whitespaces).isEmpty,
                "\(text.debugDescription)"
            )
        }
    }

    @Test("spellings of one cache file share one store; other files do not")
    func cachePathIdentity() async throws {
        try await withTemporaryDirectory { directory in
            let real = directory.appendingPathComponent("real")
            try FileManager.default.createDirectory(at: real, withIntermediateDirectories: true)
            let link = directory.appendingPathComponent("link").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real.path)
            let path = real.path + "/cache.sqlite3"
            // Before the file exists (the first client of a fresh cache) and after.
            let spellings = [path, link + "/cache.sqlite3", real.path + "/../real/./cache.sqlite3"]
            #expect(Set(spellings.map(SharedResources.canonicalPath)).count == 1)
            let options = SnapshotStore.Options()
            let store = try SharedResources.store(path: spellings[1], options: options)
            #expect(FileManager.default.fileExists(atPath: path))
            #expect(Set(spellings.map(SharedResources.canonicalPath)) == [SharedResources.canonicalPath(path)])
            for spelling in spellings {
                #expect(try SharedResources.store(path: spelling, options: options) === store, "\(spelling)")
            }
            let other = try SharedResources.store(path: real.path + "/other.sqlite3", options: options)
            #expect(other !== store)
            // A relative spelling resolves against the working directory.
            let workingDirectory = SharedResources.canonicalPath(FileManager.default.currentDirectoryPath)
            #expect(SharedResources.canonicalPath("no-such-file.sqlite3") == workingDirectory + "/no-such-file.sqlite3")
        }
    }
}
