import InMemoryLogging
import Logging

/// Keeps what a logger reports in memory (swift-log's `InMemoryLogHandler`), for tests that check the log: that a
/// warning was given, that a line appears once, that a secret never does.
public final class LogRecorder: Sendable {
    private let handler = InMemoryLogHandler()
    /// The level of the loggers made by ``logger``.
    public let level: Logger.Level

    /// Creates an empty recorder whose loggers log at `level` and above.
    public init(level: Logger.Level = .trace) {
        self.level = level
    }

    /// A logger that records here.
    public var logger: Logger {
        var logger = Logger(label: "test") { [handler] _ in handler }
        logger.logLevel = level
        return logger
    }

    /// Every entry so far, oldest first.
    public var entries: [InMemoryLogHandler.Entry] { handler.entries }

    /// Every entry rendered as `level message key=value …` (metadata sorted by key), oldest first.
    public var lines: [String] { entries.map(Self.render) }

    /// The lines that contain `text`.
    public func matching(_ text: String) -> [String] { lines.filter { $0.contains(text) } }

    /// The lines of warnings.
    public var warnings: [String] { entries.filter { $0.level == .warning }.map(Self.render) }

    private static func render(_ entry: InMemoryLogHandler.Entry) -> String {
        let fields = entry.metadata.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        return "\(entry.level) \(entry.message)" + (fields.isEmpty ? "" : " " + fields)
    }
}
