import FliptRelay
import FliptStore
import Foundation

/// Documents, a temporary directory and a running relay for the tests.
enum RelayFixtures {
    /// A small valid snapshot document of `namespace` with one flag named `flag`.
    static func document(namespace: String = "default", flag: String = "flag1", pretty: Bool = false) -> [UInt8] {
        let separator = pretty ? "\n  " : ""
        let flags = "\"flags\":[{\"key\":\"\(flag)\",\"name\":\"\",\"enabled\":true}]"
        return Array(
            "{\(separator)\"namespace\":{\"key\":\"\(namespace)\"},\(separator)\(flags)}"
                .utf8
        )
    }

    /// A served snapshot of `document(namespace:flag:)`.
    static func served(
        namespace: String = "default",
        environment: String = "default",
        flag: String = "flag1",
        etag: String? = nil
    ) -> ServedSnapshot {
        ServedSnapshot(
            namespace: namespace,
            environment: environment,
            document: document(namespace: namespace, flag: flag),
            etag: etag,
            origin: "test"
        )
    }

    /// Starts a relay (`configuration`, on 127.0.0.1 and a free port), runs `body`, then stops it.
    static func withServer<T>(
        catalog: SnapshotCatalog,
        configuration: RelayServer.Configuration = RelayServer.Configuration(),
        _ body: (RelayServer, UInt16) async throws -> T
    ) async throws -> T {
        var configuration = configuration
        configuration.address = ListenAddress(host: "127.0.0.1", port: 0)
        let server = RelayServer(configuration: configuration, catalog: catalog)
        let address = try await server.start()
        do {
            let result = try await body(server, address.port)
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }

    /// Runs `body` with a fresh temporary directory, removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("flipt-relay-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }

    /// Waits until `condition` holds, checking every 20 ms, at most `timeout`; returns whether it held.
    static func eventually(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try condition()
    }
}
