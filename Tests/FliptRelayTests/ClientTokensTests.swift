import Crypto
import FliptRelay
import Foundation
import Testing

@Suite("client tokens")
struct ClientTokensTests {
    static let secret = "s3cret-token-ALPHA"
    static let other = "other-token-BRAVO-42"
    static let limited = "limited,token-CHARLIE"

    static func sha256Hex(_ token: String, uppercase: Bool = false) -> String {
        let hex = SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
        return uppercase ? hex.uppercased() : hex
    }

    static var sampleFile: String {
        """
        # relay tokens

        \(secret)
          sha256:\(sha256Hex(other, uppercase: true))   production, staging   # two namespaces
        \(limited) qa,  dev ,ops
        sha256:\(sha256Hex("hashed-only"))\t# every namespace
        """
    }

    @Test("parses tokens, sha256 entries in either case, namespaces, blank lines and comments")
    func parses() throws {
        let tokens = try ClientTokens(parsing: Self.sampleFile, source: "tokens.txt")
        #expect(tokens.entries.map(\.line) == [3, 4, 5, 6])
        #expect(tokens.entries.map(\.namespaces) == [nil, ["production", "staging"], ["qa", "dev", "ops"], nil])
        #expect(tokens.description == "4 client tokens from tokens.txt (2 limited to some namespaces)")
        #expect(try ClientTokens(parsing: "", source: "empty").isEmpty)
        #expect(try ClientTokens(parsing: "# nothing\n\n   \n", source: "empty").isEmpty)
    }

    @Test(
        "decides allowed, unauthorized and forbidden",
        arguments: [
            ("Bearer \(secret)", "anything", ClientTokens.Decision.allowed),
            ("bearer \(secret)", nil, .allowed),
            ("BEARER   \(secret)  ", "default", .allowed),
            ("Bearer \(other)", "production", .allowed),
            ("Bearer \(other)", "staging", .allowed),
            ("Bearer \(other)", "qa", .forbidden),
            ("Bearer \(other)", nil, .allowed),
            ("Bearer \(limited)", "ops", .allowed),
            ("Bearer \(limited)", "production", .forbidden),
            ("Bearer hashed-only", "production", .allowed),
            ("Bearer \(secret)x", "default", .unauthorized),
            ("Bearer \(secret.dropLast())", "default", .unauthorized),
            ("Bearer", "default", .unauthorized),
            ("Bearer ", "default", .unauthorized),
            ("Basic \(secret)", "default", .unauthorized),
            ("JWT \(secret)", "default", .unauthorized),
            (secret, "default", .unauthorized),
            ("Bearer \(secret) extra", "default", .unauthorized),
            ("Bearer sha256:\(sha256Hex(secret))", "default", .unauthorized),
        ] as [(String, String?, ClientTokens.Decision)]
    )
    func decides(authorization: String, namespace: String?, expected: ClientTokens.Decision) throws {
        let tokens = try ClientTokens(parsing: Self.sampleFile, source: "tokens.txt")
        #expect(tokens.authorize(authorization, namespace: namespace) == expected)
    }

    @Test("no header is unauthorized; an empty file refuses everyone")
    func missingHeader() throws {
        let tokens = try ClientTokens(parsing: Self.sampleFile, source: "tokens.txt")
        #expect(tokens.authorize(nil, namespace: "default") == .unauthorized)
        let empty = try ClientTokens(parsing: "", source: "empty")
        #expect(empty.authorize("Bearer \(Self.secret)", namespace: "default") == .unauthorized)
    }

    @Test(
        "bad lines name the file, the line and the fault, and never the token",
        arguments: [
            ("ok-token\nsha256:abc123\n", 2, "64 hexadecimal digits"),
            ("sha256:\(String(repeating: "g", count: 64))", 1, "not a hexadecimal digit"),
            ("sha256:\(String(repeating: "a", count: 65)) ns", 1, "64 hexadecimal digits"),
            ("\n\nsecret-value-é", 3, "visible ASCII"),
            ("secret-value ns/with/slash", 1, "namespace 1"),
            ("secret-value good, b@d", 1, "namespace 2"),
            ("secret-value\n# comment\nsecret-value other", 3, "repeats the token of line 1"),
            ("sha256:\(sha256Hex("secret-value"))\nsecret-value", 2, "repeats the token of line 1"),
        ] as [(String, Int, String)]
    )
    func badLines(text: String, line: Int, reason: String) {
        do {
            _ = try ClientTokens(parsing: text, source: "/etc/flipt/tokens")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == line)
            #expect(error.reason.contains(reason))
            #expect(error.description.hasPrefix("/etc/flipt/tokens, line \(line): "))
            for secret in ["secret-value", "abc123", "ok-token", "gggg", "aaaa"] {
                #expect(!error.description.contains(secret))
            }
        }
    }

    @Test("descriptions never contain a token")
    func descriptionsHideTokens() throws {
        let tokens = try ClientTokens(parsing: Self.sampleFile, source: "tokens.txt")
        let text = "\(tokens) \(tokens.entries) \(tokens.entries.map(\.description))"
        for secret in [Self.secret, Self.other, Self.limited, "hashed-only", Self.sha256Hex(Self.other)] {
            #expect(!text.lowercased().contains(secret.lowercased()))
        }
        #expect(tokens.entries[1].description == "client token on line 4 (namespaces production, staging)")
    }

    @Test("a file: read, checked, reloaded; a bad reload keeps the tokens in use")
    func reloadableFile() throws {
        try withTemporaryFile(contents: "\(Self.secret) default\n") { path in
            let file = try ClientTokenFile(path: path)
            #expect(file.authorize("Bearer \(Self.secret)", namespace: "default") == .allowed)
            #expect(file.authorize("Bearer \(Self.other)", namespace: "default") == .unauthorized)

            try Data("\(Self.other)\n".utf8).write(to: URL(fileURLWithPath: path))
            let reloaded = try file.reload()
            #expect(reloaded.entries.count == 1)
            #expect(file.authorize("Bearer \(Self.other)", namespace: "default") == .allowed)
            #expect(file.authorize("Bearer \(Self.secret)", namespace: "default") == .unauthorized)

            try Data("\(Self.secret)\nsha256:nothex\n".utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: ClientTokensError.self) { try file.reload() }
            #expect(file.authorize("Bearer \(Self.other)", namespace: "default") == .allowed)
            #expect(file.authorize("Bearer \(Self.secret)", namespace: "default") == .unauthorized)

            // Emptying the file revokes every token: it is not an error.
            try Data().write(to: URL(fileURLWithPath: path))
            try file.reload()
            #expect(file.authorize("Bearer \(Self.other)", namespace: "default") == .unauthorized)

            try FileManager.default.removeItem(atPath: path)
            let error = try #require(throws: ClientTokensError.self) { try file.reload() }
            #expect(error.description == "\(path): the client tokens file could not be read (no such file).")
        }
    }

    @Test("a missing file is a clear error")
    func missingFile() {
        do {
            _ = try ClientTokenFile(path: "/nonexistent/flipt-tokens")
            Issue.record("expected an error")
        } catch {
            #expect(error.path == "/nonexistent/flipt-tokens")
            #expect(error.line == nil)
            #expect(error.reason.contains("no such file"))
        }
    }

    @Test("many tokens: every one is found, concurrently with reloads")
    func concurrentChecks() async throws {
        let many = (0..<500).map { "token-\($0)-\(UUID().uuidString)" }
        try await withTemporaryFile(contents: many.joined(separator: "\n")) { path in
            let file = try ClientTokenFile(path: path)
            await withTaskGroup(of: Bool.self) { group in
                for token in many.prefix(50) {
                    group.addTask { file.authorize("Bearer \(token)", namespace: "x") == .allowed }
                }
                group.addTask { (try? file.reload()) != nil }
                for await result in group { #expect(result) }
            }
        }
    }
}

/// Runs `body` with the path of a new temporary file holding `contents`, removed afterwards.
func withTemporaryFile<Result>(
    contents: String,
    name: String = "file",
    _ body: (String) async throws -> Result
) async rethrows -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent(name).path
    _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
    return try await body(path)
}

/// The synchronous form of ``withTemporaryFile(contents:name:_:)``.
func withTemporaryFile<Result>(
    contents: String,
    name: String = "file",
    _ body: (String) throws -> Result
) rethrows -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent(name).path
    _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
    return try body(path)
}
