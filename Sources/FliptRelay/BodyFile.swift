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

/// A large answer body in an unlinked temporary file (in `/dev/shm`, memory, where there is one), so that plain
/// HTTP connections send it with `sendfile(2)`: the kernel hands the file's pages to the socket instead of
/// copying the bytes from the process, as nginx serves a static file. The file is closed when the last answer
/// that sends it is out and its snapshot is gone.
final class BodyFile: Sendable {
    /// The open file.
    private let descriptor: CInt
    /// Its size in bytes.
    let size: Int
    /// One handle (a duplicate of ``descriptor``) for each event loop that sends the file: NIO marks a handle in
    /// use while it sends from it, and a second loop sending from the same handle at that moment fails.
    private let handles = Mutex<[ObjectIdentifier: NIOFileHandle]>([:])

    private init(descriptor: CInt, size: Int) {
        self.descriptor = descriptor
        self.size = size
    }

    deinit {
        for handle in handles.withLock({ Array($0.values) }) { try? handle.close() }
        close(descriptor)
    }

    /// The whole file, to write to a channel of `eventLoop`; nil when no handle can be made (out of descriptors).
    func region(for eventLoop: any EventLoop) -> FileRegion? {
        let handle: NIOFileHandle? = handles.withLock { handles in
            let key = ObjectIdentifier(eventLoop)
            if let handle = handles[key] { return handle }
            let copy = dup(descriptor)
            guard copy >= 0 else { return nil }
            _ = fcntl(copy, F_SETFD, FD_CLOEXEC)
            // The underscored initialiser is NIO's own way to wrap a descriptor without the deprecation warning
            // of `init(descriptor:)`; the handle is closed in deinit.
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy)
            handles[key] = handle
            return handle
        }
        return handle.map { FileRegion(fileHandle: $0, readerIndex: 0, endIndex: size) }
    }

    /// Writes `bytes` to a new unlinked temporary file; nil when no file can be made or written (no space in
    /// `/dev/shm`, no temporary directory): the bytes are then sent from memory.
    static func make(_ bytes: ByteBuffer) -> BodyFile? {
        var isDirectory: ObjCBool = false
        let directory =
            FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory) && isDirectory.boolValue
            ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        var template = Array("\(directory)/flipt-relay-body.XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        let written = bytes.withUnsafeReadableBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let count = pwrite(descriptor, raw.baseAddress! + offset, raw.count - offset, off_t(offset))
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        guard written else {
            close(descriptor)
            return nil
        }
        return BodyFile(descriptor: descriptor, size: bytes.readableBytes)
    }
}

/// The body files of one snapshot, made when a plain connection first asks for a large body: the document and
/// its gzip form. Shared by every copy of the snapshot; freed with the last.
final class BodyFiles: Sendable {
    /// Which body.
    enum Body: Int {
        case document
        case gzipDocument
    }

    /// Bodies smaller than this are sent from memory. Measured with `Tests/Load/compare.sh` (50 connections,
    /// 200 path, CPU per request of serve, memory / file, two interleaved runs each): 1,142,951 bytes (1,000
    /// flags) 288-291 / 156-192 µs; 228,311 bytes 54-56 / 70-74 µs; 45,503 bytes 14-16 / 20-22 µs. Below about
    /// half a megabyte the copy costs less than the second system call (`sendfile` after the head's `writev`)
    /// and the separate segments.
    static let minimumSize = 512 * 1024

    /// nil: not asked for yet; `.some(nil)`: making the file failed, not tried again.
    private let files = Mutex<[BodyFile??]>([nil, nil])

    /// The file holding `bytes`, the `body` of this snapshot, made now if it was not; nil when it cannot be made.
    func file(_ body: Body, bytes: ByteBuffer) -> BodyFile? {
        files.withLock { files in
            if let known = files[body.rawValue] { return known }
            let made = BodyFile.make(bytes)
            files[body.rawValue] = .some(made)
            return made
        }
    }
}
