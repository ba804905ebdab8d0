import ArgumentParser
import FliptEngine
import FliptStore
import Foundation

/// `flipt-offline cache rollback`: make an earlier generation the last good one.
struct CacheRollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Make a stored generation the last good snapshot (default: the one before the current).",
        discussion: """
            Clients that start afterwards load the chosen generation. Nothing is deleted, so a later rollback \
            can return to any stored generation. The generation is decoded by the engine first; one that no \
            longer decodes is refused.

            The rollback holds: the chosen generation is pinned, so that a sync (or a running client's next \
            fetch) that brings the very document rolled back from again keeps the pinned generation, and a \
            running client that still serves that document switches to the pinned one at its next fetch. A \
            document with any other content from the server lifts the pin and is stored as usual, and so does \
            `flipt-offline cache unpin` or an import. `--no-pin` rolls back without pinning.

            Examples:
              flipt-offline cache rollback
              flipt-offline cache rollback 3 --namespace production --json
            """
    )

    @Argument(help: "The generation to make last good (default: the newest one before the current last good).")
    var generation: Int?

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Flag(
        name: .long,
        inversion: .prefixedNo,
        help: "Pin the chosen generation against the document rolled back from (see above)."
    )
    var pin = true

    @Flag(name: .long, help: "Print one JSON object instead of a line.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache rollback") {
            let store = try cache.openForWriting()
            let key = try client.key(in: store)
            let current = try store.requireLastGood(for: key)
            let target: Int
            if let generation {
                target = generation
            } else {
                guard
                    let previous = try store.history(for: key).first(where: { $0.generation < current.generation })
                else {
                    throw CommandFailure(
                        ExitStatus.noEntry,
                        "no generation before \(current.generation) is stored for \(key); see "
                            + "`flipt-offline cache history`"
                    )
                }
                target = previous.generation
            }
            let stored = try store.requireSnapshot(for: key, generation: target)
            let snapshot: Snapshot
            do throws(SnapshotRejection) {
                snapshot = try Snapshot(document: stored.document, namespace: key.namespace)
            } catch {
                switch error {
                case .undecodable(let reason):
                    throw CommandFailure(
                        ExitStatus.invalidDocument,
                        "generation \(target) of \(key) no longer decodes (\(reason)); refusing to roll back to it"
                    )
                case .otherNamespace(let found):
                    throw CommandFailure(
                        ExitStatus.invalidDocument,
                        "generation \(target) is a snapshot of namespace \(found), not \(key.namespace); "
                            + "refusing to roll back to it"
                    )
                }
            }
            let metadata: SnapshotMetadata
            do throws(StoreError) {
                metadata = try store.rollback(for: key, to: target, pinning: pin)
            } catch {
                throw CommandFailure.cache(error, doing: "roll back")
            }
            let now = Date()
            if json {
                var members = key.jsonMembers
                members += [
                    ("previous_generation", .int(current.generation)),
                    ("last_good", .object(metadata.jsonMembers(flags: snapshot.flagCount, now: now))),
                    ("pin", try store.pin(for: key)?.json ?? .null),
                ]
                Terminal.line(JSONValue.object(members).text)
            } else {
                let held =
                    try store.pin(for: key).map { pin in
                        "; pinned: a sync that brings the content of generation \(pin.rolledBackFromGeneration) again "
                            + "keeps this one (`flipt-offline cache unpin` lifts the pin)"
                    } ?? "; not pinned"
                Terminal.line(
                    "rolled back: generation \(metadata.generation) is now the last good snapshot of \(key) (was "
                        + "\(current.generation); etag \(Describe.etag(metadata.etag)), \(snapshot.flagCount) flags, "
                        + "fetched \(Describe.timeAndAge(metadata.fetchedAt, now: now)))\(held)"
                )
            }
        }
    }
}

/// `flipt-offline cache unpin`: lift the pin of a rollback.
struct CacheUnpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpin",
        abstract: "Lift the pin of a rollback, so that the next sync stores the server's snapshot whatever it is.",
        discussion: """
            The last good snapshot stays as it is until the next sync or fetch. Exits 0 when the entry was not \
            pinned (nothing to do), and says so.

            Examples:
              flipt-offline cache unpin
              flipt-offline cache unpin --namespace production --json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of a line.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache unpin") {
            let store = try cache.openForWriting()
            let key = try client.key(in: store)
            let lifted: RollbackPin?
            do throws(StoreError) {
                lifted = try store.unpin(for: key)
            } catch {
                throw CommandFailure.cache(error, doing: "lift the pin")
            }
            if json {
                Terminal.line(JSONValue.object(key.jsonMembers + [("lifted", lifted?.json ?? .null)]).text)
            } else if let lifted {
                Terminal.line(
                    "unpinned: generation \(lifted.generation) of \(key) stays last good until the next sync, which "
                        + "stores the server's snapshot whatever its content"
                )
            } else {
                Terminal.line("not pinned: \(key) has no rollback pin; nothing changed")
            }
        }
    }
}

extension RollbackPin {
    /// The pin as JSON members for `--json` output.
    var json: JSONValue {
        .object([
            ("generation", .int(generation)), ("rolled_back_from_generation", .int(rolledBackFromGeneration)),
            ("rolled_back_from_hash", .string(rolledBackFromHash)), ("pinned_at", .string(Describe.time(pinnedAt))),
        ])
    }
}

/// `flipt-offline cache verify`: integrity and hashes.
struct CacheVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the cache file: SQLite integrity, document hashes, and that every snapshot decodes.",
        discussion: """
            Runs SQLite's integrity_check, re-hashes every stored document against its SHA-256, and decodes \
            every stored generation with the engine. The file is opened read-only and never changed. Exits \
            with status 5 when anything is wrong.

            Examples:
              flipt-offline cache verify
              flipt-offline cache verify --cache /var/lib/app/flipt.sqlite3 --json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache verify") {
            let store: SnapshotStore
            do {
                store = try cache.openForReading(integrityCheck: false)
            } catch let failure as CommandFailure where failure.status == ExitStatus.cache {
                report(integrity: [failure.message], mismatches: [], undecodable: [], checked: 0)
                throw ExitCode(ExitStatus.unhealthy)
            }
            let verification: VerificationReport
            do throws(StoreError) {
                verification = try store.verify()
            } catch {
                report(integrity: ["\(error.code): \(error.message)"], mismatches: [], undecodable: [], checked: 0)
                throw ExitCode(ExitStatus.unhealthy)
            }
            var undecodable: [String] = []
            for entry in try store.entries() {
                for metadata in try store.history(for: entry.key) {
                    guard let stored = try store.snapshot(for: entry.key, generation: metadata.generation) else {
                        continue
                    }
                    do throws(SnapshotRejection) {
                        _ = try Snapshot(document: stored.document, namespace: entry.key.namespace)
                    } catch {
                        switch error {
                        case .undecodable(let reason):
                            undecodable.append("\(entry.key) generation \(metadata.generation): \(reason)")
                        case .otherNamespace:
                            undecodable.append("\(entry.key) generation \(metadata.generation): \(error)")
                        }
                    }
                }
            }
            let mismatches = verification.hashMismatches.map { "\($0.key) generation \($0.generation)" }
            report(
                integrity: verification.integrityProblems,
                mismatches: mismatches,
                undecodable: undecodable,
                checked: verification.snapshotsChecked
            )
            if !verification.isHealthy || !undecodable.isEmpty { throw ExitCode(ExitStatus.unhealthy) }
        }
    }

    private func report(integrity: [String], mismatches: [String], undecodable: [String], checked: Int) {
        let healthy = integrity.isEmpty && mismatches.isEmpty && undecodable.isEmpty
        if json {
            Terminal.line(
                JSONValue.object([
                    ("cache", .string(cache.path)), ("healthy", .bool(healthy)),
                    ("integrity_problems", .array(integrity.map { .string($0) })),
                    ("hash_mismatches", .array(mismatches.map { .string($0) })),
                    ("undecodable", .array(undecodable.map { .string($0) })), ("snapshots_checked", .int(checked)),
                ]).text
            )
            return
        }
        Terminal.line("Cache \(cache.path)")
        Terminal.line("  integrity: " + (integrity.isEmpty ? "ok" : "\(integrity.count) problem(s)"))
        for problem in integrity { Terminal.line("    \(problem)") }
        Terminal.line(
            "  hashes:    "
                + (mismatches.isEmpty
                    ? "\(checked) generation(s) match their SHA-256" : "\(mismatches.count) mismatch(es)")
        )
        for mismatch in mismatches { Terminal.line("    \(mismatch)") }
        Terminal.line(
            "  documents: " + (undecodable.isEmpty ? "every stored generation decodes" : "\(undecodable.count) invalid")
        )
        for problem in undecodable { Terminal.line("    \(problem)") }
        Terminal.line(
            healthy
                ? "healthy"
                : "UNHEALTHY: roll back to a good generation (`cache rollback`), sync again, or delete the file and sync"
        )
    }
}

/// `flipt-offline cache prune`: drop old generations and old entries.
struct CachePruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Drop old generations (--keep N) and entries not confirmed for a while (--older-than D).",
        discussion: """
            --keep N keeps the newest N generations of every entry (the last good one always stays). \
            --older-than D removes whole entries (generations and attempt log) whose last good snapshot the \
            server last confirmed more than D ago (7d, 12h, 90m); an entry with no snapshot counts from its \
            latest sync attempt. --dry-run lists what would go and changes nothing.

            Examples:
              flipt-offline cache prune --keep 2
              flipt-offline cache prune --older-than 30d --dry-run
              flipt-offline cache prune --keep 1 --older-than 7d --json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @Option(name: .long, help: ArgumentHelp("Keep the newest N generations of every entry (N >= 1).", valueName: "n"))
    var keep: Int?

    @Option(
        name: .long,
        help: ArgumentHelp("Remove entries not confirmed by the server for this long (7d, 12h, 90m).", valueName: "age")
    )
    var olderThan: DurationArgument?

    @Flag(name: .long, help: "List what would be removed; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if keep == nil && olderThan == nil { throw ValidationError("Give --keep N, --older-than D, or both.") }
        if let keep, keep < 1 { throw ValidationError("--keep must be at least 1: the last good snapshot stays.") }
    }

    func run() throws {
        try CommandFailure.reporting("cache prune") {
            let store = dryRun ? try cache.openForReading() : try cache.openForWriting()
            let now = Date()
            var removedEntries: [CacheEntry] = []
            var removedGenerations: [(SnapshotKey, Int)] = []
            let entries = try store.entries()
            if let olderThan {
                let seconds = Double(Describe.milliseconds(olderThan.duration)) / 1000
                let cutoff = now.addingTimeInterval(-seconds)
                removedEntries = entries.filter { entry in
                    let reference = entry.lastGood?.lastConfirmedAt ?? entry.lastAttempt?.startedAt ?? .distantPast
                    return reference < cutoff
                }
            }
            let removedKeys = Set(removedEntries.map(\.key))
            if let keep {
                for entry in entries where !removedKeys.contains(entry.key) {
                    let history = try store.history(for: entry.key)
                    guard history.count > keep else { continue }
                    let oldestKept = history[keep - 1].generation
                    for metadata in history where metadata.generation < oldestKept && !metadata.isLastGood {
                        removedGenerations.append((entry.key, metadata.generation))
                    }
                }
            }
            if !dryRun {
                do throws(StoreError) {
                    for entry in removedEntries { try store.removeEntry(for: entry.key) }
                    if let keep { _ = try store.prune(keeping: keep) }
                } catch {
                    throw CommandFailure.cache(error, doing: "prune")
                }
            }
            if json {
                Terminal.line(
                    JSONValue.object([
                        ("dry_run", .bool(dryRun)),
                        ("removed_entries", .array(removedEntries.map { .object($0.key.jsonMembers) })),
                        (
                            "removed_generations",
                            .array(
                                removedGenerations.map { key, generation in
                                    .object(key.jsonMembers + [("generation", .int(generation))])
                                }
                            )
                        ),
                    ]).text
                )
                return
            }
            let verb = dryRun ? "would remove" : "removed"
            for entry in removedEntries {
                let confirmed = entry.lastGood.map {
                    "last confirmed \(Describe.timeAndAge($0.lastConfirmedAt, now: now))"
                }
                Terminal.line("\(verb) entry \(entry.key) (\(confirmed ?? "no snapshot"))")
            }
            for (key, generation) in removedGenerations {
                Terminal.line("\(verb) generation \(generation) of \(key)")
            }
            Terminal.line(
                "\(dryRun ? "dry run: " : "")\(verb) \(removedEntries.count) entr\(removedEntries.count == 1 ? "y" : "ies") "
                    + "and \(removedGenerations.count) generation(s)"
            )
        }
    }
}
