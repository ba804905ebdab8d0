import Flipt
import FliptSync
import FliptTestSupport
import FliptTesting
import Foundation
import Testing

/// `ClientOptions.maximumDocumentSize`: a response or stream message that never ends, or is larger than any
/// snapshot should be, fails the fetch instead of filling memory, and the last good snapshot stays.
@Suite("The largest document accepted", .timeLimit(.minutes(1)))
struct DocumentSizeLimitTests {
    static func document(value: Bool) throws -> Data {
        let data = TestData()
        try data.update(.boolean("switch", value: value))
        return data.document
    }

    /// A response head that announces a chunked JSON body.
    static let chunkedHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// One HTTP chunk of `count` bytes of JSON white space after an opening brace.
    static func chunk(_ count: Int) -> String {
        String(count, radix: 16) + "\r\n{" + String(repeating: " ", count: count - 1) + "\r\n"
    }

    @Test("a polled body past the limit, endless or announced, fails the fetch at once; the snapshot in use stays")
    func polledBodies() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                server.setDocument(try Self.document(value: true))
                var options = testOptions(url: server.baseURL, cache: cache, updateInterval: .seconds(3_600))
                options.maximumDocumentSize = 64 * 1024
                let client = try FliptClient(options: options)
                try await client.waitUntilReady(timeout: .seconds(30))
                let etag = client.status.etag

                // 40 KiB chunks that never end: the connection stays open, and without the limit the body would
                // be read for as long as the server sends.
                server.enqueue(
                    .raw(
                        Array((Self.chunkedHead + String(repeating: Self.chunk(40 * 1024), count: 3)).utf8),
                        close: false
                    )
                )
                guard case .failed(let endless) = await client.refresh() else {
                    Issue.record("an endless body did not fail the refresh")
                    return
                }
                #expect(endless.code == .fetchFailed)
                #expect((endless.underlying as? SyncError)?.kind == .badDocument)
                #expect(endless.message.contains("larger than 65536 bytes"))
                #expect(endless.message.contains("maximumDocumentSize"))

                // A Content-Length over the limit fails before the body is read.
                server.enqueue(
                    .raw(
                        Array(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"
                                .utf8
                        ),
                        close: false
                    )
                )
                guard case .failed(let announced) = await client.refresh() else {
                    Issue.record("a body announced over the limit did not fail the refresh")
                    return
                }
                #expect((announced.underlying as? SyncError)?.kind == .badDocument)
                #expect(server.requests(to: .snapshot).count == 3, "an oversized body is not retried")

                #expect(try client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)
                #expect(client.status.etag == etag)
                #expect(try lastGoodInFile(path: cache, url: server.baseURL)?.etag == etag)

                // A document within the limit is taken as before.
                server.setDocument(try Self.document(value: false))
                guard case .updated = await client.refresh() else {
                    Issue.record("a document within the limit was not taken")
                    return
                }
                #expect(try !client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)
                await client.shutdown()
            }
        }
    }

    @Test("a stream line past the limit fails the stream, which reconnects; the snapshot in use stays")
    func streamLines() async throws {
        try await withTestServer { server in
            server.setDocument(try Self.document(value: true))
            var options = testOptions(url: server.baseURL, cache: nil, fetchMode: .streaming)
            options.maximumDocumentSize = 64 * 1024
            server.enqueue(
                .stream([.headers, .currentSnapshot, .text("{" + String(repeating: " ", count: 100 * 1024)), .hold]),
                on: .stream
            )
            let client = try FliptClient(options: options)
            let events = client.events()
            try await client.waitUntilReady(timeout: .seconds(30))
            var failure: FliptError?
            for await event in events {
                if case .fetchFailed(let error) = event {
                    failure = error
                    break
                }
            }
            #expect((failure?.underlying as? SyncError)?.kind == .badDocument)
            #expect(failure?.message.contains("65536 bytes") == true)
            #expect(try client.evaluateBoolean(flagKey: "switch", entityID: "u1").isEnabled)
            // The stream reconnects and is served normally.
            #expect(await server.wait(timeout: .seconds(30)) { $0.requests(to: .stream).count >= 2 })
            await client.shutdown()
        }
    }

    @Test("a limit under 1 KiB is refused as a configuration error")
    func tooSmall() throws {
        var options = ClientOptions(url: "http://127.0.0.1:1", cache: CacheOptions(location: .disabled))
        options.maximumDocumentSize = 100
        #expect {
            _ = try FliptClient(options: options)
        } throws: { error in
            (error as? FliptError)?.code == .invalidConfiguration
                && (error as? FliptError)?.message.contains("1024") == true
        }
    }
}
