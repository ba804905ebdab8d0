import Flipt
import FliptTestSupport
import Foundation
import Synchronization
import Testing

/// A wall clock that tests can move by days, as an operator (or a broken RTC, or NTP) would.
final class MovableWallClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)

    func jump(by interval: TimeInterval) { offset.withLock { $0 += interval } }

    var now: Date { Date().addingTimeInterval(offset.withLock { $0 }) }

    var read: @Sendable () -> Date { { [self] in now } }
}

@Suite("Wall-clock jumps never make ages negative, fresh data stale or stale data fresh")
struct ClockJumpTests {
    static let days: TimeInterval = 3 * 86_400

    @Test("jumps while running change neither ages nor maximum-age decisions", .timeLimit(.minutes(1)))
    func jumpsWhileRunning() async throws {
        try await withTemporaryDirectory { directory in
            let server = try TestFliptServer()
            defer { server.stop() }
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let wall = MovableWallClock()
            let maximumAge = Duration.milliseconds(1_500)
            var options = testOptions(
                url: server.baseURL,
                cache: directory.path + "/cache.sqlite3",
                maximumAge: maximumAge,
                staleBehavior: .fail
            )
            options.wallClock = wall.read
            let client = try FliptClient(options: options)
            try await client.waitUntilReady(timeout: .seconds(30))

            // Ages come from the monotonic clock, so a jump of days moves them by nothing; staleness follows the
            // age. The bounds below hold however late this machine runs the test: each age is compared with time
            // measured here on the same monotonic clock, never with a fixed budget.
            for jump in [Self.days, -2 * Self.days, Self.days] {
                wall.jump(by: jump)
                // Polls keep confirming the snapshot every 100 ms whatever the wall clock says.
                try await Task.sleep(for: .milliseconds(300))
                let status = client.status
                let age = try #require(status.age)
                #expect(age >= .zero && age < .seconds(60), "age \(age) after a jump of \(jump) s")
                #expect(status.isStale == (age > maximumAge))
                #expect(try servedRevision(client) == "revision 1")
            }

            // The server goes away: now only real (monotonic) time makes the snapshot stale, not the wall clock.
            server.stop()
            // A poll answered just before the stop may still be taken in: let it land before reading the baseline.
            try await Task.sleep(for: .milliseconds(200))
            let lastGood = try #require(client.status.lastConfirmedAt)
            let stopped = ContinuousClock.now
            let ageAtStop = try #require(client.status.age)
            wall.jump(by: -Self.days)
            try await Task.sleep(for: .milliseconds(500))
            let back = client.status
            let ageAfterBack = try #require(back.age)
            let sinceStop = ContinuousClock.now - stopped
            #expect(ageAfterBack >= ageAtStop, "a jump back must not make data fresher")
            #expect(ageAfterBack <= ageAtStop + sinceStop, "a jump back must not make data older")
            #expect(back.isStale == (ageAfterBack > maximumAge))
            wall.jump(by: 2 * Self.days)
            let forward = client.status
            let ageAfterForward = try #require(forward.age)
            #expect(ageAfterForward >= ageAfterBack)
            #expect(ageAfterForward <= ageAtStop + (ContinuousClock.now - stopped), "a jump forward must not age data")
            #expect(forward.isStale == (ageAfterForward > maximumAge))
            #expect(await eventually { client.status.isStale })
            let age = try #require(client.status.age)
            #expect(age > maximumAge && age < .seconds(60))
            #expect(throws: FliptError.self) { try client.evaluateBoolean(flagKey: "flag1", entityID: "u") }
            #expect(client.status.lastConfirmedAt == lastGood)
            await client.shutdown()
        }
    }

    @Test("at start-up a confirmation time in the future counts as age zero, one from days ago is stale")
    func startUpAges() async throws {
        for (skew, expectStale) in [(Self.days, false), (-Self.days, true)] {
            try await withTemporaryDirectory { directory in
                let cache = directory.path + "/cache.sqlite3"
                let server = try TestFliptServer()
                let url = server.baseURL
                server.setDocument(FixtureDocument.bytes(revision: 1))
                // The snapshot is written while the wall clock is `skew` away from the truth.
                let writer = MovableWallClock()
                writer.jump(by: skew)
                var writing = testOptions(url: url, cache: cache)
                writing.wallClock = writer.read
                let first = try FliptClient(options: writing)
                try await first.waitUntilReady(timeout: .seconds(30))
                await first.shutdown()
                server.stop()

                let client = try FliptClient(
                    options: testOptions(url: url, cache: cache, maximumAge: .seconds(3_600), staleBehavior: .fail)
                )
                let status = client.status
                let age = try #require(status.age)
                #expect(age >= .zero)
                #expect(status.isStale == expectStale, "skew \(skew) s")
                if expectStale {
                    #expect(age > .seconds(2 * 86_400))
                    let error = #expect(throws: FliptError.self) { try client.listFlags() }
                    #expect(error?.code == .stale)
                } else {
                    #expect(age < .seconds(60))
                    #expect(try servedRevision(client) == "revision 1")
                }
                await client.shutdown()
            }
        }
    }
}
