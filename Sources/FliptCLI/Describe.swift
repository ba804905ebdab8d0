import FliptEngine
import FliptStore
import Foundation

/// How times, sizes, keys and cache records read in human output, and their shape in `--json` output.
enum Describe {
    /// `2026-08-20T10:04:05Z` (UTC, whole seconds) for people.
    static func time(_ date: Date) -> String {
        let text = Timestamp.string(from: date)
        return String(text.prefix(19)) + "Z"
    }

    /// `2026-08-20T10:04:05.123Z` (UTC, milliseconds) for scripts.
    static func jsonTime(_ date: Date?) -> JSONValue {
        date.map { .string(Timestamp.string(from: $0)) } ?? .null
    }

    /// `2026-08-20T10:04:05Z (3 min ago)`.
    static func timeAndAge(_ date: Date, now: Date) -> String {
        "\(time(date)) (\(age(of: date, now: now)))"
    }

    /// How long ago `date` was: `just now`, `42 s ago`, `3 min ago`, `5 h ago`, `2 days ago` (or `in …`).
    static func age(of date: Date, now: Date) -> String {
        let seconds = now.timeIntervalSince(date)
        let magnitude = abs(seconds)
        if magnitude < 1 { return "just now" }
        let text: String
        if magnitude < 60 {
            text = "\(Int(magnitude)) s"
        } else if magnitude < 7200 {
            text = "\(Int(magnitude / 60)) min"
        } else if magnitude < 172_800 {
            text = "\(Int(magnitude / 3600)) h"
        } else {
            text = "\(Int(magnitude / 86400)) days"
        }
        return seconds < 0 ? "in \(text)" : "\(text) ago"
    }

    /// Seconds since `date`, never negative, for scripts.
    static func ageSeconds(of date: Date, now: Date) -> JSONValue {
        .double((max(0, now.timeIntervalSince(date)) * 1000).rounded() / 1000)
    }

    /// `512 B`, `3.4 KiB`, `1.2 MiB`.
    static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return String(format: "%.1f MiB", Double(bytes) / (1024 * 1024))
    }

    /// `http://flipt:8080 default/default@main`.
    static func key(_ key: SnapshotKey) -> String {
        key.description
    }

    /// The ETag, or `(none)`.
    static func etag(_ etag: String?) -> String {
        guard let etag, !etag.isEmpty else { return "(none)" }
        return etag
    }

    /// The ETag shortened for a table column.
    static func shortETag(_ etag: String?, length: Int = 16) -> String {
        guard let etag, !etag.isEmpty else { return "-" }
        return etag.count > length ? String(etag.prefix(length - 1)) + "…" : etag
    }

    /// How many flags a stored document holds, or nil when the engine rejects it.
    static func flagCount(_ document: Data) -> Int? {
        (try? Snapshot(document: document))?.flagCount
    }

    /// `not_modified 304, 3 min ago` for a table cell.
    static func attempt(_ attempt: SyncAttempt?, now: Date) -> String {
        guard let attempt else { return "-" }
        var text = attempt.outcome.rawValue
        if let errorClass = attempt.errorClass {
            text += " \(errorClass)"
        } else if let status = attempt.httpStatus {
            text += " \(status)"
        }
        return text + ", " + age(of: attempt.startedAt, now: now)
    }

    /// Milliseconds in a duration.
    static func milliseconds(_ duration: Duration) -> Int {
        let components = duration.components
        return Int(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }
}

extension SnapshotKey {
    /// The key's parts as JSON members.
    var jsonMembers: [(String, JSONValue)] {
        [
            ("server", .string(serverURL)), ("environment", .string(environment)), ("namespace", .string(namespace)),
            ("reference", reference.isEmpty ? .null : .string(reference)),
        ]
    }
}

extension SnapshotMetadata {
    /// The metadata as JSON members, with the flag count when known.
    func jsonMembers(flags: Int?, now: Date) -> [(String, JSONValue)] {
        [
            ("generation", .int(generation)), ("last_good", .bool(isLastGood)), ("source", .string(source.rawValue)),
            ("etag", .optional(etag)), ("flags", .optional(flags)), ("size", .int(size)),
            ("sha256", .string(contentHash)), ("fetched_at", Describe.jsonTime(fetchedAt)),
            ("server_date", Describe.jsonTime(serverDate)), ("last_confirmed_at", Describe.jsonTime(lastConfirmedAt)),
            ("age_seconds", Describe.ageSeconds(of: lastConfirmedAt, now: now)),
        ]
    }
}

extension SyncAttempt {
    /// The attempt as a JSON object.
    var json: JSONValue {
        .object([
            ("started_at", Describe.jsonTime(startedAt)), ("outcome", .string(outcome.rawValue)),
            ("http_status", .optional(httpStatus)), ("error_class", .optional(errorClass)),
            ("duration_ms", .int(Describe.milliseconds(duration))),
        ])
    }
}
