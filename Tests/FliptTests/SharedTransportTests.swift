import Flipt
import FliptStore
import FliptSync
import FliptTestSupport
import Foundation
import Testing

/// Several clients (one per namespace) on one transport from `ClientOptions.makeTransport()`, against a real
/// loopback server that records the connection each request arrived on.
@Suite("Clients sharing one transport", .timeLimit(.minutes(1)))
struct SharedTransportTests {
    static let namespaces = ["alpha", "beta", "gamma"]

    /// Starts one client per namespace, each after the previous one's first fetch, so that a shared pool has an
    /// idle connection to hand on; returns the clients.
    static func startOneByOne(
        server: TestFliptServer,
        options: ClientOptions
    ) async throws -> [FliptClient] {
        var clients: [FliptClient] = []
        for namespace in namespaces {
            let client = try FliptClient(namespace: namespace, options: options)
            try await client.waitUntilReady(timeout: .seconds(20))
            #expect(try client.listFlags().count == 2)
            clients.append(client)
        }
        return clients
    }

    /// The snapshot requests of each namespace, by the connection they came on.
    static func namespacesByConnection(_ server: TestFliptServer) -> [Int: Set<String>] {
        var result: [Int: Set<String>] = [:]
        for request in server.requests(to: .snapshot) {
            guard let namespace = namespaces.first(where: { request.path.hasSuffix("/\($0)") }) else { continue }
            result[request.connectionID, default: []].insert(namespace)
        }
        return result
    }

    @Test("the polls of three namespaces travel on one connection; a transport each takes three")
    func oneConnectionPool() async throws {
        try await withTestServer { server in
            for namespace in Self.namespaces {
                server.setDocument(FixtureDocument.bytes(namespace: namespace), namespace: namespace)
            }
            // A poll interval far beyond the test: each client fetches once, at start.
            var options = testOptions(url: server.baseURL, cache: nil, updateInterval: .seconds(3600))

            // Shared: every request reuses the pool's one idle keep-alive connection.
            let transport = try options.makeTransport()
            options.transport = transport
            let shared = try await Self.startOneByOne(server: server, options: options)
            let sharedConnections = Self.namespacesByConnection(server)
            #expect(server.traffic.connections == 1, "\(sharedConnections)")
            #expect(sharedConnections.count == 1)
            #expect(sharedConnections.values.first == Set(Self.namespaces))
            for client in shared { await client.shutdown() }
            await transport.shutdown()

            // With no transport given, the clients of one server share the process's default one the same way.
            server.resetLog()
            options.transport = nil
            let automatic = try await Self.startOneByOne(server: server, options: options)
            #expect(server.traffic.connections == 1, "\(Self.namespacesByConnection(server))")
            for client in automatic { await client.shutdown() }

            // The control: a transport per client, one connection each.
            server.resetLog()
            var separate: [FliptClient] = []
            var transports: [SharedTransport] = []
            for namespace in Self.namespaces {
                var own = options
                own.transport = try options.makeTransport()
                transports.append(own.transport!)
                let client = try FliptClient(namespace: namespace, options: own)
                try await client.waitUntilReady(timeout: .seconds(20))
                separate.append(client)
            }
            #expect(server.traffic.connections == Self.namespaces.count)
            #expect(Self.namespacesByConnection(server).values.allSatisfy { $0.count == 1 })
            for client in separate { await client.shutdown() }
            for transport in transports { await transport.shutdown() }
        }
    }

    /// How many of this process's open file descriptors name `path`.
    static func openDescriptors(of path: String) throws -> Int {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == target
        }.count
    }

    @Test("the clients of several namespaces keep one connection to their cache file, closed with the last client")
    func oneCacheConnection() async throws {
        try await withTemporaryDirectory { directory in
            let cache = directory.path + "/cache.sqlite3"
            try await withTestServer { server in
                for namespace in Self.namespaces {
                    server.setDocument(FixtureDocument.bytes(namespace: namespace), namespace: namespace)
                }
                let options = testOptions(url: server.baseURL, cache: cache, updateInterval: .seconds(3600))
                var clients = try await Self.startOneByOne(server: server, options: options)
                #expect(try Self.openDescriptors(of: cache) == 1)
                do {
                    // Each namespace is in the one file. (This reader is a connection of its own.)
                    let store = try await SnapshotStore(path: cache, options: .init(readOnly: true))
                    #expect(
                        await eventually { Set((try? store.keys().map(\.namespace)) ?? []) == Set(Self.namespaces) }
                    )
                }

                for client in clients { await client.shutdown() }
                clients.removeAll()
                // SQLite defers closing a file while another connection of the process holds it: all close now.
                #expect(await eventually { (try? Self.openDescriptors(of: cache)) == 0 })
            }
        }
    }

    @Test("a client that shuts down leaves the shared transport to the others; an unknown namespace fails alone")
    func shutdownAndFailureStayLocal() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes(namespace: "alpha", revision: 1), namespace: "alpha")
            server.setDocument(FixtureDocument.bytes(namespace: "beta", revision: 1), namespace: "beta")
            var options = testOptions(url: server.baseURL, cache: nil)
            let transport = try options.makeTransport()
            options.transport = transport
            let alpha = try FliptClient(namespace: "alpha", options: options)
            let beta = try FliptClient(namespace: "beta", options: options)
            let missing = try FliptClient(namespace: "missing", options: options)
            try await alpha.waitUntilReady(timeout: .seconds(20))
            try await beta.waitUntilReady(timeout: .seconds(20))
            #expect(await eventually { missing.status.lastError != nil })
            let error = try #require(missing.status.lastError)
            #expect(error.message.contains("404"), "\(error.message)")
            #expect(beta.status.lastError == nil)

            await alpha.shutdown()
            // beta keeps polling on the transport alpha used: it picks up a change.
            server.setDocument(FixtureDocument.bytes(namespace: "beta", revision: 2), namespace: "beta")
            #expect(await eventually { (try? servedRevision(beta)) == "revision 2" })
            await beta.shutdown()
            await missing.shutdown()
            await transport.shutdown()

            // Once the owner shut it down, the transport refuses new requests.
            let request = TransportRequest(url: server.baseURL, headers: [])
            await #expect(throws: SyncError.self) { try await transport.base.send(request) }
        }
    }
}
