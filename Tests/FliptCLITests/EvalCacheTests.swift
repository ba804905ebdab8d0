import FliptTestSupport
import Foundation
import Testing

@Suite("flipt-offline eval --cache")
struct EvalCacheTests {
    @Test("both forms answer from the cache with the server stopped, as eval --document does")
    func bothFormsOffline() async throws {
        try await withWorkspace { workspace in
            let digest = try #require(workspace.server.digest())
            #expect(try await workspace.sync().status == 0)
            workspace.server.stop()
            let document = workspace.path("document.json")
            try FixtureDocument.json(flagCount: 4, revision: 0).write(
                toFile: document,
                atomically: true,
                encoding: .utf8
            )
            let cacheArguments = ["--cache", workspace.cache]

            let variant = try await workspace.tool(
                ["eval", "flag0", "--entity", "e1", "--context", "fizz=buzz"] + cacheArguments
            )
            #expect(variant.status == 0, "\(variant)")
            #expect(variant.stdout.hasPrefix("flag0: variant1  [matched: segments segment1]"), "\(variant.stdout)")
            #expect(variant.stderr.contains("from cache \(workspace.cache)"), "\(variant.stderr)")
            #expect(variant.stderr.contains("generation 1"))
            #expect(variant.stderr.contains("etag \(digest)"))
            #expect(variant.stderr.contains("default/default"))

            let boolean = try await workspace.tool(["eval", "flag1", "--entity", "e2", "--json"] + cacheArguments)
            let fromDocument = try await workspace.tool([
                "eval", "flag1", "--entity", "e2", "--json", "--document", document,
            ])
            #expect(boolean.status == 0, "\(boolean)")
            #expect(try normalizedAnswers(boolean.stdout) == normalizedAnswers(fromDocument.stdout))
            #expect(boolean.stdout.contains(#""status":"success""#))

            let lines = try await workspace.tool(
                ["eval", "--requests", "-"] + cacheArguments,
                input: Data(fixtureRequests.utf8)
            )
            let expected = try await workspace.tool(
                ["eval", "--requests", "-", "--document", document],
                input: Data(fixtureRequests.utf8)
            )
            #expect(lines.status == 0, "\(lines)")
            #expect(lines.stdout.split(separator: "\n").count == 7)
            #expect(try normalizedAnswers(lines.stdout) == normalizedAnswers(expected.stdout))
            #expect(lines.stdout.contains("NOT_FOUND_ERROR_EVALUATION_REASON"))

            let requestsFile = workspace.path("requests.jsonl")
            try fixtureRequests.write(toFile: requestsFile, atomically: true, encoding: .utf8)
            let fromFile = try await workspace.tool(
                ["eval", "--requests", requestsFile, "--url", workspace.url] + cacheArguments
            )
            #expect(try normalizedAnswers(fromFile.stdout) == normalizedAnswers(expected.stdout))

            let unknownFlag = try await workspace.tool(["eval", "nope", "--entity", "e"] + cacheArguments)
            #expect(unknownFlag.status == 1, "\(unknownFlag)")
        }
    }

    @Test("an input that is a directory or missing is status 3 naming why, for eval and cache import, never a crash")
    func unreadableInputs() async throws {
        try await withWorkspace { workspace in
            let document = workspace.path("document.json")
            try FixtureDocument.json(flagCount: 4, revision: 0).write(
                toFile: document,
                atomically: true,
                encoding: .utf8
            )
            let directory = workspace.path("a-directory")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let missing = workspace.path("missing.json")
            let cases: [([String], String)] = [
                (["eval", "--document", document, "--requests", directory], "it is a directory"),
                (["eval", "--document", document, "--requests", missing], "no such file"),
                (["eval", "flag0", "--entity", "e", "--document", directory], "it is a directory"),
                (["eval", "flag0", "--entity", "e", "--document", missing], "no such file"),
                (["cache", "import", "--cache", workspace.cache, directory], "it is a directory"),
                (["cache", "import", "--cache", workspace.cache, missing], "no such file"),
            ]
            for (arguments, reason) in cases {
                let result = try await workspace.tool(arguments)
                #expect(result.status == 3, "\(arguments): \(result)")
                #expect(result.stderr.contains("cannot read"), "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains(reason), "\(arguments): \(result.stderr)")
                #expect(!result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
            }
        }
    }

    @Test("a missing cache, entry or namespace is status 4 with advice")
    func missingEntries() async throws {
        try await withWorkspace { workspace in
            let noFile = try await workspace.tool(["eval", "flag0", "--entity", "e", "--cache", workspace.cache])
            #expect(noFile.status == 4, "\(noFile)")
            #expect(noFile.stderr.contains("flipt-offline sync"))

            #expect(try await workspace.sync().status == 0)
            let otherNamespace = try await workspace.tool(
                ["eval", "flag0", "--entity", "e", "--cache", workspace.cache, "--namespace", "other"]
            )
            #expect(otherNamespace.status == 4, "\(otherNamespace)")
            #expect(otherNamespace.stderr.contains("namespace other"))

            // A failed sync to another server logs an attempt under that server; it does not make --url necessary.
            let elsewhere = "http://127.0.0.1:\(try TestFliptServer.unusedPort())"
            let failed = try await workspace.tool([
                "sync", "--cache", workspace.cache, "--url", elsewhere, "--retries", "0",
            ])
            #expect(failed.status == 20, "\(failed)")
            let stillOne = try await workspace.tool(["eval", "flag0", "--entity", "e", "--cache", workspace.cache])
            #expect(stillOne.status == 0, "\(stillOne)")
            #expect(stillOne.stderr.contains(workspace.url))

            let both = try await workspace.tool(
                ["eval", "flag0", "--entity", "e", "--cache", workspace.cache, "--document", workspace.cache]
            )
            #expect(both.status == 1, "\(both)")
        }
    }

    @Test("a write-protected cache file still answers eval --cache and cache ls, and is not changed")
    func readOnlyCache() async throws {
        try await withWorkspace { workspace in
            let directory = workspace.path("protected")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let cache = directory + "/cache.sqlite3"
            let synced = try await workspace.tool(["sync", "--cache", cache, "--url", workspace.url])
            #expect(synced.status == 0, "\(synced)")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            for file in files { chmod(directory + "/" + file, 0o444) }
            chmod(directory, 0o555)
            defer { chmod(directory, 0o755) }
            // The store keeps its -wal file between runs; it and the database must come out unchanged.
            let contents = { [cache] in ["", "-wal"].map { FileManager.default.contents(atPath: cache + $0) } }
            let bytes = contents()
            #expect(bytes[0] != nil)
            workspace.server.stop()

            let answer = try await workspace.tool([
                "eval", "flag0", "--entity", "e1", "--context", "fizz=buzz", "--cache", cache,
            ])
            #expect(answer.status == 0, "\(answer)")
            #expect(answer.stdout.hasPrefix("flag0: variant1"))

            let list = try await workspace.tool(["cache", "ls", "--cache", cache])
            #expect(list.status == 0, "\(list)")
            #expect(list.stdout.contains(workspace.url))

            let listJSON = try await workspace.tool(["cache", "ls", "--cache", cache, "--json"])
            #expect(listJSON.status == 0, "\(listJSON)")
            #expect((try listJSON.json()["entries"] as? [Any])?.count == 1)

            #expect(contents() == bytes)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == files)
        }
    }
}
