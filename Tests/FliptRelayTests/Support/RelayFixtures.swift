import FliptRelay
import FliptStore
import FliptTestSupport
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

    /// A served snapshot of `FixtureDocument.bytes(flagCount:revision:)`, namespace and environment "default".
    static func served(flagCount: Int, revision: Int, etag: String? = nil) -> ServedSnapshot {
        ServedSnapshot(
            namespace: "default",
            environment: "default",
            document: FixtureDocument.bytes(flagCount: flagCount, revision: revision),
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
}
