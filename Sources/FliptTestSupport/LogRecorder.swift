import InMemoryLogging
import Logging

/// Keeps what a logger reports in memory (swift-log's `InMemoryLogHandler`), for tests that check the log: that a
/// warning was given, that a line appears once, that a secret never does.
package final class LogRecorder: Sendable {
    private let handler = InMemoryLogHandler()
    /// The level of the loggers made by ``logger``.
    package let level: Logger.Level

    /// Creates an empty recorder whose loggers log at `level` and above.
    package init(level: Logger.Level = .trace) {
        self.level = level
    }

    /// A logger that records here.
    package var logger: Logger {
        var logger = Logger(label: "test") { [handler] _ in handler }
        logger.logLevel = level
        return logger
    }

    /// Every entry so far, oldest first.
    package var entries: [InMemoryLogHandler.Entry] { handler.entries }

    /// Every entry rendered as `level message key=value …` (metadata sorted by key), oldest first.
    package var lines: [String] { entries.map(Self.render) }

    /// The lines that contain `text`.
    package func matching(_ text: String) -> [String] { lines.filter { $0.contains(text) } }

    /// The lines of warnings.
    package var warnings: [String] { entries.filter { $0.level == .warning }.map(Self.render) }

    private static func render(_ entry: InMemoryLogHandler.Entry) -> String {
        let fields = entry.metadata.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        return "\(entry.level) \(entry.message)" + (fields.isEmpty ? "" : " " + fields)
    }
}
