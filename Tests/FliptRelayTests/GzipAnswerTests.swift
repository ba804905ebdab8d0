import FliptGzip
import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// gzip answers: snapshots and streams for clients that ask for gzip, ETags per encoding, real decoders.
@Suite("Relay gzip answers", .serialized, .timeLimit(.minutes(2)))
struct GzipAnswerTests {
    static let v1 = "/internal/v1/evaluation/snapshot/namespace/default"
    static let stream = "/client/v2/environments/default/namespaces/default/stream"

    /// A document large enough to be worth compressing, small enough to be compressed on the event loop.
    static func served(flags: Int = 80, revision: Int = 0, etag: String? = nil) -> ServedSnapshot {
        RelayFixtures.served(flagCount: flags, revision: revision, etag: etag)
    }

    static func message(_ served: ServedSnapshot) -> [UInt8] {
        Array("{\"result\":".utf8) + served.document + Array("}\n".utf8)
    }

    /// Reads chunks of a gzip stream until one whole line is decoded (nothing may be held back for a later
    /// message: the read would time out), and returns that line.
    static func nextMessage(
        _ client: RawHTTPClient,
        _ decoder: GzipDecoder,
        _ received: inout [UInt8]
    ) throws -> [UInt8] {
        while !received.contains(10) { received += try decoder.decode(client.readChunk()) }
        let line = Array(received[...received.firstIndex(of: 10)!])
        received.removeFirst(line.count)
        return line
    }

    @Test("a client that asks for gzip gets the document compressed, under its own ETag; others get it as before")
    func snapshot() async throws {
        let served = Self.served(etag: "\"rev-1\"")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.v1, headers: ["Accept-Encoding: gzip"])
            let gzip = try client.readResponse()
            #expect(gzip.status == 200)
            #expect(gzip.header("Content-Encoding") == "gzip")
            #expect(gzip.header("Etag") == "\"rev-1-gzip\"")
            #expect(gzip.header("Vary") == "X-Flipt-Environment, Accept-Encoding")
            #expect(gzip.header("Cache-Control") == "no-cache")
            #expect(try Gzip.decompress(gzip.body) == served.document)
            #expect(gzip.body.count * 5 < served.document.count)

            try client.get(Self.v1)
            let identity = try client.readResponse()
            #expect(identity.status == 200)
            #expect(identity.header("Content-Encoding") == nil)
            #expect(identity.header("Etag") == "\"rev-1\"")
            #expect(identity.body == served.document)

            // HEAD tells the size of what GET would send.
            try client.send("HEAD \(Self.v1) HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
            let head = try client.readResponse(isHead: true)
            #expect(head.header("Content-Encoding") == "gzip")
            #expect(head.header("Content-Length") == String(gzip.body.count))
        }
    }

    @Test(
        "Accept-Encoding: q-values, identity and * are honoured",
        arguments: [
            ("gzip", true), ("GZIP", true), ("x-gzip", true), ("gzip;q=0", false), ("gzip; q=0.0", false),
            ("identity", false), ("*", true), ("*;q=0", false), ("deflate, gzip;q=0.5", true), ("br", false),
            ("identity;q=1, gzip;q=0.5", false), ("gzip;q=0.8, identity;q=0.5", true), ("*;q=0.1, gzip;q=0", false),
            ("identity;q=0, *", true), ("", false),
        ]
    )
    func acceptEncoding(header: String, expectsGzip: Bool) async throws {
        let served = Self.served()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.v1, headers: ["Accept-Encoding: \(header)"])
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect((response.header("Content-Encoding") == "gzip") == expectsGzip)
            #expect(response.header("Etag") == (expectsGzip ? served.etag + "-gzip" : served.etag))
            #expect(try (expectsGzip ? Gzip.decompress(response.body) : response.body) == served.document)
        }
    }

    @Test("If-None-Match with either ETag gets 304 naming the one the client holds; anything else gets 200")
    func revalidation() async throws {
        let served = Self.served(etag: "abc")
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            for encoding in ["gzip", "identity"] {
                // As the client sent it, or weakened and quoted as a CDN or nginx's gzip module sends it.
                for (sent, held) in [
                    ("abc", "abc"), ("abc-gzip", "abc-gzip"), ("W/\"abc\"", "abc"), ("W/\"abc-gzip\"", "abc-gzip"),
                ] {
                    try client.get(Self.v1, headers: ["Accept-Encoding: \(encoding)", "If-None-Match: \(sent)"])
                    let response = try client.readResponse()
                    #expect(response.status == 304, "\(encoding), \(sent)")
                    #expect(response.header("Etag") == held)
                    #expect(response.header("Content-Encoding") == nil)
                    #expect(response.header("Vary") == "X-Flipt-Environment, Accept-Encoding")
                }
                for other in ["abd", "abc-gzip-gzip", "\"abd\"", "abc-br", "W/\"abc-br\""] {
                    try client.get(Self.v1, headers: ["Accept-Encoding: \(encoding)", "If-None-Match: \(other)"])
                    #expect(try client.readResponse().status == 200, "\(encoding), \(other)")
                }
            }
        }
    }

    @Test("a large document is compressed off the event loop once; meanwhile clients get it uncompressed")
    func largeDocument() async throws {
        let served = Self.served(flags: 2_000)
        #expect(served.documentSize > GzipForms.inlineLimit)
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served])) { _, port in
            let client = try RawHTTPClient(port: port)
            // Each answer is whole in one encoding or the other, with the matching ETag.
            var sawGzip = false
            for _ in 0..<200 where !sawGzip {
                try client.get(Self.v1, headers: ["Accept-Encoding: gzip"])
                let response = try client.readResponse()
                if response.header("Content-Encoding") == "gzip" {
                    sawGzip = true
                    #expect(response.header("Etag") == served.gzipETag)
                    #expect(try Gzip.decompress(response.body) == served.document)
                } else {
                    #expect(response.header("Etag") == served.etag)
                    #expect(response.body == served.document)
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(sawGzip)
        }
        // Prepared beforehand (the cache watcher does it on its thread), the first answer is gzip.
        let prepared = Self.served(flags: 2_000, revision: 1)
        prepared.prepareGzip()
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [prepared])) { _, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.v1, headers: ["Accept-Encoding: gzip"])
            #expect(try client.readResponse().header("Content-Encoding") == "gzip")
        }
    }

    @Test("a gzip stream: one member, each message decodes on arrival, the end has a valid trailer")
    func stream() async throws {
        let first = Self.served(revision: 0)
        let catalog = SnapshotCatalog(snapshots: [first])
        try await RelayFixtures.withServer(catalog: catalog) { server, port in
            let client = try RawHTTPClient(port: port)
            try client.get(Self.stream, headers: ["Accept-Encoding: gzip"])
            let head = try client.readHead()
            #expect(head.status == 200)
            #expect(head.header("Content-Encoding") == "gzip")
            #expect(head.header("Transfer-Encoding") == "chunked")
            let decoder = GzipDecoder()
            var received: [UInt8] = []
            func nextMessage() throws -> [UInt8] {
                try Self.nextMessage(client, decoder, &received)
            }
            #expect(try nextMessage() == Self.message(first))
            // A large document too (compressed off the event loop before it is sent) and a small one again.
            for revision in [1, 2] {
                let next = Self.served(flags: revision == 1 ? 2_000 : 20, revision: revision)
                catalog.replace(with: [next])
                #expect(try nextMessage() == Self.message(next))
            }
            #expect(received.isEmpty)
            await server.shutdown()
            while !decoder.isFinished {
                let chunk = try client.readChunk()
                if chunk.isEmpty { break }
                #expect(try decoder.decode(chunk).isEmpty)
            }
            // The member's trailer (CRC-32 and length of the three messages) was checked by zlib.
            try decoder.finish()
        }
    }

    @Test("an identity stream and a gzip stream side by side get the same messages")
    func mixedStreams() async throws {
        let first = Self.served(revision: 0)
        let catalog = SnapshotCatalog(snapshots: [first])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let plain = try RawHTTPClient(port: port)
            try plain.get(Self.stream, headers: ["Accept-Encoding: identity"])
            #expect(try plain.readHead().header("Content-Encoding") == nil)
            #expect(try plain.readChunk() == Self.message(first))
            let compressed = try RawHTTPClient(port: port)
            try compressed.get(Self.stream, headers: ["Accept-Encoding: gzip;q=1.0"])
            #expect(try compressed.readHead().header("Content-Encoding") == "gzip")
            let decoder = GzipDecoder()
            var received: [UInt8] = []
            #expect(try Self.nextMessage(compressed, decoder, &received) == Self.message(first))
            let next = Self.served(revision: 1)
            catalog.replace(with: [next])
            #expect(try plain.readChunk() == Self.message(next))
            #expect(try Self.nextMessage(compressed, decoder, &received) == Self.message(next))
            #expect(received.isEmpty)
        }
    }

    @Test("real decoders: curl --compressed, and Python's zlib reading a stream message by message")
    func otherDecoders() async throws {
        let first = Self.served(revision: 0)
        let catalog = SnapshotCatalog(snapshots: [first])
        try await RelayFixtures.withServer(catalog: catalog) { server, port in
            let curl = try ToolProcess(
                program: "curl",
                ["-sS", "--compressed", "-D", "/dev/stderr", "http://127.0.0.1:\(port)\(Self.v1)"]
            )
            #expect(await curl.waitForExit(timeout: .seconds(20)) == 0)
            // The output pipe may still be draining when the process has ended.
            #expect(await eventually { curl.stdout.utf8.count >= first.documentSize })
            #expect(Array(curl.stdout.utf8) == first.document)
            #expect(curl.stderr.lowercased().contains("content-encoding: gzip"))

            // Python reads the chunked body with http.client, inflates with zlib as bytes arrive, and prints
            // each message as soon as it is decoded; the test answers each one with the next change.
            let script = """
                import http.client, sys, zlib
                connection = http.client.HTTPConnection("127.0.0.1", \(port), timeout=20)
                connection.request("GET", "\(Self.stream)", headers={"Accept-Encoding": "gzip"})
                response = connection.getresponse()
                print("encoding", response.getheader("Content-Encoding"), flush=True)
                decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = b""
                while True:
                    data = response.read1(65536)
                    if not data:
                        break
                    pending += decoder.decompress(data)
                    while b"\\n" in pending:
                        line, pending = pending.split(b"\\n", 1)
                        print("message", len(line) + 1, zlib.crc32(line + b"\\n"), flush=True)
                print("end", decoder.eof, len(decoder.unused_data), len(pending), flush=True)
                """
            let python = try ToolProcess(program: "python3", ["-c", script])
            #expect(try await python.waitForStandardOutput(matching: "encoding (\\S+)") == "gzip")
            var sent = [first]
            for revision in 1...3 {
                let expected = Self.message(sent.last!)
                let line = "message \(expected.count) \(GzipChecksum(of: expected).crc32)"
                _ = try await python.waitForStandardOutput(matching: NSRegularExpression.escapedPattern(for: line))
                let next = Self.served(flags: 80 + revision, revision: revision)
                catalog.replace(with: [next])
                sent.append(next)
            }
            let last = Self.message(sent.last!)
            let line = "message \(last.count) \(GzipChecksum(of: last).crc32)"
            _ = try await python.waitForStandardOutput(matching: NSRegularExpression.escapedPattern(for: line))
            await server.shutdown()
            // The member ended properly: zlib saw its end (and checked the trailer), nothing after it.
            #expect(try await python.waitForStandardOutput(matching: "end (\\S+ \\d+ \\d+)") == "True 0 0")
            #expect(await python.waitForExit() == 0)
        }
    }

    @Test("MEASURE the bytes a 10,000-flag change costs a device, identity and gzip, for a poll and a stream")
    func changeCost() async throws {
        let before = Self.served(flags: 10_000, revision: 0)
        let after = Self.served(flags: 10_000, revision: 1)
        after.prepareGzip()
        let catalog = SnapshotCatalog(snapshots: [before])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let plainStream = try RawHTTPClient(port: port)
            try plainStream.get(Self.stream)
            _ = try plainStream.readHead()
            _ = try plainStream.readChunk()
            let gzipStream = try RawHTTPClient(port: port)
            try gzipStream.get(Self.stream, headers: ["Accept-Encoding: gzip"])
            _ = try gzipStream.readHead()
            let decoder = GzipDecoder()
            var received: [UInt8] = []
            _ = try Self.nextMessage(gzipStream, decoder, &received)

            catalog.replace(with: [after])
            let plainMessage = try plainStream.readChunk()
            #expect(plainMessage == Self.message(after))
            let gzipMessage = try gzipStream.readChunk()
            #expect(try decoder.decode(gzipMessage) == Self.message(after))

            // A poll after the change, with the ETag of the snapshot before it: head and body as sent.
            var polls: [String: (head: Int, body: Int)] = [:]
            for (name, headers) in [
                ("identity", ["If-None-Match: \(before.etag)"]),
                ("gzip", ["If-None-Match: \(before.gzipETag)", "Accept-Encoding: gzip"]),
            ] {
                let client = try RawHTTPClient(port: port)
                try client.get(Self.v1, headers: headers)
                let response = try client.readResponse()
                #expect(response.status == 200)
                // The status line, each field as "name: value\r\n", and the blank line.
                var head = "HTTP/1.1 200 OK\r\n\r\n".utf8.count
                for field in response.headers { head += field.name.utf8.count + field.value.utf8.count + 4 }
                polls[name] = (head, response.body.count)
            }
            let identity = try #require(polls["identity"])
            let gzip = try #require(polls["gzip"])
            func share(_ part: Int, _ whole: Int) -> String {
                String(format: "%.1f %%", Double(part) * 100 / Double(whole))
            }
            print(
                """
                MEASURE 10,000-flag fixture document: \(after.documentSize) B; stream message \(plainMessage.count) B
                MEASURE poll after a change, identity: \(identity.head) B head + \(identity.body) B body
                MEASURE poll after a change, gzip: \(gzip.head) B head + \(gzip.body) B body \
                (\(share(gzip.head + gzip.body, identity.head + identity.body)) of identity)
                MEASURE stream message, identity: \(plainMessage.count) B (+ chunk framing)
                MEASURE stream message, gzip: \(gzipMessage.count) B (+ chunk framing) \
                (\(share(gzipMessage.count, plainMessage.count)) of identity)
                """
            )
            #expect(gzip.body * 10 < identity.body)
            #expect(gzipMessage.count * 10 < plainMessage.count)
        }
    }
}
