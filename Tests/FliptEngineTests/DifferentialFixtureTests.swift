import FliptEngine
import Foundation
import Testing

/// Replays the answers recorded from the official Flipt engine (Tests/Differential/Fixtures) through this engine.
///
/// Each fixture is `NAME.document.json` (a snapshot document), `NAME.requests.jsonl` (request lines) and
/// `NAME.expected.jsonl` (the official engine's envelope for each line), plus `NAME.namespace` when the
/// configured namespace is not `default`. `Tests/Differential/make-fixtures.sh` regenerates them.
/// Answers are compared as compare.py does: `timestamp` and `request_duration_millis` are ignored, and
/// `segment_keys` and the list-flags array are compared as multisets (the official engine uses hash-map order).
@Suite("Differential fixtures recorded from the official engine")
struct DifferentialFixtureTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Differential/Fixtures")

    /// Fixture names relative to `directory`, e.g. `seed-11`, `edge`, `schema/flag-type-null`.
    static let fixtureNames: [String] =
        names(in: "", suffix: ".document.json") + names(in: "schema", suffix: ".document.json")

    /// Documents the official engine rejects (it fails every call with `error parsing json`).
    static let rejectedNames: [String] = names(in: "rejected", suffix: ".json")

    static func names(in subdirectory: String, suffix: String) -> [String] {
        let folder = subdirectory.isEmpty ? directory : directory.appendingPathComponent(subdirectory)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(suffix) }
            .map { String($0.dropLast(suffix.count)) }
            .map { subdirectory.isEmpty ? $0 : "\(subdirectory)/\($0)" }
            .sorted()
    }

    @Test("The fixture set is present")
    func fixtureSetIsPresent() {
        #expect(Self.fixtureNames.contains("edge"), "no edge fixture in \(Self.directory.path)")
        #expect(Self.fixtureNames.filter { $0.hasPrefix("seed-") }.count >= 8, "random fixtures missing")
        #expect(Self.fixtureNames.filter { $0.hasPrefix("schema/") }.count >= 10, "schema fixtures missing")
        #expect(Self.rejectedNames.count >= 10, "rejected documents missing")
    }

    @Test("Every answer equals the official engine's", arguments: fixtureNames)
    func answersMatchOfficialEngine(fixture: String) throws {
        let base = Self.directory.appendingPathComponent(fixture)
        let document = try Data(contentsOf: URL(fileURLWithPath: base.path + ".document.json"))
        let requests = try lines(of: base.path + ".requests.jsonl")
        let expected = try lines(of: base.path + ".expected.jsonl")
        let namespacePath = base.path + ".namespace"
        let namespace =
            FileManager.default.fileExists(atPath: namespacePath)
            ? try String(contentsOfFile: namespacePath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            : "default"
        try #require(!requests.isEmpty, "\(fixture): no request lines")
        try #require(
            requests.count == expected.count,
            "\(fixture): \(requests.count) requests, \(expected.count) answers"
        )

        let snapshot = try Snapshot(document: Array(document))
        let evaluator = JSONLinesEvaluator(snapshot: snapshot, namespace: namespace)
        var failures = 0
        for (index, request) in requests.enumerated() {
            let actual = evaluator.answer(line: Array(request.utf8))
            let differences = AnswerComparison.differences(request: request, expected: expected[index], actual: actual)
            guard !differences.isEmpty else { continue }
            failures += 1
            if failures <= 20 {
                Issue.record(
                    """
                    \(fixture) line \(index + 1) differs from the official engine
                      request:  \(request)
                      expected: \(expected[index])
                      actual:   \(actual)
                      \(differences.joined(separator: "\n  "))
                    """
                )
            }
        }
        #expect(failures == 0, "\(fixture): \(failures) of \(requests.count) answers differ")
    }

    @Test("Documents the official engine rejects are rejected", arguments: rejectedNames)
    func rejectedDocumentIsRejected(name: String) throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("\(name).json"))
        #expect(throws: DocumentError.self, "\(name) was accepted; the official engine rejects it") {
            _ = try Snapshot(document: Array(data))
        }
    }

    private func lines(of path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: true)
            .map(String.init)
    }
}

/// A parsed JSON value, with booleans kept apart from numbers.
///
/// Strings compare by their UTF-8 bytes: Swift's `==` treats "\u{E9}" and "e\u{301}" as equal, the engines do not.
private indirect enum AnswerValue: Equatable {
    case object([String: AnswerValue])
    case array([AnswerValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(_ any: Any) {
        switch any {
        case let dictionary as [String: Any]:
            self = .object(dictionary.mapValues(AnswerValue.init))
        case let array as [Any]:
            self = .array(array.map(AnswerValue.init))
        case let string as String:
            self = .string(string)
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumber with the `char` type code.
            self = String(cString: number.objCType) == "c" ? .bool(number.boolValue) : .number(number.doubleValue)
        default:
            self = .null
        }
    }

    static func == (lhs: AnswerValue, rhs: AnswerValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let l), .object(let r)):
            return l.count == r.count && l.allSatisfy { key, value in r[key].map { $0 == value } ?? false }
        case (.array(let l), .array(let r)):
            return l.count == r.count && zip(l, r).allSatisfy { $0 == $1 }
        case (.string(let l), .string(let r)):
            return l.utf8.elementsEqual(r.utf8)
        case (.number(let l), .number(let r)):
            return l == r
        case (.bool(let l), .bool(let r)):
            return l == r
        case (.null, .null):
            return true
        default:
            return false
        }
    }

    /// Orders values by the bytes of their canonical form (never by Unicode canonical equivalence).
    static func precedes(_ lhs: AnswerValue, _ rhs: AnswerValue) -> Bool {
        lhs.canonical.utf8.lexicographicallyPrecedes(rhs.canonical.utf8)
    }

    /// A stable text form (sorted keys), used to sort multisets and to print values.
    var canonical: String {
        switch self {
        case .object(let members):
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            let body = keys.map { "\(AnswerValue.string($0).canonical):\(members[$0]!.canonical)" }
            return "{" + body.joined(separator: ",") + "}"
        case .array(let items):
            return "[" + items.map(\.canonical).joined(separator: ",") + "]"
        case .string(let text):
            let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
            return data.flatMap { String(data: $0, encoding: .utf8) }.map { String($0.dropFirst().dropLast()) } ?? text
        case .number(let value):
            return "\(value)"
        case .bool(let value):
            return "\(value)"
        case .null:
            return "null"
        }
    }
}

/// The comparison rules of Tests/Differential/compare.py.
private enum AnswerComparison {
    static let ignoredKeys: Set<String> = ["timestamp", "request_duration_millis"]

    static func differences(request: String, expected: String, actual: String) -> [String] {
        let isList =
            (parse(request).flatMap { value -> String? in
                if case .object(let members) = value, case .string(let type)? = members["type"] { return type }
                return nil
            }) == "list"
        guard let expectedValue = parse(expected) else { return ["the expected line is not JSON"] }
        guard let actualValue = parse(actual) else { return ["the actual line is not JSON"] }
        return differences(
            normalise(expectedValue, isList: isList),
            normalise(actualValue, isList: isList),
            path: "$"
        )
    }

    static func parse(_ line: String) -> AnswerValue? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
            return nil
        }
        return AnswerValue(object)
    }

    static func normalise(_ value: AnswerValue, isList: Bool = false) -> AnswerValue {
        switch value {
        case .object(let members):
            var result: [String: AnswerValue] = [:]
            for (key, member) in members where !ignoredKeys.contains(key) {
                switch (key, member) {
                case ("segment_keys", .array(let items)):
                    result[key] = .array(items.sorted(by: AnswerValue.precedes))
                case ("result", .array(let items)) where isList:
                    result[key] = .array(items.map { normalise($0) }.sorted(by: AnswerValue.precedes))
                default:
                    result[key] = normalise(member)
                }
            }
            return .object(result)
        case .array(let items):
            return .array(items.map { normalise($0) })
        default:
            return value
        }
    }

    static func differences(_ expected: AnswerValue, _ actual: AnswerValue, path: String) -> [String] {
        switch (expected, actual) {
        case (.object(let e), .object(let a)):
            return Set(e.keys).union(a.keys).sorted().flatMap { key -> [String] in
                switch (e[key], a[key]) {
                case (let ev?, nil): return ["\(path).\(key): missing (expected \(ev.canonical))"]
                case (nil, let av?): return ["\(path).\(key): unexpected (\(av.canonical))"]
                case (let ev?, let av?): return differences(ev, av, path: "\(path).\(key)")
                case (nil, nil): return []
                }
            }
        case (.array(let e), .array(let a)) where e.count == a.count:
            return zip(e, a).enumerated().flatMap { differences($1.0, $1.1, path: "\(path)[\($0)]") }
        default:
            return expected == actual ? [] : ["\(path): expected \(expected.canonical), actual \(actual.canonical)"]
        }
    }
}
