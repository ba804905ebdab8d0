import ArgumentParser
import FliptEngine
import FliptStore
import Foundation

/// `flipt-offline cache`: inspect and maintain the snapshot cache file.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect and maintain the snapshot cache file.",
        discussion: """
            The cache is one SQLite file. Per entry (server, environment, namespace, reference) it keeps the last \
            good snapshot, a few earlier generations and a log of sync attempts. Commands that only read open it \
            read-only, so they work on a write-protected file and never change it. Listing commands print \
            aligned tables for people, or with --json one JSON object for scripts. Times are ISO-8601 UTC with \
            the age in brackets.

            Entries are chosen with --url, --namespace, --environment and --reference; --url may be left out when \
            the cache holds the namespace from one server only.

            Exit status (every subcommand):
              0   success
              1   the operation failed
              2   an invalid snapshot (import input, or a stored one that fails to decode)
              3   an input or output file could not be read or written
              4   the cache has no such file, entry or generation
              5   verify found problems
              30  the cache file cannot be opened, read or written
              64  the command line is invalid
            """,
        subcommands: [
            CacheListCommand.self, CacheShowCommand.self, CacheHistoryCommand.self, CacheDiffCommand.self,
            CacheRollbackCommand.self, CacheUnpinCommand.self, CacheVerifyCommand.self, CachePruneCommand.self,
            CacheExportCommand.self,
            CacheImportCommand.self,
        ]
    )
}

/// `flipt-offline cache ls`: every entry of the file.
struct CacheListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the cache entries: key, last good generation, ETag, flags, size, times, last attempt.",
        discussion: """
            One row per entry: server, environment, namespace, reference, the last good generation (and how \
            many are kept), its ETag, flag count and size, when it was fetched and last confirmed by the \
            server, its age, and the outcome of the latest sync attempt.

            Examples:
              flipt-offline cache ls
              flipt-offline cache ls --cache ./flipt.sqlite3 --json | jq '.entries[].etag'
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache ls") {
            let store = try cache.openForReading()
            let now = Date()
            let entries = try store.entries()
            var rows: [(CacheEntry, Int?)] = []
            for entry in entries {
                var flags: Int?
                if entry.lastGood != nil, let stored = try store.lastGood(for: entry.key) {
                    flags = Describe.flagCount(stored.document)
                }
                rows.append((entry, flags))
            }
            if json {
                let items = rows.map { entry, flags -> JSONValue in
                    var members = entry.key.jsonMembers
                    members += [
                        ("generations", .int(entry.generationCount)),
                        (
                            "last_good",
                            entry.lastGood.map { .object($0.jsonMembers(flags: flags, now: now)) } ?? .null
                        ),
                        ("last_attempt", entry.lastAttempt?.json ?? .null),
                    ]
                    return .object(members)
                }
                Terminal.line(
                    JSONValue.object([("cache", .string(store.path)), ("entries", .array(items))]).text
                )
                return
            }
            guard !rows.isEmpty else {
                Terminal.line("The cache \(store.path) holds no entries yet; fill it with `flipt-offline sync`.")
                return
            }
            var table = TextTable(
                [
                    "SERVER", "ENVIRONMENT", "NAMESPACE", "REFERENCE", "GENERATION", "ETAG", "FLAGS", "SIZE",
                    "FETCHED", "CONFIRMED", "AGE", "LAST ATTEMPT",
                ],
                rightAligned: [6, 7]
            )
            for (entry, flags) in rows {
                let key = entry.key
                var row = [key.serverURL, key.environment, key.namespace, key.reference.isEmpty ? "-" : key.reference]
                if let lastGood = entry.lastGood {
                    row += [
                        "\(lastGood.generation) (\(entry.generationCount) kept)", Describe.shortETag(lastGood.etag),
                        flags.map(String.init) ?? "invalid", Describe.size(lastGood.size),
                        Describe.time(lastGood.fetchedAt), Describe.time(lastGood.lastConfirmedAt),
                        Describe.age(of: lastGood.lastConfirmedAt, now: now),
                    ]
                } else {
                    row += ["none", "-", "-", "-", "-", "-", "-"]
                }
                row.append(Describe.attempt(entry.lastAttempt, now: now))
                table.append(row)
            }
            Terminal.line("Cache \(store.path)")
            Terminal.line(table.render())
        }
    }
}

/// `flipt-offline cache show`: one entry in detail.
struct CacheShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one entry: metadata of the last good snapshot, its flags, and recent sync attempts.",
        discussion: """
            Examples:
              flipt-offline cache show --namespace production
              flipt-offline cache show --url https://flipt.example.com --attempts 50 --json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Option(name: .long, help: "How many recent sync attempts to list.")
    var attempts = 10

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache show") {
            let store = try cache.openForReading()
            let key = try client.key(in: store)
            let stored = try store.requireLastGood(for: key)
            let snapshot = try? Snapshot(document: stored.document)
            let flags = snapshot.flatMap { try? Evaluator(snapshot: $0, namespace: $0.namespaceKey).listFlags() } ?? []
            let recent = try store.attempts(for: key, limit: max(0, attempts))
            let generations = try store.history(for: key).count
            let pin = try store.pin(for: key)
            let now = Date()
            if json {
                var members = key.jsonMembers
                members += [
                    ("generations", .int(generations)),
                    ("last_good", .object(stored.metadata.jsonMembers(flags: snapshot?.flagCount, now: now))),
                    ("valid", .bool(snapshot != nil)),
                    ("pin", pin?.json ?? .null),
                    (
                        "flags",
                        .array(
                            flags.map { flag in
                                .object([
                                    ("key", .string(flag.key)), ("type", .string(Self.typeName(flag.type))),
                                    ("enabled", .bool(flag.isEnabled)), ("description", .optional(flag.description)),
                                    ("default_variant", .optional(flag.defaultVariant?.key)),
                                ])
                            }
                        )
                    ),
                    ("attempts", .array(recent.map(\.json))),
                ]
                Terminal.line(JSONValue.object(members).text)
                return
            }
            let metadata = stored.metadata
            var facts = TextTable(["Entry", Describe.key(key)])
            facts.append(["Cache file", store.path])
            facts.append([
                "Last good",
                "generation \(metadata.generation) of \(generations) kept (source \(metadata.source.rawValue))",
            ])
            if let pin {
                facts.append([
                    "Pinned",
                    "by a rollback from generation \(pin.rolledBackFromGeneration) at \(Describe.time(pin.pinnedAt)); "
                        + "its content (SHA-256 \(pin.rolledBackFromHash.prefix(12))…) is not stored again until "
                        + "`flipt-offline cache unpin` or other content",
                ])
            }
            facts.append(["ETag", Describe.etag(metadata.etag)])
            facts.append(["Fetched", Describe.timeAndAge(metadata.fetchedAt, now: now)])
            facts.append(["Confirmed", Describe.timeAndAge(metadata.lastConfirmedAt, now: now)])
            facts.append(["Server date", metadata.serverDate.map(Describe.time) ?? "-"])
            facts.append(["Size", "\(Describe.size(metadata.size)) (\(metadata.size) bytes)"])
            facts.append(["SHA-256", metadata.contentHash])
            facts.append(["Flags", snapshot.map { String($0.flagCount) } ?? "the document no longer decodes"])
            Terminal.line(facts.render())
            Terminal.line()
            if flags.isEmpty {
                Terminal.line("No flags.")
            } else {
                var table = TextTable(["KEY", "TYPE", "ENABLED", "DEFAULT VARIANT", "DESCRIPTION"])
                for flag in flags {
                    table.append([
                        flag.key, Self.typeName(flag.type), flag.isEnabled ? "yes" : "no",
                        flag.defaultVariant?.key ?? "-", flag.description ?? "",
                    ])
                }
                Terminal.line(table.render())
            }
            Terminal.line()
            if recent.isEmpty {
                Terminal.line("No sync attempts recorded.")
            } else {
                Terminal.line("Recent sync attempts (newest first):")
                var table = TextTable(
                    ["STARTED", "AGE", "OUTCOME", "HTTP", "ERROR", "DURATION"],
                    rightAligned: [3, 5]
                )
                for attempt in recent {
                    table.append([
                        Describe.time(attempt.startedAt), Describe.age(of: attempt.startedAt, now: now),
                        attempt.outcome.rawValue, attempt.httpStatus.map(String.init) ?? "-", attempt.errorClass ?? "-",
                        "\(Describe.milliseconds(attempt.duration)) ms",
                    ])
                }
                Terminal.line(table.render())
            }
        }
    }

    static func typeName(_ type: FlagType) -> String {
        type == .boolean ? "boolean" : "variant"
    }
}

/// `flipt-offline cache history`: the stored generations of one entry.
struct CacheHistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List the stored generations of one entry, newest first; * marks the last good one.",
        discussion: """
            Examples:
              flipt-offline cache history --namespace production
              flipt-offline cache history --json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache history") {
            let store = try cache.openForReading()
            let key = try client.key(in: store)
            let generations = try store.history(for: key)
            var rows: [(SnapshotMetadata, Int?)] = []
            for metadata in generations {
                let flags = try store.snapshot(for: key, generation: metadata.generation).flatMap {
                    Describe.flagCount($0.document)
                }
                rows.append((metadata, flags))
            }
            let now = Date()
            if json {
                var members = key.jsonMembers
                members.append(
                    ("generations", .array(rows.map { .object($0.0.jsonMembers(flags: $0.1, now: now)) }))
                )
                Terminal.line(JSONValue.object(members).text)
                return
            }
            Terminal.line("Generations of \(Describe.key(key)):")
            var table = TextTable(
                ["", "GENERATION", "SOURCE", "ETAG", "FLAGS", "SIZE", "FETCHED", "CONFIRMED", "SHA-256"],
                rightAligned: [1, 4, 5]
            )
            for (metadata, flags) in rows {
                table.append([
                    metadata.isLastGood ? "*" : "", String(metadata.generation), metadata.source.rawValue,
                    Describe.shortETag(metadata.etag), flags.map(String.init) ?? "invalid",
                    Describe.size(metadata.size),
                    Describe.timeAndAge(metadata.fetchedAt, now: now),
                    Describe.age(of: metadata.lastConfirmedAt, now: now),
                    String(metadata.contentHash.prefix(12)),
                ])
            }
            Terminal.line(table.render())
        }
    }
}
