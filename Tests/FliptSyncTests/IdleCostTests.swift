import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// A device waits on its server most of the time: for the answer of a slow server, and all day on a stream with
/// nothing to say. Those waits must cost no processor time. (FoundationNetworking's URLSession keeps a core busy
/// on Linux while it waits for a response or for the rest of its body: both request cases fail with it, which is
/// why the default transport there is AsyncHTTPClient.)
@Suite("Waiting on the server costs no processor time", .serialized, .timeLimit(.minutes(1)))
struct IdleCostTests {
    /// The wait measured, and the share of it the process may spend on a processor.
    static let wait = Duration.seconds(2)
    static let maximumShare = 0.15

    @Test(
        "a request to a server that never answers, or answers its headers and then stalls, with the default transport",
        arguments: [TestFliptServer.Fault.silent, .slowBody(chunkSize: 1, interval: .seconds(30))]
    )
    func silentServer(fault: TestFliptServer.Fault) async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(fault)
            var configuration = SyncConfiguration(url: server.baseURL, requestTimeout: Self.wait)
            configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
            let fetcher = try SnapshotFetcher(configuration: configuration)
            let start = (ContinuousClock.now, processCPUTime())
            let error = await syncError { try await fetcher.fetch(ifNoneMatch: nil) }
            let (wall, cpu) = (ContinuousClock.now - start.0, processCPUTime() - start.1)
            #expect(error?.kind == .timeout)
            #expect(wall >= Self.wait)
            #expect(cpu < wall * Self.maximumShare, "\(cpu) of processor time while waiting \(wall)")
        }
    }

    @Test("a stream that stays quiet after its first snapshot, with the default transport")
    func quietStream() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.stream([.headers, .currentSnapshot, .pause(.seconds(3_600))]), on: .stream)
            var configuration = SyncConfiguration(url: server.baseURL, fetchMode: .streaming)
            configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
            let fetcher = try SnapshotFetcher(configuration: configuration)
            let log = EventLog()
            let loop = SyncLoop(fetcher: fetcher, random: .seeded(3))
            let task = Task { await loop.run(etag: nil) { log.append($0) } }
            let updated = await log.wait { !$0.updates.isEmpty }
            #expect(updated, "the stream's first snapshot never arrived; events: \(log.all)")
            let start = (ContinuousClock.now, processCPUTime())
            try await Task.sleep(for: Self.wait)
            let (wall, cpu) = (ContinuousClock.now - start.0, processCPUTime() - start.1)
            #expect(server.openStreamCount == 1, "the quiet stream was dropped; events: \(log.all)")
            task.cancel()
            await task.value
            #expect(cpu < wall * Self.maximumShare, "\(cpu) of processor time while the stream was quiet for \(wall)")
        }
    }
}
