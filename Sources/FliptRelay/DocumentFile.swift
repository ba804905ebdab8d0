import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A served document as an unlinked file in memory (tmpfs when there is one), so that plain-HTTP connections
/// send it with sendfile(2) as nginx sends a static file, instead of copying it from the process into each
/// socket. Made on first use; when no file can be made, the document is sent from memory as before.
///
/// Each event loop gets its own descriptor of the file (`NIOFileHandle` allows one use at a time), made when
/// the loop first sends it. A write in flight keeps the object, and so the descriptors, alive; they are closed
/// when the snapshot and the last such write are gone.
final class DocumentFile: Sendable {
    /// Documents smaller than this are copied into the answer's buffer instead (FIGURE).
    static let minimumSize = 16 * 1024

    private enum State {
        case untried
        case unavailable
        /// One descriptor per event loop index, the first the file's own.
        case ready([NIOFileHandle?])
    }

    private let document: ByteBuffer
    private let state = Mutex(State.untried)

    /// The file for `document` (not made yet).
    init(document: ByteBuffer) {
        self.document = document
    }

    deinit {
        state.withLock { state in
            guard case .ready(let handles) = state else { return }
            for case let handle? in handles { try? handle.close() }
        }
    }

    /// The whole document as a region of its file, for the event loop with index `loop` (of `loops`, the same
    /// for every call); nil when no file could be made.
    func region(loop: Int, of loops: Int) -> FileRegion? {
        let handle: NIOFileHandle? = state.withLock { state in
            if case .untried = state {
                if let file = Self.makeFile(document) {
                    // All descriptors now, while no loop uses the first.
                    state = .ready([file] + (1..<max(1, loops)).map { _ in try? file.duplicate() })
                } else {
                    state = .unavailable
                }
            }
            guard case .ready(let handles) = state, loop < handles.count else { return nil }
            return handles[loop]
        }
        return handle.map { FileRegion(fileHandle: $0, readerIndex: 0, endIndex: document.readableBytes) }
    }

    /// An unlinked file holding `document`, or nil.
    private static func makeFile(_ document: ByteBuffer) -> NIOFileHandle? {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        var template = Array("\(directory)/flipt-relay-document-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let written = document.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        guard written else {
            close(fd)
            return nil
        }
        return NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
    }
}
