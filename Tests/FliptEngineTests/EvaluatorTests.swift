import Testing

@testable import FliptEngine

private typealias Doc = TestDocuments

private func evaluator(_ flags: String...) throws -> Evaluator {
    let document = #"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#
    return Evaluator(snapshot: try Snapshot(document: Array(document.utf8)), namespace: "default")
}

private let always = #"{"key":"always","matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":[]}"#
private let never = Doc.segment("never", operator: "eq", value: "no-such-value")

@Suite("Evaluation semantics and quirks Q1–Q16")
struct EvaluatorTests {
    // MARK: Variant steps (§2)

    @Test("Missing flag, wrong type and namespace mismatch give the official messages")
    func errors() throws {
        let engine = try evaluator(Doc.booleanFlag("b", rollouts: "[]"), Doc.variantFlag("v", rules: "[]"))
        #expect(
            throws: EvaluationError(
                kind: .flagNotFound,
                message: "invalid request: failed to get flag information default/x"
            )
        ) {
            try engine.variant(flagKey: "x", entityID: "e", context: [:])
        }
        #expect(throws: EvaluationError(kind: .wrongFlagType, message: "invalid request: b is not a variant flag")) {
            try engine.variant(flagKey: "b", entityID: "e", context: [:])
        }
        #expect(throws: EvaluationError(kind: .wrongFlagType, message: "invalid request: v is not a boolean flag")) {
            try engine.boolean(flagKey: "v", entityID: "e", context: [:])
        }
        let other = Evaluator(snapshot: engine.snapshot, namespace: "prod")
        #expect(
            throws: EvaluationError(
                kind: .flagNotFound,
                message: "invalid request: failed to get flag information prod/v"
            )
        ) {
            try other.variant(flagKey: "v", entityID: "e", context: [:])
        }
        #expect(
            throws: EvaluationError(kind: .namespaceMismatch, message: "unknown error: failed to get flags for prod")
        ) {
            try other.listFlags()
        }
    }

    @Test("Type check precedes the disabled check")
    func typeBeforeDisabled() throws {
        let engine = try evaluator(Doc.booleanFlag("b", enabled: false, rollouts: "[]"))
        #expect(throws: EvaluationError(kind: .wrongFlagType, message: "invalid request: b is not a variant flag")) {
            try engine.variant(flagKey: "b", entityID: "e", context: [:])
        }
    }

    @Test("Disabled variant flag keeps the default variant and attachment")
    func disabledVariant() throws {
        let flag =
            #"{"key":"v","name":"","enabled":false,"rules":[\#(Doc.rule([always]))],"defaultVariant":{"id":"i","key":"dv","attachment":"{}"}}"#
        let result = try evaluator(flag).variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.reason == .flagDisabled)
        #expect(!result.isMatch)
        #expect(result.variantKey == "dv")
        #expect(result.variantAttachment == "{}")
    }

    @Test("No rules: DEFAULT with a default variant, UNKNOWN without")
    func noRules() throws {
        let withDefault = #"{"key":"a","name":"","enabled":true,"defaultVariant":{"id":"i","key":""}}"#
        let engine = try evaluator(withDefault, Doc.variantFlag("b", rules: "null"))
        let a = try engine.variant(flagKey: "a", entityID: "e", context: [:])
        #expect(a.reason == .default && a.variantKey == "" && a.variantAttachment == nil)
        let b = try engine.variant(flagKey: "b", entityID: "e", context: [:])
        #expect(b.reason == .unknown && !b.isMatch && b.segmentKeys.isEmpty)
    }

    @Test("First applicable rule ends evaluation; a failed rule's segment keys are discarded")
    func firstRuleWins() throws {
        let rules = [
            Doc.rule([always, never], operator: "AND_SEGMENT_OPERATOR", distributions: [("one", "100")]),
            Doc.rule([never, always], distributions: [("two", "100")]),
            Doc.rule([always], distributions: [("three", "100")]),
        ]
        let result = try evaluator(Doc.variantFlag("v", rules: "[\(rules.joined(separator: ","))]"))
            .variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.variantKey == "two")
        #expect(result.segmentKeys == ["always"])
        #expect(result.reason == .match && result.isMatch)
    }

    @Test("The chosen distribution's own attachment is used, even when absent")
    func distributionAttachment() throws {
        let rule =
            #"{"segmentOperator":"OR_SEGMENT_OPERATOR","segments":[\#(always)],"distributions":[{"variantKey":"x","rollout":100}]}"#
        let flag = Doc.variantFlag(
            "v",
            rules: "[\(rule)]",
            extra: #","defaultVariant":{"id":"i","key":"d","attachment":"A"}"#
        )
        let result = try evaluator(flag).variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.variantKey == "x")
        #expect(result.variantAttachment == nil)
    }

    // MARK: Quirks

    @Test(
        "Q1: boolean FLAG_DISABLED only without rollout entries",
        arguments: [
            ("[]", EvaluationReason.flagDisabled, false), ("null", .flagDisabled, false), ("[{}]", .default, false),
            (#"[{"threshold":{"percentage":0,"value":true}}]"#, .default, false),
            (#"[{"threshold":{"percentage":100,"value":true}}]"#, .match, true),
        ]
    )
    func q1(rollouts: String, reason: EvaluationReason, enabled: Bool) throws {
        let result = try evaluator(Doc.booleanFlag("b", enabled: false, rollouts: rollouts))
            .boolean(flagKey: "b", entityID: "e", context: [:])
        #expect(result.reason == reason)
        #expect(result.isEnabled == enabled)
    }

    @Test("Q1: a missing rollouts member also gives FLAG_DISABLED; enabled flags fall through to DEFAULT")
    func q1Missing() throws {
        let engine = try evaluator(
            #"{"key":"b","name":"","enabled":false,"type":"BOOLEAN_FLAG_TYPE"}"#,
            Doc.booleanFlag("c", rollouts: "[]")
        )
        #expect(try engine.boolean(flagKey: "b", entityID: "e", context: [:]).reason == .flagDisabled)
        let enabled = try engine.boolean(flagKey: "c", entityID: "e", context: [:])
        #expect(enabled.reason == .default && enabled.isEnabled)
    }

    @Test("Q3: segment keys and the flag list come in document order")
    func q3() throws {
        let keys = ["c", "a", "e", "f", "d", "b"]
        let segments = keys.map { #"{"key":"\#($0)","matchType":"ANY_SEGMENT_MATCH_TYPE","constraints":[]}"# }
        let flags = [
            Doc.variantFlag("z", rules: "[\(Doc.rule(segments, operator: "AND_SEGMENT_OPERATOR"))]"),
            Doc.booleanFlag("y", rollouts: "[]"), Doc.variantFlag("x", rules: "[]"),
        ]
        let document = #"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))]}"#
        let engine = Evaluator(snapshot: try Snapshot(document: Array(document.utf8)), namespace: "default")
        #expect(try engine.variant(flagKey: "z", entityID: "e", context: [:]).segmentKeys == keys)
        #expect(try engine.listFlags().map(\.key) == ["z", "y", "x"])
    }

    @Test("Q4: an unknown constraint type fails the segment unless an ANY success came first")
    func q4() throws {
        let unknown = #"{"type":"WHAT","property":"p","operator":"eq","value":"x"}"#
        let success = #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"p","operator":"empty","value":""}"#
        func matches(_ matchType: String, _ constraints: [String]) throws -> Bool {
            let segment =
                #"{"key":"s","matchType":"\#(matchType)","constraints":[\#(constraints.joined(separator: ","))]}"#
            return try evaluator(Doc.variantFlag("v", rules: "[\(Doc.rule([segment]))]"))
                .variant(flagKey: "v", entityID: "e", context: [:]).isMatch
        }
        #expect(try matches("ANY_SEGMENT_MATCH_TYPE", [success, unknown]))
        #expect(try !matches("ANY_SEGMENT_MATCH_TYPE", [unknown, success]))
        #expect(try !matches("ALL_SEGMENT_MATCH_TYPE", [success, unknown]))
        #expect(try !matches("ALL_SEGMENT_MATCH_TYPE", [unknown]))
    }

    @Test(
        "Q5/Q6: ties go to the last tie; Float32 boundaries",
        arguments: [
            // (rollouts, entity bucket to reach via a search, expected variant index)
            (["50", "0.01", "49.99"], 499, 1),
            (["50", "0.01", "0.01", "0.01", "0.01", "49.96"], 499, 4),
            (["99.99", "0.01"], 999, 1),
            (["6.85", "93.15"], 68, 0),
        ]
    )
    func q5q6(rollouts: [String], bucket: UInt32, expected: Int) throws {
        let distributions = rollouts.enumerated().map { ("v\($0.offset)", $0.element) }
        let flag = Doc.variantFlag("f", rules: "[\(Doc.rule([always], distributions: distributions))]")
        let engine = try evaluator(flag)
        let entity = try #require(
            (0..<200_000).lazy.map { "user-\($0)" }.first {
                CRC32.checksum("f", $0) % 1000 == bucket
            }
        )
        #expect(try engine.variant(flagKey: "f", entityID: entity, context: [:]).variantKey == "v\(expected)")
    }

    @Test(
        "Q6/Q15: thresholds compare in Float32 with strict <",
        arguments: [
            ("50.000001", 50, false), ("50.00001", 50, true), ("50.00000190734863281250001", 50, false),
            ("0", 0, false), ("-5", 0, false), ("150", 99, true), ("100", 99, true),
        ]
    )
    func q6Threshold(percentage: String, value: UInt32, expected: Bool) throws {
        let flag = Doc.booleanFlag(
            "t",
            enabled: false,
            rollouts: #"[{"threshold":{"percentage":\#(percentage),"value":true}}]"#
        )
        let engine = try evaluator(flag)
        let entity = try #require((0..<100_000).lazy.map { "e\($0)" }.first { CRC32.checksum($0, "t") % 100 == value })
        #expect(try engine.boolean(flagKey: "t", entityID: entity, context: [:]).isEnabled == expected)
    }

    @Test("Q7: NUMBER is int32-only (covered by the operator table); Q9: missing equals empty, non-strings dropped")
    func q9() throws {
        let segments = [
            Doc.segment("np", type: "NUMBER", property: "n", operator: "notpresent", value: ""),
            Doc.segment("se", type: "STRING", property: "n", operator: "empty", value: ""),
        ]
        let flag = Doc.variantFlag("v", rules: "[\(Doc.rule(segments, operator: "AND_SEGMENT_OPERATOR"))]")
        let lines = JSONLinesEvaluator(snapshot: try Doc.snapshot(flag), namespace: "default")
        for context in [#"{}"#, #"{"n":""}"#, #"{"n":5}"#, #"{"n":null}"#, #"{"n":{"a":"b"}}"#, #"{"n":"x","n":true}"#]
        {
            let answer = lines.answer(
                line: Array(#"{"type":"variant","flag_key":"v","entity_id":"e","context":\#(context)}"#.utf8)
            )
            #expect(answer.contains(#""match":true"#), "context \(context): \(answer)")
        }
    }

    @Test("Q10: zero-segment rules: OR never applies, AND always does with no keys")
    func q10() throws {
        let rules = [
            Doc.rule([], distributions: [("or", "100")]),
            Doc.rule([], operator: "AND_SEGMENT_OPERATOR", distributions: [("and", "100")]),
        ]
        let result = try evaluator(Doc.variantFlag("v", rules: "[\(rules.joined(separator: ","))]"))
            .variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.variantKey == "and" && result.segmentKeys.isEmpty && result.isMatch)
    }

    @Test("Q11: a matched rule without usable distributions gives MATCH with the default variant")
    func q11() throws {
        let rule = Doc.rule([always], distributions: [("zero", "0"), ("negative", "-5")])
        let withDefault = Doc.variantFlag(
            "v",
            rules: "[\(rule)]",
            extra: #","defaultVariant":{"id":"i","key":"d","attachment":"A"}"#
        )
        let without = Doc.variantFlag("w", rules: "[\(Doc.rule([always], distributions: []))]")
        let engine = try evaluator(withDefault, without)
        let v = try engine.variant(flagKey: "v", entityID: "e", context: [:])
        #expect(v.isMatch && v.reason == .match && v.variantKey == "d" && v.variantAttachment == "A")
        let w = try engine.variant(flagKey: "w", entityID: "e", context: [:])
        #expect(w.isMatch && w.reason == .match && w.variantKey == "" && w.variantAttachment == nil)
    }

    @Test("Q12: duplicate flags and segments collapse, the last definition wins")
    func q12() throws {
        let aFalse = Doc.segment("a", operator: "eq", value: "nope")
        let aTrue = #"{"key":"a","matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":[]}"#
        let first = Doc.variantFlag("v", rules: "[]")
        let second = Doc.variantFlag("v", rules: "[\(Doc.rule([aFalse, aTrue], operator: "AND_SEGMENT_OPERATOR"))]")
        let engine = try evaluator(first, second)
        #expect(engine.snapshot.flagCount == 1)
        let result = try engine.variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.isMatch && result.segmentKeys == ["a"])
    }

    @Test("Q13: unknown enums are lenient")
    func q13() throws {
        let segment =
            #"{"key":"s","matchType":"WHAT","constraints":[\#(#"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"p","operator":"eq","value":"no"}"#),\#(#"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"p","operator":"empty","value":""}"#)]}"#
        let flag =
            #"{"key":"v","name":"","enabled":true,"type":"BOGUS","rules":[\#(Doc.rule([segment, never], operator: "ZZZ"))]}"#
        let rollout = #"[{"type":"THRESHOLD_ROLLOUT_TYPE","segment":{"value":true,"segments":[\#(always)]}}]"#
        let engine = try evaluator(flag, Doc.booleanFlag("b", rollouts: rollout))
        let variant = try engine.variant(flagKey: "v", entityID: "e", context: [:])
        #expect(variant.isMatch && variant.segmentKeys == ["s"])  // ANY (one of two) and OR (one of two)
        let boolean = try engine.boolean(flagKey: "b", entityID: "e", context: [:])
        #expect(boolean.reason == .match && boolean.segmentKeys == ["always"])
    }

    @Test("Q14: a rollout with both kinds is a threshold rollout")
    func q14() throws {
        let rollout = #"[{"threshold":{"percentage":0,"value":true},"segment":{"value":true,"segments":[\#(always)]}}]"#
        let result = try evaluator(Doc.booleanFlag("b", rollouts: rollout)).boolean(
            flagKey: "b",
            entityID: "e",
            context: [:]
        )
        #expect(result.reason == .default)
    }

    @Test("Q15: a 1e39 rollout overflows Float32 and the last variant always wins")
    func q15() throws {
        let flag = Doc.variantFlag(
            "f",
            rules: "[\(Doc.rule([always], distributions: [("big", "1e39"), ("one", "1")]))]"
        )
        let engine = try evaluator(flag)
        for entity in ["a", "b", "c", "d", "e", "f"] {
            #expect(try engine.variant(flagKey: "f", entityID: entity, context: [:]).variantKey == "one")
        }
    }

    @Test("Q16 and §4.2: flag keys, context keys and values compare as exact bytes")
    func q16() throws {
        let composed = "k\u{E9}"
        let decomposed = "ke\u{301}"
        let segment = Doc.segment("s", property: "\u{E9}", operator: "eq", value: "\u{E9}")
        let engine = try evaluator(Doc.variantFlag(composed, rules: "[\(Doc.rule([segment]))]"))
        #expect(throws: EvaluationError.self) { try engine.variant(flagKey: decomposed, entityID: "e", context: [:]) }
        var context = EvaluationContext()
        context["e\u{301}"] = "\u{E9}"
        #expect(try !engine.variant(flagKey: composed, entityID: "e", context: context).isMatch)
        context["\u{E9}"] = "e\u{301}"
        #expect(context.count == 2)
        #expect(try !engine.variant(flagKey: composed, entityID: "e", context: context).isMatch)
        context["\u{E9}"] = "\u{E9}"
        #expect(try engine.variant(flagKey: composed, entityID: "e", context: context).isMatch)
    }

    @Test(
        "A [String: String] context finds properties by exact bytes at every size: walked when small, hashed when large",
        arguments: [0, 1, 5, 7, 8, 15, 16, 31]
    )
    func dictionaryContextsCompareBytes(fillers: Int) throws {
        // Property names short enough to be stored inline in a String and longer ones, each with a canonically
        // equivalent twin that must not match: composed/decomposed é, and the Kelvin sign, whose canonical
        // decomposition is the ASCII letter K.
        let names: [(exact: String, twin: String)] = [
            ("\u{E9}", "e\u{301}"),
            ("K", "\u{212A}"),
            ("a-long-property-name-\u{E9}", "a-long-property-name-e\u{301}"),
        ]
        for (exact, twin) in names {
            let segment = Doc.segment("s", property: exact, operator: "eq", value: "x")
            let engine = try evaluator(Doc.variantFlag("f", rules: "[\(Doc.rule([segment]))]"))
            var dictionary: [String: String] = [:]
            for index in 0..<fillers { dictionary["filler-property-\(index)"] = "x" }
            func matches() throws -> Bool {
                try engine.variant(flagKey: "f", entityID: "e", context: EvaluationContext(dictionary)).isMatch
            }
            #expect(try !matches(), "\(fillers) fillers, no property")
            dictionary[twin] = "x"
            #expect(try !matches(), "\(fillers) fillers, only the twin of \(exact.debugDescription)")
            #expect(EvaluationContext(dictionary)[exact] == nil)
            #expect(EvaluationContext(dictionary)[twin] == "x")
            // Dictionary keys are distinct under canonical equivalence: setting the exact name replaces the twin's
            // entry but keeps the twin's bytes as the key, so the property is still missing.
            dictionary[exact] = "x"
            #expect(try !matches(), "\(fillers) fillers, value set through the twin's key")
            dictionary.removeValue(forKey: twin)
            dictionary[exact] = "x"
            #expect(try matches(), "\(fillers) fillers, the exact name")
            #expect(EvaluationContext(dictionary)[exact] == "x")
            #expect(EvaluationContext(dictionary)[twin] == nil)
        }
    }

    // MARK: Boolean, batch, list

    @Test("Segment rollouts: value and keys; threshold hashes entity then flag")
    func booleanRollouts() throws {
        let rollouts =
            #"[{"segment":{"value":false,"segmentOperator":"AND_SEGMENT_OPERATOR","segments":[\#(always),\#(never)]}},{"segment":{"value":false,"segments":[\#(never),\#(always)]}}]"#
        let result = try evaluator(Doc.booleanFlag("b", rollouts: rollouts)).boolean(
            flagKey: "b",
            entityID: "e",
            context: [:]
        )
        #expect(!result.isEnabled && result.reason == .match && result.segmentKeys == ["always"])
    }

    @Test("Batch evaluates by actual type, in order, with NOT_FOUND items")
    func batch() throws {
        let engine = try evaluator(Doc.booleanFlag("b", rollouts: "[]"), Doc.variantFlag("", rules: "[]"))
        let result = engine.batch([
            EvaluationRequest(flagKey: "b", entityID: "e"),
            EvaluationRequest(flagKey: "", entityID: ""),
            EvaluationRequest(flagKey: " ", entityID: "e"),
        ])
        #expect(result.responses.map(\.type) == [.boolean, .variant, .error])
        guard case .error(let error) = result.responses[2] else { return }
        #expect(error == BatchErrorResult(flagKey: " ", namespaceKey: "default", reason: .notFound))
        #expect(engine.batch([]).responses.isEmpty)
    }

    @Test("List shows resolved types, and description/default variant only when present")
    func list() throws {
        let flags = [
            #"{"key":"a","name":"","enabled":false,"type":"BOGUS","description":""}"#,
            #"{"key":"b","name":"","enabled":true,"type":"BOOLEAN_FLAG_TYPE","defaultVariant":{"id":"i","key":"k"}}"#,
        ]
        let summaries = try evaluator(flags[0], flags[1]).listFlags()
        #expect(
            summaries == [
                FlagSummary(key: "a", isEnabled: false, type: .variant, description: "", defaultVariant: nil),
                FlagSummary(
                    key: "b",
                    isEnabled: true,
                    type: .boolean,
                    description: nil,
                    defaultVariant: DefaultVariant(id: "i", key: "k", attachment: nil)
                ),
            ]
        )
    }

    @Test("Results carry a current RFC 3339 timestamp and whole-millisecond durations")
    func timestamps() throws {
        let before = EvaluationTimestamp.now()
        let result = try evaluator(Doc.variantFlag("v", rules: "[]")).variant(flagKey: "v", entityID: "e", context: [:])
        #expect(result.evaluatedAt >= before)
        #expect(result.requestDurationMillis == result.requestDurationMillis.rounded())
        #expect(result.timestamp.hasSuffix("Z"))
    }

    @Test("A slow evaluation reports its duration in whole milliseconds, a quick one 0")
    func durations() throws {
        // 2,000 constraints, all matching, each searching a 16 KiB value of "a"s for "ab": every position starts a
        // match, so each constraint compares ~32,000 bytes, 64 million in all, well over a millisecond.
        let count = 2_000
        let constraints = (0..<count).map { _ in
            #"{"type":"STRING_CONSTRAINT_COMPARISON_TYPE","property":"p","operator":"notcontains","value":"ab"}"#
        }
        let segment =
            #"{"key":"s","matchType":"ALL_SEGMENT_MATCH_TYPE","constraints":[\#(constraints.joined(separator: ","))]}"#
        let evaluator = try evaluator(Doc.variantFlag("slow", rules: "[\(Doc.rule([segment]))]"))
        let context: EvaluationContext = ["p": String(repeating: "a", count: 16_384)]
        let clock = ContinuousClock()
        let started = clock.now
        let slow = try evaluator.variant(flagKey: "slow", entityID: "e", context: context)
        let elapsed = clock.now - started
        #expect(slow.isMatch)
        #expect(elapsed > .milliseconds(2), "the evaluation was too quick (\(elapsed)) for this test to mean anything")
        #expect(slow.requestDurationMillis >= 1)
        #expect(slow.requestDurationMillis <= (elapsed / .milliseconds(1)).rounded(.up))
        let quickStarted = clock.now
        let quick = try evaluator.variant(flagKey: "slow", entityID: "e", context: [:])
        let quickElapsed = clock.now - quickStarted
        #expect(!quick.isMatch)
        // A descheduled thread can make even this take a millisecond; then only the upper bound holds.
        #expect(quick.requestDurationMillis == 0 || quickElapsed >= .milliseconds(1))
    }
}
