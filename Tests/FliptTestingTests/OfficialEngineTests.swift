import Flipt
import FliptTesting
import Foundation
import Testing

/// Documents built with `TestData` from a seeded generator, evaluated by a `TestData` client and by Flipt's official
/// engine (PyPI flipt-client 1.4.5, driven by Tests/Differential/official.py): every answer must be the same.
///
/// The Python with the official engine is `$FLIPT_PYTHON`, else `.venv/bin/python` at the package root (CI makes
/// it: `python3 -m venv .venv && .venv/bin/pip install flipt-client==1.4.5`).
@Suite("TestData documents against the official engine")
struct OfficialEngineTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7, 8]

    @Test("every evaluation of generated TestData documents equals the official engine's")
    func sameAnswers() async throws {
        let python = try Self.officialPython()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flipt-testing-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var cases: [(seed: UInt64, data: TestData, requests: [GeneratedRequest])] = []
        var arguments = ["--pairs"]
        for seed in Self.seeds {
            var generator = DocumentGenerator(seed: seed)
            let data = try generator.makeData()
            let requests = generator.makeRequests(for: data, count: 400)
            let base = directory.appendingPathComponent("seed-\(seed)").path
            try data.document.write(to: URL(fileURLWithPath: base + ".document.json"))
            try requests.map(\.line).joined(separator: "\n").appending("\n")
                .write(toFile: base + ".requests.jsonl", atomically: true, encoding: .utf8)
            arguments += [base + ".document.json", base + ".requests.jsonl", base + ".expected.jsonl"]
            cases.append((seed, data, requests))
        }
        try Self.run(
            python,
            [Self.packageRoot.appendingPathComponent("Tests/Differential/official.py").path] + arguments
        )

        var compared = 0
        var officialOutcomes: Set<String> = []
        for (seed, data, requests) in cases {
            let expected = try String(
                contentsOfFile: directory.appendingPathComponent("seed-\(seed).expected.jsonl").path,
                encoding: .utf8
            ).split(separator: "\n").map(String.init)
            try #require(expected.count == requests.count, "seed \(seed): \(expected.count) answers")
            let client = try data.makeClient()
            var failures = 0
            for (request, answer) in zip(requests, expected) {
                officialOutcomes.formUnion(Self.outcomes(of: answer))
                let difference = Self.difference(client: client, request: request, official: answer)
                compared += 1
                guard let difference else { continue }
                failures += 1
                if failures <= 10 {
                    Issue.record("seed \(seed): \(request.line)\n  official: \(answer)\n  \(difference)")
                }
            }
            #expect(failures == 0, "seed \(seed): \(failures) of \(requests.count) answers differ")
            await client.shutdown()
        }
        #expect(compared == Self.seeds.count * 400)
        // The workload reaches every kind of answer, so that agreement means something.
        let wanted: Set<String> = [
            "MATCH_EVALUATION_REASON", "DEFAULT_EVALUATION_REASON", "FLAG_DISABLED_EVALUATION_REASON",
            "UNKNOWN_EVALUATION_REASON", "segment keys", "attachment", "enabled", "not enabled", "flag not found",
            "wrong type",
        ]
        #expect(officialOutcomes.isSuperset(of: wanted), "not reached: \(wanted.subtracting(officialOutcomes))")
    }

    /// The kinds of answer an official envelope is: its reason, whether it has segment keys or an attachment, its
    /// boolean value, or its error.
    static func outcomes(of answer: String) -> Set<String> {
        guard let envelope = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any] else {
            return []
        }
        guard let result = envelope["result"] as? [String: Any] else {
            let message = envelope["error_message"] as? String ?? ""
            return [message.contains("failed to get flag information") ? "flag not found" : "wrong type"]
        }
        var kinds: Set<String> = [result["reason"] as? String ?? ""]
        if let keys = result["segment_keys"] as? [String], !keys.isEmpty { kinds.insert("segment keys") }
        if let attachment = result["variant_attachment"] as? String, !attachment.isEmpty { kinds.insert("attachment") }
        if let enabled = result["enabled"] as? Bool { kinds.insert(enabled ? "enabled" : "not enabled") }
        return kinds
    }

    /// What differs between the client's answer and the official envelope, or nil when nothing does.
    static func difference(client: FliptClient, request: GeneratedRequest, official: String) -> String? {
        guard let envelope = try? JSONSerialization.jsonObject(with: Data(official.utf8)) as? [String: Any] else {
            return "the official answer is not JSON"
        }
        let result = envelope["result"] as? [String: Any]
        do {
            if request.isBoolean {
                let answer = try client.evaluateBoolean(
                    flagKey: request.flagKey,
                    entityID: request.entityID,
                    context: request.context
                )
                guard let result else { return "official failed (\(envelope["error_message"] ?? "")), ours answered" }
                let ours: [String: String] = [
                    "enabled": "\(answer.isEnabled)", "reason": answer.reason.rawValue,
                    "segment_keys": answer.segmentKeys.sorted().joined(separator: "|"),
                ]
                let theirs: [String: String] = [
                    "enabled": "\((result["enabled"] as? Bool) ?? false)", "reason": "\(result["reason"] ?? "")",
                    "segment_keys": ((result["segment_keys"] as? [String]) ?? []).sorted().joined(separator: "|"),
                ]
                return ours == theirs ? nil : "ours \(ours), official \(theirs)"
            }
            let answer = try client.evaluateVariant(
                flagKey: request.flagKey,
                entityID: request.entityID,
                context: request.context
            )
            guard let result else { return "official failed (\(envelope["error_message"] ?? "")), ours answered" }
            let ours: [String: String] = [
                "match": "\(answer.isMatch)", "reason": answer.reason.rawValue, "variant_key": answer.variantKey,
                "attachment": answer.variantAttachment ?? "<none>",
                "segment_keys": answer.segmentKeys.sorted().joined(separator: "|"),
            ]
            let theirs: [String: String] = [
                "match": "\((result["match"] as? Bool) ?? false)", "reason": "\(result["reason"] ?? "")",
                "variant_key": "\(result["variant_key"] ?? "")",
                "attachment": (result["variant_attachment"] as? String) ?? "<none>",
                "segment_keys": ((result["segment_keys"] as? [String]) ?? []).sorted().joined(separator: "|"),
            ]
            return ours == theirs ? nil : "ours \(ours), official \(theirs)"
        } catch {
            let message = envelope["error_message"] as? String
            return message == error.message ? nil : "ours threw \"\(error.message)\", official \(official)"
        }
    }

    /// The Python that has the official engine.
    static func officialPython() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["FLIPT_PYTHON"], !explicit.isEmpty { return explicit }
        let venv = packageRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw OracleMissing(
                "No Python with the official Flipt engine: set FLIPT_PYTHON, or create \(venv) with "
                    + "`python3 -m venv .venv && .venv/bin/pip install flipt-client==1.4.5` at the package root."
            )
        }
        return venv
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["RUST_BACKTRACE"] = nil
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OracleMissing("official.py exited with status \(process.terminationStatus)")
        }
    }

    struct OracleMissing: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// One evaluation request of the generated workload, with its request line for official.py.
struct GeneratedRequest {
    var isBoolean: Bool
    var flagKey: String
    var entityID: String
    var context: [String: String]

    var line: String {
        let object: [String: Any] = [
            "type": isBoolean ? "boolean" : "variant", "flag_key": flagKey, "entity_id": entityID, "context": context,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Random `TestData` built only through the public builder: every constraint type and operator, both match types,
/// AND and OR rules, distributions with uneven and zero shares, threshold and segment rollouts. SplitMix64 from a
/// fixed seed, so a failure names the seed that reproduces it.
struct DocumentGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed &* 0x9E37_79B9_7F4A_7C15
    }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    private mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    private mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    private mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }

    static let plans = ["pro", "free", "team", "", "é", "Pro"]
    static let ages: [Int32] = [-5, 0, 17, 18, 42, Int32.max]
    static let ageTexts = ["-5", "0", "17", "18", "42", "2147483647", "3.5", "abc", ""]
    static let booleans = ["true", "false", "TRUE", ""]
    static let dates = [
        Date(timeIntervalSince1970: 1_767_225_600),  // 2026-01-01T00:00:00Z
        Date(timeIntervalSince1970: 1_748_779_200),  // 2025-06-01T12:00:00Z
        Date(timeIntervalSince1970: 1_800_000_000.75),
    ]
    static let dateTexts = [
        "2026-01-01T00:00:00Z", "2025-06-01T14:00:00+02:00", "2027-03-01 00:00:00Z", "2026-01-01T00:00:00.999Z",
        "bad", "",
    ]
    static let entities = ["u1", "admin", "ops", "user-42", "é", "pro-7", "x"]

    private mutating func stringComparison(_ pool: [String]) -> TestData.StringComparison {
        switch below(10) {
        case 0: .equals(pick(pool))
        case 1: .notEquals(pick(pool))
        case 2: .isEmpty
        case 3: .isNotEmpty
        case 4: .hasPrefix(String(pick(pool).prefix(2)))
        case 5: .hasSuffix(String(pick(pool).suffix(1)))
        case 6: .contains(String(pick(pool).dropFirst()))
        case 7: .notContains(pick(pool))
        case 8: .isOneOf([pick(pool), pick(pool)] + (chance(15) ? ["quo\"te"] : []))
        default: .isNotOneOf([pick(pool), pick(pool)])
        }
    }

    private mutating func constraint() -> TestData.Constraint {
        switch below(11) {
        case 0, 1: return .string("plan", stringComparison(Self.plans))
        case 2, 3: return .entityID(stringComparison(Self.entities))
        case 4, 5:
            let comparisons: [TestData.NumberComparison] = [
                .equals(pick(Self.ages)), .notEquals(pick(Self.ages)), .lessThan(pick(Self.ages)),
                .lessThanOrEqual(pick(Self.ages)), .greaterThan(pick(Self.ages)),
                .greaterThanOrEqual(pick(Self.ages)), .isOneOf([pick(Self.ages), pick(Self.ages)]),
                .isNotOneOf([pick(Self.ages)]), .isPresent, .isNotPresent,
            ]
            return .number("age", pick(comparisons))
        case 6: return .boolean("beta", pick([.isTrue, .isFalse, .isPresent, .isNotPresent]))
        case 7, 8:
            let comparisons: [TestData.DateTimeComparison] = [
                .equals(pick(Self.dates)), .notEquals(pick(Self.dates)), .before(pick(Self.dates)),
                .notAfter(pick(Self.dates)), .after(pick(Self.dates)), .notBefore(pick(Self.dates)), .isPresent,
                .isNotPresent,
            ]
            return .dateTime("signed_up", pick(comparisons))
        case 9: return TestData.Constraint(type: .string, property: "plan", operator: "EQ", value: "pro")
        default: return .string("region", .equals(pick(["eu", "us"])))
        }
    }

    mutating func makeData() throws -> TestData {
        let data = TestData()
        let segmentKeys = (0..<6).map { "segment-\($0)" }
        for key in segmentKeys {
            let constraints = (0..<below(4)).map { _ in constraint() }
            try data.update(
                TestData.Segment(key: key, matchType: chance(50) ? .all : .any, constraints: constraints)
            )
        }
        for index in 0..<10 {
            if index % 2 == 0 {
                let variants = (0..<(2 + below(3))).map { number in
                    TestData.Variant("v\(number)", attachment: chance(40) ? #"{"n":\#(number)}"# : nil)
                }
                var flag = TestData.Flag.variant(
                    "flag-\(index)",
                    variants: variants,
                    default: chance(70) ? pick(variants).key : nil,
                    enabled: chance(85)
                )
                for _ in 0..<below(4) {
                    let keys = (0..<below(4)).map { _ in pick(segmentKeys) }
                    var remaining = 100.0
                    var distributions: [TestData.Distribution] = []
                    let served = below(variants.count + 1)
                    for variant in shuffled(variants).prefix(served) {
                        let share = pick([0, 10, 33.33, 50, 6.85, remaining])
                        let taken = min(share, remaining)
                        remaining -= taken
                        distributions.append(TestData.Distribution(variant.key, taken))
                    }
                    flag = flag.rule(
                        TestData.Rule(
                            segmentKeys: keys,
                            combination: chance(50) ? .or : .and,
                            distributions: distributions
                        )
                    )
                }
                try data.update(flag)
            } else {
                var flag = TestData.Flag.boolean("flag-\(index)", value: chance(50))
                for _ in 0..<below(4) {
                    if chance(40) {
                        flag = flag.rollout(percentage: pick([0, 25, 50, 50.5, 99.9, 100]), value: chance(50))
                    } else {
                        let keys = (0..<below(4)).map { _ in pick(segmentKeys) }
                        flag = flag.rollout(matching: keys, chance(50) ? .or : .and, value: chance(50))
                    }
                }
                try data.update(flag)
            }
        }
        return data
    }

    mutating func makeRequests(for data: TestData, count: Int) -> [GeneratedRequest] {
        let flags = data.flags
        return (0..<count).map { _ in
            var context: [String: String] = [:]
            if chance(70) { context["plan"] = pick(Self.plans) }
            if chance(60) { context["age"] = pick(Self.ageTexts) }
            if chance(50) { context["beta"] = pick(Self.booleans) }
            if chance(50) { context["signed_up"] = pick(Self.dateTexts) }
            if chance(30) { context["region"] = pick(["eu", "us"]) }
            let flag = pick(flags)
            let key = chance(3) ? "missing-flag" : flag.key
            // Now and then the wrong type, for the official "is not a … flag" message.
            let isBoolean = chance(4) ? flag.kind != .boolean : flag.kind == .boolean
            return GeneratedRequest(isBoolean: isBoolean, flagKey: key, entityID: pick(Self.entities), context: context)
        }
    }

    /// `values` in a random order (Fisher–Yates).
    private mutating func shuffled<T>(_ values: [T]) -> [T] {
        var copy = values
        for index in stride(from: copy.count - 1, to: 0, by: -1) { copy.swapAt(index, below(index + 1)) }
        return copy
    }
}
