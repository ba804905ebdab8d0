import Flipt
import FliptTestSupport
import Foundation
import Logging
import Metrics
import MetricsTestKit
import Testing

@Suite("Default-value evaluation and details", .timeLimit(.minutes(1)))
struct DefaultValueTests {
    @Test("evaluated flags give their value, reason, segments and provenance; the default is not used")
    func evaluated() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil))
            try await client.waitUntilReady(timeout: .seconds(20))
            let context = ["fizz": "buzz"]

            let expected = try client.evaluateVariant(flagKey: "flag0", entityID: "user-1", context: context)
            #expect(
                client.variantKey(flagKey: "flag0", entityID: "user-1", context: context, default: "off") == "variant1"
            )
            let details = client.variantKeyDetails(
                flagKey: "flag0",
                entityID: "user-1",
                context: context,
                default: "off"
            )
            #expect(details.value == expected.variantKey)
            #expect(details.reason == .match)
            #expect(details.segmentKeys == ["segment1"])
            #expect(details.variantAttachment == expected.variantAttachment)
            #expect(details.error == nil && details.errorCode == nil && !details.isDefaultValue)
            #expect(details.provenance.source == .network)
            #expect(details.provenance.etag == server.digest())

            let boolean = try client.evaluateBoolean(flagKey: "flag1", entityID: "user-1", context: context)
            #expect(
                client.booleanValue(flagKey: "flag1", entityID: "user-1", context: context, default: !boolean.isEnabled)
                    == boolean.isEnabled
            )
            let booleanDetails = client.booleanValueDetails(
                flagKey: "flag1",
                entityID: "user-1",
                context: EvaluationContext(context),
                default: false
            )
            #expect(booleanDetails.value == boolean.isEnabled)
            #expect(booleanDetails.reason == boolean.reason)
            await client.shutdown()
        }
    }

    @Test("a missing flag, a wrong type or an empty key give the default, and the error reaches details and hooks")
    func requestErrors() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let hook = RecordingHook("client")
            var options = testOptions(url: server.baseURL, cache: nil)
            options.hooks = [hook]
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(20))

            #expect(client.booleanValue(flagKey: "missing", entityID: "user-1", default: true) == true)
            #expect(client.booleanValue(flagKey: "flag0", entityID: "user-1", default: true) == true)
            #expect(client.variantKey(flagKey: "flag1", entityID: "user-1", default: "fallback") == "fallback")
            #expect(client.variantKey(flagKey: "", entityID: "user-1", default: "fallback") == "fallback")
            let missing = client.variantKeyDetails(flagKey: "missing", entityID: "user-1", default: "fallback")
            #expect(missing.value == "fallback" && missing.reason == nil && missing.isDefaultValue)
            #expect(missing.errorCode == .flagNotFound)
            #expect(missing.error?.message.contains("missing") == true)
            let wrongType = client.booleanValueDetails(flagKey: "flag0", entityID: "user-1", default: false)
            #expect(wrongType.errorCode == .wrongFlagType && wrongType.value == false)

            let errors = hook.seen.filter { $0.stage == "error" }
            #expect(
                errors.map(\.errorCode) == [
                    .flagNotFound, .wrongFlagType, .wrongFlagType, .invalidRequest, .flagNotFound, .wrongFlagType,
                ]
            )
            #expect(
                errors.map(\.defaultValue) == [
                    .boolean(true), .boolean(true), .variant("fallback"), .variant("fallback"), .variant("fallback"),
                    .boolean(false),
                ]
            )
            await client.shutdown()
        }
    }

    @Test("no data and a stale snapshot under .fail give the default with their codes")
    func dataErrors() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            let server = try TestFliptServer()
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let url = server.baseURL
            server.enqueue(.silent)
            // No cache, no seed, and a first request that hangs: no data.
            let empty = try FliptClient(options: testOptions(url: url, cache: nil, requestTimeout: .seconds(30)))
            let noData = empty.booleanValueDetails(flagKey: "flag1", entityID: "user-1", default: true)
            #expect(noData.value == true && noData.errorCode == .noData)
            #expect(noData.provenance.source == .none)
            await empty.shutdown()
            server.clearFaults()

            let fetching = try FliptClient(options: testOptions(url: url, cache: cache))
            try await fetching.waitUntilReady(timeout: .seconds(20))
            await fetching.shutdown()
            server.stop()

            // The cached snapshot was confirmed an hour ago (by the wall clock at start-up): stale at once.
            var options = testOptions(url: url, cache: cache, maximumAge: .seconds(60), staleBehavior: .fail)
            options.wallClock = { Date().addingTimeInterval(3_600) }
            let refusing = try FliptClient(options: options)
            #expect(refusing.variantKey(flagKey: "flag0", entityID: "user-1", default: "safe") == "safe")
            let stale = refusing.variantKeyDetails(flagKey: "flag0", entityID: "user-1", default: "safe")
            #expect(stale.errorCode == .stale)
            #expect(stale.provenance.source == .cache)
            #expect((stale.provenance.age ?? .zero) >= .seconds(3_600))
            await refusing.shutdown()
        }
    }

    @Test("a failed fetch under .fail gives the default with fetch_failed, and the last good value comes back after")
    func fetchFailure() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil, strategy: .fail))
            try await client.waitUntilReady(timeout: .seconds(20))
            #expect(
                client.variantKey(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"], default: "x")
                    == "variant1"
            )
            server.enqueue(.respond(status: 503), times: 100)
            #expect(await eventually { client.status.lastError != nil })
            let failed = client.variantKeyDetails(flagKey: "flag0", entityID: "u", default: "x")
            #expect(failed.value == "x" && failed.errorCode == .fetchFailed)
            server.clearFaults()
            #expect(await eventually { client.status.lastError == nil })
            #expect(
                client.variantKey(flagKey: "flag0", entityID: "u", context: ["fizz": "buzz"], default: "x")
                    == "variant1"
            )
            await client.shutdown()
        }
    }

    @Test("errors answered with the default are counted by code and logged at most once per code per interval")
    func errorsReachMetricsAndLog() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let metrics = TestMetrics()
            let lines = LogRecorder()
            var options = testOptions(url: server.baseURL, cache: nil)
            options.logger = lines.logger
            let client = try withMetricsFactory(metrics) { try FliptClient(options: options) }
            try await client.waitUntilReady(timeout: .seconds(20))
            for index in 0..<5 {
                #expect(client.booleanValue(flagKey: "missing-\(index)", entityID: "user-1", default: false) == false)
            }
            #expect(client.variantKey(flagKey: "flag1", entityID: "user-1", default: "off") == "off")
            // Successful evaluations are not counted there.
            _ = client.booleanValue(flagKey: "flag1", entityID: "user-1", default: false)

            let notFound = try metrics.expectCounter(
                "flipt_evaluation_defaults_total",
                [("namespace", "default"), ("code", "flag_not_found")]
            )
            #expect(notFound.totalValue == 5)
            let wrongType = try metrics.expectCounter(
                "flipt_evaluation_defaults_total",
                [("namespace", "default"), ("code", "wrong_flag_type")]
            )
            #expect(wrongType.totalValue == 1)
            let logged = lines.lines.filter { $0.contains("caller's default") }
            // One line per code within the interval: the first missing flag, and the wrong type.
            #expect(logged.count == 2, "\(logged)")
            #expect(
                logged.contains {
                    $0.hasPrefix("warning") && $0.contains("flag=missing-0") && $0.contains("code=flag_not_found")
                }
            )
            #expect(logged.contains { $0.contains("code=wrong_flag_type") })
            await client.shutdown()
        }
    }
}
