/// Runs `body` with a fresh ``TestFliptServer`` on 127.0.0.1 and stops the server afterwards, even on error.
///
/// - Parameters:
///   - version: the Flipt generation the server imitates.
///   - basePath: a path prefix for every endpoint, such as `/flipt`.
///   - body: the test; it receives the running server.
package func withTestServer<Result>(
    version: TestFliptServer.Version = .v2,
    basePath: String = "",
    _ body: (TestFliptServer) async throws -> Result
) async throws -> Result {
    let server = try TestFliptServer(version: version, basePath: basePath)
    defer { server.stop() }
    return try await body(server)
}
