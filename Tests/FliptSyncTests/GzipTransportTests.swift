import FliptGzip
import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// The transports to check: the default one (AsyncHTTPClient on Linux), and URLSession.
let gzipTransports: [String] = ["default", "URLSession"]

func transport(named name: String) -> any HTTPTransport {
    name == "default" ? sharedTransport : sessionTransport
}

@Suite("gzip from the server", .timeLimit(.minutes(2)))
struct GzipTransportTests {
    @Test(
        "a gzip 200 decodes to the same document; the ETag is the server's; 304 still works",
        arguments: gzipTransports
    )
    func snapshot(transportName: String) async throws {
        try await withTestServer { server in
            server.answerGzip()
            let document = FixtureDocument.bytes(flagCount: 500)
            server.setDocument(document)
            let fetcher = try makeFetcher(server, transport: transport(named: transportName))
            let fetched = try #require(try await fetcher.fetch(ifNoneMatch: nil).fetched)
            #expect(fetched.document == document)
            #expect(fetched.etag == server.digest())
            #expect(fetched.snapshot.namespaceKey == "default")
            // It really was compressed on the wire.
            #expect(server.traffic.bytesSent < document.count / 10)
            #expect(server.requests.first?.header("Accept-Encoding") == "gzip")

            #expect(try await fetcher.fetch(ifNoneMatch: fetched.etag).notModifiedETag == server.digest())
            server.setDocument(FixtureDocument.bytes(flagCount: 500, revision: 1))
            let changed = try #require(try await fetcher.fetch(ifNoneMatch: fetched.etag).fetched)
            #expect(changed.document == FixtureDocument.bytes(flagCount: 500, revision: 1))
            #expect(changed.etag == server.digest())
        }
    }

    @Test("MEASURE bytes on the wire for one fetch of a 10,000-flag document, identity and gzip")
    func wireBytes() async throws {
        try await withTestServer { server in
            let document = FixtureDocument.bytes(flagCount: 10_000)
            server.setDocument(document)
            let fetcher = try makeFetcher(server)
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched?.document == document)
            let identity = server.traffic
            server.resetLog()
            server.answerGzip()
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched?.document == document)
            let gzip = server.traffic
            let share = Double(gzip.bytesSent) / Double(identity.bytesSent) * 100
            print(
                """
                MEASURE 10,000-flag fixture document: \(document.count) B
                MEASURE one fetch, identity: \(identity.bytesReceived) B request + \(identity.bytesSent) B response
                MEASURE one fetch, gzip: \(gzip.bytesReceived) B request + \(gzip.bytesSent) B response \
                (\(String(format: "%.1f", share)) % of identity)
                """
            )
            #expect(gzip.bytesSent * 10 < identity.bytesSent)
        }
    }

    @Test("with gzip off on the server, the same requests get identity bodies as before")
    func identityStillWorks() async throws {
        try await withTestServer { server in
            let document = FixtureDocument.bytes(flagCount: 50)
            server.setDocument(document)
            let fetcher = try makeFetcher(server)
            #expect(try await fetcher.fetch(ifNoneMatch: nil).fetched?.document == document)
            #expect(server.traffic.bytesSent > document.count)
        }
    }

    @Test("a stream over gzip delivers each message as it is sent, not with the next one")
    func stream() async throws {
        try await withTestServer { server in
            server.answerGzip()
            server.setDocument(FixtureDocument.bytes(flagCount: 300, revision: 0))
            let fetcher = try makeFetcher(server)
            var revisions: [Int] = []
            do {
                let stream = try await fetcher.openStream(etag: nil)
                #expect(stream.head.status == 200)
                #expect(stream.head.value(for: "Content-Encoding") == "gzip")
                var splitter = NDJSONSplitter()
                for try await chunk in stream.body {
                    for line in try splitter.append(chunk) {
                        guard case .result(let document, _) = StreamMessage(line: line) else {
                            Issue.record("unexpected line: \(String(decoding: line.prefix(200), as: UTF8.self))")
                            continue
                        }
                        #expect(document == FixtureDocument.bytes(flagCount: 300, revision: revisions.count))
                        revisions.append(revisions.count)
                        // The next document exists only once this one arrived whole: had the decoder held back any
                        // of it until more bytes came, the stream would stall here and the time limit end the test.
                        if revisions.count < 5 {
                            server.setDocument(FixtureDocument.bytes(flagCount: 300, revision: revisions.count))
                        }
                    }
                    if revisions.count >= 5 { break }
                }
            }
            // The stream is released: its request is cancelled and the server sees it end.
            #expect(revisions == [0, 1, 2, 3, 4])
            #expect(await server.wait(timeout: .seconds(20)) { $0.openStreamCount == 0 })
        }
    }

    @Test("small stream messages split across chunks still decode, one line at a time")
    func scriptedStream() async throws {
        try await withTestServer { server in
            server.answerGzip()
            let document = FixtureDocument.json(flagCount: 2)
            let line = "{\"result\":\(document)}\n"
            let middle = line.index(line.startIndex, offsetBy: 40)
            server.enqueue(
                .stream([.headers, .text(String(line[..<middle])), .text(String(line[middle...])), .hold]),
                on: .stream
            )
            server.setDocument(json: document)
            let fetcher = try makeFetcher(server)
            let stream = try await fetcher.openStream(etag: nil)
            var splitter = NDJSONSplitter()
            var lines: [[UInt8]] = []
            for try await chunk in stream.body {
                lines += try splitter.append(chunk)
                if !lines.isEmpty { break }
            }
            #expect(lines == [Array(line.utf8.dropLast())])
        }
    }

    // The default transport on Apple platforms is URLSession, whose decoder reports these its own way.
    #if canImport(FoundationNetworking)
    @Test("a corrupt gzip body is a clear error, not retried as if it were a document")
    func corruptBody() async throws {
        try await withTestServer { server in
            var body = Gzip.compress(FixtureDocument.bytes(flagCount: 50))
            body[body.count / 2] ^= 0x5A
            body[body.count / 2 + 1] ^= 0xA5
            server.setDocument(FixtureDocument.bytes(flagCount: 50))
            server.enqueue(
                .respond(
                    status: 200,
                    headers: [
                        .init("Content-Type", "application/json"), .init("Content-Encoding", "gzip"),
                        .init("Etag", "bad"),
                    ],
                    body: body
                )
            )
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
            #expect(error.message.contains("does not decode"), "\(error)")
            #expect(error.message.contains("nothing from it was used"))
        }
    }

    @Test("a gzip bomb fails with a clear error once it passes the ratio, without being decoded whole")
    func bomb() async throws {
        try await withTestServer { server in
            // 64 MiB of spaces inside a JSON document: about 64 KiB compressed, so about 1,000 times.
            var document = Array("{\"namespace\":{\"key\":\"default\"},\"flags\":[],\"x\":\"".utf8)
            document += [UInt8](repeating: 0x20, count: 64 << 20)
            document += Array("\"}".utf8)
            let body = Gzip.compress(document, level: 9)
            document = []
            server.enqueue(
                .respond(
                    status: 200,
                    headers: [.init("Content-Type", "application/json"), .init("Content-Encoding", "gzip")],
                    body: body
                )
            )
            let fetcher = try makeFetcher(server)
            let error = try #require(await syncError { try await fetcher.fetch(ifNoneMatch: nil) })
            #expect(error.kind == .badDocument)
            #expect(error.message.contains("decompression bomb"), "\(error)")
        }
    }
    #endif
}
