import FliptTestSupport
import Foundation
import Testing

/// A test's world: a loopback Flipt server serving a document, and a temporary directory for cache files.
struct Workspace: Sendable {
    let server: TestFliptServer
    let directory: String

    /// The default cache file of the workspace.
    var cache: String { directory + "/cache.sqlite3" }

    /// The server URL as a command-line argument.
    var url: String { server.baseURL.absoluteString }

    /// `--cache <cache> --url <url>`.
    var target: [String] { ["--cache", cache, "--url", url] }

    /// A path in the workspace directory.
    func path(_ name: String) -> String { directory + "/" + name }

    /// Runs `flipt-offline` with these arguments.
    func tool(
        _ arguments: [String],
        environment: [String: String] = [:],
        input: Data? = nil
    ) async throws -> ToolResult {
        try await CommandLineTool.run(arguments, environment: environment, input: input)
    }

    /// `sync` against the workspace server into the workspace cache, no retries.
    func sync(_ extra: [String] = [], environment: [String: String] = [:]) async throws -> ToolResult {
        try await tool(["sync"] + target + ["--retries", "0"] + extra, environment: environment)
    }

    /// `cache show --json` of the workspace cache (the entry chosen by `--url`).
    func show(cache: String? = nil, arguments: [String] = []) async throws -> [String: Any] {
        let result = try await tool(
            ["cache", "show", "--cache", cache ?? self.cache, "--url", url, "--json", "--attempts", "100"] + arguments
        )
        guard result.status == 0 else { throw ToolError("cache show failed: \(result)") }
        return try result.json()
    }
}

/// Runs `body` with a fresh server (serving a 4-flag fixture document) and a fresh temporary directory.
func withWorkspace<Result>(_ body: (Workspace) async throws -> Result) async throws -> Result {
    let directory = NSTemporaryDirectory() + "flipt-cli-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer {
        chmod(directory, 0o755)
        try? FileManager.default.removeItem(atPath: directory)
    }
    return try await withTestServer { server in
        server.setDocument(json: FixtureDocument.json(flagCount: 4, revision: 0))
        return try await body(Workspace(server: server, directory: directory))
    }
}

/// The fields of the `last_good` object of a `cache show --json` or `sync --json` answer.
func lastGood(_ object: [String: Any]) throws -> [String: Any] {
    guard let lastGood = object["last_good"] as? [String: Any] else {
        throw ToolError("no last_good object in \(object)")
    }
    return lastGood
}

/// What identifies a stored snapshot: generation, SHA-256, ETag.
func identity(_ object: [String: Any]) throws -> String {
    let metadata = try lastGood(object)
    return "\(metadata["generation"] ?? "?") \(metadata["sha256"] ?? "?") \(metadata["etag"] ?? "-")"
}

/// The attempt log of a `cache show --json` answer, newest first.
func attempts(_ object: [String: Any]) -> [[String: Any]] {
    object["attempts"] as? [[String: Any]] ?? []
}

/// JSON-lines answers with the fields that differ between runs (durations, timestamps) removed, for comparing.
func normalizedAnswers(_ text: String) throws -> [String] {
    try text.split(separator: "\n").map { line in
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        let cleaned = removingVolatileFields(object)
        let data = try JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }
}

private func removingVolatileFields(_ value: Any) -> Any {
    if let object = value as? [String: Any] {
        var result: [String: Any] = [:]
        for (key, member) in object where key != "request_duration_millis" && key != "timestamp" {
            result[key] = removingVolatileFields(member)
        }
        return result
    }
    if let array = value as? [Any] { return array.map(removingVolatileFields) }
    return value
}

/// Every byte of the cache file and its `-wal` / `-shm` companions, as text, to search for secrets.
func cacheFileText(_ path: String) -> String {
    ["", "-wal", "-shm"].compactMap { FileManager.default.contents(atPath: path + $0) }
        .map { String(decoding: $0, as: UTF8.self) }
        .joined()
}

/// Requests in JSON-lines form that exercise the fixture document: both flag types, a batch and a list.
let fixtureRequests = """
    {"type":"variant","flag_key":"flag0","entity_id":"e1","context":{"fizz":"buzz"}}
    {"type":"variant","flag_key":"flag0","entity_id":"e2","context":{}}
    {"type":"boolean","flag_key":"flag1","entity_id":"e3","context":{"fizz":"buzz"}}
    {"type":"boolean","flag_key":"flag3","entity_id":"e4","context":{}}
    {"type":"batch","requests":[{"flag_key":"flag2","entity_id":"e5","context":{}},\
    {"flag_key":"missing","entity_id":"e6","context":{}}]}
    {"type":"variant","flag_key":"missing","entity_id":"e7","context":{}}
    {"type":"list"}

    """
