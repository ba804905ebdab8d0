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

/// A large answer body in an unlinked temporary file (see ``directories()``), so that plain
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

    /// Writes `bytes` to a new unlinked temporary file in the first of ``directories`` that takes it; nil when none
    /// does (no space, read-only file systems): the bytes are then sent from memory.
    static func make(_ bytes: ByteBuffer) -> BodyFile? {
        for directory in directories() {
            if let file = make(bytes, in: directory) { return file }
        }
        return nil
    }

    /// Where body files are made, best first: the temporary directory (`TMPDIR`, else `/tmp`) and `/var/tmp` when
    /// on a disk file system, then `/dev/shm`, then the temporary directory whatever it is on.
    ///
    /// A file on a disk file system is sent from the page cache, and the kernel sends that for less CPU than a
    /// tmpfs file of the same bytes. Measured on this project's Linux 6.18 VM (tmpfs without huge pages), one
    /// connection on loopback taking a 1.1 MB file by `sendfile`, three rounds over the file systems in turn: sender CPU 147-195 µs an answer
    /// from ext4, 220-281 µs from `/dev/shm`; the receiver's 97-121 µs against 131-166 µs. In
    /// `Tests/Load/compare.sh --flags 1000 --rounds 3` (200 path, 50 / 200 connections), nginx's CPU per answer
    /// over serve's went from 0.96 / 0.94 to 1.00 / 1.07, and serve's p99 over nginx's from 1.15 / 1.24 to
    /// 1.13 / 1.05 (the two builds in turn). The file is unlinked at once: the kernel may write its pages back to
    /// the disk, but no name ever refers to them and they go with the last descriptor.
    static func directories() -> [String] {
        let temporary = FileManager.default.temporaryDirectory.path
        let mounts = mountTable()
        var found: [String] = []
        for candidate in [temporary, "/var/tmp"] where !found.contains(candidate) && isDirectory(candidate) {
            if let type = mounts.flatMap({ fileSystemType(of: candidate, in: $0) }),
                !memoryFileSystems.contains(type)
            {
                found.append(candidate)
            }
        }
        if isDirectory("/dev/shm") { found.append("/dev/shm") }
        if !found.contains(temporary) { found.append(temporary) }
        return found
    }

    /// The file system types that hold their files in memory.
    static let memoryFileSystems: Set<String> = ["tmpfs", "ramfs"]

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The type of the file system holding `path`, from the mount table; nil when it cannot be read.
    static func fileSystemType(of path: String) -> String? {
        mountTable().flatMap { fileSystemType(of: path, in: $0) }
    }

    /// The mounts of `/proc/self/mounts` in its order (mount point, file system type); nil where it cannot be read.
    private static func mountTable() -> [(point: String, type: String)]? {
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        return table.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { return nil }
            // The table writes space, tab, newline and backslash in paths as octal escapes.
            let point = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
                .replacingOccurrences(of: "\\011", with: "\t").replacingOccurrences(of: "\\012", with: "\n")
                .replacingOccurrences(of: "\\134", with: "\\")
            return (point, String(fields[2]))
        }
    }

    /// The type of the file system mounted at the longest mount point holding `path` (the last such mount, which
    /// hides the earlier ones); nil when no mount holds it.
    private static func fileSystemType(of path: String, in mounts: [(point: String, type: String)]) -> String? {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var found: (point: String, type: String)?
        for mount in mounts {
            let holds = mount.point == "/" || resolved == mount.point || resolved.hasPrefix(mount.point + "/")
            if holds && mount.point.count >= (found?.point.count ?? 0) { found = mount }
        }
        return found?.type
    }

    private static func make(_ bytes: ByteBuffer, in directory: String) -> BodyFile? {
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
