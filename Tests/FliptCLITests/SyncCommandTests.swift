import FliptTestSupport
import Foundation
import Testing

@Suite("flipt-offline sync")
struct SyncCommandTests {
    @Test("200 stores a generation, 304 confirms it, failures leave the last good snapshot untouched")
    func updatedNotModifiedFailures() async throws {
        try await withWorkspace { workspace in
            let server = workspace.server
            let digest = try #require(server.digest())

            let first = try await workspace.sync()
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout.hasPrefix("updated: new snapshot stored as generation 1"), "\(first.stdout)")
            #expect(first.stdout.contains("etag \(digest)"))
            #expect(first.stdout.contains("4 flags"))
            #expect(first.stdout.split(separator: "\n").count == 1)
            #expect(server.requests(to: .snapshot).last?.header("If-None-Match") == nil)

            let second = try await workspace.sync()
            #expect(second.status == 0, "\(second)")
            #expect(second.stdout.hasPrefix("not modified: generation 1 is current"), "\(second.stdout)")
            #expect(server.requests(to: .snapshot).last?.header("If-None-Match") == digest)

            let before = try await workspace.show()
            let stored = try identity(before)
            #expect(try lastGood(before)["etag"] as? String == digest)
            #expect(attempts(before).map { $0["outcome"] as? String } == ["not_modified", "updated"])

            // An HTTP error, an invalid document and an unreachable server: each adds one attempt row only.
            server.enqueue(.status(503))
            let unavailable = try await workspace.sync()
            #expect(unavailable.status == 21, "\(unavailable)")
            #expect(unavailable.stderr.contains("503"))
            #expect(unavailable.stderr.contains("the cache was not changed: generation 1"), "\(unavailable.stderr)")
            #expect(unavailable.stdout.isEmpty)

            server.setDocument(json: #"{"namespace":{"key":"default"},"flags":[{"key":"broken"}]}"#)
            let invalid = try await workspace.sync()
            #expect(invalid.status == 23, "\(invalid)")
            #expect(invalid.stderr.contains("not valid"), "\(invalid.stderr)")

            server.setDocument(json: FixtureDocument.json(namespace: "other", flagCount: 1))
            let wrongNamespace = try await workspace.sync(["--json"])
            #expect(wrongNamespace.status == 23, "\(wrongNamespace)")
            let wrongJSON = try wrongNamespace.json()
            #expect(wrongJSON["outcome"] as? String == "rejected")
            #expect(wrongJSON["exit_status"] as? Int == 23)
            #expect(try lastGood(wrongJSON)["generation"] as? Int == 1)

            server.stop()
            let unreachable = try await workspace.sync()
            #expect(unreachable.status == 20, "\(unreachable)")

            let after = try await workspace.show()
            #expect(try identity(after) == stored)
            let outcomes = attempts(after).map {
                "\($0["outcome"] as? String ?? "?") \($0["error_class"] as? String ?? "-")"
            }
            #expect(
                outcomes == [
                    "failed network", "rejected invalid_document", "rejected invalid_document", "failed http_503",
                    "not_modified -", "updated -",
                ]
            )
            #expect(attempts(after)[3]["http_status"] as? Int == 503)
        }
    }

    @Test("--json describes a 200 and a 304 for scripts")
    func jsonOutput() async throws {
        try await withWorkspace { workspace in
            let digest = try #require(workspace.server.digest())
            let updated = try await workspace.sync(["--json"])
            #expect(updated.status == 0, "\(updated)")
            let object = try updated.json()
            #expect(object["outcome"] as? String == "updated")
            #expect(object["new_generation"] as? Bool == true)
            #expect(object["server"] as? String == workspace.url)
            #expect(object["namespace"] as? String == "default")
            #expect(object["http_status"] as? Int == 200)
            let metadata = try lastGood(object)
            #expect(metadata["etag"] as? String == digest)
            #expect(metadata["flags"] as? Int == 4)
            #expect(metadata["source"] as? String == "network")
            #expect((metadata["fetched_at"] as? String)?.hasSuffix("Z") == true)

            let confirmed = try await workspace.sync(["--json"])
            #expect(confirmed.status == 0)
            #expect(try confirmed.json()["exit_status"] as? Int == 0)
            #expect(try confirmed.json()["outcome"] as? String == "not_modified")
            let detailed = try await workspace.sync(["--json", "--detailed-exit-codes"])
            #expect(detailed.status == 10)
            #expect(try detailed.json()["exit_status"] as? Int == 10)
            #expect(try confirmed.json()["http_status"] as? Int == 304)
        }
    }

    @Test("a silent server is a timeout (status 20) under --request-timeout")
    func timeout() async throws {
        try await withWorkspace { workspace in
            workspace.server.enqueue(.silent)
            let started = ContinuousClock.now
            // One attempt (no retries), so the bound checks the deadline, not the back-off; it is generous because
            // the whole suite shares 2 cores with the other suites in CI.
            let result = try await workspace.sync(["--request-timeout", "300ms", "--retries", "0"])
            #expect(result.status == 20, "\(result)")
            #expect(ContinuousClock.now - started < .seconds(20))
            let show = try await workspace.tool(["cache", "ls", "--cache", workspace.cache, "--json"])
            let entries = try show.json()["entries"] as? [[String: Any]] ?? []
            #expect((entries.first?["last_attempt"] as? [String: Any])?["error_class"] as? String == "timeout")
            #expect(entries.first?["last_good"] is NSNull)
        }
    }

    @Test("--max-document-size bounds the document: larger is status 23 and stores nothing; sizes take units")
    func maxDocumentSize() async throws {
        try await withWorkspace { workspace in
            let small = try await workspace.sync(["--max-document-size", "1KiB"])
            #expect(small.status == 23, "\(small)")
            #expect(small.stderr.contains("larger than 1024 bytes"), "\(small.stderr)")
            #expect(small.stderr.contains("--max-document-size"), "\(small.stderr)")
            let show = try await workspace.tool(["cache", "ls", "--cache", workspace.cache, "--json"])
            let entries = try show.json()["entries"] as? [[String: Any]] ?? []
            #expect((entries.first?["last_attempt"] as? [String: Any])?["error_class"] as? String == "invalid_document")
            #expect(entries.first?["last_good"] is NSNull)
            for size in ["2MiB", "2mb", "2000000", "1.5M"] {
                let result = try await workspace.sync(["--max-document-size", size])
                #expect(result.status == 0, "\(size): \(result)")
            }
            for bad in ["lots", "0", "-5MiB", "12"] {
                let result = try await workspace.sync(["--max-document-size", bad])
                #expect(result.status == 64, "\(bad): \(result)")
            }
        }
    }

    @Test("a server that stops answering ends sync after --idle-timeout; a slow, steady download does not")
    func idleTimeout() async throws {
        try await withWorkspace { workspace in
            workspace.server.enqueue(.silent)
            let started = ContinuousClock.now
            let silent = try await workspace.sync(["--idle-timeout", "1s", "--retries", "0"])
            #expect(silent.status == 20, "\(silent)")
            #expect(silent.stderr.contains("timed out"), "\(silent)")
            #expect(ContinuousClock.now - started < .seconds(20))

            // The body comes in five parts 400 ms apart: two seconds in all, never a silence of one.
            let size = FixtureDocument.json(flagCount: 4, revision: 0).utf8.count
            workspace.server.enqueue(.slowBody(chunkSize: size / 5 + 1, interval: .milliseconds(400)))
            let steadyStart = ContinuousClock.now
            let steady = try await workspace.sync(["--idle-timeout", "1s", "--retries", "0"])
            #expect(steady.status == 0, "\(steady)")
            #expect(ContinuousClock.now - steadyStart > .seconds(1), "the slow body was not slow")
        }
    }

    @Test("a token from a file or the environment reaches the server and appears nowhere else")
    func credentials() async throws {
        try await withWorkspace { workspace in
            let token = "cli-test-token-" + UUID().uuidString
            let jwt = "cli-test-jwt-" + UUID().uuidString
            workspace.server.requireAuthentication(clientTokens: [token], jwtTokens: [jwt])
            var outputs: [ToolResult] = []

            let anonymous = try await workspace.sync()
            #expect(anonymous.status == 22, "\(anonymous)")
            outputs.append(anonymous)

            let tokenFile = workspace.path("token")
            try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let fromFile = try await workspace.sync(["--client-token-file", tokenFile])
            #expect(fromFile.status == 0, "\(fromFile)")
            #expect(workspace.server.requests(to: .snapshot).last?.header("Authorization") == "Bearer \(token)")
            outputs.append(fromFile)

            let fromEnvironment = try await workspace.sync(["--json"], environment: ["FLIPT_CLIENT_TOKEN": token])
            #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
            outputs.append(fromEnvironment)

            let withJWT = try await workspace.sync([], environment: ["FLIPT_JWT": jwt])
            #expect(withJWT.status == 0, "\(withJWT)")
            #expect(workspace.server.requests(to: .snapshot).last?.header("Authorization") == "JWT \(jwt)")
            outputs.append(withJWT)

            let wrongFile = workspace.path("wrong")
            try "not-\(token)".write(toFile: wrongFile, atomically: true, encoding: .utf8)
            let rejected = try await workspace.sync(["--client-token-file", wrongFile])
            #expect(rejected.status == 22, "\(rejected)")
            #expect(rejected.stderr.contains("rejected the credential"))
            outputs.append(rejected)

            let both = try await workspace.sync([], environment: ["FLIPT_CLIENT_TOKEN": token, "FLIPT_JWT": jwt])
            #expect(both.status == 64, "\(both)")
            outputs.append(both)

            let missing = try await workspace.sync(["--client-token-file", workspace.path("absent")])
            #expect(missing.status == 64, "\(missing)")
            outputs.append(missing)

            let run = try await workspace.tool(["cache", "show", "--cache", workspace.cache, "--url", workspace.url])
            outputs.append(run)
            for output in outputs {
                #expect(!output.stdout.contains(token) && !output.stderr.contains(token), "\(output)")
                #expect(!output.stdout.contains(jwt) && !output.stderr.contains(jwt), "\(output)")
            }
            let stored = cacheFileText(workspace.cache)
            #expect(!stored.isEmpty)
            #expect(!stored.contains(token))
            #expect(!stored.contains(jwt))
        }
    }

    @Test("http_proxy sends the sync through the proxy; no_proxy and a bad proxy are honoured")
    func proxy() async throws {
        let proxy = try ConnectProxy()
        defer { proxy.stop() }
        try await withWorkspace { workspace in
            // A name no resolver knows: only the proxy can reach the server under it.
            let url = "http://flipt.test:\(workspace.server.port)"
            // A deadline, so that the direct attempt ends soon even where name lookups of `.test` hang.
            let arguments = [
                "sync", "--cache", workspace.cache, "--url", url, "--retries", "0", "--request-timeout", "10s",
            ]
            let proxied = try await workspace.tool(arguments, environment: ["http_proxy": "127.0.0.1:\(proxy.port)"])
            #expect(proxied.status == 0, "\(proxied)")
            #expect(proxy.tunnels.map(\.target) == ["flipt.test:\(workspace.server.port)"])
            let exempt = try await workspace.tool(
                arguments,
                environment: ["http_proxy": "127.0.0.1:\(proxy.port)", "no_proxy": ".test"]
            )
            #expect(exempt.status == 20, "\(exempt)")
            #expect(proxy.tunnels.count == 1)
            let bad = try await workspace.tool(arguments, environment: ["http_proxy": "https://127.0.0.1:1"])
            #expect(bad.status == 64, "\(bad)")
            #expect(bad.stderr.contains("http_proxy"), "\(bad)")
        }
    }

    @Test("an unusable cache or URL gives a one-line error and its status")
    func unusableInputs() async throws {
        try await withWorkspace { workspace in
            let directory = workspace.path("a-directory")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let cacheIsDirectory = try await workspace.tool(["sync", "--cache", directory, "--url", workspace.url])
            #expect(cacheIsDirectory.status == 30, "\(cacheIsDirectory)")
            #expect(cacheIsDirectory.stderr.hasPrefix("flipt-offline sync: "))
            #expect(cacheIsDirectory.stderr.split(separator: "\n").count == 1)

            let badURL = try await workspace.tool(["sync", "--cache", workspace.cache, "--url", "ftp://example.com"])
            #expect(badURL.status == 64, "\(badURL)")
            #expect(badURL.stderr.split(separator: "\n").count == 1)
            #expect(badURL.stderr.contains("\"ftp://example.com\" is not an http or https URL"), "\(badURL)")
            #expect(!FileManager.default.fileExists(atPath: workspace.cache))

            // The commands that name a cache entry by --url apply the same rule as sync and the library.
            let synced = try await workspace.tool(["sync", "--cache", workspace.cache, "--url", workspace.url])
            #expect(synced.status == 0, "\(synced)")
            let history = try await workspace.tool(["cache", "history", "--cache", workspace.cache, "--url", "ftp://x"])
            #expect(history.status == 64, "\(history)")
            #expect(history.stderr.contains("\"ftp://x\" is not an http or https URL"), "\(history)")
        }
    }
}
