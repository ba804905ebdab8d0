import FliptSync
import FliptTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc

/// A device that loses its network while a request waits, or while a stream is quiet, sends nothing and so is
/// never told: without TCP keepalive the wait lasts as long as the idle timeout (days for a stream, forever for a
/// poll without a request timeout). Every connection of the default transport must have keepalive on, with probes
/// that notice a vanished peer within about a minute. (A vanished peer cannot be simulated on loopback without
/// privileges, since the kernel answers probes for a live socket; the settings are read back from the sockets.)
@Suite("Connections are probed with TCP keepalive", .serialized, .timeLimit(.minutes(1)))
struct KeepAliveTests {
    /// The keepalive settings of this process's TCP sockets connected to `port`.
    struct Settings: Equatable, CustomStringConvertible {
        var enabled: Int32
        var idle: Int32
        var interval: Int32
        var probes: Int32
        var description: String { "on=\(enabled) idle=\(idle)s interval=\(interval)s probes=\(probes)" }
    }

    static let expected = Settings(enabled: 1, idle: 30, interval: 10, probes: 3)

    static func settings(ofConnectionsTo port: Int) -> [Settings] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.compactMap(Int32.init).compactMap { descriptor in
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
            }
            guard named == 0 else { return nil }
            let peerPort: UInt16
            switch Int32(address.ss_family) {
            case AF_INET:
                peerPort = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
                }
            case AF_INET6:
                peerPort = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        UInt16(bigEndian: $0.pointee.sin6_port)
                    }
                }
            default: return nil
            }
            guard Int(peerPort) == port else { return nil }
            func option(_ level: Int32, _ name: Int32) -> Int32 {
                var value: Int32 = -1
                var size = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(descriptor, level, name, &value, &size)
                return value
            }
            return Settings(
                enabled: option(SOL_SOCKET, SO_KEEPALIVE),
                idle: option(Int32(IPPROTO_TCP), TCP_KEEPIDLE),
                interval: option(Int32(IPPROTO_TCP), TCP_KEEPINTVL),
                probes: option(Int32(IPPROTO_TCP), TCP_KEEPCNT)
            )
        }
    }

    /// Polls until this process has a connection to `port` whose keepalive settings are the expected ones (the
    /// transport sets them as the connection is set up, which a poll can overtake), up to 5 s; returns the
    /// settings seen last.
    static func waitForConnections(to port: Int) async throws -> [Settings] {
        var found: [Settings] = []
        for _ in 0..<100 {
            found = settings(ofConnectionsTo: port)
            if !found.isEmpty && found.allSatisfy({ $0 == expected }) { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
        return found
    }

    @Test("a poll waiting on a server that does not answer")
    func waitingPoll() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.silent)
            var configuration = SyncConfiguration(url: server.baseURL, requestTimeout: .seconds(20))
            configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
            let fetcher = try SnapshotFetcher(configuration: configuration)
            let request = Task { try await fetcher.fetch(ifNoneMatch: nil) }
            let found = try await Self.waitForConnections(to: server.baseURL.port ?? 0)
            request.cancel()
            _ = await request.result
            #expect(found.count == 1, "connections to the server: \(found)")
            #expect(found.allSatisfy { $0 == Self.expected }, "\(found), expected \(Self.expected)")
        }
    }

    @Test("a stream that stays quiet after its first snapshot")
    func quietStream() async throws {
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            server.enqueue(.stream([.headers, .currentSnapshot, .pause(.seconds(3_600))]), on: .stream)
            var configuration = SyncConfiguration(url: server.baseURL, fetchMode: .streaming)
            configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
            let fetcher = try SnapshotFetcher(configuration: configuration)
            let log = EventLog()
            let loop = SyncLoop(fetcher: fetcher, random: .seeded(5))
            let task = Task { await loop.run(etag: nil) { log.append($0) } }
            let updated = await log.wait { !$0.updates.isEmpty }
            #expect(updated, "the stream's first snapshot never arrived; events: \(log.all)")
            let found = try await Self.waitForConnections(to: server.baseURL.port ?? 0)
            task.cancel()
            await task.value
            #expect(found.count == 1, "connections to the server: \(found)")
            #expect(found.allSatisfy { $0 == Self.expected }, "\(found), expected \(Self.expected)")
        }
    }
}
#endif
