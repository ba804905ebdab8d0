import FliptGzip
import Foundation
import Testing

@Suite("deflate segments")
struct DeflateSegmentTests {
    /// Messages like a stream's, of varied sizes (one repeats, so that compression has something to find).
    static let messages: [[UInt8]] = [
        Array("{\"result\":{\"flags\":[]}}\n".utf8),
        GzipTests.document,
        Array("{\"result\":{\"flags\":[\"é\"]}}\n".utf8),
        [],
        GzipTests.document,
    ]

    @Test("the CRC-32 and length match zlib's for the whole, and combine piece by piece")
    func checksums() {
        let whole = Self.messages.flatMap { $0 }
        var combined = GzipChecksum()
        for message in Self.messages { combined.append(GzipChecksum(of: message)) }
        #expect(combined == GzipChecksum(of: whole))
        #expect(combined.length == UInt64(whole.count))
        // A known value: the CRC-32 of "123456789" is 0xCBF43926.
        #expect(GzipChecksum(of: Array("123456789".utf8)).crc32 == 0xCBF4_3926)
        #expect(GzipChecksum().crc32 == 0)
    }

    @Test("segments compressed apart, sent one after another in one member, decode message by message")
    func segmentsInOneMember() throws {
        let segments = Self.messages.map { DeflateSegment(compressing: $0) }
        // Every segment ends on a byte boundary with the full flush's empty stored block.
        for segment in segments { #expect(Array(segment.bytes.suffix(4)) == [0x00, 0x00, 0xFF, 0xFF]) }
        #expect(segments[1].bytes.count < GzipTests.document.count / 5)
        // The same input gives the same bytes: one compressed copy can serve every connection.
        #expect(DeflateSegment(compressing: GzipTests.document) == segments[1])

        let decoder = GzipDecoder()
        #expect(try decoder.decode(Gzip.header).isEmpty)
        var checksum = GzipChecksum()
        for (segment, message) in zip(segments, Self.messages) {
            // Each message comes out whole as soon as its segment is in.
            #expect(try decoder.decode(segment.bytes) == message)
            checksum.append(segment.checksum)
        }
        #expect(try decoder.decode(Gzip.ending(checksum)).isEmpty)
        try decoder.finish()
    }

    @Test("a member made of segments is read by the system gzip tool, and a wrong trailer is caught")
    func systemGzipReadsIt() throws {
        let concatenated = DeflateSegment(concatenating: Self.messages.map { DeflateSegment(compressing: $0) })
        let member = Gzip.member(concatenated)
        #expect(try Gzip.decompress(member) == Self.messages.flatMap { $0 })
        #expect(try gunzip(member) == Self.messages.flatMap { $0 })

        var damaged = member
        damaged[damaged.count - 8] ^= 0x01
        #expect(throws: GzipError.self) { try Gzip.decompress(damaged) }
    }

    @Test("an empty input is a valid segment, and a member of it decodes to nothing")
    func empty() throws {
        let segment = DeflateSegment(compressing: [UInt8]())
        #expect(segment.checksum == GzipChecksum())
        #expect(try Gzip.decompress(Gzip.member(segment)).isEmpty)
        #expect(try gunzip(Gzip.member(segment)).isEmpty)
    }

    private func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("segments-\(UUID().uuidString).gz")
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(output)
    }
}
