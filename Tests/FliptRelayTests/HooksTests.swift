import FliptTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import Testing

@testable import FliptRelay

/// HTTP caching headers, the authorization and TLS hooks, the service lifecycle and pushed streams.
@Suite("Relay hooks, caching and lifecycle", .timeLimit(.minutes(2)))
struct HooksTests {
    static let e1 = "/internal/v1/evaluation/snapshot/namespace/default"
    static let stream = "/client/v2/environments/default/namespaces/default/stream"

    @Test("snapshot answers (200 and 304) say no-cache and vary on the environment; streams say no-store")
    func cachingHeaders() async throws {
        let catalog = SnapshotCatalog(snapshots: [RelayFixtures.served(etag: "c1")])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let client = try RawHTTPClient(port: port)
            for conditional in [[], ["If-None-Match: c1"]] {
                try client.get(Self.e1, headers: conditional)
                let response = try client.readResponse()
                #expect(response.status == (conditional.isEmpty ? 200 : 304))
                #expect(response.header("Cache-Control") == "no-cache")
                #expect(response.header("Vary") == "X-Flipt-Environment, Accept-Encoding")
                #expect(response.header("Etag") == "c1")
            }
            let stream = try RawHTTPClient(port: port)
            try stream.get(Self.stream)
            let head = try stream.readHead()
            #expect(head.header("Cache-Control") == "no-store")
            #expect(head.header("X-Accel-Buffering") == "no")
        }
        try await RelayFixtures.withServer(catalog: catalog, configuration: .init(requiresAuthorization: true)) {
            _,
            port in
            let client = try RawHTTPClient(port: port)
            try client.get("/client/v2/environments/default/namespaces/default/snapshot")
            let response = try client.readResponse()
            #expect(response.header("Cache-Control") == "private, no-cache")
            #expect(response.header("Vary") == "X-Flipt-Environment, Accept-Encoding, Authorization")
        }
    }

    @Test("the authorization hook is asked with the namespace; 401 and 403 carry Flipt's JSON error body")
    func authorization() async throws {
        let asked = Mutex<[String?]>([])
        let configuration = RelayServer.Configuration(authorize: { request, namespace in
            asked.withLock { $0.append(namespace) }
            guard request.headers.first(name: "Authorization") == "Bearer good" else {
                return .unauthorized("missing or unknown client token")
            }
            return namespace == "secret" ? .forbidden("this token may not read namespace secret") : .allowed
        })
        let catalog = SnapshotCatalog(snapshots: [RelayFixtures.served(), RelayFixtures.served(namespace: "secret")])
        try await RelayFixtures.withServer(catalog: catalog, configuration: configuration) { _, port in
            func get(_ path: String, _ headers: [String]) throws -> RawHTTPClient.Response {
                let client = try RawHTTPClient(port: port)
                try client.get(path, headers: headers)
                return try client.readResponse()
            }
            let anonymous = try get(Self.e1, [])
            #expect(anonymous.status == 401)
            #expect(anonymous.header("WWW-Authenticate") == "Bearer")
            let body = try JSONSerialization.jsonObject(with: Data(anonymous.body)) as? [String: Any]
            #expect(body?["code"] as? Int == 16)
            #expect(body?["message"] as? String == "missing or unknown client token")
            #expect(try get(Self.e1, ["Authorization: Bearer good"]).status == 200)
            let forbidden = try get("/internal/v1/evaluation/snapshot/namespace/secret", ["Authorization: Bearer good"])
            #expect(forbidden.status == 403)
            let denied = try JSONSerialization.jsonObject(with: Data(forbidden.body)) as? [String: Any]
            #expect(denied?["code"] as? Int == 7)
            #expect(try get(Self.stream, []).status == 401)
            #expect(try get("/health", []).status == 200)
        }
        #expect(asked.withLock { $0 } == ["default", "default", "secret", "default"])
    }

    @Test("the TLS context provider is read for each new connection and its context serves it")
    func tlsProvider() async throws {
        let calls = Atomic<Int>(0)
        let serverContext = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [
                    .certificate(
                        try NIOSSLCertificate(bytes: Array(TestCertificates.serverCertificate.utf8), format: .pem)
                    )
                ],
                privateKey: .privateKey(
                    try NIOSSLPrivateKey(bytes: Array(TestCertificates.serverPrivateKey.utf8), format: .pem)
                )
            )
        )
        let configuration = RelayServer.Configuration(tlsContext: {
            calls.add(1, ordering: .relaxed)
            return serverContext
        })
        try await RelayFixtures.withServer(catalog: SnapshotCatalog(), configuration: configuration) { _, port in
            for _ in 0..<2 {
                let answer = try await Self.tlsRequest(
                    port: port,
                    request: "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
                #expect(answer.hasSuffix("{\"status\":\"SERVING\"}"))
            }
        }
        #expect(calls.load(ordering: .relaxed) == 2)
    }

    /// Sends `request` over TLS (trusting the test CA) and returns everything read until the server closes.
    static func tlsRequest(port: UInt16, request: String) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([
            try NIOSSLCertificate(bytes: Array(TestCertificates.caCertificate.utf8), format: .pem)
        ])
        let context = try NIOSSLContext(configuration: tls)
        let collected = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: "localhost")
                    )
                    try channel.pipeline.syncOperations.addHandler(Collector(done: collected))
                }
            }
            .connect(host: "127.0.0.1", port: Int(port)).get()
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        return try await collected.futureResult.get()
    }

    /// Gathers inbound bytes; completes with them when the channel closes.
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String>
        var text = ""

        init(done: EventLoopPromise<String>) { self.done = done }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.succeed(text)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    @Test("as a Service: run serves until a graceful shutdown, which ends streams with the chunked terminator")
    func service() async throws {
        let served = RelayFixtures.served(etag: "s1")
        let server = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog(snapshots: [served])
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [server], logger: Logger(label: "test"))
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try #require(await server.listeningAddress()).port
            let stream = try RawHTTPClient(port: port)
            try stream.get(Self.stream)
            #expect(try stream.readHead().status == 200)
            #expect(try stream.readChunk() == Array(served.streamMessage))
            await group.triggerGracefulShutdown()
            #expect(try stream.readChunk().isEmpty)
            #expect(stream.isClosedByPeer())
            try await tasks.waitForAll()
        }
        #expect(server.isStopping)
        #expect(server.statistics.openConnections == 0)
    }

    @Test("cancelling run stops the server too")
    func cancellation() async throws {
        let server = RelayServer(
            configuration: .init(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog()
        )
        let task = Task { try await server.run() }
        let port = try #require(await server.listeningAddress()).port
        let client = try RawHTTPClient(port: port)
        try client.get("/health")
        #expect(try client.readResponse().status == 200)
        task.cancel()
        try await task.value
        #expect(client.isClosedByPeer())
        #expect(throws: RawHTTPClient.Failure.self) { try RawHTTPClient(port: port) }
    }

    @Test("a graceful shutdown lets a request being read finish: it is answered, with Connection: close")
    func inFlightRequestFinishes() async throws {
        let server = RelayServer(
            configuration: .init(
                address: ListenAddress(host: "127.0.0.1", port: 0),
                requestTimeout: .seconds(60),
                shutdownGracePeriod: .seconds(60)
            ),
            catalog: SnapshotCatalog()
        )
        let port = try await server.start().port
        let client = try RawHTTPClient(port: port, timeout: .seconds(30))
        try client.send("GET /health HTTP/1.1\r\n")
        let idle = try RawHTTPClient(port: port)
        #expect(await eventually(timeout: .seconds(30)) { server.statistics.openConnections == 2 })
        // The request is in flight when the shutdown begins.
        #expect(
            await eventually(timeout: .seconds(30)) {
                server.requestsBeingRead.load(ordering: .relaxed) == 1
            }
        )
        server.beginShutdown()
        #expect(idle.isClosedByPeer())
        try client.send("Host: t\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection") == "close")
        #expect(client.isClosedByPeer())
        await server.shutdown()
    }

    @Test("one replace pushes the new snapshot to every open stream of that namespace, through one subscription each")
    func pushToMany() async throws {
        let catalog = SnapshotCatalog(snapshots: [RelayFixtures.served(flag: "one", etag: "p1")])
        try await RelayFixtures.withServer(catalog: catalog) { server, port in
            let streams = try (0..<100).map { _ in try RawHTTPClient(port: port, timeout: .seconds(30)) }
            for client in streams {
                try client.get(Self.stream)
                #expect(try client.readHead().status == 200)
                _ = try client.readChunk()
            }
            #expect(catalog.subscriberCount == 100)
            let next = RelayFixtures.served(flag: "two", etag: "p2")
            catalog.replace(with: [next])
            for client in streams { #expect(try client.readChunk() == next.streamMessage) }
            // A change of another namespace sends nothing to them.
            catalog.replace(with: [next, RelayFixtures.served(namespace: "other")])
            streams[0].setTimeout(.milliseconds(300))
            #expect(throws: RawHTTPClient.Failure.self) { try streams[0].readChunk() }
            #expect(server.statistics.openStreams == 100)
        }
        #expect(catalog.subscriberCount == 0)
    }
}
