import ArgumentParser
import FliptStore
import Foundation

/// `flipt-offline cache diff`: what changed between two stored generations.
struct CacheDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show which flags were added, removed or changed between two stored generations.",
        discussion: """
            With no generation, compares the generation before the last good one with the last good one; with \
            one, compares it with the last good one. For each changed flag it says how: enabled toggled, type, \
            default variant, name, description, and per rule or rollout (by position, their evaluation order) \
            the segments, segment operator, distribution, thresholds and segment definitions.

            Examples:
              flipt-offline cache diff
              flipt-offline cache diff 3 5 --namespace production
              flipt-offline cache diff 4 --json
            """
    )

    @Argument(help: "The older generation (default: the one before the last good one).")
    var from: Int?

    @Argument(help: "The newer generation (default: the last good one).")
    var to: Int?

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache diff") {
            let store = try cache.openForReading()
            let key = try client.key(in: store)
            let lastGood = try store.requireLastGood(for: key)
            let newer = try to.map { try store.requireSnapshot(for: key, generation: $0) } ?? lastGood
            let older: StoredSnapshot
            if let from {
                older = try store.requireSnapshot(for: key, generation: from)
            } else {
                guard
                    let previous = try store.history(for: key).first(where: { $0.generation < newer.generation })
                else {
                    throw CommandFailure(
                        ExitStatus.noEntry,
                        "no generation before \(newer.generation) is stored for \(key); nothing to compare with"
                    )
                }
                older = try store.requireSnapshot(for: key, generation: previous.generation)
            }
            _ = try older.decoded()
            _ = try newer.decoded()
            let diff = try SnapshotDiff(from: older.document, to: newer.document)
            if json {
                var members = key.jsonMembers
                members += [
                    ("from", .int(older.generation)), ("to", .int(newer.generation)),
                    ("added", .array(diff.added.map(\.json))), ("removed", .array(diff.removed.map(\.json))),
                    (
                        "changed",
                        .array(
                            diff.changed.map { change in
                                .object([
                                    ("key", .string(change.key)), ("type", .string(change.type)),
                                    ("changes", .array(change.details.map(\.json))),
                                ])
                            }
                        )
                    ),
                    ("unchanged", .int(diff.unchanged)),
                ]
                Terminal.line(JSONValue.object(members).text)
                return
            }
            Terminal.line(
                "Generation \(older.generation) (etag \(Describe.etag(older.etag))) → generation \(newer.generation) "
                    + "(etag \(Describe.etag(newer.etag))) of \(Describe.key(key))"
            )
            for flag in diff.added {
                Terminal.line("+ \(flag.key)  added (\(flag.type), \(flag.isEnabled ? "enabled" : "disabled"))")
            }
            for flag in diff.removed {
                Terminal.line("- \(flag.key)  removed (\(flag.type), \(flag.isEnabled ? "enabled" : "disabled"))")
            }
            for change in diff.changed {
                Terminal.line("~ \(change.key)  changed (\(change.type))")
                for detail in change.details { Terminal.line("    \(detail.text)") }
            }
            if diff.isEmpty {
                Terminal.line("No flag differences; \(diff.unchanged) flags are the same.")
            } else {
                Terminal.line(
                    "\(diff.added.count) added, \(diff.removed.count) removed, \(diff.changed.count) changed, "
                        + "\(diff.unchanged) unchanged."
                )
            }
        }
    }
}
