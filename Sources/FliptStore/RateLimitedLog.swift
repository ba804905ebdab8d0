import Logging
import Synchronization

/// A log for things that can happen thousands of times a second (refused connections, bad requests, evaluations
/// answered with the caller's default): at most one line per kind per interval; the next line of that kind says how
/// many were left out.
///
/// Shared by the relay and the client, which is why it lives in this lowest module that both use.
package final class RateLimitedLog: Sendable {
    private struct Entry {
        var lastLogged: ContinuousClock.Instant
        var suppressed: Int
    }

    private let logger: Logger
    private let interval: Duration
    private let entries = Mutex<[String: Entry]>([:])

    /// Creates a log that writes to `logger` at most one line of each kind per `interval`.
    package init(logger: Logger, interval: Duration) {
        self.logger = logger
        self.interval = interval
    }

    /// Logs `message` unless a line of `kind` was logged less than the interval ago (then it is counted).
    package func log(
        _ level: Logger.Level,
        kind: String,
        _ message: @autoclosure () -> String,
        metadata: @autoclosure () -> Logger.Metadata? = nil
    ) {
        guard logger.logLevel <= level else { return }
        let now = ContinuousClock.now
        let suppressed: Int? = entries.withLock { entries in
            if let entry = entries[kind], now - entry.lastLogged < interval {
                entries[kind]?.suppressed += 1
                return nil
            }
            defer { entries[kind] = Entry(lastLogged: now, suppressed: 0) }
            return entries[kind]?.suppressed ?? 0
        }
        guard let suppressed else { return }
        let note = suppressed > 0 ? " (\(suppressed) more of this kind not logged since the last)" : ""
        logger.log(level: level, "\(message())\(note)", metadata: metadata())
    }
}
