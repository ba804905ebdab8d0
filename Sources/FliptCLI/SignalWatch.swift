import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Delivers SIGINT and SIGTERM (and others asked for, such as SIGHUP) as values of an async stream instead of ending the process.
///
/// The default handlers are ignored first (`SIG_IGN`), then a `DispatchSource` per signal reports each delivery
/// on a private queue. ``cancel()`` removes the sources; the signals stay ignored until the process exits.
final class SignalWatch: Sendable {
    /// Each signal as it arrives.
    let signals: AsyncStream<Int32>
    // `DispatchSourceSignal` is not `Sendable`; the sources are created in `init`, never mutated after, and only
    // cancelled (a thread-safe call) in `cancel()`.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]
    private let continuation: AsyncStream<Int32>.Continuation

    init(_ numbers: [Int32] = [SIGINT, SIGTERM]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        signals = stream
        self.continuation = continuation
        let queue = DispatchQueue(label: "flipt-offline.signals")
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// Waits for the next signal; nil once ``cancel()`` was called.
    func next() async -> Int32? {
        var iterator = signals.makeAsyncIterator()
        return await iterator.next()
    }

    /// Stops watching.
    func cancel() {
        for source in sources { source.cancel() }
        continuation.finish()
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP` or the number.
    static func name(of number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }
}
