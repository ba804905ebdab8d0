// flipt-bench engine --shapes: documents and requests of many shapes (issue 18 item 1), evaluated through the
// public FliptClient API (a prebuilt EvaluationContext and a [String: String]) side by side with the official
// engine's C ABI in the same run; and --callgrind, which runs a fixed number of evaluations of one shape so that
// `valgrind --tool=callgrind --toggle-collect='*callgrindLoop*'` counts the instructions of exactly those.

import Flipt
import FliptEngine
import Foundation

/// The parameters a generated workload varies.
struct Shape: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        case string, number, boolean, datetime, entity
        case stringList = "string-list"
        case numberList = "number-list"
    }

    enum Outcome: Sendable {
        /// Constraint values drawn from the same domains as context values: some rules match, some do not.
        case natural
        /// Every constraint holds for any present value and no attribute is missing: the first rule applies.
        case match
        /// No constraint holds and no threshold passes: every rule and rollout is evaluated and fails.
        case noMatch
    }

    enum Mix: Sendable { case all, any, mixed }
    /// How entity IDs look: `user-123` (8 bytes or so), or a UUID (36 bytes), as many apps use.
    enum EntityIDs: Sendable { case short, uuid }
    enum Flags: Sendable { case variant, boolean, mixed }

    var name: String
    var flagCount = 40
    /// Context attributes per request (of the 20 in `ShapeCatalogue`), each missing with `missingRate`.
    var attributeCount = 5
    var missingRate = 0.1
    var kinds: [Kind] = [.string, .stringList, .number]
    var rules = 1...3
    var segmentsPerRule = 1...1
    var constraintsPerSegment = 1...3
    var matchType = Mix.mixed
    /// OR (`.any`), AND (`.all`) or either, per rule.
    var segmentOperator = Mix.any
    var flags = Flags.mixed
    var distributions = 1...3
    var outcome = Outcome.natural
    var entityIDs = EntityIDs.short

    /// The shapes `--shapes` runs: issue 18's workload at three sizes, then one parameter varied at a time.
    static let all: [Shape] = {
        var shapes: [Shape] = []
        for count in [40, 1_000, 10_000] {
            var shape = Shape(name: "issue18-\(count)")
            shape.flagCount = count
            shapes.append(shape)
        }
        func varied(_ name: String, _ change: (inout Shape) -> Void) {
            var shape = Shape(name: name)
            change(&shape)
            shapes.append(shape)
        }
        varied("attributes-0") {
            $0.attributeCount = 0
            $0.kinds = [.string, .number, .entity, .stringList]
        }
        varied("attributes-20") {
            $0.attributeCount = 20
            $0.kinds = Kind.allCases
        }
        for kind in Kind.allCases { varied("only-\(kind.rawValue)") { $0.kinds = [kind] } }
        varied("segments-3-all-and") {
            $0.segmentsPerRule = 3...3
            $0.matchType = .all
            $0.segmentOperator = .all
        }
        varied("segments-3-any-or") {
            $0.segmentsPerRule = 3...3
            $0.matchType = .any
            $0.segmentOperator = .any
        }
        varied("rules-5") { $0.rules = 5...5 }
        varied("match") {
            $0.outcome = .match
            $0.missingRate = 0
            $0.kinds = Kind.allCases
        }
        varied("no-match") {
            $0.outcome = .noMatch
            $0.missingRate = 0
            $0.kinds = Kind.allCases
        }
        varied("rollouts-only") { $0.flags = .boolean }
        varied("distributions-4") {
            $0.flags = .variant
            $0.distributions = 4...4
        }
        varied("entity-uuid") { $0.entityIDs = .uuid }
        varied("all-kinds-10000") {
            $0.flagCount = 10_000
            $0.attributeCount = 20
            $0.kinds = Kind.allCases
            $0.segmentsPerRule = 1...3
        }
        return shapes
    }()
}

/// The context attributes requests can carry (the first `attributeCount` of these), with their value domains.
enum ShapeCatalogue {
    struct Attribute {
        let name: String
        let kind: Shape.Kind
        /// String attributes: the values a context takes.
        let words: [String]
    }

    static let attributes: [Attribute] = {
        let base = [
            Attribute(name: "plan", kind: .string, words: ["free", "pro", "enterprise", "team"]),
            Attribute(name: "country", kind: .string, words: ["us", "de", "fr", "jp", "br", "in"]),
            Attribute(name: "age", kind: .number, words: []),
            Attribute(name: "beta", kind: .boolean, words: []),
            Attribute(name: "signup", kind: .datetime, words: []),
        ]
        let kinds: [Shape.Kind] = [.string, .number, .boolean, .datetime, .string]
        let extra = (5..<20).map { index in
            let kind = kinds[index % kinds.count]
            return Attribute(
                name: "attribute-\(index)",
                kind: kind,
                words: kind == .string ? (0..<8).map { "value-\(index)-\($0)" } : []
            )
        }
        return base + extra
    }()

    /// A value of `attribute` in its domain.
    static func value(of attribute: Attribute, _ random: inout SplitMix64) -> String {
        switch attribute.kind {
        case .number: return String(random.next() % 100)
        case .boolean: return random.next() % 2 == 0 ? "true" : "false"
        case .datetime:
            return "2024-0\(1 + random.next() % 9)-1\(random.next() % 10)T0\(random.next() % 10):00:00Z"
        default: return attribute.words[Int(random.next() % UInt64(attribute.words.count))]
        }
    }
}

/// Makes a shape's document and requests; the same seed gives the same bytes.
struct ShapeGenerator {
    let shape: Shape
    var random: SplitMix64

    init(shape: Shape, seed: UInt64) {
        self.shape = shape
        random = SplitMix64(seed: seed)
    }

    private mutating func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
    private mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    private mutating func count(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    private mutating func chooses(_ mix: Shape.Mix) -> Bool {
        switch mix {
        case .all: return true
        case .any: return false
        case .mixed: return below(2) == 0
        }
    }

    /// The attribute a constraint of `kind` reads: one of that kind among those requests carry when there is one.
    private mutating func attribute(for kind: Shape.Kind) -> ShapeCatalogue.Attribute {
        let wanted: Shape.Kind =
            switch kind {
            case .stringList, .entity: .string
            case .numberList: .number
            default: kind
            }
        let all = ShapeCatalogue.attributes.filter { $0.kind == wanted }
        let carried = all.filter { attribute in
            ShapeCatalogue.attributes.prefix(shape.attributeCount).contains { $0.name == attribute.name }
        }
        return pick(carried.isEmpty ? all : carried)
    }

    private func json(_ type: String, _ property: String, _ op: String, _ value: String) -> String {
        #"{"type":"\#(type)_CONSTRAINT_COMPARISON_TYPE","property":"\#(property)","operator":"\#(op)","#
            + #""value":\#(BenchmarkRequest.jsonString(value))}"#
    }

    private mutating func constraint() -> String {
        let kind = pick(shape.kinds)
        let attribute = attribute(for: kind)
        let name = attribute.name
        switch (kind, shape.outcome) {
        case (.string, .natural):
            return json("STRING", name, pick(["eq", "eq", "neq", "prefix"]), pick(attribute.words))
        case (.string, .match): return json("STRING", name, "neq", "none")
        case (.string, .noMatch): return json("STRING", name, "eq", "none")
        case (.stringList, .natural):
            let list = (0..<2).map { _ in "\"\(pick(attribute.words))\"" }.joined(separator: ",")
            return json("STRING", name, pick(["isoneof", "isoneof", "isnotoneof"]), "[\(list)]")
        case (.stringList, .match):
            let list = attribute.words.map { "\"\($0)\"" }.joined(separator: ",")
            return json("STRING", name, "isoneof", "[\(list)]")
        case (.stringList, .noMatch): return json("STRING", name, "isoneof", #"["none","nothing"]"#)
        case (.number, .natural):
            return json("NUMBER", name, pick(["lt", "lte", "gt", "gte"]), String(below(100)))
        case (.number, .match): return json("NUMBER", name, "gte", "0")
        case (.number, .noMatch): return json("NUMBER", name, "gt", "1000")
        case (.numberList, .natural):
            return json("NUMBER", name, pick(["isoneof", "isnotoneof"]), "[\(below(100)),\(below(100)),\(below(100))]")
        case (.numberList, .match): return json("NUMBER", name, "isnotoneof", "[1000,2000]")
        case (.numberList, .noMatch): return json("NUMBER", name, "isoneof", "[1000,2000]")
        case (.boolean, .natural): return json("BOOLEAN", name, pick(["true", "false", "present"]), "")
        case (.boolean, .match): return json("BOOLEAN", name, "present", "")
        case (.boolean, .noMatch): return json("BOOLEAN", name, "notpresent", "")
        case (.datetime, .natural):
            return json("DATETIME", name, pick(["lt", "gt", "lte", "gte"]), "2024-0\(1 + below(9))-15T00:00:00Z")
        case (.datetime, .match): return json("DATETIME", name, "gt", "2020-01-01T00:00:00Z")
        case (.datetime, .noMatch): return json("DATETIME", name, "lt", "2020-01-01T00:00:00Z")
        case (.entity, .natural):
            switch below(3) {
            case 0: return json("ENTITY_ID", "", "eq", "user-\(below(1000))")
            case 1: return json("ENTITY_ID", "", "prefix", "user-\(below(10))")
            default:
                let list = (0..<3).map { _ in "\"user-\(below(1000))\"" }.joined(separator: ",")
                return json("ENTITY_ID", "", "isoneof", "[\(list)]")
            }
        case (.entity, .match): return json("ENTITY_ID", "", "prefix", "user-")
        case (.entity, .noMatch): return json("ENTITY_ID", "", "eq", "nobody")
        }
    }

    private mutating func segment(_ key: String) -> String {
        let constraints = (0..<count(shape.constraintsPerSegment)).map { _ in constraint() }.joined(separator: ",")
        let match = chooses(shape.matchType) ? "ALL_SEGMENT_MATCH_TYPE" : "ANY_SEGMENT_MATCH_TYPE"
        return #"{"key":"\#(key)","name":"\#(key)","matchType":"\#(match)","constraints":[\#(constraints)]}"#
    }

    private mutating func segments() -> (text: String, isAnd: Bool) {
        let keys = (0..<count(shape.segmentsPerRule)).map { _ in "segment-\(below(100_000))" }
        let unique = keys.enumerated().map { "\($0.element)-\($0.offset)" }
        let isAnd = chooses(shape.segmentOperator)
        return (unique.map { segment($0) }.joined(separator: ","), isAnd)
    }

    private mutating func variantFlag(_ key: String) -> String {
        let rules = (0..<count(shape.rules)).map { rank -> String in
            let variants = count(shape.distributions)
            var weights = (0..<variants).map { _ in Double(1 + below(100)) }
            let total = weights.reduce(0, +)
            weights = weights.map { ($0 / total * 10_000).rounded() / 100 }
            let distributions = weights.enumerated().map { index, weight in
                #"{"variantKey":"v\#(index)","variantAttachment":"{\"n\":\#(index)}","rollout":\#(weight)}"#
            }.joined(separator: ",")
            let (segments, isAnd) = segments()
            let op = isAnd ? "AND_SEGMENT_OPERATOR" : "OR_SEGMENT_OPERATOR"
            return #"{"rank":\#(rank + 1),"segmentOperator":"\#(op)","segments":[\#(segments)],"#
                + #""distributions":[\#(distributions)]}"#
        }.joined(separator: ",")
        let defaultVariant = below(5) == 0 ? "null" : #"{"id":"\#(key)/v0","key":"v0"}"#
        return #"{"key":"\#(key)","name":"\#(key)","description":"","enabled":true,"type":"VARIANT_FLAG_TYPE","#
            + #""rules":[\#(rules)],"rollouts":[],"defaultVariant":\#(defaultVariant)}"#
    }

    private mutating func booleanFlag(_ key: String) -> String {
        let rollouts = (0..<count(shape.rules)).map { rank -> String in
            if below(4) == 0 {
                let percentage = shape.outcome == .noMatch ? 0 : shape.outcome == .match ? 100 : below(101)
                return #"{"rank":\#(rank + 1),"threshold":{"percentage":\#(percentage),"value":true}}"#
            }
            let (segments, isAnd) = segments()
            let op = isAnd ? "AND_SEGMENT_OPERATOR" : "OR_SEGMENT_OPERATOR"
            return #"{"rank":\#(rank + 1),"segment":{"value":\#(below(2) == 0),"segmentOperator":"\#(op)","#
                + #""segments":[\#(segments)]}}"#
        }.joined(separator: ",")
        return #"{"key":"\#(key)","name":"\#(key)","description":"","enabled":\#(below(8) != 0),"#
            + #""type":"BOOLEAN_FLAG_TYPE","rules":[],"rollouts":[\#(rollouts)]}"#
    }

    mutating func document() -> [UInt8] {
        var flags: [String] = []
        flags.reserveCapacity(shape.flagCount)
        for index in 0..<shape.flagCount {
            let key = "\(pick(["checkout", "search", "banner", "pricing", "onboarding"]))-\(index)"
            let isBoolean =
                switch shape.flags {
                case .variant: false
                case .boolean: true
                case .mixed: below(2) == 0
                }
            flags.append(isBoolean ? booleanFlag(key) : variantFlag(key))
        }
        let text = #"{"namespace":{"key":"default"},"flags":[\#(flags.joined(separator: ","))],"digest":"d"}"#
        return Array(text.utf8)
    }

    /// One request per random context and entity, for a random flag.
    mutating func requests(_ flags: [FlagSummary], count: Int) -> [BenchmarkRequest] {
        (0..<count).map { _ in
            let flag = pick(flags)
            var pairs: [(String, String)] = []
            for attribute in ShapeCatalogue.attributes.prefix(shape.attributeCount) {
                let value = ShapeCatalogue.value(of: attribute, &random)
                if Double(random.next() % 1000) >= shape.missingRate * 1000 { pairs.append((attribute.name, value)) }
            }
            let entityID: String
            switch shape.entityIDs {
            case .short: entityID = "user-\(below(1000))"
            case .uuid:
                let bits = (random.next(), random.next())
                entityID = withUnsafeBytes(of: bits) { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }.uuidString
                    .lowercased()
            }
            let contextJSON = pairs.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",")
            let json =
                "{\"namespace_key\":\"default\",\"flag_key\":\(BenchmarkRequest.jsonString(flag.key)),"
                + "\"entity_id\":\"\(entityID)\",\"context\":{\(contextJSON)}}"
            return BenchmarkRequest(
                kind: flag.type == .boolean ? .boolean : .variant,
                flagKey: flag.key,
                entityID: entityID,
                context: EvaluationContext(pairs: pairs),
                dictionary: Dictionary(pairs, uniquingKeysWith: { $1 }),
                officialJSON: Array(json.utf8CString)
            )
        }
    }
}

/// Runs the shapes through the public API and the official engine, and the callgrind mode.
enum ShapeBenchmark {
    /// A shape's generated inputs.
    struct Prepared {
        let shape: Shape
        let seed: UInt64
        let document: [UInt8]
        let requests: [BenchmarkRequest]
    }

    static func prepare(_ shape: Shape, baseSeed: UInt64, requestCount: Int) throws -> Prepared {
        // Each shape's seed comes from the base seed and its name, so that adding a shape changes no other.
        var seed = baseSeed
        for byte in shape.name.utf8 { seed = (seed ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var generator = ShapeGenerator(shape: shape, seed: seed)
        let document = generator.document()
        let flags = try Evaluator(snapshot: try Snapshot(document: document), namespace: "default").listFlags()
        let requests = generator.requests(flags, count: requestCount)
        return Prepared(shape: shape, seed: seed, document: document, requests: requests)
    }

    /// A client holding `document` as its seed snapshot, with no cache and no server it can reach.
    static func client(_ document: [UInt8]) throws -> FliptClient {
        try FliptClient(
            options: ClientOptions(
                url: "http://127.0.0.1:9",
                updateInterval: .seconds(3_600),
                errorStrategy: .fallback,
                snapshot: String(decoding: document, as: UTF8.self),
                cache: CacheOptions(location: .disabled, maximumAge: .seconds(86_400))
            )
        )
    }

    static func selected(_ names: [String]) throws -> [Shape] {
        if names.isEmpty { return Shape.all }
        return try names.map { name in
            guard let shape = Shape.all.first(where: { $0.name == name }) else {
                throw BenchmarkFailure(
                    "no shape \(name); shapes: \(Shape.all.map(\.name).joined(separator: ", "))"
                )
            }
            return shape
        }
    }

    static func measure(_ options: EngineBenchmark.Options) throws {
        unsetenv("RUST_BACKTRACE")
        let official = try OfficialEngine(libraryPath: options.officialLibrary)
        let shapes = try selected(options.shapes)
        print(
            "flipt-bench engine --shapes: seed \(options.seed), \(options.requestCount) requests per shape, "
                + "\(options.rounds) interleaved rounds, median ns per evaluation"
        )
        print("  ours: FliptClient.evaluateVariant/evaluateBoolean with a prebuilt EvaluationContext (ctx) or a")
        print("  [String: String] (dict); official: the C ABI with each request's JSON prepared ahead")
        let widths = [20, 6, 9, 6, 6, 9, 9, 9, 8, 8, 9]
        print(
            row(
                [
                    "shape", "flags", "bytes", "attrs", "match", "ctx", "dict", "official", "off/ctx", "off/dict",
                    "dict/ctx",
                ],
                widths
            )
        )
        for shape in shapes {
            let prepared = try prepare(shape, baseSeed: options.seed, requestCount: options.requestCount)
            let server = try LoopbackDocumentServer(body: prepared.document)
            defer { server.close() }
            let engine = try official.start(url: server.url)
            defer { official.stop(engine) }
            let evaluator = Evaluator(snapshot: try Snapshot(document: prepared.document), namespace: "default")
            let workload = EngineBenchmark.Workload(
                name: shape.name,
                document: prepared.document,
                requests: prepared.requests
            )
            let agreement = try EngineBenchmark.checkSameAnswers(evaluator, official, engine, workload)
            let matches = agreement.split(separator: "(").last?.split(separator: " ").first.flatMap { Int($0) } ?? 0
            let client = try client(prepared.document)
            defer { client.close() }
            let requests = prepared.requests
            let count = requests.count
            var samples = [[Double]](repeating: [], count: 3)
            for round in 0..<options.rounds {
                let order = round % 2 == 0 ? [0, 1, 2] : [2, 1, 0]
                for form in order {
                    samples[form].append(
                        EngineBenchmark.nanosecondsPerEvaluation(count: count) {
                            switch form {
                            case 0: evaluateWithContexts(client, requests)
                            case 1: evaluateWithDictionaries(client, requests)
                            default: official.evaluateAll(engine, requests)
                            }
                        }
                    )
                }
            }
            let (context, dictionary, theirs) = (
                EngineBenchmark.median(samples[0]), EngineBenchmark.median(samples[1]),
                EngineBenchmark.median(samples[2])
            )
            let format = EngineBenchmark.format
            print(
                row(
                    [
                        shape.name, "\(shape.flagCount)", "\(prepared.document.count)", "\(shape.attributeCount)",
                        "\(matches * 100 / max(1, count))%", format(context), format(dictionary), format(theirs),
                        format(theirs / context) + "x", format(theirs / dictionary) + "x",
                        format(dictionary / context) + "x",
                    ],
                    widths
                )
            )
        }
        print("  every shape: both engines agreed on every request's outcome before timing (reason, match, variant)")
    }

    static func row(_ cells: [String], _ widths: [Int]) -> String { EngineBenchmark.row(cells, widths) }

    /// `--callgrind SHAPE`: one warm-up pass, then `--evaluations N` evaluations of the shape's requests in
    /// `callgrindLoop`, for `valgrind --tool=callgrind --toggle-collect='*callgrindLoop*'`.
    static func callgrind(_ options: EngineBenchmark.Options, shapeName: String) throws {
        unsetenv("RUST_BACKTRACE")
        guard let shape = try selected([shapeName]).first else { return }
        let prepared = try prepare(shape, baseSeed: options.seed, requestCount: options.requestCount)
        let requests = prepared.requests
        var sink = 0
        switch options.form {
        case "context", "dictionary":
            let client = try client(prepared.document)
            defer { client.close() }
            let dictionaries = options.form == "dictionary"
            sink &+= dictionaries ? evaluateWithDictionaries(client, requests) : evaluateWithContexts(client, requests)
            sink &+= callgrindLoop(evaluations: options.evaluations, requests) { slice in
                dictionaries ? evaluateWithDictionaries(client, slice) : evaluateWithContexts(client, slice)
            }
        case "official":
            let official = try OfficialEngine(libraryPath: options.officialLibrary)
            let server = try LoopbackDocumentServer(body: prepared.document)
            defer { server.close() }
            let engine = try official.start(url: server.url)
            defer { official.stop(engine) }
            sink &+= official.evaluateAll(engine, requests)
            sink &+= callgrindLoop(evaluations: options.evaluations, requests) { official.evaluateAll(engine, $0) }
        default:
            throw BenchmarkFailure("--form is context, dictionary or official, not \(options.form)")
        }
        blackHole(sink)
        print(
            "callgrind: shape \(shape.name), seed \(prepared.seed), form \(options.form), "
                + "\(options.evaluations) evaluations in callgrindLoop"
        )
    }

    /// Runs `evaluations` evaluations: whole passes over `requests`, then a part of one.
    @inline(never)
    static func callgrindLoop(
        evaluations: Int,
        _ requests: [BenchmarkRequest],
        _ pass: ([BenchmarkRequest]) -> Int
    ) -> Int {
        var sink = 0
        var left = evaluations
        while left >= requests.count {
            sink &+= pass(requests)
            left -= requests.count
        }
        if left > 0 { sink &+= pass(Array(requests.prefix(left))) }
        return sink
    }

    @inline(never)
    static func evaluateWithContexts(_ client: FliptClient, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].kind {
                case .variant:
                    if let result = try? client.evaluateVariant(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].context
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? client.evaluateBoolean(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].context
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }

    @inline(never)
    static func evaluateWithDictionaries(_ client: FliptClient, _ requests: [BenchmarkRequest]) -> Int {
        requests.withUnsafeBufferPointer { requests in
            var sink = 0
            for index in requests.indices {
                switch requests[index].kind {
                case .variant:
                    if let result = try? client.evaluateVariant(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].dictionary
                    ) {
                        sink &+= result.variantKey.utf8.count &+ (result.isMatch ? 1 : 0)
                    }
                case .boolean:
                    if let result = try? client.evaluateBoolean(
                        flagKey: requests[index].flagKey,
                        entityID: requests[index].entityID,
                        context: requests[index].dictionary
                    ) {
                        sink &+= result.isEnabled ? 1 : 2
                    }
                }
            }
            return sink
        }
    }
}
