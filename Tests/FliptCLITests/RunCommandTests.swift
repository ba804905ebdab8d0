import FliptTestSupport
import Foundation
import Testing

@Suite("flipt-offline run")
struct RunCommandTests {
    @Test("logs each outcome, stores changes in the cache, and stops cleanly on SIGTERM")
    func pollingUntilSIGTERM() async throws {
        try await withWorkspace { workspace in
            let first = try #require(workspace.server.digest())
            let tool = try RunningTool(["run"] + workspace.target + ["--update-interval", "200ms"])
            let started = await tool.waitForLine { $0.contains(" started ") }
            #expect(started?.contains("source=none") == true, "\(tool.stdout)\n\(tool.stderr)")
            let updated = await tool.waitForLine { $0.contains(" updated ") && $0.contains("etag=\(first)") }
            #expect(updated?.contains("flags=4") == true, "\(tool.stdout)\n\(tool.stderr)")
            let confirmed = await tool.waitForLine { $0.contains(" not_modified ") }
            #expect(confirmed?.contains("etag=\(first)") == true, "\(tool.stdout)")

            workspace.server.setDocument(json: FixtureDocument.json(flagCount: 6, revision: 1))
            let second = try #require(workspace.server.digest())
            let changed = await tool.waitForLine { $0.contains(" updated ") && $0.contains("etag=\(second)") }
            #expect(changed?.contains("flags=6") == true, "\(tool.stdout)\n\(tool.stderr)")
            let show = try await workspace.show()
            #expect(try lastGood(show)["etag"] as? String == second)
            #expect(try lastGood(show)["generation"] as? Int == 2)

            // A status the client does not retry, so that the failure is logged at the next poll.
            workspace.server.enqueue(.status(400))
            let failed = await tool.waitForLine { $0.contains(" failed ") }
            #expect(failed?.contains("400") == true, "\(tool.stdout)")
            let recovered = await tool.waitForLine { $0.contains(" recovered ") }
            #expect(recovered != nil, "\(tool.stdout)")

            let signalled = ContinuousClock.now
            tool.send(SIGTERM)
            let exit = await tool.waitForExit(timeout: .seconds(10))
            #expect(exit?.status == 0 && exit?.bySignal == false, "\(String(describing: exit)) \(tool.stderr)")
            #expect(ContinuousClock.now - signalled < .seconds(10))
            let lines = tool.stdoutLines
            // A fetch that completed just before the client closed may still be logged after `stopping`.
            let stopping = lines.firstIndex { $0.contains(" stopping signal=SIGTERM") }
            #expect(stopping != nil, "\(tool.stdout)")
            #expect(lines.last?.hasSuffix(" stopped") == true)
            for line in lines {
                #expect(line.hasPrefix("20") && line.dropFirst(23).hasPrefix("Z "), "not a timestamped line: \(line)")
            }
            #expect(try lastGood(try await workspace.show())["etag"] as? String == second)
        }
    }

    @Test("starts from the cache, logs JSON lines, and stops cleanly on SIGINT")
    func cachedStartJSONUntilSIGINT() async throws {
        try await withWorkspace { workspace in
            #expect(try await workspace.sync().status == 0)
            let digest = try #require(workspace.server.digest())
            let tool = try RunningTool(["run"] + workspace.target + ["--update-interval", "100ms", "--json"])
            let confirmed = await tool.waitForLine { $0.contains(#""event":"not_modified""#) }
            #expect(confirmed != nil, "\(tool.stdout)\n\(tool.stderr)")
            tool.send(SIGINT)
            let exit = await tool.waitForExit(timeout: .seconds(10))
            #expect(exit?.status == 0 && exit?.bySignal == false, "\(String(describing: exit)) \(tool.stderr)")
            let events = try tool.stdoutLines.map { line -> [String: Any] in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return try #require(object, "not a JSON object: \(line)")
            }
            #expect(events.first?["event"] as? String == "started")
            #expect(events.first?["source"] as? String == "cache")
            #expect(events.first?["etag"] as? String == digest)
            #expect(events.first?["cache"] as? String == workspace.cache)
            #expect(!events.contains { $0["event"] as? String == "updated" })
            #expect(events.last?["event"] as? String == "stopped")
            #expect(events.contains { $0["event"] as? String == "stopping" && $0["signal"] as? String == "SIGINT" })
            let show = try await workspace.show()
            #expect(attempts(show).first?["outcome"] as? String == "not_modified")
        }
    }

    @Test("streams changes as the server pushes them, and stops cleanly with the stream open")
    func streaming() async throws {
        try await withWorkspace { workspace in
            let tool = try RunningTool(["run"] + workspace.target + ["--fetch-mode", "streaming"])
            let first = try #require(workspace.server.digest())
            let updated = await tool.waitForLine { $0.contains(" updated ") && $0.contains("etag=\(first)") }
            #expect(updated != nil, "\(tool.stdout)\n\(tool.stderr)")
            #expect(await workspace.server.wait { $0.openStreamCount == 1 })
            workspace.server.setDocument(json: FixtureDocument.json(flagCount: 2, revision: 3))
            // This server's stream messages carry no digest, so the pushed snapshot is told apart by its flags.
            let pushed = await tool.waitForLine { $0.contains(" updated ") && $0.contains("flags=2") }
            #expect(pushed != nil, "\(tool.stdout)\n\(tool.stderr)")
            let show = try await workspace.show()
            #expect(try lastGood(show)["flags"] as? Int == 2)
            #expect((show["flags"] as? [[String: Any]])?.first?["description"] as? String == "revision 3")
            tool.send(SIGTERM)
            let exit = await tool.waitForExit(timeout: .seconds(10))
            #expect(exit?.status == 0 && exit?.bySignal == false, "\(String(describing: exit)) \(tool.stderr)")
            #expect(tool.stdoutLines.last?.hasSuffix(" stopped") == true)
        }
    }

    @Test("unusable options fail at once with status 64")
    func invalidOptions() async throws {
        try await withWorkspace { workspace in
            let result = try await workspace.tool(["run", "--cache", workspace.cache, "--url", "not a url"])
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.hasPrefix("flipt-offline run: "))
        }
    }
}
