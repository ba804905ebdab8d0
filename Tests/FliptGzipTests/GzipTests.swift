import FliptGzip
import Foundation
import Testing

@Suite("gzip")
struct GzipTests {
    static let document = Array(
        (0..<2_000).map { "{\"key\":\"flag\($0)\",\"enabled\":\($0 % 2 == 0),\"type\":\"BOOLEAN_FLAG_TYPE\"}" }
            .joined(separator: ",").utf8
    )

    @Test("one-shot: compresses and decodes back to the same bytes")
    func roundTrip() throws {
        let compressed = Gzip.compress(Self.document)
        #expect(compressed.count < Self.document.count / 5)
        #expect(compressed.prefix(2) == [0x1F, 0x8B])
        #expect(try Gzip.decompress(compressed) == Self.document)
        #expect(try Gzip.decompress(Gzip.compress([UInt8]())) == [])
    }

    @Test("an array, Data, a slice and a non-contiguous collection of the same bytes compress to the same member")
    func everyKindOfCollection() throws {
        let expected = Gzip.compress(Self.document, level: 1)
        let padded = [0, 1, 2] + Self.document + [3]
        #expect(Gzip.compress(Data(Self.document), level: 1) == expected)
        #expect(Gzip.compress(padded[3..<padded.count - 1], level: 1) == expected)
        #expect(Gzip.compress(Self.document.lazy.map { $0 }, level: 1) == expected)
        #expect(try Gzip.decompress(expected) == Self.document)
    }

    @Test("streaming: each sync-flushed message decodes whole as soon as its bytes are given")
    func syncFlushPerMessage() throws {
        let encoder = GzipEncoder()
        let decoder = GzipDecoder()
        for index in 0..<20 {
            let message = Array("{\"result\":{\"revision\":\(index),\"flags\":[\(index)]}}\n".utf8)
            #expect(try decoder.decode(encoder.compress(message)) == message)
        }
        #expect(try decoder.decode(encoder.finish()) == [])
        try decoder.finish()
        #expect(decoder.isFinished)
    }

    @Test("streaming: bytes given one at a time still decode to the input")
    func byteByByte() throws {
        let compressed = Gzip.compress(Self.document)
        let decoder = GzipDecoder()
        var output: [UInt8] = []
        for byte in compressed { output += try decoder.decode([byte]) }
        try decoder.finish()
        #expect(output == Self.document)
    }

    @Test("the system gzip tool reads what the encoder writes, and the decoder reads what gzip writes")
    func interoperatesWithGzipTool() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gzip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ours = directory.appendingPathComponent("ours.gz")
        let encoder = GzipEncoder()
        let streamed = encoder.compress(Self.document.prefix(1_000)) + encoder.compress(Self.document.dropFirst(1_000))
        try Data(streamed + encoder.finish()).write(to: ours)
        #expect(try runGzip(["-dc", ours.path]) == Self.document)

        let plain = directory.appendingPathComponent("plain")
        try Data(Self.document).write(to: plain)
        let theirs = try runGzip(["-c", plain.path])
        #expect(try Gzip.decompress(theirs) == Self.document)
    }

    @Test("damaged data is a corrupt error")
    func corrupt() throws {
        var compressed = Gzip.compress(Self.document)
        compressed[compressed.count / 2] ^= 0xFF
        #expect(throws: GzipError.self) { try Gzip.decompress(compressed) }
        #expect(gzipError { try Gzip.decompress(Array("not gzip at all".utf8)) }?.kind == .corrupt)
        // A damaged CRC-32 in the trailer.
        var badTrailer = Gzip.compress(Self.document)
        badTrailer[badTrailer.count - 6] ^= 0x01
        #expect(gzipError { try Gzip.decompress(badTrailer) }?.kind == .corrupt)
    }

    @Test("cut-short data is a truncated error; bytes after the end are a trailing-data error")
    func truncatedAndTrailing() throws {
        let compressed = Gzip.compress(Self.document)
        #expect(gzipError { try Gzip.decompress(compressed.dropLast(3)) }?.kind == .truncated)
        #expect(gzipError { try Gzip.decompress(compressed + [0]) }?.kind == .trailingData)
    }

    @Test("a gzip bomb stops at the size limit")
    func sizeLimit() throws {
        // 64 MiB of zeros compresses to about 64 KiB.
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 64 << 20), level: 9)
        #expect(bomb.count < 100_000)
        let error = gzipError { try Gzip.decompress(bomb, maximumSize: 1 << 20) }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains("1048576") == true)
    }

    private func gzipError(_ body: () throws -> [UInt8]) -> GzipError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? GzipError
        }
    }

    private func runGzip(_ arguments: [String]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(output)
    }
}
