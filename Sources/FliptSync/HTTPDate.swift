import Foundation

/// Parsing of HTTP dates and `Retry-After`.
enum HTTPDate {
    /// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func parse(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text.trimmingCharacters(in: .whitespaces))
    }

    /// The delay a `Retry-After` value asks for: delta-seconds, or an HTTP date measured from the server's `Date`
    /// (or from `now` when there is none). Nil when it cannot be parsed.
    static func retryAfter(_ value: String, now: Date, serverDate: Date?) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        guard let date = parse(trimmed) else { return nil }
        let interval = date.timeIntervalSince(serverDate ?? now)
        return .milliseconds(Int64(max(0, interval) * 1_000))
    }
}
