import Testing

@testable import FliptEngine

private typealias Doc = TestDocuments

/// The evaluation form (`Program`): the flag-key table, the per-flag blocks, and the fast paths beside them.
@Suite("Compiled program: key table, flag blocks, fast paths")
struct ProgramTests {
    /// Keys of many lengths (around the 8-byte hashing words and the 15-byte small-string limit), some prefixes
    /// of others, some non-ASCII.
    private static let keys: [String] = (0..<2_500).map { index in
        switch index % 5 {
        case 0: "f\(index)"
        case 1: String(repeating: "k", count: 1 + index % 40) + "\(index)"
        case 2: "flag-\(index)-é"
        case 3: "flag-\(index)-e\u{301}"
        default: "\(index)"
        }
    }

    @Test("Every key finds its own flag among 2,500, and only exact bytes match")
    func keyTable() throws {
        let flags = Self.keys.enumerated().map { index, key in
            Doc.variantFlag(
                key,
                rules: "["
                    + Doc.rule(
                        [Doc.segment("s\(index)", operator: "empty", value: "")],
                        distributions: [("v\(index)", "100")]
                    ) + "]"
            )
        }
        let snapshot = try Snapshot(
            document: Array(#"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#.utf8)
        )
        let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
        #expect(snapshot.flagCount == Self.keys.count)
        for (index, key) in Self.keys.enumerated() {
            let result = try evaluator.variant(flagKey: key, entityID: "e", context: [:])
            #expect(result.variantKey == "v\(index)")
            #expect(result.segmentKeys == ["s\(index)"])
            #expect(result.flagKey.utf8.elementsEqual(key.utf8))
            #expect(snapshot.flagSummary(forKey: key)?.key.utf8.elementsEqual(key.utf8) == true)
        }
        for missing in [
            "", "f", "flag-2-e", "flag-2-e\u{301}", "flag-3-é", "f0 ", "k", String(repeating: "k", count: 41),
        ] {
            #expect(throws: EvaluationError.self) {
                try evaluator.variant(flagKey: missing, entityID: "e", context: [:])
            }
            #expect(snapshot.flagSummary(forKey: missing) == nil)
        }
    }

    @Test("Repeated flag keys among hundreds: the last definition wins, at the position of the first")
    func repeatedKeys() throws {
        // 300 distinct keys, then every third of them again with another rule and type: enough keys for the table
        // that finds repeats to grow several times while the document is read.
        let distinct = (0..<300).map { index in
            Doc.variantFlag(
                "k\(index)",
                rules: "[" + Doc.rule([Doc.segment("first", operator: "empty", value: "")]) + "]"
            )
        }
        let repeated = stride(from: 0, to: 300, by: 3).map { index in
            index % 2 == 0
                ? Doc.variantFlag(
                    "k\(index)",
                    rules: "["
                        + Doc.rule(
                            [Doc.segment("second", operator: "empty", value: "")],
                            distributions: [("again", "100")]
                        ) + "]"
                )
                : Doc.booleanFlag("k\(index)", rollouts: #"[{"threshold":{"percentage":100,"value":true}}]"#)
        }
        let snapshot = try Snapshot(
            document: Array(
                #"{"namespace":{"key":"default"},"flags":[\#((distinct + repeated).joined(separator: ","))]}"#.utf8
            )
        )
        let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
        #expect(snapshot.flagCount == 300)
        #expect(try evaluator.listFlags().map(\.key) == (0..<300).map { "k\($0)" })
        for index in 0..<300 {
            let key = "k\(index)"
            if index % 3 != 0 {
                let result = try evaluator.variant(flagKey: key, entityID: "e", context: [:])
                #expect(result.segmentKeys == ["first"] && result.variantKey == "on")
            } else if index % 2 == 0 {
                let result = try evaluator.variant(flagKey: key, entityID: "e", context: [:])
                #expect(result.segmentKeys == ["second"] && result.variantKey == "again")
            } else {
                #expect(snapshot.flagSummary(forKey: key)?.type == .boolean)
                #expect(try evaluator.boolean(flagKey: key, entityID: "e", context: [:]).isEnabled)
            }
        }
    }

    @Test("A context from a dictionary and one built pair by pair evaluate alike")
    func contextForms() throws {
        let segments = [
            Doc.segment("plan", property: "plan", operator: "eq", value: "pro"),
            Doc.segment("age", type: "NUMBER", property: "age", operator: "gt", value: "30"),
            Doc.segment("when", type: "DATETIME", property: "when", operator: "lt", value: "2025-01-01T00:00:00Z"),
            Doc.segment("missing", property: "nothing", operator: "empty", value: ""),
        ]
        let snapshot = try Doc.snapshot(
            Doc.variantFlag("v", rules: "[" + Doc.rule(segments, distributions: [("a", "50"), ("b", "50")]) + "]"),
            Doc.booleanFlag(
                "b",
                rollouts: #"[{"segment":{"value":true,"segmentOperator":"AND_SEGMENT_OPERATOR","segments":["#
                    + segments[0] + "," + segments[1] + "]}}]"
            )
        )
        let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
        let dictionaries: [[String: String]] = [
            [:],
            ["plan": "pro"],
            ["plan": "pro", "age": "31"],
            ["plan": "free", "age": "30", "when": "2024-12-31T23:59:59Z", "nothing": "x"],
            ["age": "44", "when": "2026-01-01T00:00:00Z", "nothing": "something"],
        ]
        for dictionary in dictionaries {
            let fromDictionary = EvaluationContext(dictionary)
            let fromPairs = EvaluationContext(pairs: dictionary.map { ($0.key, $0.value) })
            for entity in ["a", "b", "c", "user-12345678901234567890"] {
                let first = try evaluator.variant(flagKey: "v", entityID: entity, context: fromDictionary)
                let second = try evaluator.variant(flagKey: "v", entityID: entity, context: fromPairs)
                #expect(first.segmentKeys == second.segmentKeys)
                #expect(first.variantKey == second.variantKey && first.reason == second.reason)
                let third = try evaluator.boolean(flagKey: "b", entityID: entity, context: fromDictionary)
                let fourth = try evaluator.boolean(flagKey: "b", entityID: entity, context: fromPairs)
                #expect(third.isEnabled == fourth.isEnabled && third.segmentKeys == fourth.segmentKeys)
            }
        }
    }

    @Test("Contexts of 8 pairs or more, indexed by name, find each property as walked contexts and dictionaries do")
    func indexedContexts() throws {
        // Names of many lengths: prefixes of one another, equal lengths with other bytes, the empty name, two
        // canonically equivalent spellings (distinct here, merged by a dictionary), and two never set.
        let names = [
            "plan", "plans", "pla", "", "\u{E9}", "e\u{301}", "country", "age", "a", "b", "region-1", "region-2",
            String(repeating: "x", count: 40), "absent-1", "absent-2",
        ]
        let settable = names.count - 2
        let segments = names.enumerated().map {
            Doc.segment("s\($0.offset)", property: $0.element, operator: "eq", value: "v\($0.offset)")
        }
        let evaluator = Evaluator(
            snapshot: try Doc.snapshot(Doc.variantFlag("v", rules: "[" + Doc.rule(segments) + "]")),
            namespace: "default"
        )
        for size in [0, 1, 7, 8, 9, 13, 16, 40, 200] {
            for round in 0..<4 {
                // The first names (or all of them, then fillers) in a rotated order; every third value is wrong.
                var pairs: [(String, String)] = (0..<size).map { index in
                    guard index < settable else { return ("filler-\(index)", "x") }
                    return (names[index], (index + round) % 3 == 0 ? "wrong" : "v\(index)")
                }
                if !pairs.isEmpty { pairs = Array(pairs[(round % pairs.count)...] + pairs[..<(round % pairs.count)]) }
                let context = EvaluationContext(pairs: pairs)
                let expected = (0..<min(size, settable)).filter { ($0 + round) % 3 != 0 }.map { "s\($0)" }
                let keys = try evaluator.variant(flagKey: "v", entityID: "e", context: context).segmentKeys
                #expect(keys == expected, "\(size) pairs, round \(round)")
                for name in names + ["plan ", "filler-\(size)", "filler-\(size - 1)"] {
                    let set = pairs.first { Array($0.0.utf8) == Array(name.utf8) }?.1
                    #expect(context[name] == set, "\(size) pairs, round \(round): \(name)")
                }
                #expect(context.entries.map(\.key).elementsEqual(pairs.map(\.0)) { Array($0.utf8) == Array($1.utf8) })
                // A dictionary of the same pairs (without the decomposed spelling, which it would merge) agrees.
                let plain = pairs.filter { Array($0.0.utf8) != Array("e\u{301}".utf8) }
                let dictionary = Dictionary(plain, uniquingKeysWith: { $1 })
                let fromDictionary = try evaluator.variant(
                    flagKey: "v",
                    entityID: "e",
                    context: EvaluationContext(dictionary)
                )
                let fromPlain = try evaluator.variant(
                    flagKey: "v",
                    entityID: "e",
                    context: EvaluationContext(pairs: plain)
                )
                #expect(fromDictionary.segmentKeys == fromPlain.segmentKeys, "\(size) pairs, round \(round)")
            }
        }
    }

    @Test("Two property names with the same stored hash stay two names, in every form of context")
    func collidingPropertyNames() throws {
        // Found by search: the two names' `propertyNameHash` is 3,024,194,755. The program finds a name's string
        // (which a dictionary is searched with) through that hash, so it must compare the bytes too.
        let (first, second) = ("attr9094", "attr67123")
        let hashes = [first, second].map { name in name.withUTF8Bytes { propertyNameHash($0) } }
        try #require(hashes[0] == hashes[1], "the names no longer collide: search for another pair")
        let evaluator = Evaluator(
            snapshot: try Doc.snapshot(
                Doc.variantFlag(
                    "v",
                    rules: "["
                        + Doc.rule([
                            Doc.segment("first", property: first, operator: "eq", value: "one"),
                            Doc.segment("second", property: second, operator: "eq", value: "two"),
                        ]) + "]"
                )
            ),
            namespace: "default"
        )
        // 2 pairs (walked) and 10 (indexed, and a dictionary searched by hash), each name set to its own value,
        // then to the other's.
        for fillers in [0, 8] {
            let padding = (0..<fillers).map { ("filler-\($0)", "x") }
            for (values, expected) in [(("one", "two"), ["first", "second"]), (("two", "one"), [])] {
                let pairs = [(first, values.0), (second, values.1)] + padding
                for context in [
                    EvaluationContext(pairs: pairs), EvaluationContext(Dictionary(uniqueKeysWithValues: pairs)),
                ] {
                    let keys = try evaluator.variant(flagKey: "v", entityID: "e", context: context).segmentKeys
                    #expect(keys == expected, "\(pairs.count) pairs: \(values)")
                }
            }
        }
    }

    @Test("Evaluation sees a context's pairs as last set: replaced, removed, repeated, empty keys and values")
    func contextMutations() throws {
        let snapshot = try Doc.snapshot(
            Doc.variantFlag(
                "v",
                rules: "["
                    + Doc.rule(
                        [
                            Doc.segment("pro", property: "plan", operator: "eq", value: "pro"),
                            Doc.segment("blank", property: "", operator: "eq", value: "x"),
                        ]
                    ) + "]"
            )
        )
        let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
        func keys(_ context: EvaluationContext) throws -> [String] {
            try evaluator.variant(flagKey: "v", entityID: "e", context: context).segmentKeys
        }
        var context = EvaluationContext(pairs: [("plan", "free"), ("plan", "pro"), ("plans", "pro")])
        #expect(context.count == 2)
        #expect(try keys(context) == ["pro"])
        context["plan"] = "free"
        #expect(try keys(context).isEmpty)
        context["plan"] = "pro"
        context[""] = "x"
        #expect(try keys(context) == ["pro", "blank"])
        context["plan"] = nil
        #expect(try keys(context) == ["blank"])
        context[""] = ""
        #expect(try keys(context).isEmpty)
        #expect(context.entries.map(\.key) == ["plans", ""])
        #expect(try keys(EvaluationContext(pairs: [("pla", "npro"), ("plan", "pro")])) == ["pro"])
    }

    @Test(
        "A context of many pairs keeps first-set order and the last value of a repeated key, in linear time",
        .timeLimit(.minutes(1))
    )
    func largeContexts() {
        // Repeats before and after the switch from comparing each entry to a table of keys, canonically
        // equivalent keys kept apart, and a context far too large for a quadratic build within the time limit.
        let count = 100_000
        var pairs = (0..<count).map { ("k\($0)", "v\($0)") }
        pairs += [
            ("k3", "again3"), ("k40", "again40"), ("k99999", "last"), ("\u{E9}", "composed"),
            ("e\u{301}", "decomposed"),
        ]
        let context = EvaluationContext(pairs: pairs)
        #expect(context.count == count + 2)
        #expect(context["k3"] == "again3")
        #expect(context["k40"] == "again40")
        #expect(context["k99999"] == "last")
        #expect(context["k12345"] == "v12345")
        #expect(context["\u{E9}"] == "composed")
        #expect(context["e\u{301}"] == "decomposed")
        let keys = context.entries.map(\.key)
        #expect(keys.prefix(3) == ["k0", "k1", "k2"])
        #expect(keys.suffix(2) == ["\u{E9}", "e\u{301}"])
        // Small contexts take the other path, with the same result.
        let small = EvaluationContext(pairs: [("a", "1"), ("b", "2"), ("a", "3")])
        #expect(small.entries.map(\.key) == ["a", "b"])
        #expect(small["a"] == "3")
    }

    @Test("The compact `…Z` date-time spelling reads as the general parser reads `…+00:00`")
    func compactDateTime() {
        let dates = [
            "1970-01-01T00:00:00", "2024-02-29T12:34:56", "2023-02-29T00:00:00", "2024-02-30T00:00:00",
            "2024-13-01T00:00:00", "2024-00-10T00:00:00", "2024-04-31T00:00:00", "2024-04-00T00:00:00",
            "2024-12-31T23:59:60", "2024-12-31T24:00:00", "2024-12-31T23:60:00", "2024-12-31T23:59:61",
            "0000-01-01T00:00:00", "9999-12-31T23:59:59", "1900-02-29T00:00:00", "2000-02-29T00:00:00",
            "2024-1a-01T00:00:00", "20x4-01-01T00:00:00", "2024-01-01T0 :00:00", "2024-01-01T00:00:0/",
        ]
        for date in dates {
            #expect(parseRFC3339Seconds(date + "Z") == parseRFC3339Seconds(date + "+00:00"), "\(date)")
        }
        #expect(parseRFC3339Seconds("2024-02-29T12:34:56Z") == 1_709_210_096)
        #expect(parseRFC3339Seconds("2024-12-31T23:59:60Z") == parseRFC3339Seconds("2024-12-31T23:59:59Z"))
        #expect(parseRFC3339Seconds("2024-01-01t00:00:00z") == 1_704_067_200)
        #expect(parseRFC3339Seconds("2024-01-01 00:00:00Z") == 1_704_067_200)
        #expect(parseRFC3339Seconds("2024-01-01T00:00:00X") == nil)
    }

    @Test("Byte comparison and hashing at every length around the word size see every byte")
    func byteComparison() {
        for count in 0...40 {
            let original = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ count) }
            original.withUnsafeBufferPointer { left in
                let copy = original
                copy.withUnsafeBufferPointer { right in
                    #expect(bytesEqualBuffers(left, right))
                    #expect(byteHash(left) == byteHash(right))
                }
                for position in 0..<count {
                    var changed = original
                    changed[position] ^= 0x40
                    changed.withUnsafeBufferPointer { right in
                        #expect(!bytesEqualBuffers(left, right), "length \(count), byte \(position)")
                        #expect(byteHash(left) != byteHash(right), "length \(count), byte \(position)")
                    }
                }
                if count > 0 {
                    #expect(!bytesEqualBuffers(left, UnsafeBufferPointer(rebasing: left[1...])))
                }
            }
        }
    }

    @Test(
        "OR groups report the keys of exactly the segments that matched, in document order, for every set",
        arguments: 1...6
    )
    func orGroupKeys(segmentCount: Int) throws {
        // Segment i matches when the context's property "s<i>" is "on"; a duplicate definition of segment 0 after
        // the others is collapsed into one (the later definition wins).
        var segments = (0..<segmentCount).map { Doc.segment("k\($0)", property: "s\($0)", operator: "eq", value: "on") }
        segments.append(Doc.segment("k0", property: "s0", operator: "eq", value: "on"))
        let snapshot = try Doc.snapshot(
            Doc.variantFlag("v", rules: "[" + Doc.rule(segments) + "]"),
            Doc.booleanFlag(
                "b",
                rollouts: #"[{"segment":{"value":true,"segmentOperator":"OR_SEGMENT_OPERATOR","segments":["#
                    + segments.joined(separator: ",") + "]}}]"
            )
        )
        let evaluator = Evaluator(snapshot: snapshot, namespace: "default")
        for mask in 0..<(1 << segmentCount) {
            let on = (0..<segmentCount).filter { mask & (1 << $0) != 0 }
            let context = EvaluationContext(pairs: on.map { ("s\($0)", "on") } + [("s\(segmentCount)", "on")])
            let variant = try evaluator.variant(flagKey: "v", entityID: "e", context: context)
            let boolean = try evaluator.boolean(flagKey: "b", entityID: "e", context: context)
            #expect(variant.segmentKeys == on.map { "k\($0)" }, "mask \(mask)")
            #expect(variant.isMatch == !on.isEmpty && boolean.reason == (on.isEmpty ? .default : .match))
            #expect(boolean.segmentKeys == on.map { "k\($0)" }, "mask \(mask)")
        }
    }

    @Test("Segment keys compare, hash and write alike whatever form a result holds them in")
    func segmentKeyForms() {
        let long = "a-segment-key-longer-than-fifteen-bytes"
        let forms: [SegmentKeyStorage] = [
            .none, .list([]), .one("a"), .list(["a"]), .one(long), .list([long]), .list(["a", "b"]), .one("b"),
            .list(["b", "a"]),
        ]
        for left in forms {
            #expect(left.count == left.keys.count)
            var json = JSONWriter()
            json.stringArray(left)
            #expect(
                String(decoding: json.bytes, as: UTF8.self) == "["
                    + left.keys.map { "\"\($0)\"" }.joined(separator: ",") + "]"
            )
            for right in forms {
                #expect((left == right) == (left.keys == right.keys), "\(left) \(right)")
                if left == right { #expect(left.hashValue == right.hashValue, "\(left) \(right)") }
            }
        }
    }
}
