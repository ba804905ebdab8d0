import FliptEngine
import FliptTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import FliptStore

/// Damaged, foreign, read-only and full files: no crash, a clear error or log line, the last good data kept.
@Suite("Bad files")
struct BadFileTests {
    /// Creates a store at `path` with three generations of `flags`-flag documents and returns the last one.
    @discardableResult
    private func populate(_ path: String, flags: Int = 10, padding: Int = 0) throws -> Data {
        let store = try SnapshotStore(path: path)
        var last = Data()
        for seed in 1...3 {
            last = snapshotDocument(flags: flags, seed: seed, padding: padding)
            try store.save(validatedSnapshot(last, etag: "\"\(seed)\""), for: testKey)
        }
        return last
    }

    private func corruptFiles(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".corrupt-") }
    }

    private func overwrite(_ path: String, at offset: Int, with bytes: Data) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: bytes)
        try handle.close()
    }

    @Test(
        "a damaged index is found (at open, or at first use), the file moved aside, and every snapshot salvaged",
        arguments: [true, false]
    )
    func damagedIndexIsSalvaged(fullCheckOnOpen: Bool) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let last = try populate(path)
            let (rootPage, pageSize) = try {
                let inspector = try Connection(path: path, mode: .readOnly, busyTimeout: .seconds(1))
                let rootPage = try inspector.integer(
                    "SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_autoindex_snapshots_1'"
                )
                return (rootPage, Int(try #require(try inspector.integer("PRAGMA page_size"))))
            }()
            try overwrite(
                path,
                at: (Int(try #require(rootPage)) - 1) * pageSize,
                with: Data(repeating: 0x5A, count: pageSize)
            )
            let damaged = try #require(contents(of: path))

            let messages = LogRecorder()
            let store = try SnapshotStore(
                path: path,
                options: .init(checksIntegrityOnOpen: fullCheckOnOpen, logger: messages.logger)
            )
            #expect((store.recovery != nil) == fullCheckOnOpen)
            // history(for:) walks the damaged index; without the full check, that is where damage shows.
            #expect(try store.history(for: testKey).map(\.generation) == [3, 2, 1])
            let recovery = try #require(store.recovery)
            #expect(recovery.reason.code == .corrupt)
            #expect(recovery.salvagedSnapshots == 3)
            #expect(contents(of: recovery.movedAsideTo) == damaged)
            let movedName = URL(fileURLWithPath: recovery.movedAsideTo).lastPathComponent
            #expect(try corruptFiles(in: directory).allSatisfy { $0.hasPrefix(movedName) })
            #expect(messages.lines.contains { $0.contains("moved it aside") && $0.contains(recovery.movedAsideTo) })
            let stored = try #require(try store.lastGood(for: testKey))
            #expect(stored.document == last)
            #expect(stored.generation == 3)
            #expect(stored.etag == "\"3\"")
            #expect(try store.verify().isHealthy)
            #expect(try permissions(of: path) == 0o600)
            try store.save(validatedSnapshot(snapshotDocument(seed: 9)), for: testKey)
        }
    }

    @Test("with verification on read, a last good document damaged in place is not served; an intact one is")
    func damagedDocumentFallsBack() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            try populate(path)
            var bytes = try #require(contents(of: path))
            // Change one byte inside generation 3's document: still valid JSON, so only the hash can tell.
            let marker = try #require(bytes.range(of: Data(#""digest":"s3""#.utf8)))
            bytes[marker.upperBound - 2] = UInt8(ascii: "7")
            try bytes.write(to: URL(fileURLWithPath: path))

            let messages = LogRecorder()
            let unverified = try #require(try SnapshotStore(path: path).lastGood(for: testKey))
            #expect(unverified.generation == 3)
            #expect(SHA256.hex(unverified.document) != unverified.contentHash)
            let store = try SnapshotStore(
                path: path,
                options: .init(verifiesDocumentsOnRead: true, logger: messages.logger)
            )
            let served = try #require(try store.lastGood(for: testKey))
            #expect(served.generation == 2)
            #expect(!served.metadata.isLastGood)
            #expect(served.document == snapshotDocument(flags: 10, seed: 2))
            #expect(messages.lines.contains { $0.contains("does not match its content hash") })
            #expect(try store.verify().hashMismatches == [.init(key: testKey, generation: 3)])
            // A new save replaces the damaged generation as last good.
            try store.save(validatedSnapshot(snapshotDocument(seed: 8)), for: testKey)
            #expect(try store.lastGood(for: testKey)?.metadata.isLastGood == true)
        }
    }

    @Test("a damaged table page is moved aside with no crash, and a fresh file works")
    func damagedTablePage() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            try populate(path, flags: 40)
            let size = try #require(contents(of: path)).count
            let pageSize = 16384
            try overwrite(path, at: pageSize, with: Data(repeating: 0xFF, count: size - 2 * pageSize))
            let store = try SnapshotStore(path: path)
            let recovery = try #require(store.recovery)
            #expect(recovery.reason.code == .corrupt)
            #expect(FileManager.default.fileExists(atPath: recovery.movedAsideTo))
            #expect(try store.verify().isHealthy)
            try store.save(validatedSnapshot(snapshotDocument()), for: testKey)
            #expect(try store.lastGood(for: testKey) != nil)
        }
    }

    @Test("a truncated file is moved aside and replaced", arguments: [0.5, 0.1, 0.01])
    func truncatedFile(fraction: Double) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            try populate(path, flags: 20, padding: 2000)
            let original = try #require(contents(of: path))
            let truncated = original.prefix(Int(Double(original.count) * fraction))
            try truncated.write(to: URL(fileURLWithPath: path))
            let store = try SnapshotStore(path: path)
            let recovery = try #require(store.recovery)
            #expect(recovery.reason.code == .corrupt)
            #expect(contents(of: recovery.movedAsideTo) == truncated)
            #expect(try store.verify().isHealthy)
            // Whatever was salvaged verified against its hash; the store works either way.
            if let stored = try store.lastGood(for: testKey) {
                #expect(SHA256.hex(stored.document) == stored.contentHash)
            }
            try store.save(validatedSnapshot(snapshotDocument(seed: 7)), for: testKey)
        }
    }

    @Test("a file that is not SQLite is moved aside, never deleted, and a fresh cache created")
    func notSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let text = Data(String(repeating: "this is a text file, not a database\n", count: 200).utf8)
            try text.write(to: URL(fileURLWithPath: path))
            let store = try SnapshotStore(path: path)
            let recovery = try #require(store.recovery)
            #expect(recovery.reason.code == .corrupt)
            #expect(recovery.reason.resultCode == .SQLITE_NOTADB)
            #expect(recovery.salvagedSnapshots == 0)
            #expect(contents(of: recovery.movedAsideTo) == text)
            #expect(try store.lastGood(for: testKey) == nil)
            try store.save(validatedSnapshot(snapshotDocument()), for: testKey)
        }
    }

    @Test("a directory where the file should be is a clear error and is left alone")
    func directoryAtPath() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let error = try #require(throws: StoreError.self) { try SnapshotStore(path: path) }
            #expect(error.code == .cannotOpen)
            #expect(error.message.contains("is a directory"))
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
            let missing = directory.appendingPathComponent("no/such/dir/cache.sqlite").path
            let missingError = try #require(throws: StoreError.self) { try SnapshotStore(path: missing) }
            #expect(missingError.code == .cannotOpen)
            #expect(missingError.message.contains("does not exist"))
            #expect(missingError.message.contains(directory.appendingPathComponent("no/such/dir").path))
        }
    }

    @Test("what a path names, following symbolic links as FileManager does")
    func kindOfPath() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("file").path
            let folder = directory.appendingPathComponent("folder").path
            try Data("x".utf8).write(to: URL(fileURLWithPath: file))
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            let toFile = directory.appendingPathComponent("to-file").path
            let toFolder = directory.appendingPathComponent("to-folder").path
            let dangling = directory.appendingPathComponent("dangling").path
            try FileManager.default.createSymbolicLink(atPath: toFile, withDestinationPath: file)
            try FileManager.default.createSymbolicLink(atPath: toFolder, withDestinationPath: folder)
            try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: folder + "/none")
            let expected: [(String, SnapshotStore.PathKind)] = [
                (file, .other), (folder, .directory), (toFile, .other), (toFolder, .directory),
                (dangling, .missing), (directory.appendingPathComponent("none").path, .missing),
                (file + "/x", .missing),
            ]
            for (path, kind) in expected {
                #expect(SnapshotStore.kind(of: path) == kind, "\(path)")
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                #expect(exists == (kind != .missing) && isDirectory.boolValue == (kind == .directory), "\(path)")
            }
            // A cache file inside a symbolic link to a directory opens; one under a file is a missing directory.
            #expect(throws: Never.self) { try SnapshotStore(path: toFolder + "/cache.sqlite") }
            let error = try #require(throws: StoreError.self) { try SnapshotStore(path: file + "/cache.sqlite") }
            #expect(error.message.contains("does not exist"))
        }
    }

    @Test("the directory checked before opening is the one URL names, relative and root paths included")
    func directoryOfPath() {
        for path in ["/tmp/cache.sqlite", "/tmp//a/cache.sqlite", "/cache.sqlite", "/tmp/a/", "/tmp/a//", "/a"] {
            #expect(
                SnapshotStore.directory(of: path) == URL(fileURLWithPath: path).deletingLastPathComponent().path,
                "\(path)"
            )
        }
        // Relative paths: URL resolves them against the working directory, the file system does the same with ".".
        #expect(SnapshotStore.directory(of: "cache.sqlite") == ".")
        #expect(SnapshotStore.directory(of: "a/cache.sqlite") == "a")
        #expect(SnapshotStore.directory(of: "a/b/") == "a")
        #expect(SnapshotStore.directory(of: "/") == "/")
    }

    @Test("a read-only file still serves its last good snapshot; writes fail with a clear error")
    func readOnlyFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let last = try populate(path)
            try ReadOnlyFiles.make([path])
            try #require(!ReadOnlyFiles.isWritable(path), "the test setup failed to make the file read-only")
            let messages = LogRecorder()
            let store = try SnapshotStore(path: path, options: .init(logger: messages.logger))
            #expect(store.isReadOnly)
            #expect(try store.lastGood(for: testKey)?.document == last)
            let error = try #require(throws: StoreError.self) {
                try store.save(validatedSnapshot(snapshotDocument(seed: 42)), for: testKey)
            }
            #expect(error.code == .readOnly)
            #expect(error.message.contains("still served"))
            #expect(throws: StoreError.self) {
                try store.recordAttempt(SyncAttempt(startedAt: Date(), outcome: .failed, duration: .zero), for: testKey)
            }
            #expect(messages.lines.contains { $0.contains("read-only") })
            #expect(try store.lastGood(for: testKey)?.document == last)
        }
    }

    @Test("a read-only directory still serves, whether or not the WAL files exist", arguments: [false, true])
    func readOnlyDirectory(withWALFiles: Bool) async throws {
        try await withTemporaryDirectory { directory in
            let cacheDirectory = directory.appendingPathComponent("cache")
            try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: false)
            let path = cacheDirectory.appendingPathComponent("cache.sqlite").path
            let last = try populate(path)
            // The store keeps its -wal and -shm files; a copied cache may come without them.
            if !withWALFiles {
                try FileManager.default.removeItem(atPath: path + "-wal")
                try FileManager.default.removeItem(atPath: path + "-shm")
            }
            #expect(FileManager.default.fileExists(atPath: path + "-shm") == withWALFiles)
            try ReadOnlyFiles.make([cacheDirectory.path])
            try #require(!ReadOnlyFiles.isWritable(cacheDirectory.path), "the directory is still writable")
            let store = try SnapshotStore(path: path)
            #expect(try store.lastGood(for: testKey)?.document == last)
            if store.isReadOnly {
                #expect(throws: StoreError.self) {
                    try store.save(validatedSnapshot(snapshotDocument(seed: 5)), for: testKey)
                }
            } else {
                // With the -wal and -shm files present, SQLite can keep writing through them: that is fine too.
                try store.save(validatedSnapshot(snapshotDocument(seed: 5)), for: testKey)
                #expect(withWALFiles)
            }
        }
    }

    @Test("a missing file in a read-only directory is a clear error")
    func missingFileInReadOnlyDirectory() async throws {
        try await withTemporaryDirectory { directory in
            let cacheDirectory = directory.appendingPathComponent("cache")
            try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: false)
            try ReadOnlyFiles.make([cacheDirectory.path])
            try #require(!ReadOnlyFiles.isWritable(cacheDirectory.path))
            let error = try #require(throws: StoreError.self) {
                try SnapshotStore(path: cacheDirectory.appendingPathComponent("cache.sqlite").path)
            }
            #expect(error.code == .readOnly)
            #expect(error.message.contains("read-only"))
        }
    }

    @Test("a full disk (a size limit) fails the write cleanly and keeps the last good snapshot")
    func fullDisk() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let store = try SnapshotStore(path: path, options: .init(sizeLimit: 160 * 1024))
            let small = snapshotDocument(flags: 5, seed: 1)
            try store.save(validatedSnapshot(small), for: testKey)
            let large = snapshotDocument(flags: 100, seed: 2, padding: 2000)
            let error = try #require(throws: StoreError.self) { try store.save(validatedSnapshot(large), for: testKey) }
            #expect(error.code == .full)
            #expect(ResultCode.SQLITE_FULL ~= error.resultCode)
            #expect(error.message.contains("full"))
            #expect(try store.lastGood(for: testKey)?.document == small)
            #expect(try store.history(for: testKey).count == 1)
            // The store stays usable after the failure.
            let next = snapshotDocument(flags: 5, seed: 3)
            try store.save(validatedSnapshot(next), for: testKey)
            #expect(try store.lastGood(for: testKey)?.document == next)
            #expect(try store.verify().isHealthy)
        }
    }

    @Test("read-only mode on request opens without writing, and quick_check can be turned off")
    func readOnlyOnRequest() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let last = try populate(path)
            let before = contents(of: path)
            let store = try SnapshotStore(path: path, options: .init(checksIntegrityOnOpen: false, readOnly: true))
            #expect(store.isReadOnly)
            #expect(try store.lastGood(for: testKey)?.document == last)
            #expect(throws: StoreError.self) { try store.prune(keeping: 1) }
            #expect(contents(of: path) == before)
        }
    }
}
