import Flipt
import FliptTestSupport
import Foundation
import Testing

@Suite("JSON-lines evaluation exporter", .timeLimit(.minutes(1)))
struct EvaluationExporterTests {
    /// The lines of the file, each decoded as JSON, and the records among them.
    private static func read(_ path: String) throws -> (lines: [[String: Any]], records: [EvaluationRecord]) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let rawLines = text.split(separator: "\n").map { Data($0.utf8) }
        let lines = try rawLines.map { try #require(JSONSerialization.jsonObject(with: $0) as? [String: Any]) }
        let records = try rawLines.filter { !String(decoding: $0, as: UTF8.self).hasPrefix("{\"dropped\"") }
            .map { try JSONDecoder().decode(EvaluationRecord.self, from: $0) }
        return (lines, records)
    }

    @Test("every evaluation of a client becomes one line: value, reason, error, default and provenance")
    func records() async throws {
        try await withTemporaryDirectory { directory in
            try await withTestServer { server in
                server.setDocument(FixtureDocument.bytes(revision: 1))
                let path = directory.path + "/evaluations.jsonl"
                let exporter = try JSONLinesEvaluationExporter(path: path, includesContext: true)
                var options = testOptions(url: server.baseURL, cache: nil)
                options.hooks = [exporter]
                let client = try FliptClient(options: options)
                try await client.waitUntilReady(timeout: .seconds(20))

                let variant = try client.evaluateVariant(
                    flagKey: "flag0",
                    entityID: "user-1",
                    context: ["fizz": "buzz"]
                )
                let boolean = try client.evaluateBoolean(flagKey: "flag1", entityID: "user-2")
                #expect(client.booleanValue(flagKey: "missing", entityID: "user-3", default: true))
                #expect(throws: FliptError.self) { try client.evaluateVariant(flagKey: "flag1", entityID: "user-4") }
                await client.shutdown()
                exporter.close()

                let (lines, records) = try Self.read(path)
                #expect(lines.count == 4)
                #expect(records.map(\.flag) == ["flag0", "flag1", "missing", "flag1"])
                #expect(records.map(\.entity) == ["user-1", "user-2", "user-3", "user-4"])
                #expect(records[0].type == "variant" && records[0].variant == variant.variantKey)
                #expect(records[0].reason == "match" && records[0].errorCode == nil && !records[0].isDefault)
                #expect(records[0].context == ["fizz": "buzz"])
                #expect(records[0].time == variant.timestamp)
                #expect(records[1].enabled == boolean.isEnabled)
                #expect(records[1].reason == (boolean.reason == .match ? "match" : "default"))
                #expect(records[2].errorCode == "flag_not_found" && records[2].enabled == true && records[2].isDefault)
                #expect(records[2].reason == nil && records[2].errorMessage?.contains("missing") == true)
                #expect(records[3].errorCode == "wrong_flag_type" && !records[3].isDefault && records[3].variant == nil)
                for record in records {
                    #expect(record.namespace == "default")
                    #expect(record.source == "network")
                    #expect(record.etag == server.digest())
                    #expect((record.ageSeconds ?? -1) >= 0)
                }
                #expect(exporter.writtenCount == 4 && exporter.droppedCount == 0)
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o600)
            }
        }
    }

    @Test("records wait in the buffer, off the evaluating thread, and close() writes them all")
    func closeWritesEverything() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.path + "/evaluations.jsonl"
            // An hour between writes and room for 10,000: nothing is written before close().
            let exporter = try JSONLinesEvaluationExporter(path: path, flushInterval: .seconds(3_600))
            var options = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: nil)
            options.snapshot = FixtureDocument.json(flagCount: 4, revision: 1)
            options.hooks = [exporter]
            let client = try FliptClient(options: options)
            for index in 0..<1_000 {
                _ = client.booleanValue(flagKey: "flag\(index % 4)", entityID: "user-\(index)", default: false)
            }
            #expect(exporter.writtenCount == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
            await client.shutdown()
            exporter.close()
            let (_, records) = try Self.read(path)
            #expect(records.count == 1_000)
            #expect(records.map(\.entity) == (0..<1_000).map { "user-\($0)" })
            // Variant flags asked as booleans give the default; boolean flags their value.
            #expect(records.filter(\.isDefault).count == 500)
            #expect(records.allSatisfy { $0.source == "seed" && $0.etag == nil && $0.context == nil })
            #expect(exporter.droppedCount == 0)
            // Later records are dropped and counted, not written.
            _ = try client.evaluateBoolean(flagKey: "flag1", entityID: "late")
            #expect(exporter.droppedCount == 1)
        }
    }

    @Test("a full buffer drops records and counts them, in droppedCount and in a line of the file")
    func dropsWhenFull() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.path + "/evaluations.jsonl"
            let exporter = try JSONLinesEvaluationExporter(path: path, capacity: 4, flushInterval: .seconds(3_600))
            var options = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: nil)
            options.snapshot = FixtureDocument.json(flagCount: 2, revision: 1)
            options.hooks = [exporter]
            let client = try FliptClient(options: options)
            let total = 2_000
            for index in 0..<total {
                _ = try client.evaluateBoolean(flagKey: "flag1", entityID: "user-\(index)")
            }
            exporter.flush()
            let dropped = exporter.droppedCount
            let written = exporter.writtenCount
            // Each record is either written or dropped and counted; 2,000 evaluations outrun a 4-record buffer.
            #expect(dropped + written == total)
            #expect(dropped > 0)
            let (lines, records) = try Self.read(path)
            #expect(records.count == written)
            let markers = lines.compactMap { $0["dropped"] as? Int }
            #expect(markers.reduce(0, +) == dropped)
            await client.shutdown()
            exporter.close()
        }
    }

    @Test("a file that cannot be opened is a configuration error that names it")
    func unusablePath() throws {
        let error = #expect(throws: FliptError.self) {
            _ = try JSONLinesEvaluationExporter(path: "/nonexistent-directory-flipt/evaluations.jsonl")
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("/nonexistent-directory-flipt/evaluations.jsonl") == true)
    }
}
