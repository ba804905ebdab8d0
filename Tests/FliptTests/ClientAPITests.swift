import Flipt
import FliptSync
import FliptTestSupport
import Foundation
import Testing

@Suite("FliptClient API: validation, seeds, snapshots, configuration errors")
struct ClientAPITests {
    static let unreachable = "http://127.0.0.1:9"

    static func seededClient(_ seed: String, strategy: ErrorStrategy = .fallback) throws -> FliptClient {
        var options = ClientOptions(
            url: unreachable,
            errorStrategy: strategy,
            snapshot: seed,
            cache: CacheOptions(location: .disabled)
        )
        options.retryPolicy = RetryPolicy(
            maximumRetries: 3,
            baseDelay: .milliseconds(10),
            maximumDelay: .milliseconds(40)
        )
        return try FliptClient(options: options)
    }

    @Test("empty or blank flag keys and entity ids are rejected with a clear error")
    func validation() throws {
        let client = try Self.seededClient(FixtureDocument.json())
        defer { client.close() }
        for (flag, entity) in [("", "u"), ("  ", "u"), ("flag0", ""), ("flag0", " \t")] {
            let error = #expect(throws: FliptError.self) { try client.evaluateVariant(flagKey: flag, entityID: entity) }
            #expect(error?.code == .invalidRequest)
            #expect(error?.message.contains(flag.isEmpty || flag == "  " ? "flag_key" : "entity_id") == true)
        }
        let batchError = #expect(throws: FliptError.self) {
            try client.evaluateBatch(requests: [
                EvaluationRequest(flagKey: "flag0", entityID: "u"), EvaluationRequest(flagKey: "", entityID: "u"),
            ])
        }
        #expect(batchError?.message.contains("request 1") == true)
    }

    @Test("the EvaluationContext forms answer as the dictionary forms, validate, and compare keys byte for byte")
    func evaluationContextForms() throws {
        // The fixture's segment matches property "fizz" == "buzz"; rename the property to "é" (U+00E9, NFC).
        let seed = FixtureDocument.json().replacingOccurrences(of: "\"fizz\"", with: "\"\u{E9}\"")
        let client = try Self.seededClient(seed)
        defer { client.close() }
        let composed: EvaluationContext = ["\u{E9}": "buzz"]
        let decomposed: EvaluationContext = ["e\u{301}": "buzz"]
        let viaContext = try client.evaluateVariant(flagKey: "flag0", entityID: "u", context: composed)
        let viaDictionary = try client.evaluateVariant(flagKey: "flag0", entityID: "u", context: ["\u{E9}": "buzz"])
        #expect(viaContext.isMatch && viaContext.reason == .match && viaContext.segmentKeys == ["segment1"])
        #expect(viaContext.variantKey == viaDictionary.variantKey && viaContext.isMatch == viaDictionary.isMatch)
        // Canonically equivalent but different bytes: no match, through either form.
        #expect(try !client.evaluateVariant(flagKey: "flag0", entityID: "u", context: decomposed).isMatch)
        #expect(try !client.evaluateVariant(flagKey: "flag0", entityID: "u", context: ["e\u{301}": "buzz"]).isMatch)
        let boolean = try client.evaluateBoolean(flagKey: "flag1", entityID: "u", context: composed)
        let booleanViaDictionary = try client.evaluateBoolean(
            flagKey: "flag1",
            entityID: "u",
            context: ["\u{E9}": "buzz"]
        )
        #expect(boolean.isEnabled == booleanViaDictionary.isEnabled && boolean.reason == booleanViaDictionary.reason)
        for (flag, entity) in [("", "u"), ("flag0", " ")] {
            let error = #expect(throws: FliptError.self) {
                try client.evaluateVariant(flagKey: flag, entityID: entity, context: composed)
            }
            #expect(error?.code == .invalidRequest)
        }
        let wrongType = #expect(throws: FliptError.self) {
            try client.evaluateBoolean(flagKey: "flag0", entityID: "u", context: composed)
        }
        #expect(wrongType?.code == .wrongFlagType)
    }

    @Test("evaluation errors carry the official messages and a code")
    func evaluationErrors() throws {
        let client = try Self.seededClient(FixtureDocument.json())
        defer { client.close() }
        let missing = #expect(throws: FliptError.self) { try client.evaluateVariant(flagKey: "nope", entityID: "u") }
        #expect(missing?.code == .flagNotFound)
        #expect(missing?.message == "invalid request: failed to get flag information default/nope")
        let wrong = #expect(throws: FliptError.self) { try client.evaluateBoolean(flagKey: "flag0", entityID: "u") }
        #expect(wrong?.code == .wrongFlagType)
        #expect(wrong?.message == "invalid request: flag0 is not a boolean flag")
        let batch = try client.evaluateBatch(requests: [
            EvaluationRequest(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"]),
            EvaluationRequest(flagKey: "flag1", entityID: "u"),
            EvaluationRequest(flagKey: "nope", entityID: "u"),
        ])
        #expect(batch.responses.map(\.type) == [.variant, .boolean, .error])
    }

    @Test("getSnapshot() round-trips into another client, which evaluates identically")
    func snapshotRoundTrip() throws {
        let original = try Self.seededClient(FixtureDocument.json(flagCount: 6, revision: 3))
        defer { original.close() }
        let exported = try original.getSnapshot()
        #expect(Data(base64Encoded: exported) != nil)
        let copy = try Self.seededClient(exported)
        defer { copy.close() }
        #expect(copy.status.source == .seed)
        for entity in ["a", "b", "user-42", "é"] {
            let left = try original.evaluateBoolean(flagKey: "flag1", entityID: entity)
            let right = try copy.evaluateBoolean(flagKey: "flag1", entityID: entity)
            #expect(left.isEnabled == right.isEnabled && left.reason == right.reason)
        }
        #expect(try copy.listFlags().map(\.key) == original.listFlags().map(\.key))
    }

    @Test("a seed is served under fail until a fetch fails; with no data at all, evaluations say so")
    func seedAndNoData() async throws {
        let seeded = try Self.seededClient(FixtureDocument.json(), strategy: .fail)
        #expect(try seeded.evaluateBoolean(flagKey: "flag1", entityID: "u").flagKey == "flag1")
        #expect(await eventually { seeded.status.lastError != nil })
        #expect(throws: FliptError.self) { try seeded.evaluateBoolean(flagKey: "flag1", entityID: "u") }
        seeded.close()

        let empty = try FliptClient(
            options: ClientOptions(url: Self.unreachable, cache: CacheOptions(location: .disabled))
        )
        defer { empty.close() }
        let error = #expect(throws: FliptError.self) { try empty.listFlags() }
        #expect(error?.code == .noData)
        #expect(empty.status.source == DataSource.none)
        #expect(throws: FliptError.self) { try empty.getSnapshot() }
    }

    @Test(
        "bad configuration throws at init with a message naming the problem",
        arguments: [
            (ClientOptions(url: "not a url", cache: CacheOptions(location: .disabled)), "URL"),
            (ClientOptions(url: "ftp://host", cache: CacheOptions(location: .disabled)), "http"),
            (ClientOptions(updateInterval: .zero, cache: CacheOptions(location: .disabled)), "interval"),
            (ClientOptions(cache: CacheOptions(location: .disabled, historyDepth: 0)), "history depth"),
            (ClientOptions(snapshot: "%%%", cache: CacheOptions(location: .disabled)), "snapshot"),
            (ClientOptions(snapshot: #"{"flags":[]}"#, cache: CacheOptions(location: .disabled)), "seed"),
            (ClientOptions(cache: CacheOptions(location: .file("/proc/flipt/cache.sqlite3"))), "cache"),
        ]
    )
    func badConfiguration(options: ClientOptions, mention: String) {
        let error = #expect(throws: FliptError.self) { try FliptClient(options: options) }
        #expect(error?.message.localizedCaseInsensitiveContains(mention) == true, "\(error?.message ?? "")")
    }

    @Test("a seed of another namespace is refused")
    func seedNamespaceMismatch() {
        let error = #expect(throws: FliptError.self) {
            try FliptClient(
                namespace: "production",
                options: ClientOptions(snapshot: FixtureDocument.json(), cache: CacheOptions(location: .disabled))
            )
        }
        #expect(error?.code == .invalidSnapshot)
    }
}
