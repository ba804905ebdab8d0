import FliptEngine
import FliptStore
import Foundation
import FuzzSupport

/// The folder of the cache file every input is imported into (on tmpfs when there is one, so that commits
/// cost no disk flush); removed when the process exits normally.
private let storeFolder: String = {
    let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let folder = (base as NSString).appendingPathComponent("flipt-fuzz-import-\(getpid())")
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: storeFolder) }
    return folder
}()

/// One cache, reused across inputs as an operator's cache is across imports.
private let store: SnapshotStore = {
    do {
        return try SnapshotStore(path: (storeFolder as NSString).appendingPathComponent("cache.sqlite"))
    } catch {
        invariantFailure("cannot open the fuzz cache: \(error)")
    }
}()

private let server = URL(string: "https://flipt.example.com")!

/// One fuzz input: the contents of the file given to `flipt-offline cache import`.
///
/// Follows the command's steps through the library pieces it calls: read a snapshot string (base64) or a JSON
/// document, decode it with the engine, and save it as the entry's next generation with source `import`. Checks
/// that the store gives back exactly the bytes saved, that they decode again to the same flags, that saving
/// the same document twice makes no new generation, and that the entry is listed under its key.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // The command reads its input with `SnapshotString.document(from:)`; what it refuses ends the input here.
    guard let document = try? SnapshotString.document(from: fuzzBytes(data, size)) else { return 0 }
    let snapshot: Snapshot
    do {
        snapshot = try Snapshot(document: document)
    } catch {
        return 0
    }
    let key = SnapshotKey(url: server, environment: "default", namespace: snapshot.namespaceKey)
    let saved: SnapshotMetadata
    let again: SnapshotMetadata
    do {
        saved = try store.save(NewSnapshot(document: Data(document), source: .imported), for: key)
        again = try store.save(NewSnapshot(document: Data(document), source: .imported), for: key)
    } catch {
        invariantFailure("saving a document the engine accepted failed: \(error)")
    }
    require(saved.source == .imported && saved.etag == nil, "the saved metadata is \(saved)")
    require(saved.size == document.count, "the saved size is \(saved.size), not \(document.count)")
    require(again.generation == saved.generation, "the same document saved twice made a new generation")
    let stored: StoredSnapshot?
    let entries: [CacheEntry]
    do {
        stored = try store.lastGood(for: key)
        entries = try store.entries()
    } catch {
        invariantFailure("reading the cache back failed: \(error)")
    }
    guard let stored else { invariantFailure("no last good snapshot for \(key) right after saving one") }
    require(stored.document == Data(document), "the stored document differs from the imported one")
    require(stored.generation == saved.generation, "the last good generation is not the one saved")
    require(entries.contains { $0.key == key }, "the entries do not list \(key)")
    do {
        let reloaded = try Snapshot(document: stored.document)
        require(reloaded.flagCount == snapshot.flagCount, "the stored document decodes to other flags")
        require(reloaded.namespaceKey == snapshot.namespaceKey, "the stored document decodes to another namespace")
    } catch {
        invariantFailure("the stored document no longer decodes: \(error)")
    }
    // Keep the file small: only the `default` entry accumulates generations (pruned to the kept number).
    if snapshot.namespaceKey != "default" {
        do {
            require(try store.removeEntry(for: key), "removing the entry of \(key) found nothing")
        } catch {
            invariantFailure("removing the entry of \(key) failed: \(error)")
        }
    }
    return 0
}
