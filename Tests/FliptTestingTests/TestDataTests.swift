import Flipt
import FliptEngine
import FliptTesting
import Foundation
import Testing

@Suite("TestData: flags built in code, clients over them")
struct TestDataTests {
    /// Segments and flags that cover rules, distributions, rollouts and each constraint type.
    static func sample() throws -> TestData {
        let data = TestData()
        try data.update(.all("pro", .string("plan", .equals("pro"))))
        try data.update(.any("staff", .entityID(.isOneOf(["admin", "ops"])), .boolean("employee", .isTrue)))
        try data.update(.all("adults", .number("age", .greaterThanOrEqual(18))))
        try data.update(
            .all("after-launch", .dateTime("signed_up", .after(Date(timeIntervalSince1970: 1_767_225_600))))
        )
        try data.update(
            .variant(
                "checkout",
                variants: ["classic", TestData.Variant("express", attachment: #"{"steps":1}"#)],
                default: "classic"
            )
            .rule(matching: ["pro", "adults"], .and, serve: "express")
        )
        try data.update(
            .boolean("dark-mode", value: false)
                .rollout(matching: ["staff"], value: true)
                .rollout(percentage: 0, value: true)
        )
        return data
    }

    @Test("the document is a snapshot the engine accepts, in the server's shape")
    func documentShape() throws {
        let data = try Self.sample()
        let snapshot = try Snapshot(data: data.document)
        #expect(snapshot.namespaceKey == "default")
        #expect(snapshot.flagCount == 2)
        let object = try #require(JSONSerialization.jsonObject(with: data.document) as? [String: Any])
        let flags = try #require(object["flags"] as? [[String: Any]])
        #expect(flags.map { $0["key"] as? String } == ["checkout", "dark-mode"])
        #expect(flags[0]["type"] as? String == "VARIANT_FLAG_TYPE")
        #expect(flags[1]["type"] as? String == "BOOLEAN_FLAG_TYPE")
        let rule = try #require((flags[0]["rules"] as? [[String: Any]])?.first)
        #expect(rule["segmentOperator"] as? String == "AND_SEGMENT_OPERATOR")
        let segments = try #require(rule["segments"] as? [[String: Any]])
        #expect(segments.map { $0["key"] as? String } == ["pro", "adults"])
        let distribution = try #require((rule["distributions"] as? [[String: Any]])?.first)
        #expect(distribution["variantAttachment"] as? String == #"{"steps":1}"#)
        #expect((distribution["rollout"] as? NSNumber)?.doubleValue == 100)
        let rollouts = try #require(flags[1]["rollouts"] as? [[String: Any]])
        #expect(rollouts.map { $0["type"] as? String } == ["SEGMENT_ROLLOUT_TYPE", "THRESHOLD_ROLLOUT_TYPE"])
    }

    @Test("a client over the data evaluates it with no network and no cache file")
    func evaluates() async throws {
        let data = try Self.sample()
        let client = try data.makeClient()
        let express = try client.evaluateVariant(
            flagKey: "checkout",
            entityID: "u1",
            context: ["plan": "pro", "age": "30"]
        )
        #expect(express.variantKey == "express" && express.reason == .match)
        #expect(express.variantAttachment == #"{"steps":1}"#)
        #expect(Set(express.segmentKeys) == ["pro", "adults"])
        let minor = try client.evaluateVariant(
            flagKey: "checkout",
            entityID: "u1",
            context: ["plan": "pro", "age": "9"]
        )
        #expect(minor.variantKey == "classic" && minor.reason == .default)
        #expect(try client.evaluateBoolean(flagKey: "dark-mode", entityID: "ops").isEnabled)
        #expect(
            try client.evaluateBoolean(flagKey: "dark-mode", entityID: "u2", context: ["employee": "true"]).isEnabled
        )
        #expect(try !client.evaluateBoolean(flagKey: "dark-mode", entityID: "u2").isEnabled)

        let status = client.status
        #expect(status.source == .seed)
        #expect(status.cachePath == nil)
        #expect(status.hasFetched)
        #expect(client.isOffline)
        client.setOffline(false)
        #expect(client.isOffline, "a TestData client has no server to go online to")
        try await client.waitUntilReady(timeout: .seconds(1))
        guard case .failed(let error) = await client.refresh() else {
            Issue.record("refresh of a TestData client fetched")
            return
        }
        #expect(error.code == .offline)
        await client.shutdown()
    }

    @Test("a change reaches live clients at once, with the flags it changed")
    func updateReachesClients() async throws {
        let data = try Self.sample()
        let client = try data.makeClient()
        let second = try data.makeClient()
        let events = client.events()
        let checkoutChanges = client.changes(of: "checkout")

        try data.update(
            .variant("checkout", variants: ["classic", "express"], default: "express")
        )
        #expect(try client.evaluateVariant(flagKey: "checkout", entityID: "u1").variantKey == "express")
        #expect(try second.evaluateVariant(flagKey: "checkout", entityID: "u1").variantKey == "express")
        try data.update(.boolean("new-flag"))
        #expect(try client.evaluateBoolean(flagKey: "new-flag", entityID: "u1").isEnabled)
        data.removeFlag("new-flag")
        #expect(throws: FliptError.self) { try client.evaluateBoolean(flagKey: "new-flag", entityID: "u1") }

        var replacements: [FlagChanges] = []
        for await event in events {
            if case .snapshotReplaced(_, let changes) = event { replacements.append(changes) }
            if replacements.count == 3 { break }
        }
        #expect(
            replacements == [
                FlagChanges(changed: ["checkout"]), FlagChanges(added: ["new-flag"]),
                FlagChanges(removed: ["new-flag"]),
            ]
        )
        var iterator = checkoutChanges.makeAsyncIterator()
        let change = await iterator.next()
        #expect(change?.flagKey == "checkout" && change?.kind == .changed)
        client.close()
        #expect(await iterator.next() == nil, "the sequence ends when the client closes")
        await second.shutdown()
    }

    @Test("changing a segment changes exactly the flags that use it")
    func segmentChange() async throws {
        let data = try Self.sample()
        try data.update(.boolean("plain", value: true))
        let client = try data.makeClient()
        let events = client.events()
        try data.update(.all("pro", .string("plan", .isOneOf(["pro", "team"]))))
        #expect(
            try client.evaluateVariant(flagKey: "checkout", entityID: "u1", context: ["plan": "team", "age": "40"])
                .variantKey == "express"
        )
        try data.update(.all("staff", .entityID(.equals("root"))))
        for await event in events {
            guard case .snapshotReplaced(_, let changes) = event else { continue }
            #expect(changes == FlagChanges(changed: ["checkout"]))
            break
        }
        for await event in events {
            guard case .snapshotReplaced(_, let changes) = event else { continue }
            #expect(changes == FlagChanges(changed: ["dark-mode"]))
            break
        }
        await client.shutdown()
    }

    @Test("a flag updated with the same content is unchanged")
    func sameContent() async throws {
        let data = try Self.sample()
        let client = try data.makeClient()
        let events = client.events()
        try data.update(try #require(data.flags.first))
        for await event in events {
            guard case .snapshotReplaced(_, let changes) = event else { continue }
            #expect(changes.isEmpty)
            break
        }
        await client.shutdown()
    }

    @Test(
        "what Flipt would not store is refused, and nothing changes",
        arguments: [
            (TestData.Flag.variant("", variants: ["a"]), "key"),
            (.variant("f", variants: ["a", "a"]), "twice"),
            (.variant("f", variants: ["a"], default: "b"), "default variant"),
            (.variant("f", variants: ["a"]).rule(matching: ["pro"], serve: "b"), "serves"),
            (.variant("f", variants: ["a"]).rule(matching: ["nowhere"], serve: "a"), "segment \"nowhere\""),
            (.variant("f", variants: ["a", "b"]).rule(matching: ["pro"], distribution: ["a": 70, "b": 40]), "110"),
            (.boolean("f").rollout(percentage: 101, value: true), "0…100"),
            (.boolean("f").rule(matching: ["pro"], serve: "a"), "rollouts, not rules"),
        ]
    )
    func refused(flag: TestData.Flag, mention: String) throws {
        let data = TestData()
        try data.update(.all("pro"))
        let before = data.document
        let error = #expect(throws: FliptError.self) { try data.update(flag) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
        #expect(data.document == before)
    }

    @Test("a segment in use cannot be removed; an unused one can")
    func removeSegment() throws {
        let data = try Self.sample()
        #expect(throws: FliptError.self) { try data.removeSegment("pro") }
        data.removeFlag("checkout")
        try data.removeSegment("pro")
        #expect(data.segments["pro"] == nil)
    }

    @Test("another namespace's data makes clients of that namespace")
    func namespace() throws {
        let data = TestData(namespace: "mobile")
        try data.update(.boolean("f"))
        let client = try data.makeClient()
        #expect(client.namespace == "mobile")
        #expect(try client.evaluateBoolean(flagKey: "f", entityID: "u").isEnabled)
        #expect(try Snapshot(data: data.document).namespaceKey == "mobile")
    }
}
