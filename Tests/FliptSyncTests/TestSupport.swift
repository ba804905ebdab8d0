import FliptSync
import FliptTestSupport
import Foundation
import Synchronization
import Testing

/// A fetcher for `server` with a recording clock (back-off waits return at once) and seeded jitter.
func makeFetcher(
    _ server: TestFliptServer,
    clock: any Clock<Duration> = RecordingClock(),
    seed: UInt64 = 42,
    transport: (any HTTPTransport)? = nil,
    configure: (inout SyncConfiguration) -> Void = { _ in }
) throws -> SnapshotFetcher {
    var configuration = SyncConfiguration(url: server.baseURL)
    configure(&configuration)
    return try SnapshotFetcher(
        configuration: configuration,
        transport: transport ?? sharedTransport,
        clock: clock,
        random: .seeded(seed)
    )
}

/// One transport for the whole test run, as an application would have: the kind a fetcher makes when given none
/// (AsyncHTTPClient on Linux, URLSession elsewhere), so that the tests check what users get.
let sharedTransport: any HTTPTransport = {
    do {
        #if canImport(FoundationNetworking)
        return try AsyncHTTPClientTransport()
        #else
        return try URLSessionTransport()
        #endif
    } catch {
        fatalError("the default transport failed: \(error)")
    }
}()

/// A URLSession transport, for the tests that compare it with the default one.
let sessionTransport: URLSessionTransport = {
    do {
        return try URLSessionTransport()
    } catch {
        fatalError("URLSessionTransport() failed: \(error)")
    }
}()

/// Runs `body`, returning the error it threw, or nil.
func syncError<T>(_ body: () async throws -> T) async -> SyncError? {
    do {
        _ = try await body()
        return nil
    } catch let error as SyncError {
        return error
    } catch {
        Issue.record("expected a SyncError, got \(error)")
        return nil
    }
}

/// Collects the events of a sync loop, thread-safely.
final class EventLog: Sendable {
    private let events = Mutex<[SyncLoop.Event]>([])

    func append(_ event: SyncLoop.Event) {
        events.withLock { $0.append(event) }
    }

    var all: [SyncLoop.Event] { events.withLock { $0 } }

    var updates: [FetchedSnapshot] {
        all.compactMap { if case .updated(let snapshot) = $0 { snapshot } else { nil } }
    }

    var failures: [SyncError] {
        all.compactMap { if case .failed(let error) = $0 { error } else { nil } }
    }

    var unchanged: [String] {
        all.compactMap { if case .unchanged(let etag) = $0 { etag } else { nil } }
    }

    /// Waits (polling every 10 ms) until `condition` holds or `timeout` passes.
    func wait(timeout: Duration = .seconds(30), until condition: (EventLog) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }
}

extension FetchOutcome {
    var fetched: FetchedSnapshot? {
        if case .modified(let fetched) = self { fetched } else { nil }
    }

    var notModifiedETag: String? {
        if case .notModified(let etag) = self { etag } else { nil }
    }
}
