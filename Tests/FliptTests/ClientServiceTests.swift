import Flipt
import FliptTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `FliptClient` as a swift-service-lifecycle `Service`, in a `ServiceGroup` with an app's own service.
@Suite("FliptClient as a Service", .timeLimit(.minutes(1)))
struct ClientServiceTests {
    /// An app service that evaluates a flag while it runs and once more when told to shut down gracefully.
    final class AppService: Service, Sendable {
        let client: FliptClient
        let server: TestFliptServer
        /// What the app saw, in order.
        let journal = Mutex<[String]>([])

        init(client: FliptClient, server: TestFliptServer) {
            self.client = client
            self.server = server
        }

        func run() async throws {
            note("started: \(describe())")
            await withGracefulShutdownHandler {
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            } onGracefulShutdown: {
            }
            // The client is listed before the app, so the group stops it after the app: it still polls here.
            let polls = server.requests(to: .snapshot).count
            let syncing = await eventually(timeout: .seconds(10)) { server.requests(to: .snapshot).count > polls }
            note("stopping: \(describe())\(syncing ? ", client syncing" : ", client stopped")")
        }

        private func describe() -> String {
            (try? client.listFlags().first?.description).flatMap { $0 } ?? "no answer"
        }

        private func note(_ line: String) { journal.withLock { $0.append(line) } }
    }

    @Test("a client made with startsSyncing: false syncs only while a ServiceGroup runs it, and stops after the app")
    func serviceGroup() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let seed = String(decoding: FixtureDocument.bytes(revision: 0), as: UTF8.self)
            var options = testOptions(url: server.baseURL, cache: nil)
            options.snapshot = seed
            let client = try FliptClient(options: options, startsSyncing: false)
            #expect(try servedRevision(client) == "revision 0")  // the seed answers before anything runs
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.requests(to: .snapshot).isEmpty)

            let app = AppService(client: client, server: server)
            let group = ServiceGroup(
                configuration: .init(services: [client, app], logger: Logger(label: "test"))
            )
            async let running: Void = group.run()
            #expect(await eventually { (try? servedRevision(client)) == "revision 1" })
            await group.triggerGracefulShutdown()
            try await running

            let journal = app.journal.withLock { $0 }
            #expect(journal.count == 2, "\(journal)")
            #expect(journal.last == "stopping: revision 1, client syncing", "\(journal)")
            // Stopped: no request follows, and evaluations still answer.
            let requests = server.requests(to: .snapshot).count
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests(to: .snapshot).count == requests)
            #expect(try servedRevision(client) == "revision 1")
            try await client.run()  // a closed client's run returns at once
        }
    }

    @Test("cancelling the task that runs a started client stops its sync")
    func cancellation() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil))
            try await client.waitUntilReady(timeout: .seconds(20))
            let running = Task { try await client.run() }
            try await Task.sleep(for: .milliseconds(200))
            running.cancel()
            try await running.value
            let requests = server.requests(to: .snapshot).count
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests(to: .snapshot).count == requests)
        }
    }

    @Test("SIGTERM to the process shuts the group down in order: the app first, then the client")
    func sigterm() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(revision: 1))
            let client = try FliptClient(options: testOptions(url: server.baseURL, cache: nil), startsSyncing: false)
            let app = AppService(client: client, server: server)
            let group = ServiceGroup(
                configuration: .init(
                    services: [client, app],
                    gracefulShutdownSignals: [.sigterm],
                    logger: Logger(label: "test")
                )
            )
            async let running: Void = group.run()
            // Once the client has fetched, the group runs, and its SIGTERM handler is in place.
            #expect(await eventually { (try? servedRevision(client)) == "revision 1" })
            #expect(await eventually { app.journal.withLock { !$0.isEmpty } })
            kill(getpid(), SIGTERM)
            try await running
            #expect(app.journal.withLock { $0.last } == "stopping: revision 1, client syncing")
            let requests = server.requests(to: .snapshot).count
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests(to: .snapshot).count == requests)
        }
    }
}
