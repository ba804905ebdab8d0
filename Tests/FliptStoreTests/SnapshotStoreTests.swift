import FliptEngine
import FliptTestSupport
import Foundation
import Testing

@testable import FliptStore

@Suite("Snapshot store")
struct SnapshotStoreTests {
    private func withStore<T>(
        _ options: SnapshotStore.Options = .init(),
        _ body: (SnapshotStore, String) throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            return try body(try SnapshotStore(path: path, options: options), path)
        }
    }

    @Test("saves a validated snapshot and reads it back with all its metadata")
    func saveAndRead() async throws {
        try await withStore { store, _ in
            #expect(try store.lastGood(for: testKey) == nil)
            let document = snapshotDocument(flags: 5)
            let fetchedAt = millisecondDate(1_795_563_665.123)
            let serverDate = millisecondDate(1_795_563_664)
            let saved = try store.save(
                validatedSnapshot(document, etag: "W/\"abc\"", fetchedAt: fetchedAt, serverDate: serverDate),
                for: testKey
            )
            let stored = try #require(try store.lastGood(for: testKey))
            #expect(stored.document == document)
            #expect(stored.metadata == saved)
            #expect(stored.generation == 1)
            #expect(stored.etag == "W/\"abc\"")
            #expect(stored.fetchedAt == fetchedAt)
            #expect(stored.serverDate == serverDate)
            #expect(stored.lastConfirmedAt == fetchedAt)
            #expect(stored.contentHash == SHA256.hex(document))
            #expect(stored.size == document.count)
            #expect(stored.source == .network)
            #expect(stored.metadata.isLastGood)
            #expect(try Snapshot(data: stored.document).flagCount == 5)
        }
    }

    @Test("keys are normalised: trailing slashes, case, credentials, query and an absent reference")
    func keyNormalisation() async throws {
        let plain = SnapshotKey(url: URL(string: "https://flipt.example.com/prefix")!, environment: "e", namespace: "n")
        let variants = [
            "https://flipt.example.com/prefix/", "HTTPS://Flipt.Example.com/prefix//",
            "https://user:secret@flipt.example.com/prefix", "https://flipt.example.com/prefix?token=secret#x",
        ]
        for variant in variants {
            #expect(SnapshotKey(url: URL(string: variant)!, environment: "e", namespace: "n") == plain, "\(variant)")
        }
        #expect(plain.serverURL == "https://flipt.example.com/prefix")
        #expect(plain.reference == "")
        #expect(
            SnapshotKey(url: URL(string: "http://h:8080/")!, environment: "e", namespace: "n").serverURL
                == "http://h:8080"
        )
        let withReference = SnapshotKey(
            url: URL(string: "http://h")!,
            environment: "e",
            namespace: "n",
            reference: "main"
        )
        #expect(withReference != SnapshotKey(url: URL(string: "http://h")!, environment: "e", namespace: "n"))
        #expect(
            SnapshotKey(url: URL(string: "http://h")!, environment: "e", namespace: "n", reference: nil).reference == ""
        )
    }

    @Test("credentials in the server URL never reach the file, and the file and its WAL are mode 0600")
    func noCredentialsAndPrivateMode() async throws {
        try await withStore { store, path in
            let key = SnapshotKey(
                url: URL(string: "https://operator:hunter2-secret@flipt.example.com/?token=tok-secret-9")!,
                environment: "default",
                namespace: "default"
            )
            try store.save(validatedSnapshot(snapshotDocument()), for: key)
            try store.recordAttempt(
                SyncAttempt(
                    startedAt: Date(),
                    outcome: .failed,
                    httpStatus: 401,
                    errorClass: "unauthorized",
                    duration: .zero
                ),
                for: key
            )
            #expect(try permissions(of: path) == 0o600)
            #expect(try permissions(of: path + "-wal") == 0o600)
            for file in [path, path + "-wal"] {
                let bytes = try #require(contents(of: file))
                for secret in ["hunter2-secret", "tok-secret-9", "operator"] {
                    #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) found in \(file)")
                }
            }
            #expect(try store.keys() == [key])
            #expect(key.serverURL == "https://flipt.example.com")
        }
    }

    @Test("a document identical to the last good one updates its metadata instead of adding a generation")
    func identicalDocumentIsNotANewGeneration() async throws {
        try await withStore { store, _ in
            let document = snapshotDocument(seed: 1)
            try store.save(validatedSnapshot(document, etag: "\"1\"", fetchedAt: millisecondDate(1000)), for: testKey)
            let again = try store.save(
                validatedSnapshot(document, etag: "\"1b\"", fetchedAt: millisecondDate(2000)),
                for: testKey
            )
            #expect(again.generation == 1)
            #expect(again.etag == "\"1b\"")
            #expect(again.fetchedAt == millisecondDate(2000))
            #expect(again.lastConfirmedAt == millisecondDate(2000))
            #expect(try store.history(for: testKey).count == 1)
        }
    }

    @Test("keeps the last N generations, newest first, and N is configurable", arguments: [1, 3, 5])
    func generationsKept(kept: Int) async throws {
        try await withStore(.init(generationsKept: kept)) { store, _ in
            for seed in 1...8 {
                try store.save(validatedSnapshot(snapshotDocument(seed: seed)), for: testKey)
            }
            let history = try store.history(for: testKey)
            #expect(history.map(\.generation) == Array((9 - kept)...8).reversed())
            #expect(history.first?.isLastGood == true)
            #expect(history.dropFirst().allSatisfy { !$0.isLastGood })
            #expect(try store.entries().first?.generationCount == kept)
        }
    }

    @Test("rollback makes an earlier generation last good; an unknown generation is a clear error")
    func rollback() async throws {
        try await withStore { store, _ in
            let documents = (1...3).map { snapshotDocument(seed: $0) }
            for document in documents { try store.save(validatedSnapshot(document), for: testKey) }
            let rolledBack = try store.rollback(for: testKey, to: 2)
            #expect(rolledBack.generation == 2)
            #expect(rolledBack.isLastGood)
            #expect(try store.lastGood(for: testKey)?.document == documents[1])
            #expect(try store.history(for: testKey).filter(\.isLastGood).map(\.generation) == [2])
            #expect(try store.snapshot(for: testKey, generation: 3)?.document == documents[2])

            let error = try #require(throws: StoreError.self) { try store.rollback(for: testKey, to: 42) }
            #expect(error.code == .notFound)
            #expect(try store.lastGood(for: testKey)?.generation == 2)

            // A rolled-back-to generation survives pruning even when it is older than the newest N.
            try store.save(validatedSnapshot(snapshotDocument(seed: 4)), for: testKey)
            try store.rollback(for: testKey, to: 2)
            try store.save(validatedSnapshot(snapshotDocument(seed: 5)), for: testKey)
            try store.save(validatedSnapshot(snapshotDocument(seed: 6)), for: testKey)
            #expect(try store.history(for: testKey).map(\.generation) == [6, 5, 4])
            try store.rollback(for: testKey, to: 4)
            // Pruning keeps the newest N plus the last good one.
            #expect(try store.prune(keeping: 1) == 1)
            #expect(try store.history(for: testKey).map(\.generation) == [6, 4])
            #expect(try store.lastGood(for: testKey)?.generation == 4)
        }
    }

    @Test("a 304 records when the last good snapshot was last confirmed, never moving backwards")
    func notModified() async throws {
        try await withStore { store, _ in
            #expect(try store.recordNotModified(for: testKey, at: Date()) == nil)
            try store.save(validatedSnapshot(snapshotDocument(), fetchedAt: millisecondDate(1000)), for: testKey)
            let confirmed = try store.recordNotModified(
                for: testKey,
                at: millisecondDate(5000),
                attempt: SyncAttempt(
                    startedAt: millisecondDate(4999),
                    outcome: .notModified,
                    httpStatus: 304,
                    duration: .milliseconds(12)
                )
            )
            #expect(confirmed?.lastConfirmedAt == millisecondDate(5000))
            #expect(confirmed?.fetchedAt == millisecondDate(1000))
            try store.recordNotModified(for: testKey, at: millisecondDate(3000))
            #expect(try store.lastGood(for: testKey)?.lastConfirmedAt == millisecondDate(5000))
            #expect(try store.attempts(for: testKey).first?.outcome == .notModified)
            #expect(try store.attempts(for: testKey).first?.duration == .milliseconds(12))
        }
    }

    @Test(
        "attempt durations are kept in whole milliseconds, rounded up: only an attempt that took no time reads 0 ms",
        arguments: [
            (Duration.zero, Duration.zero), (.microseconds(1), .milliseconds(1)),
            (.microseconds(400), .milliseconds(1)), (.milliseconds(1), .milliseconds(1)),
            (.microseconds(1001), .milliseconds(2)),
            (.milliseconds(2500), .milliseconds(2500)), (.seconds(3) + .nanoseconds(1), .milliseconds(3001)),
        ]
    )
    func attemptDurationRounding(taken: Duration, stored: Duration) async throws {
        try await withStore { store, _ in
            try store.recordAttempt(
                SyncAttempt(startedAt: millisecondDate(1), outcome: .failed, duration: taken),
                for: testKey
            )
            #expect(try store.attempts(for: testKey).first?.duration == stored)
        }
    }

    @Test("the attempt log is bounded per key and newest first")
    func attemptLogBounded() async throws {
        try await withStore(.init(attemptsKept: 5)) { store, _ in
            let other = SnapshotKey(url: URL(string: "http://other")!, environment: "default", namespace: "x")
            try store.recordAttempt(
                SyncAttempt(startedAt: millisecondDate(1), outcome: .failed, duration: .zero),
                for: other
            )
            for index in 0..<12 {
                try store.recordAttempt(
                    SyncAttempt(
                        startedAt: millisecondDate(Double(100 + index)),
                        outcome: index % 2 == 0 ? .failed : .updated,
                        httpStatus: index % 2 == 0 ? 503 : 200,
                        errorClass: index % 2 == 0 ? "http_5xx" : nil,
                        duration: .milliseconds(index)
                    ),
                    for: testKey
                )
            }
            let attempts = try store.attempts(for: testKey, limit: 100)
            #expect(attempts.map(\.startedAt) == (7..<12).reversed().map { millisecondDate(Double(100 + $0)) })
            #expect(attempts.first?.httpStatus == 200)
            #expect(attempts[1].errorClass == "http_5xx")
            #expect(try store.attempts(for: other).count == 1)
            // A key with attempts but no snapshot is listed, without a last good snapshot.
            let entries = try store.entries()
            #expect(entries.count == 2)
            #expect(entries.allSatisfy { $0.lastGood == nil })
            #expect(entries.first { $0.key == testKey }?.lastAttempt?.startedAt == millisecondDate(111))
        }
    }

    @Test("verify finds a document that no longer matches its hash")
    func verifyFindsTampering() async throws {
        try await withStore { store, path in
            try store.save(validatedSnapshot(snapshotDocument(seed: 1)), for: testKey)
            try store.save(validatedSnapshot(snapshotDocument(seed: 2)), for: testKey)
            #expect(try store.verify().isHealthy)
            #expect(try store.verify().snapshotsChecked == 2)
            let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
            try connection.execute(#"UPDATE snapshots SET document = '{"tampered":true}' WHERE generation = 1"#)
            let report = try store.verify()
            #expect(!report.isHealthy)
            #expect(report.hashMismatches == [.init(key: testKey, generation: 1)])
        }
    }

    @Test("removing an entry deletes its generations and attempts")
    func removeEntry() async throws {
        try await withStore { store, path in
            try store.save(
                validatedSnapshot(snapshotDocument()),
                for: testKey,
                attempt: SyncAttempt(startedAt: Date(), outcome: .updated, duration: .zero)
            )
            #expect(try store.removeEntry(for: testKey))
            #expect(try !store.removeEntry(for: testKey))
            #expect(try store.lastGood(for: testKey) == nil)
            let connection = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
            #expect(try connection.integer("SELECT count(*) FROM snapshots") == 0)
            #expect(try connection.integer("SELECT count(*) FROM sync_attempts") == 0)
        }
    }

    @Test("the file is readable with plain SQL: ISO-8601 times, JSON documents, the cached_snapshots view")
    func readableWithPlainSQL() async throws {
        try await withStore { store, path in
            try store.save(
                validatedSnapshot(
                    snapshotDocument(flags: 4),
                    etag: "\"v1\"",
                    fetchedAt: millisecondDate(1_795_563_665.123)
                ),
                for: testKey
            )
            let connection = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
            let row = try connection.statement(
                """
                SELECT fetched_at, json_extract(document, '$.flags[1].key'), json_array_length(document, '$.flags')
                FROM snapshots
                """
            )
            .first { ($0.text(0), $0.text(1), $0.int64(2)) }
            #expect(row?.0 == "2026-11-24T23:41:05.123Z")
            #expect(row?.1 == "flag_1")
            #expect(row?.2 == 4)
            let view = try connection.statement(
                "SELECT server_url, namespace, reference, generation, etag, flag_count, generations FROM cached_snapshots"
            )
            .first {
                [$0.text(0), $0.text(1), $0.text(2), "\($0.int64(3))", $0.text(4), "\($0.int64(5))", "\($0.int64(6))"]
            }
            #expect(view == ["http://127.0.0.1:8080", "default", "", "1", "\"v1\"", "4", "1"])
        }
    }

    @Test("errors name the statement but never a bound value")
    func errorsNeverContainBoundValues() async throws {
        try await withStore { _, path in
            let connection = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
            let secret = "user-email-alice@example.com"
            let error = try #require(throws: StoreError.self) {
                try connection.statement(
                    """
                    INSERT INTO snapshots (entry_id, generation, source, fetched_at, last_confirmed_at, content_hash,
                                           size, document)
                    VALUES (1, 1, 'network', ?1, ?1, ?1, 0, ?2)
                    """
                )
                .run([.text(secret), .text("not json " + secret)])
            }
            #expect(error.resultCode != nil)
            #expect(ResultCode.SQLITE_CONSTRAINT ~= error.resultCode)
            #expect(error.sql?.contains("INSERT INTO snapshots") == true)
            #expect(!error.description.contains(secret))
            #expect(!error.message.contains(secret))
        }
    }

    @Test("result codes match primary patterns against extended codes, and extended ones exactly")
    func resultCodeMatching() {
        let code = ResultCode.SQLITE_CONSTRAINT_CHECK
        #expect(code.primary == .SQLITE_CONSTRAINT)
        #expect(!code.isPrimary)
        #expect(ResultCode.SQLITE_CONSTRAINT ~= code)
        #expect(ResultCode.SQLITE_CONSTRAINT_CHECK ~= code)
        #expect(!(ResultCode.SQLITE_CONSTRAINT_UNIQUE ~= code))
        #expect(!(ResultCode.SQLITE_CONSTRAINT_CHECK ~= ResultCode.SQLITE_CONSTRAINT))
        switch ResultCode.SQLITE_BUSY_SNAPSHOT {
        case .SQLITE_BUSY_RECOVERY: Issue.record("matched the wrong extended code")
        case .SQLITE_BUSY: break
        default: Issue.record("did not match its primary code")
        }
        #expect(ResultCode.SQLITE_BUSY.description.contains("database is locked"))
        #expect(ResultCode.SQLITE_IOERR_WRITE.description.contains("SQLITE_IOERR_WRITE"))
    }

    @Test("many threads read and write one store at once without errors or torn reads")
    func concurrentUse() async throws {
        try await withTemporaryDirectory { directory in
            let store = try await SnapshotStore(path: directory.appendingPathComponent("cache.sqlite").path)
            let documents = (0..<20).map { snapshotDocument(flags: 20, seed: $0) }
            let hashes = Set(documents.map { SHA256.hex($0) })
            try await store.save(validatedSnapshot(documents[0]), for: testKey)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for document in documents.dropFirst() { try store.save(validatedSnapshot(document), for: testKey) }
                }
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<100 {
                            let stored = try #require(try store.lastGood(for: testKey))
                            #expect(SHA256.hex(stored.document) == stored.contentHash)
                            #expect(hashes.contains(stored.contentHash))
                            _ = try store.entries()
                        }
                    }
                }
                try await group.waitForAll()
            }
            await #expect(try store.lastGood(for: testKey)?.document == documents.last)
        }
    }
}
