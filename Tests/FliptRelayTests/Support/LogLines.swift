import Logging
import Synchronization

/// Log lines collected from a relay, for tests that check what is logged.
final class LogLines: Sendable {
    let lines = Mutex<[String]>([])

    /// A logger at debug level that appends every line here.
    var logger: Logger {
        var logger = Logger(label: "test") { _ in CollectingLogHandler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    /// The lines so far.
    var all: [String] { lines.withLock { $0 } }

    /// The lines that contain `text`.
    func matching(_ text: String) -> [String] { all.filter { $0.contains(text) } }
}

/// A log handler that appends `LEVEL message` to a ``LogLines``.
struct CollectingLogHandler: LogHandler {
    let sink: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.lines.withLock { $0.append("\(event.level) \(event.message)") }
    }
}
