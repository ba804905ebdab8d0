import FliptTestSupport
import Foundation
import NIOCore
import Testing

@testable import FliptRelay

/// How many event loops serve the connections (``RelayServer/Configuration/eventLoops``) and their yielding of
/// the core after each round of answers (``RelayServer/Configuration/yieldsCore``), through real sockets.
@Suite("Relay event loops", .timeLimit(.minutes(1)))
struct EventLoopsTests {
    static let path = "/internal/v1/evaluation/snapshot/namespace/default"

    /// Opens `count` connections, each answered once, and returns them (open) with the served document.
    static func answeredConnections(_ count: Int, port: UInt16) throws -> [RawHTTPClient] {
        try (0..<count).map { _ in
            let client = try RawHTTPClient(port: port)
            try client.get(path)
            let response = try client.readResponse()
            #expect(response.status == 200)
            return client
        }
    }

    @Test("with eventLoops 3, connections are spread over three loops, each answers, and the server stops")
    func ownLoops() async throws {
        let served = RelayFixtures.served(etag: "loops")
        var configuration = RelayServer.Configuration()
        configuration.eventLoops = 3
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(snapshots: [served]), configuration: configuration)
        {
            server,
            port in
            let clients = try Self.answeredConnections(6, port: port)
            let loops = Set(server.openChannels.map { ObjectIdentifier($0.eventLoop) })
            #expect(loops.count == 3)
            // Every connection keeps being answered on its loop.
            for client in clients {
                try client.get(Self.path, headers: ["If-None-Match: loops"])
                #expect(try client.readResponse().status == 304)
            }
            #expect(server.statistics.requests == 12)
        }
    }

    @Test("a server on its own loops that is never started stops at once")
    func ownLoopsNeverStarted() async {
        var configuration = RelayServer.Configuration()
        configuration.eventLoops = 2
        let server = RelayServer(configuration: configuration, catalog: SnapshotCatalog())
        await server.shutdown()
        #expect(server.isStopping)
        #expect(server.boundAddress == nil)
    }

    @Test("event loops yield their core after answering a round (default), and never when yieldsCore is false")
    func yields() async throws {
        let served = RelayFixtures.served(etag: "yield")
        for yieldsCore in [true, false] {
            var configuration = RelayServer.Configuration()
            configuration.yieldsCore = yieldsCore
            try await RelayFixtures.withServer(
                catalog: SnapshotCatalog(snapshots: [served]),
                configuration: configuration
            ) { server, port in
                let clients = try Self.answeredConnections(4, port: port)
                for _ in 0..<5 {
                    for client in clients {
                        try client.get(Self.path, headers: ["If-None-Match: yield"])
                        #expect(try client.readResponse().status == 304)
                    }
                }
                #expect(server.statistics.requests == 24)
                if yieldsCore {
                    // The yield runs right after the round that wrote the answer, maybe after the client read it.
                    #expect(await eventually { server.coreYields > 0 })
                } else {
                    #expect(server.coreYields == 0)
                }
            }
        }
    }
}
