import Foundation
import Testing

@testable import FliptEngine

/// Decoding a document on two threads (`FlagRunDecoding`): the calling thread adopts the other thread's flags
/// only at a real element start of the flags array, and the result is then the one-thread result byte for byte
/// (the other thread writes flat tables in mapped pages; the calling thread makes their strings and lists).
@Suite("Split decoding: two threads, the one-thread result")
struct SplitDecodingTests {
    /// A document of varied flags and the byte offset of the `,` before each flag (index 0 has none: -1).
    struct Sample {
        var text: String
        var commas: [Int]
        var bytes: [UInt8] { Array(text.utf8) }
    }

    /// Variant and boolean flags with every constraint type and list form, attachments, default variants,
    /// threshold, segment and empty rollouts, unknown fields, escaped keys, keys and strings longer than 15 bytes
    /// (Swift stores shorter ones inline), OR and AND groups of up to 7 segments (with and without prebuilt subset
    /// lists), repeated keys (within each half and across the middle), and irregular whitespace between elements.
    /// Seeded: the same seed gives the same text.
    static func sample(seed: UInt64, flagCount: Int = 48) -> Sample {
        var random = SeededGenerator(seed: seed)
        let constraints = [
            #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"plan","operator":"eq","value":"pro"}"#,
            #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"plan","operator":"isoneof","value":"[\"a\",\"b\"]"}"#,
            #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"name","operator":"notcontains","value":"x"}"#,
            #"{"type":"NUMBER_CONSTRAINT_COMPARISON_TYPE","property":"age","operator":"gte","value":"21"}"#,
            #"{"type":"NUMBER_CONSTRAINT_COMPARISON_TYPE","property":"age","operator":"isnotoneof","value":"[1,2,3]"}"#,
            #"{"type":"BOOLEAN_CONSTRAINT_COMPARISON_TYPE","property":"beta","operator":"true","value":""}"#,
            #"{"type":"DATETIME_CONSTRAINT_COMPARISON_TYPE","property":"t","operator":"lt","value":"2030-01-01T00:00:00Z"}"#,
            #"{"type":"ENTITY_ID_CONSTRAINT_COMPARISON_TYPE","property":"","operator":"prefix","value":"user-"}"#,
            #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"r\u00e9gion","operator":"isnotoneof","value":"[\"eu\"]"}"#,
        ]
        func segment(_ index: Int) -> String {
            let count = Int.random(in: 0...3, using: &random)
            let chosen = (0..<count).map { _ in constraints.randomElement(using: &random)! }
            let match = Bool.random(using: &random) ? "ALL_SEGMENT_MATCH_TYPE" : "ANY_SEGMENT_MATCH_TYPE"
            return
                #"{"key":"\#(index % 2 == 0 ? "seg" : "a-longer-segment-key")-\#(index)","name":"s","matchType":"\#(match)","constraints":[\#(chosen.joined(separator: ","))]}"#
        }
        func segments() -> String {
            // Repeated segment keys in one group are collapsed; keep them possible.
            (0..<Int.random(in: 1...7, using: &random)).map { _ in segment(Int.random(in: 0..<9, using: &random)) }
                .joined(separator: ",")
        }
        var flags: [String] = []
        for index in 0..<flagCount {
            // Every seventh flag repeats an earlier key, some from before the middle, some after.
            let key =
                index % 7 == 6
                ? "flag-\(Int.random(in: 0..<index, using: &random))"
                : index % 5 == 0
                    ? #"fl\u00e4g-\#(index)"# : index % 3 == 0 ? "a-flag-key-of-some-length-\(index)" : "flag-\(index)"
            let enabled = Bool.random(using: &random)
            if Bool.random(using: &random) {
                let rules = (0..<Int.random(in: 0...3, using: &random)).map { rank in
                    let distributions = (0..<Int.random(in: 0...3, using: &random)).map { variant in
                        let attachment =
                            Bool.random(using: &random) ? #""{\"n\":\#(variant)},{\"key\":\"x\"}""# : "null"
                        return
                            #"{"variantKey":"v\#(variant)","rollout":\#([0, 33.3, 50, 100].randomElement(using: &random)!),"variantAttachment":\#(attachment)}"#
                    }
                    let operatorName = Bool.random(using: &random) ? "OR_SEGMENT_OPERATOR" : "AND_SEGMENT_OPERATOR"
                    return
                        #"{"id":"r\#(rank)","rank":\#(rank + 1),"segmentOperator":"\#(operatorName)","segments":[\#(segments())],"distributions":[\#(distributions.joined(separator: ","))]}"#
                }
                let defaultVariant =
                    Bool.random(using: &random)
                    ? #"{"id":"default-variant-\#(index)","key":"v0","attachment":"{\"a\":[1,{}],\"long\":true}"}"#
                    : "null"
                let description = [#""description":"d","#, #""description":"a longer description","#, ""][index % 3]
                flags.append(
                    #"{"key":"\#(key)","name":"n, {\"key\"}",\#(description)"enabled":\#(enabled),"#
                        + #""type":"VARIANT_FLAG_TYPE","rules":[\#(rules.joined(separator: ","))],"#
                        + #""unknown":[{"key":"fake","name":"","enabled":true}],"defaultVariant":\#(defaultVariant)}"#
                )
            } else {
                let rollouts = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: #"{"threshold":{"percentage":\#(Int.random(in: 0...100, using: &random)),"value":true}}"#
                    case 1:
                        #"{"segment":{"segmentOperator":"AND_SEGMENT_OPERATOR","value":false,"segments":[\#(segments())]}}"#
                    default: "{}"
                    }
                }
                flags.append(
                    #"{"key":"\#(key)","name":"b","enabled":\#(enabled),"type":"BOOLEAN_FLAG_TYPE","#
                        + #""rollouts":[\#(rollouts.joined(separator: ","))]}"#
                )
            }
        }
        var text = #"{"namespace":{"key":"default"},"flags":["#
        var commas = [-1]
        for (index, flag) in flags.enumerated() {
            if index > 0 {
                commas.append(text.utf8.count)
                text += [",", ",\n  ", " , ", ",\t"][index % 4]
            }
            text += flag
        }
        text += "],\"other\":{\"flags\":[1,{}]}}"
        return Sample(text: text, commas: commas)
    }

    /// Decodes on one thread, or an error.
    static func single(_ document: [UInt8]) -> Result<Snapshot, DocumentError> {
        Result { () throws(DocumentError) in try Snapshot(document: document, splitAbove: .max) }
    }

    /// Decodes with the other thread searching from `start`, or an error.
    static func split(_ document: [UInt8], from start: Int) -> Result<Snapshot, DocumentError> {
        Result { () throws(DocumentError) in try Snapshot(document: document, splitAbove: 0, searchStart: start) }
    }

    /// Whether two snapshots are the same, and every key finds the same summary in both.
    static func same(_ one: Snapshot, _ other: Snapshot) -> Bool {
        one.isIdentical(to: other) && one.summaries.allSatisfy { other.flagSummary(forKey: $0.key) == $0 }
    }

    @Test(
        "Split at each flag: the other thread's part is adopted and the program is the one-thread program",
        arguments: [1, 2, 3]
    )
    func everyFlag(seed: UInt64) throws {
        let sample = Self.sample(seed: seed)
        let document = sample.bytes
        let reference = try Self.single(document).get()
        #expect(!reference.decodedOnTwoThreads)
        #expect(reference.flagCount > 30)
        for comma in sample.commas.dropFirst() {
            let snapshot = try Self.split(document, from: comma).get()
            #expect(snapshot.decodedOnTwoThreads, "not adopted when searching from byte \(comma)")
            #expect(Self.same(snapshot, reference), "differs when split at byte \(comma)")
        }
    }

    @Test("Split anywhere (inside strings, nested values, the other fields): the one-thread result")
    func everyPlace() throws {
        let document = Self.sample(seed: 4, flagCount: 12).bytes
        let reference = try Self.single(document).get()
        var adopted = 0
        for start in stride(from: 0, through: document.count, by: 3) {
            let snapshot = try Self.split(document, from: start).get()
            #expect(Self.same(snapshot, reference), "differs when searching from byte \(start)")
            if snapshot.decodedOnTwoThreads { adopted += 1 }
        }
        #expect(adopted > 0)
    }

    @Test("A candidate that decodes as a flag but is no element of the flags array is not adopted")
    func nestedLookAlike() throws {
        // The unknown field holds flag-shaped objects; the other thread keeps the second one as its candidate.
        let fake = #"{"key":"fake","name":"","enabled":true}"#
        let text =
            #"{"namespace":{"key":"default"},"flags":[{"key":"a","name":"","enabled":true,"unknown":[\#(fake),\#(fake)]}"#
            + #",{"key":"b","name":"","enabled":false}]}"#
        let document = Array(text.utf8)
        let start = text.utf8.count - text.utf8.drop { $0 != UInt8(ascii: "u") }.count
        let snapshot = try Self.split(document, from: start).get()
        #expect(!snapshot.decodedOnTwoThreads)
        #expect(Self.same(snapshot, try Self.single(document).get()))
        #expect(snapshot.summaries.map(\.key) == ["a", "b"])
    }

    /// Ways to break the sample past its middle (or anywhere), each giving one first error.
    static let corruptions: [(String, @Sendable (inout [UInt8], Sample) -> Void)] = [
        ("a truncated document", { bytes, _ in bytes.removeLast(bytes.count / 3) }),
        (
            "a required field renamed in a late flag",
            { bytes, sample in
                rename(&bytes, from: sample.commas[sample.commas.count - 3], "\"enabled\"", "\"enabler\"")
            }
        ),
        (
            "a trailing comma in the flags array",
            { bytes, _ in
                rename(&bytes, from: 0, "],\"other\"", ",],\"other\"")
            }
        ),
        (
            "invalid UTF-8 in a late key",
            { bytes, sample in
                let start = sample.commas[sample.commas.count - 2]
                let key = bytes[start...].firstIndex(of: UInt8(ascii: "f"))!
                bytes[key] = 0xFF
            }
        ),
        (
            "an early broken number",
            { bytes, sample in
                rename(&bytes, from: sample.commas[2], "\"rollout\":", "\"rollout\":-")
                rename(&bytes, from: sample.commas[2], "\"percentage\":", "\"percentage\":01")
            }
        ),
        (
            "a stray byte between late flags",
            { bytes, sample in
                bytes[sample.commas[sample.commas.count - 4]] = UInt8(ascii: ";")
            }
        ),
        ("a second flags field", { bytes, _ in rename(&bytes, from: 0, "\"other\"", "\"flags\"") }),
    ]

    /// Replaces the first `old` at or after `start` with `new`.
    static func rename(_ bytes: inout [UInt8], from start: Int, _ old: String, _ new: String) {
        let pattern = Array(old.utf8)
        var index = max(start, 0)
        while index + pattern.count <= bytes.count {
            if bytes[index..<index + pattern.count].elementsEqual(pattern) {
                bytes.replaceSubrange(index..<index + pattern.count, with: Array(new.utf8))
                return
            }
            index += 1
        }
    }

    @Test("A malformed document split anywhere is rejected with the one-thread first error")
    func malformed() throws {
        let sample = Self.sample(seed: 5, flagCount: 20)
        for (name, corrupt) in Self.corruptions {
            var document = sample.bytes
            corrupt(&document, sample)
            guard case .failure(let expected) = Self.single(document) else {
                Issue.record("\(name): the corrupted document decoded")
                continue
            }
            var starts = Array(sample.commas.dropFirst().filter { $0 < document.count })
            starts += stride(from: 0, to: document.count, by: 97)
            for start in starts {
                switch Self.split(document, from: start) {
                case .success: Issue.record("\(name): accepted when split at byte \(start)")
                case .failure(let error):
                    #expect(error == expected, "\(name): split at byte \(start)")
                }
            }
        }
    }

    @Test("A document above the threshold is decoded on two threads by default, with the one-thread result")
    func defaultThreshold() throws {
        var sample = Self.sample(seed: 6, flagCount: 60)
        // Repeat the flags (fresh keys) until the document passes the threshold.
        let flags = sample.text.split(separator: "\"flags\":[", maxSplits: 1)[1]
        let body = flags[..<flags.range(of: "],\"other\"")!.lowerBound]
        var copies: [String] = []
        var size = 0
        var copy = 0
        while size < Snapshot.splitThreshold + Snapshot.splitThreshold / 4 {
            let renamed = body.replacingOccurrences(of: "\"key\":\"fl", with: "\"key\":\"c\(copy)-fl")
            copies.append(renamed)
            size += renamed.utf8.count
            copy += 1
        }
        sample.text = #"{"namespace":{"key":"default"},"flags":[\#(copies.joined(separator: ","))]}"#
        let document = sample.bytes
        let snapshot = try Snapshot(document: document)
        let reference = try Self.single(document).get()
        #expect(Self.same(snapshot, reference))
        #expect(snapshot.decodedOnTwoThreads == (sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1))
        #expect(snapshot.flagCount == reference.flagCount)
    }
}

/// SplitMix64: a small seeded generator, so that a failing sample can be rebuilt from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
