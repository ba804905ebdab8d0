import Flipt
import FliptTestSupport
import Foundation
import Synchronization
import Testing

/// A hook that writes down every stage it sees, with what it was given, into a log shared by several hooks.
final class RecordingHook: EvaluationHook {
    struct Stage: Sendable, Hashable {
        var hook: String
        var stage: String
        var flagKey: String
        var value: FlagValue?
        var reason: EvaluationReason?
        var errorCode: FliptError.Code?
        var provenance: SnapshotProvenance?
        var defaultValue: FlagValue?
    }

    /// The stages of several hooks in the order they ran, as `name.stage`.
    final class Trail: Sendable {
        let entries = Mutex<[String]>([])

        func take() -> [String] {
            entries.withLock { entries in
                defer { entries = [] }
                return entries
            }
        }
    }

    let name: String
    let trail: Trail
    private let log = Mutex<[Stage]>([])

    init(_ name: String, trail: Trail = Trail()) {
        self.name = name
        self.trail = trail
    }

    var stages: [Stage] { log.withLock { $0 } }

    private func append(_ stage: Stage) {
        log.withLock { $0.append(stage) }
        trail.entries.withLock { $0.append("\(name).\(stage.stage)") }
    }

    func before(_ evaluation: EvaluationHookContext) {
        append(Stage(hook: name, stage: "before", flagKey: evaluation.flagKey, defaultValue: evaluation.defaultValue))
    }

    func after(_ evaluation: EvaluationHookContext, result: some FlagEvaluationResult, provenance: SnapshotProvenance) {
        append(
            Stage(
                hook: name,
                stage: "after",
                flagKey: evaluation.flagKey,
                value: result.value,
                reason: result.reason,
                provenance: provenance,
                defaultValue: evaluation.defaultValue
            )
        )
    }

    func error(_ evaluation: EvaluationHookContext, error: FliptError, provenance: SnapshotProvenance) {
        append(
            Stage(
                hook: name,
                stage: "error",
                flagKey: evaluation.flagKey,
                errorCode: error.code,
                provenance: provenance,
                defaultValue: evaluation.defaultValue
            )
        )
    }

    func finally(_ evaluation: EvaluationHookContext) {
        append(Stage(hook: name, stage: "finally", flagKey: evaluation.flagKey, defaultValue: evaluation.defaultValue))
    }
}

@Suite("Evaluation hooks", .timeLimit(.minutes(1)))
struct EvaluationHookTests {
    @Test("client hooks run before per-call hooks, and after, error and finally run in reverse order")
    func order() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let trail = RecordingHook.Trail()
            let first = RecordingHook("client1", trail: trail)
            let second = RecordingHook("client2", trail: trail)
            let call = RecordingHook("call", trail: trail)
            var options = testOptions(url: server.baseURL, cache: nil)
            options.hooks = [first, second]
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(20))
            _ = trail.take()

            let result = try client.evaluateVariant(
                flagKey: "flag0",
                entityID: "user-1",
                context: ["fizz": "buzz"],
                hooks: [call]
            )
            #expect(
                trail.take() == [
                    "client1.before", "client2.before", "call.before", "call.after", "client2.after", "client1.after",
                    "call.finally", "client2.finally", "client1.finally",
                ]
            )
            let after = try #require(first.stages.first { $0.stage == "after" })
            #expect(after.value == .variant(result.variantKey))
            #expect(after.reason == .match)
            #expect(after.provenance?.source == .network)
            #expect(after.provenance?.etag == server.digest())
            #expect(after.provenance?.fetchedAt != nil)

            let error = #expect(throws: FliptError.self) {
                try client.evaluateBoolean(flagKey: "missing", entityID: "user-1", hooks: [call])
            }
            #expect(error?.code == .flagNotFound)
            #expect(
                trail.take() == [
                    "client1.before", "client2.before", "call.before", "call.error", "client2.error", "client1.error",
                    "call.finally", "client2.finally", "client1.finally",
                ]
            )
            #expect(first.stages.last { $0.stage == "error" }?.errorCode == .flagNotFound)
            await client.shutdown()
        }
    }

    @Test("the client's hooks see the evaluations of the forms without a hooks parameter, and their errors")
    func clientHooksSeePlainForms() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let hook = RecordingHook("client")
            var options = testOptions(url: server.baseURL, cache: nil)
            options.hooks = [hook]
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(20))

            let enabled = try client.evaluateBoolean(flagKey: "flag1", entityID: "user-1", context: ["fizz": "buzz"])
            #expect(throws: FliptError.self) { try client.evaluateVariant(flagKey: "flag1", entityID: "user-1") }
            #expect(throws: FliptError.self) { try client.evaluateVariant(flagKey: " ", entityID: "user-1") }
            let stages = hook.stages.filter { $0.stage == "after" || $0.stage == "error" }
            #expect(stages.map(\.stage) == ["after", "error", "error"])
            #expect(stages[0].value == .boolean(enabled.isEnabled))
            #expect(stages[0].reason == enabled.reason)
            #expect(stages[1].errorCode == .wrongFlagType)
            #expect(stages[2].errorCode == .invalidRequest)
            #expect(stages[2].provenance?.source == .network)
            // Batch evaluations do not run hooks.
            let count = hook.stages.count
            _ = try client.evaluateBatch(requests: [EvaluationRequest(flagKey: "flag0", entityID: "user-1")])
            #expect(hook.stages.count == count)
            await client.shutdown()
        }
    }

    @Test("provenance tells a cached snapshot, with its ETag and age, from a seed and from no data")
    func provenance() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let server = try TestFliptServer()
            server.setDocument(FixtureDocument.bytes(revision: 2))
            let url = server.baseURL
            let fetching = try FliptClient(options: testOptions(url: url, cache: cache))
            try await fetching.waitUntilReady(timeout: .seconds(20))
            await fetching.shutdown()
            let digest = server.digest()
            server.stop()

            // Booted from the cache file while the server is gone: source cache, the server's ETag, an age.
            var options = testOptions(url: url, cache: cache)
            options.wallClock = { Date().addingTimeInterval(90) }
            let hook = RecordingHook("cache")
            options.hooks = [hook]
            let cached = try FliptClient(options: options)
            _ = try cached.evaluateVariant(flagKey: "flag0", entityID: "user-1")
            let provenance = try #require(hook.stages.first { $0.stage == "after" }?.provenance)
            #expect(provenance.source == .cache)
            #expect(provenance.etag == digest)
            let age = try #require(provenance.age)
            #expect(age >= .seconds(89))
            #expect(provenance.age(at: .now + .seconds(10))! > age)
            await cached.shutdown()

            // A seed, no cache: source seed, no ETag.
            var seeded = testOptions(url: url, cache: nil)
            seeded.snapshot = FixtureDocument.json(revision: 3)
            let seedHook = RecordingHook("seed")
            seeded.hooks = [seedHook]
            let seedClient = try FliptClient(options: seeded)
            _ = try seedClient.evaluateBoolean(flagKey: "flag1", entityID: "user-1")
            let seedProvenance = try #require(seedHook.stages.first { $0.stage == "after" }?.provenance)
            #expect(seedProvenance.source == .seed)
            #expect(seedProvenance.etag == nil)
            await seedClient.shutdown()

            // Nothing at all: the error stage gets no data and provenance none.
            var empty = testOptions(url: url, cache: nil)
            let emptyHook = RecordingHook("empty")
            empty.hooks = [emptyHook]
            let emptyClient = try FliptClient(options: empty)
            #expect(throws: FliptError.self) { try emptyClient.evaluateBoolean(flagKey: "flag1", entityID: "user-1") }
            let error = try #require(emptyHook.stages.first { $0.stage == "error" })
            #expect(error.errorCode == .noData)
            #expect(error.provenance == SnapshotProvenance.noData)
            #expect(error.provenance?.age == nil)
            await emptyClient.shutdown()
        }
    }
}
