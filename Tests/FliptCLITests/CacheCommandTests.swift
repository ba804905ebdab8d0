import FliptTestSupport
import FliptTesting
import Foundation
import Testing

@Suite("flipt-offline cache")
struct CacheCommandTests {
    /// Syncs revisions 0...`revisions - 1` of the fixture document, one generation each.
    private func syncRevisions(_ revisions: Int, in workspace: Workspace) async throws {
        for revision in 0..<revisions {
            workspace.server.setDocument(json: FixtureDocument.json(flagCount: 4, revision: revision))
            let result = try await workspace.sync()
            #expect(result.status == 0, "\(result)")
        }
    }

    /// Generation, SHA-256 and ETag of every stored generation, newest first.
    private func generationIdentities(_ workspace: Workspace) async throws -> [String] {
        let history = try await workspace.tool(["cache", "history", "--json", "--cache", workspace.cache]).json()
        return (history["generations"] as? [[String: Any]] ?? []).map {
            "\($0["generation"] ?? "?") \($0["sha256"] ?? "?") \($0["etag"] ?? "-") \($0["last_good"] ?? "?")"
        }
    }

    @Test("ls, show and history: tables for people, JSON for scripts")
    func listings() async throws {
        try await withWorkspace { workspace in
            try await syncRevisions(2, in: workspace)
            let digest = try #require(workspace.server.digest())
            #expect(try await workspace.sync(["--detailed-exit-codes"]).status == 10)
            let cache = ["--cache", workspace.cache]

            let list = try await workspace.tool(["cache", "ls"] + cache)
            #expect(list.status == 0, "\(list)")
            let lines = list.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(list.stdout)")
            #expect(lines[1].hasPrefix("SERVER"))
            for column in ["ENVIRONMENT", "NAMESPACE", "GENERATION", "ETAG", "FLAGS", "SIZE", "FETCHED", "AGE"] {
                #expect(lines[1].contains(column))
            }
            #expect(lines[2].hasPrefix(workspace.url))
            #expect(lines[2].contains("2 (2 kept)"))
            #expect(lines[2].contains("not_modified 304"))
            #expect(lines[1].firstRange(of: "FLAGS") != nil)

            let listJSON = try await workspace.tool(["cache", "ls", "--json"] + cache)
            let entries = try #require(try listJSON.json()["entries"] as? [[String: Any]])
            #expect(entries.count == 1)
            let entry = try #require(entries.first)
            #expect(entry["server"] as? String == workspace.url)
            #expect(entry["generations"] as? Int == 2)
            #expect(try lastGood(entry)["etag"] as? String == digest)
            #expect(try lastGood(entry)["flags"] as? Int == 4)
            #expect((entry["last_attempt"] as? [String: Any])?["outcome"] as? String == "not_modified")

            let show = try await workspace.tool(["cache", "show"] + cache)
            #expect(show.status == 0, "\(show)")
            #expect(show.stdout.contains("Last good    generation 2 of 2 kept (source network)"), "\(show.stdout)")
            #expect(show.stdout.contains("ETag         \(digest)"))
            #expect(show.stdout.contains("KEY    TYPE     ENABLED  DEFAULT VARIANT  DESCRIPTION"))
            #expect(show.stdout.contains("flag1  boolean  yes      -                revision 1"))
            #expect(show.stdout.contains("Recent sync attempts"))
            #expect(show.stdout.split(separator: "\n").contains { $0.contains("not_modified") && $0.contains(" 304 ") })

            let showJSON = try await workspace.show()
            let flags = try #require(showJSON["flags"] as? [[String: Any]])
            #expect(flags.map { $0["key"] as? String } == ["flag0", "flag1", "flag2", "flag3"])
            #expect(flags.map { $0["type"] as? String } == ["variant", "boolean", "variant", "boolean"])
            #expect(flags.first?["default_variant"] as? String == "variant1")
            #expect(attempts(showJSON).count == 3)

            let history = try await workspace.tool(["cache", "history"] + cache)
            #expect(history.status == 0, "\(history)")
            let rows = history.stdout.split(separator: "\n").map(String.init)
            #expect(rows.count == 4, "\(history.stdout)")
            #expect(rows[2].hasPrefix("*"))
            #expect(rows[2].contains(" 2  network"))
            #expect(rows[3].hasPrefix(" "))

            let historyJSON = try await workspace.tool(["cache", "history", "--json"] + cache)
            let generations = try #require(try historyJSON.json()["generations"] as? [[String: Any]])
            #expect(generations.map { $0["generation"] as? Int } == [2, 1])
            #expect(generations.map { $0["last_good"] as? Bool } == [true, false])
        }
    }

    @Test("diff names added, removed and changed flags and how they changed")
    func diff() async throws {
        try await withWorkspace { workspace in
            workspace.server.setDocument(json: DiffDocuments.before)
            #expect(try await workspace.sync().status == 0)
            workspace.server.setDocument(json: DiffDocuments.after)
            #expect(try await workspace.sync().status == 0)
            let cache = ["--cache", workspace.cache]

            let text = try await workspace.tool(["cache", "diff", "1", "2"] + cache)
            #expect(text.status == 0, "\(text)")
            let expectedLines = [
                "+ fresh  added (boolean, enabled)",
                "- retired  removed (variant, enabled)",
                "~ checkout  changed (variant)",
                "    disabled (was enabled)",
                "    default variant: one → two",
                "    rule 1 distribution: one 100% → one 50%, two 50%",
                "    rule 2 segments: pro → pro, beta",
                "~ dark  changed (boolean)",
                "    rollout 1 threshold: 30% → true → 75% → true",
                "~ banner  changed (boolean)",
                "    rollout 1 segment changed (beta (OR) → true)",
                "~ legacy  changed (variant)",
                "    rules: 1 → 0",
                "    rule 1 removed: segments pro (OR) → one 100%",
                "1 added, 1 removed, 4 changed, 1 unchanged.",
            ]
            for line in expectedLines {
                #expect(text.stdout.contains(line + "\n"), "missing: \(line)\n\(text.stdout)")
            }

            let defaults = try await workspace.tool(["cache", "diff"] + cache)
            #expect(defaults.stdout == text.stdout)

            let json = try await workspace.tool(["cache", "diff", "1", "--json"] + cache).json()
            #expect(json["from"] as? Int == 1)
            #expect(json["to"] as? Int == 2)
            #expect((json["added"] as? [[String: Any]])?.map { $0["key"] as? String } == ["fresh"])
            #expect((json["removed"] as? [[String: Any]])?.map { $0["key"] as? String } == ["retired"])
            let changed = try #require(json["changed"] as? [[String: Any]])
            #expect(changed.map { $0["key"] as? String } == ["checkout", "dark", "banner", "legacy"])
            let aspects = (changed[0]["changes"] as? [[String: Any]])?.map { $0["aspect"] as? String }
            #expect(aspects == ["enabled", "default_variant", "rules", "rules"])
            #expect(json["unchanged"] as? Int == 1)

            let same = try await workspace.tool(["cache", "diff", "2", "2"] + cache)
            #expect(same.stdout.contains("No flag differences; 6 flags are the same."), "\(same.stdout)")
            let missing = try await workspace.tool(["cache", "diff", "7"] + cache)
            #expect(missing.status == 4, "\(missing)")
        }
    }

    @Test("rollback makes an earlier generation last good, and back")
    func rollback() async throws {
        try await withWorkspace { workspace in
            try await syncRevisions(2, in: workspace)
            let cache = ["--cache", workspace.cache]
            let rolled = try await workspace.tool(["cache", "rollback"] + cache)
            #expect(rolled.status == 0, "\(rolled)")
            #expect(rolled.stdout.hasPrefix("rolled back: generation 1 is now the last good snapshot"))
            let afterRollback = try await workspace.show()
            #expect(try lastGood(afterRollback)["generation"] as? Int == 1)
            #expect((afterRollback["flags"] as? [[String: Any]])?.first?["description"] as? String == "revision 0")

            workspace.server.stop()
            let answer = try await workspace.tool(
                ["eval", "--requests", "-"] + cache,
                input: Data(#"{"type":"list"}"#.utf8)
            )
            #expect(answer.stdout.contains("revision 0"))
            #expect(!answer.stdout.contains("revision 1"))

            let forward = try await workspace.tool(["cache", "rollback", "2", "--json"] + cache)
            #expect(forward.status == 0, "\(forward)")
            #expect(try lastGood(forward.json())["generation"] as? Int == 2)
            #expect(try forward.json()["previous_generation"] as? Int == 1)

            let missing = try await workspace.tool(["cache", "rollback", "9"] + cache)
            #expect(missing.status == 4, "\(missing)")
            #expect(missing.stderr.contains("stored: 2, 1"), "\(missing.stderr)")
            #expect(try lastGood(try await workspace.show())["generation"] as? Int == 2)
        }
    }

    @Test("a rollback holds: sync keeps it while the server sends the bad document, until unpin or new content")
    func rollbackHolds() async throws {
        try await withWorkspace { workspace in
            try await syncRevisions(2, in: workspace)  // the server keeps serving revision 1 (generation 2)
            let cache = ["--cache", workspace.cache]
            let rolled = try await workspace.tool(["cache", "rollback"] + cache)
            #expect(rolled.status == 0, "\(rolled)")
            #expect(rolled.stdout.contains("pinned: a sync that brings the content of generation 2 again"))

            let held = try await workspace.sync()
            #expect(held.status == 0, "\(held)")
            #expect(held.stdout.hasPrefix("held: the server still sends the snapshot"), "\(held.stdout)")
            #expect(held.stdout.contains("generation 1 stays the last good snapshot"))
            let detailed = try await workspace.sync(["--json", "--detailed-exit-codes"])
            #expect(detailed.status == 10, "\(detailed)")
            #expect(try detailed.json()["outcome"] as? String == "held")

            let shown = try await workspace.show()
            #expect(try lastGood(shown)["generation"] as? Int == 1)
            let pin = try #require(shown["pin"] as? [String: Any])
            #expect(pin["rolled_back_from_generation"] as? Int == 2)
            #expect(attempts(shown).first?["error_class"] as? String == "pinned")
            let text = try await workspace.tool(["cache", "show", "--url", workspace.url] + cache)
            #expect(text.stdout.contains("Pinned"), "\(text.stdout)")

            let unpinned = try await workspace.tool(["cache", "unpin"] + cache)
            #expect(unpinned.status == 0, "\(unpinned)")
            #expect(unpinned.stdout.hasPrefix("unpinned: generation 1"), "\(unpinned.stdout)")
            let again = try await workspace.tool(["cache", "unpin"] + cache)
            #expect(again.stdout.hasPrefix("not pinned"), "\(again.stdout)")
            let taken = try await workspace.sync()
            #expect(taken.stdout.hasPrefix("updated:"), "\(taken.stdout)")
            // The server's document is stored again as a new generation (generations only move forward).
            #expect(try lastGood(try await workspace.show())["generation"] as? Int == 3)

            // Pinned again; new content from the server lifts the pin on its own.
            let pinnedAgain = try await workspace.tool(["cache", "rollback"] + cache)
            #expect(pinnedAgain.status == 0, "\(pinnedAgain)")
            workspace.server.setDocument(json: FixtureDocument.json(flagCount: 4, revision: 7))
            let fixed = try await workspace.sync()
            #expect(fixed.stdout.hasPrefix("updated: new snapshot stored as generation 4"), "\(fixed.stdout)")
            #expect(try await workspace.show()["pin"] is NSNull)
        }
    }

    @Test("verify passes a healthy file and fails a tampered or foreign one")
    func verify() async throws {
        try await withWorkspace { workspace in
            try await syncRevisions(2, in: workspace)
            let healthy = try await workspace.tool(["cache", "verify", "--cache", workspace.cache])
            #expect(healthy.status == 0, "\(healthy)")
            #expect(healthy.stdout.contains("2 generation(s) match their SHA-256"))
            #expect(healthy.stdout.hasSuffix("healthy\n"))
            let healthyJSON = try await workspace.tool(["cache", "verify", "--cache", workspace.cache, "--json"])
            #expect(try healthyJSON.json()["healthy"] as? Bool == true)

            // Change one character of the last good generation's document inside the file, behind SQLite's back.
            var bytes = try #require(FileManager.default.contents(atPath: workspace.cache))
            let marker = Data("revision 1".utf8)
            let range = try #require(bytes.range(of: marker))
            bytes[range.upperBound - 1] = UInt8(ascii: "7")
            try bytes.write(to: URL(fileURLWithPath: workspace.cache))
            let tampered = try await workspace.tool(["cache", "verify", "--cache", workspace.cache, "--json"])
            #expect(tampered.status == 5, "\(tampered)")
            let report = try tampered.json()
            #expect(report["healthy"] as? Bool == false)
            #expect((report["hash_mismatches"] as? [String])?.count == 1)
            #expect((report["hash_mismatches"] as? [String])?.first?.hasSuffix("generation 2") == true)

            // eval does not serve the damaged document: it answers from the older intact generation, and says so.
            let answer = try await workspace.tool(
                ["eval", "--requests", "-", "--cache", workspace.cache],
                input: Data(#"{"type":"list"}"#.utf8)
            )
            #expect(answer.status == 0, "\(answer)")
            #expect(answer.stdout.contains("revision 0") && !answer.stdout.contains("revision 7"), "\(answer.stdout)")
            #expect(answer.stderr.contains("generation 1"))
            #expect(answer.stderr.contains("failed its SHA-256 check"))

            let foreign = workspace.path("foreign.sqlite3")
            try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: foreign))
            let garbage = try await workspace.tool(["cache", "verify", "--cache", foreign])
            #expect(garbage.status == 5, "\(garbage)")
            #expect(garbage.stdout.contains("UNHEALTHY"))
            #expect(FileManager.default.contents(atPath: foreign) == Data(repeating: 0x41, count: 8192))
        }
    }

    @Test("prune keeps N generations and drops old entries; --dry-run changes nothing")
    func prune() async throws {
        try await withWorkspace { workspace in
            try await syncRevisions(3, in: workspace)
            let cache = ["--cache", workspace.cache]
            let generations = { () async throws -> [Int] in
                let history = try await workspace.tool(["cache", "history", "--json"] + cache).json()
                return (history["generations"] as? [[String: Any]] ?? []).compactMap { $0["generation"] as? Int }
            }
            #expect(try await generations() == [3, 2, 1])

            let dryRun = try await workspace.tool(["cache", "prune", "--keep", "1", "--dry-run"] + cache)
            #expect(dryRun.status == 0, "\(dryRun)")
            #expect(dryRun.stdout.contains("would remove generation 2 of"))
            #expect(dryRun.stdout.contains("would remove generation 1 of"))
            #expect(try await generations() == [3, 2, 1])

            let pruned = try await workspace.tool(["cache", "prune", "--keep", "2", "--json"] + cache)
            #expect(pruned.status == 0, "\(pruned)")
            let removed = try #require(try pruned.json()["removed_generations"] as? [[String: Any]])
            #expect(removed.map { $0["generation"] as? Int } == [1])
            #expect(try await generations() == [3, 2])

            let recent = try await workspace.tool(["cache", "prune", "--older-than", "1d"] + cache)
            #expect(recent.stdout.contains("removed 0 entries and 0 generation(s)"), "\(recent.stdout)")
            try await Task.sleep(for: .milliseconds(50))
            let old = try await workspace.tool(
                ["cache", "prune", "--older-than", "20ms", "--dry-run", "--json"] + cache
            )
            #expect((try old.json()["removed_entries"] as? [Any])?.count == 1)
            #expect(try await generations() == [3, 2])
            let gone = try await workspace.tool(["cache", "prune", "--older-than", "20ms"] + cache)
            #expect(gone.status == 0, "\(gone)")
            #expect(gone.stdout.contains("removed entry \(workspace.url) default/default"))
            let list = try await workspace.tool(["cache", "ls", "--json"] + cache).json()
            #expect((list["entries"] as? [Any])?.isEmpty == true)

            let nothing = try await workspace.tool(["cache", "prune"] + cache)
            #expect(nothing.status == 64, "\(nothing)")
        }
    }

    @Test("export then import into a fresh cache round-trips: same document, same answers")
    func exportImportRoundTrip() async throws {
        try await withWorkspace { workspace in
            #expect(try await workspace.sync().status == 0)
            let document = FixtureDocument.bytes(flagCount: 4, revision: 0)

            let exported = try await workspace.tool(["cache", "export", "--cache", workspace.cache])
            #expect(exported.status == 0, "\(exported)")
            let string = exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Data(base64Encoded: string) == Data(document))

            let jsonFile = workspace.path("export.json")
            let toFile = try await workspace.tool(
                ["cache", "export", "--cache", workspace.cache, "--format", "json", "--output", jsonFile]
            )
            #expect(toFile.status == 0, "\(toFile)")
            #expect(toFile.stderr.contains("exported generation 1"))
            #expect(FileManager.default.contents(atPath: jsonFile) == Data(document))

            let fresh = workspace.path("fresh.sqlite3")
            let imported = try await workspace.tool(
                ["cache", "import", "-", "--cache", fresh, "--url", workspace.url],
                input: Data(exported.stdout.utf8)
            )
            #expect(imported.status == 0, "\(imported)")
            #expect(imported.stdout.hasPrefix("imported: generation 1 is now the last good snapshot"))
            let original = try lastGood(try await workspace.show())
            let copy = try lastGood(try await workspace.show(cache: fresh))
            #expect(copy["sha256"] as? String == original["sha256"] as? String)
            #expect(copy["source"] as? String == "import")
            #expect(copy["etag"] is NSNull)

            workspace.server.stop()
            let answersOriginal = try await workspace.tool(
                ["eval", "--requests", "-", "--cache", workspace.cache],
                input: Data(fixtureRequests.utf8)
            )
            let answersCopy = try await workspace.tool(
                ["eval", "--requests", "-", "--cache", fresh],
                input: Data(fixtureRequests.utf8)
            )
            #expect(answersCopy.status == 0, "\(answersCopy)")
            #expect(try normalizedAnswers(answersCopy.stdout) == normalizedAnswers(answersOriginal.stdout))

            // The JSON form from a file, into the same entry (without --url: the cache holds one such entry).
            workspace.server.setDocument(json: FixtureDocument.json(flagCount: 4, revision: 5))
            let revised = workspace.path("revised.json")
            try FixtureDocument.json(flagCount: 2, revision: 5).write(
                toFile: revised,
                atomically: true,
                encoding: .utf8
            )
            let second = try await workspace.tool(["cache", "import", revised, "--cache", fresh, "--json"])
            #expect(second.status == 0, "\(second)")
            #expect(try lastGood(second.json())["generation"] as? Int == 2)
            #expect(try lastGood(second.json())["flags"] as? Int == 2)
        }
    }

    @Test("import refuses invalid input with a clear message and leaves the cache unchanged")
    func importRefusesInvalidInput() async throws {
        try await withWorkspace { workspace in
            #expect(try await workspace.sync().status == 0)
            let before = try await workspace.show()
            let historyBefore = try await generationIdentities(workspace)
            let target = ["--cache", workspace.cache, "--url", workspace.url]
            let other = FixtureDocument.json(namespace: "other", flagCount: 1)
            let cases: [(input: String, status: Int32, message: String)] = [
                ("this is not a snapshot!", 2, "neither a snapshot string (base64) nor a JSON document"),
                ("bm90IGpzb24gYXQgYWxs", 2, "not a valid snapshot document"),
                ("", 2, "the input is empty"),
                (#"{"namespace":{"key":"default"},"flags":[{"key":1}]}"#, 2, "not a valid snapshot document"),
                (#"{"namespace":{"key":"default"}"#, 2, "not a valid snapshot document"),
                (Data(#"{"flags":[]}"#.utf8).base64EncodedString(), 2, "not a valid snapshot document"),
                (other, 2, "namespace \"other\""),
                (Data(other.utf8).base64EncodedString(), 2, "pass --namespace other"),
            ]
            for item in cases {
                let result = try await workspace.tool(["cache", "import", "-"] + target, input: Data(item.input.utf8))
                #expect(result.status == item.status, "\(item.input): \(result)")
                #expect(result.stderr.contains(item.message), "\(item.input): \(result.stderr)")
                #expect(result.stderr.contains("nothing was imported"))
                #expect(result.stderr.split(separator: "\n").count == 1)
            }
            let absent = try await workspace.tool(["cache", "import", workspace.path("absent")] + target)
            #expect(absent.status == 3, "\(absent)")

            let valid = Data(FixtureDocument.bytes(flagCount: 1)).base64EncodedString()
            let noEntry = try await workspace.tool(
                ["cache", "import", "-", "--cache", workspace.path("empty.sqlite3")],
                input: Data(valid.utf8)
            )
            #expect(noEntry.status == 4, "\(noEntry)")
            #expect(noEntry.stderr.contains("pass --url"))
            #expect(!FileManager.default.fileExists(atPath: workspace.path("empty.sqlite3")))

            let after = try await workspace.show()
            #expect(try identity(after) == identity(before))
            #expect(try await generationIdentities(workspace) == historyBefore)
        }
    }
}

/// Two documents whose differences cover each kind of change `cache diff` describes.
enum DiffDocuments {
    /// Segments `pro` and `beta` (whose match type is all, or any in the second document) and the flags, with
    /// `rules` for `checkout`, `variant` flags by default variant and boolean flags by rollouts.
    private static func document(
        betaMatch: TestData.Segment.MatchType,
        _ flags: [TestData.Flag]
    ) -> String {
        let data = TestData()
        try! data.update(.all("pro", .string("plan", .equals("pro"))))
        try! data.update(TestData.Segment(key: "beta", matchType: betaMatch, constraints: [.boolean("beta", .isTrue)]))
        for flag in flags { try! data.update(flag) }
        return data.json
    }

    private static func variant(_ key: String, default defaultVariant: String) -> TestData.Flag {
        .variant(key, variants: ["one", "two"], default: defaultVariant)
    }

    static let before = document(
        betaMatch: .all,
        [
            variant("checkout", default: "one").rule(matching: ["pro"], serve: "one").rule(
                matching: ["pro"],
                serve: "two"
            ),
            .boolean("dark").rollout(percentage: 30, value: true),
            .boolean("banner").rollout(matching: ["beta"], value: true),
            variant("legacy", default: "one").rule(matching: ["pro"], serve: "one"),
            variant("retired", default: "one"),
            .boolean("steady").rollout(percentage: 50, value: true),
        ]
    )

    static let after = document(
        betaMatch: .any,
        [
            variant("checkout", default: "two").enabled(false)
                .rule(matching: ["pro"], distribution: ["one": 50, "two": 50])
                .rule(matching: ["pro", "beta"], serve: "two"),
            .boolean("dark").rollout(percentage: 75, value: true),
            .boolean("banner").rollout(matching: ["beta"], value: true),
            variant("legacy", default: "one"),
            .boolean("steady").rollout(percentage: 50, value: true),
            .boolean("fresh"),
        ]
    )
}
