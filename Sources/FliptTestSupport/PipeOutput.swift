import Foundation
import Synchronization

/// What a child process writes to one pipe, read on a thread of its own until the pipe ends, for tests that run
/// `flipt-offline`, `curl` or `python3`.
///
/// A `FileHandle.readabilityHandler` is not used: on Linux it lost the rest of the output of a child that wrote
/// quickly and exited (one callback, then nothing).
package final class PipeOutput: Sendable {
    private let data = Mutex(Data())
    private let ended = Mutex(false)

    /// Starts reading `pipe` until its end.
    package init(reading pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                data.withLock { $0.append(chunk) }
            }
            ended.withLock { $0 = true }
        }
    }

    /// Everything read so far, as UTF-8 text.
    package var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Whether the pipe ended: every process holding its write end has exited or closed it.
    package var isComplete: Bool { ended.withLock { $0 } }

    /// Waits until both pipes ended, or `timeout` passed (a child's own children may hold a pipe open longer).
    package static func waitUntilComplete(_ outputs: PipeOutput..., timeout: Duration = .seconds(2)) async {
        let deadline = ContinuousClock.now + timeout
        while !outputs.allSatisfy(\.isComplete) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
