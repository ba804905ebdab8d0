import Flipt
import FliptGzip
import FliptStore
import FliptSync
import FliptTestSupport
import Foundation
import Testing

@Suite("FliptClient with gzip from the server", .timeLimit(.minutes(1)))
struct GzipClientTests {
    @Test("gzip snapshots are served and cached; a corrupt gzip body replaces nothing, in memory or in the file")
    func corruptGzipReplacesNothing() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.answerGzip()
                server.setDocument(FixtureDocument.bytes(flagCount: 20, revision: 1))
                let client = try FliptClient(options: testOptions(url: server.baseURL, cache: cache))
                let events = client.events()
                try await client.waitUntilReady(timeout: .seconds(30))
                let goodETag = server.digest()
                #expect(try servedRevision(client) == "revision 1")
                // The snapshot is persisted after it is swapped in: wait for the write.
                let written = Data(FixtureDocument.bytes(flagCount: 20, revision: 1))
                #expect(
                    try await eventually { try lastGoodInFile(path: cache, url: server.baseURL)?.document == written }
                )

                var body = Gzip.compress(FixtureDocument.bytes(flagCount: 20, revision: 2))
                for index in stride(from: 20, to: body.count - 8, by: 7) { body[index] ^= 0x3C }
                server.enqueue(
                    .respond(
                        status: 200,
                        headers: [.init("Content-Type", "application/json"), .init("Content-Encoding", "gzip")],
                        body: body
                    ),
                    times: 50
                )
                var failure: FliptError?
                for await event in events {
                    if case .fetchFailed(let error) = event {
                        failure = error
                        break
                    }
                }
                #if canImport(FoundationNetworking)
                #expect((failure?.underlying as? SyncError)?.kind == .badDocument)
                #else
                #expect(failure != nil)
                #endif
                #expect(try servedRevision(client) == "revision 1")
                #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == goodETag)
                await client.shutdown()
            }
        }
    }
}
