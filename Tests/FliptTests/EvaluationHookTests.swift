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
    let stages: EvaluationHookStages
    private let log = Mutex<[Stage]>([])

    /// A hook named `name` implementing `stages` (by default all four, reading the provenance).
    init(_ name: String, trail: Trail = Trail(), stages: EvaluationHookStages = [.all, .provenance]) {
        self.name = name
        self.trail = trail
        self.stages = stages
    }

    var seen: [Stage] { log.withLock { $0 } }

    private func append(_ stage: Stage) {
        log.withLock { $0.append(stage) }
        trail.entries.withLock { $0.append("\(name).\(stage.stage)") }
    }

    func before(_ evaluation: borrowing EvaluationHookContext) {
        append(Stage(hook: name, stage: "before", flagKey: evaluation.flagKey, defaultValue: evaluation.defaultValue))
    }

    func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult) {
        append(
            Stage(
                hook: name,
                stage: "after",
                flagKey: evaluation.flagKey,
                value: result.value,
                reason: result.reason,
                provenance: evaluation.provenance,
                defaultValue: evaluation.defaultValue
            )
        )
    }

    func error(_ evaluation: borrowing EvaluationHookContext, error: FliptError) {
        append(
            Stage(
                hook: name,
                stage: "error",
                flagKey: evaluation.flagKey,
                errorCode: error.code,
                provenance: evaluation.provenance,
                defaultValue: evaluation.defaultValue
            )
        )
    }

    func finally(_ evaluation: borrowing EvaluationHookContext) {
        append(Stage(hook: name, stage: "finally", flagKey: evaluation.flagKey, defaultValue: evaluation.defaultValue))
    }
}

/// A hook that runs `action` in its after stage (to replace the snapshot while the hooks run).
struct ActingHook: EvaluationHook {
    let action: @Sendable () -> Void

    var stages: EvaluationHookStages { .after }

    func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult) {
        action()
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
            let after = try #require(first.seen.first { $0.stage == "after" })
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
            #expect(first.seen.last { $0.stage == "error" }?.errorCode == .flagNotFound)
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
            let stages = hook.seen.filter { $0.stage == "after" || $0.stage == "error" }
            #expect(stages.map(\.stage) == ["after", "error", "error"])
            #expect(stages[0].value == .boolean(enabled.isEnabled))
            #expect(stages[0].reason == enabled.reason)
            #expect(stages[1].errorCode == .wrongFlagType)
            #expect(stages[2].errorCode == .invalidRequest)
            #expect(stages[2].provenance?.source == .network)
            // Batch evaluations do not run hooks.
            let count = hook.seen.count
            _ = try client.evaluateBatch(requests: [EvaluationRequest(flagKey: "flag0", entityID: "user-1")])
            #expect(hook.seen.count == count)
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
            let provenance = try #require(hook.seen.first { $0.stage == "after" }?.provenance)
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
            let seedProvenance = try #require(seedHook.seen.first { $0.stage == "after" }?.provenance)
            #expect(seedProvenance.source == .seed)
            #expect(seedProvenance.etag == nil)
            await seedClient.shutdown()

            // Nothing at all: the error stage gets no data and provenance none.
            var empty = testOptions(url: url, cache: nil)
            let emptyHook = RecordingHook("empty")
            empty.hooks = [emptyHook]
            let emptyClient = try FliptClient(options: empty)
            #expect(throws: FliptError.self) { try emptyClient.evaluateBoolean(flagKey: "flag1", entityID: "user-1") }
            let error = try #require(emptyHook.seen.first { $0.stage == "error" })
            #expect(error.errorCode == .noData)
            #expect(error.provenance == SnapshotProvenance.noData)
            #expect(error.provenance?.age == nil)
            await emptyClient.shutdown()
        }
    }

    @Test("a hook is called for the stages it declares only, as a client hook and as a per-call hook")
    func declaredStages() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let trail = RecordingHook.Trail()
            let afterOnly = RecordingHook("afterOnly", trail: trail, stages: .after)
            let beforeAndFinally = RecordingHook("beforeAndFinally", trail: trail, stages: [.before, .finally])
            let errorOnly = RecordingHook("errorOnly", trail: trail, stages: .error)
            var options = testOptions(url: server.baseURL, cache: nil)
            options.hooks = [afterOnly, beforeAndFinally]
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(20))
            _ = trail.take()

            _ = try client.evaluateVariant(flagKey: "flag0", entityID: "user-1", hooks: [errorOnly])
            #expect(trail.take() == ["beforeAndFinally.before", "afterOnly.after", "beforeAndFinally.finally"])
            #expect(throws: FliptError.self) {
                try client.evaluateVariant(flagKey: "missing", entityID: "user-1", hooks: [errorOnly])
            }
            #expect(trail.take() == ["beforeAndFinally.before", "errorOnly.error", "beforeAndFinally.finally"])
            #expect(errorOnly.seen.map(\.errorCode) == [.flagNotFound])
            await client.shutdown()
        }
    }

    @Test("with .provenance a hook sees the snapshot that answered, even when another replaces it meanwhile")
    func exactProvenance() async throws {
        /// Evaluates once with `hook` on a seeded client while a per-call hook, whose after stage runs first,
        /// swaps in a snapshot made 1,000 s later; returns when the seed was made and what `hook` saw.
        func provenanceSeen(by hook: RecordingHook) async throws -> (booted: Date, seen: SnapshotProvenance) {
            let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
            var options = testOptions(url: URL(string: "http://127.0.0.1:9")!, cache: nil)
            options.startsOffline = true
            options.snapshot = FixtureDocument.json(revision: 3)
            options.wallClock = { clock.withLock { $0 } }
            options.hooks = [hook]
            let client = try FliptClient(options: options)
            let booted = try #require(client.status.fetchedAt)
            clock.withLock { $0 = $0.addingTimeInterval(1_000) }
            let replacer = ActingHook { _ = try? client.replaceSnapshot(with: FixtureDocument.bytes(revision: 4)) }
            _ = try client.evaluateBoolean(flagKey: "flag1", entityID: "user-1", hooks: [replacer])
            #expect(client.status.fetchedAt == booted.addingTimeInterval(1_000))
            await client.shutdown()
            return (booted, try #require(hook.seen.first?.provenance))
        }

        let exact = try await provenanceSeen(by: RecordingHook("exact", stages: [.after, .provenance]))
        #expect(exact.seen.source == .seed)
        #expect(exact.seen.fetchedAt == exact.booted)
        // Without .provenance the hook reads the snapshot in use when it asks: here, the replacement.
        let current = try await provenanceSeen(by: RecordingHook("current", stages: .after))
        #expect(current.seen.fetchedAt == current.booted.addingTimeInterval(1_000))
    }

    @Test("EvaluationHookContext.with lends a context made of given values, to test a hook without a client")
    func contextForTests() throws {
        let hook = RecordingHook("direct")
        EvaluationHookContext.with(
            namespace: "production",
            flagKey: "flag0",
            entityID: "user-7",
            context: EvaluationContext(["plan": "pro"]),
            flagType: .variant,
            defaultValue: .variant("off")
        ) { evaluation in
            #expect(evaluation.namespace == "production")
            #expect(evaluation.entityID == "user-7")
            #expect(evaluation.context.entries.map { [$0.key, $0.value] } == [["plan", "pro"]])
            #expect(evaluation.flagType == .variant)
            hook.before(evaluation)
            hook.error(evaluation, error: FliptError(.flagNotFound, "no flag0"))
        }
        #expect(hook.seen.map(\.stage) == ["before", "error"])
        #expect(hook.seen.map(\.defaultValue) == [.variant("off"), .variant("off")])
        #expect(hook.seen.last?.provenance == SnapshotProvenance.noData)
    }
}
