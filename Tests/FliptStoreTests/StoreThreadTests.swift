import FliptTestSupport
import Foundation
import Synchronization
import Testing

@testable import FliptStore

/// Async callers of the store wait for SQLite on the store's own thread, never on a thread of Swift's cooperative
/// pool, so that a write held up by another process's lock does not stall the rest of the program.
@Suite("SnapshotStore's own thread")
struct StoreThreadTests {
    /// More concurrent writers than the cooperative pool has threads (one per core): had each blocked the thread it
    /// ran on, no other task could run while they wait.
    private static let writerCount = ProcessInfo.processInfo.activeProcessorCount * 2 + 2

    private static func key(_ index: Int) -> SnapshotKey {
        SnapshotKey(url: URL(string: "http://127.0.0.1:8080")!, environment: "default", namespace: "ns\(index)")
    }

    @Test("writes waiting for another process's write lock suspend their tasks; other tasks keep running")
    func waitingWritesLeaveThePoolFree() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite3").path
            // A busy timeout longer than the other process ever holds the lock: the writes wait, never fail.
            let store = try await SnapshotStore(path: path, options: .init(busyTimeout: .seconds(300)))
            try await store.save(validatedSnapshot(snapshotDocument(seed: 0)), for: testKey)
            let lock = try await HeldWriteLock.acquire(path: path, maximumHold: .seconds(120))
            let finished = Counter()
            let writes = Task {
                await withTaskGroup(of: Void.self) { group in
                    for index in 0..<Self.writerCount {
                        group.addTask {
                            let document = snapshotDocument(seed: index + 1)
                            _ = try? await store.save(validatedSnapshot(document), for: Self.key(index))
                            finished.increment()
                        }
                    }
                }
            }
            // Every writer has reached the store: one waits in SQLite on the store's thread, the others are queued
            // behind it, and this task goes on running (each check of `eventually` resumes on a pool thread).
            #expect(await eventually { store.thread.queuedJobCount == Self.writerCount - 1 })
            for _ in 0..<50 { try await Task.sleep(for: .milliseconds(2)) }
            // Had the writers blocked the pool, this task would run again only once the other process had given
            // the lock up by itself (after 120 s), and every writer would be done.
            #expect(lock.isHeld, "the other process gave the lock up before this task could run again")
            #expect(finished.count == 0)
            await lock.release()
            await writes.value
            #expect(finished.count == Self.writerCount)
            for index in 0..<Self.writerCount {
                #expect(try await store.lastGood(for: Self.key(index))?.document == snapshotDocument(seed: index + 1))
            }
        }
    }

    #if os(Linux)
    /// The calling thread as the kernel names it under /proc: `<pid>/task/<tid>`.
    private static func currentThread() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "unknown"
    }

    /// The calling thread's name as the kernel has it (what `top -H` shows).
    private static func currentThreadName() -> String {
        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        return name.trimmingCharacters(in: .newlines)
    }

    @Test("async calls run on the store's thread, the same one each time, never on the calling thread")
    func asyncCallsRunOnOneThread() async throws {
        let thread = StoreThread(name: SnapshotStore.threadName)
        defer { thread.finish() }
        var workers: Set<String> = []
        for _ in 0..<20 {
            let caller = Self.currentThread()
            let (worker, name) = try await thread.run { () throws(StoreError) in
                (Self.currentThread(), Self.currentThreadName())
            }
            #expect(worker != caller)
            #expect(name == SnapshotStore.threadName)
            workers.insert(worker)
        }
        #expect(workers.count == 1)
    }
    #endif

    @Test("a submitted write runs to the end even when the task waiting for it is cancelled")
    func cancelledCallerDoesNotAbandonTheWrite() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite3").path
            let store = try await SnapshotStore(path: path, options: .init(busyTimeout: .seconds(300)))
            let lock = try await HeldWriteLock.acquire(path: path, maximumHold: .seconds(120))
            let write = Task { try await store.save(validatedSnapshot(snapshotDocument(seed: 7)), for: testKey) }
            try await Task.sleep(for: .milliseconds(50))
            write.cancel()
            await lock.release()
            let saved = try await write.value
            #expect(saved.generation == 1)
            #expect(try await store.lastGood(for: testKey)?.document == snapshotDocument(seed: 7))
        }
    }

    #if os(Linux)
    @Test("once an async call returns, its thread holds the store no more; the thread ends when the store goes")
    func threadEndsWithTheStore() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite3").path
            var store: SnapshotStore? = try await SnapshotStore(path: path)
            let thread = try await store!.thread.run { () throws(StoreError) in Self.currentThread() }
            #expect(FileManager.default.fileExists(atPath: "/proc/" + thread))
            try await store!.save(validatedSnapshot(snapshotDocument()), for: testKey)
            weak let released = store
            store = nil
            // Released at once: the store closes (and checkpoints) its file before the caller goes on, which
            // matters to a command that exits right after its last write.
            #expect(released == nil)
            #expect(await eventually { !FileManager.default.fileExists(atPath: "/proc/" + thread) })
        }
    }
    #endif
}

/// A count that tasks add to.
private final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() { value.add(1, ordering: .sequentiallyConsistent) }

    var count: Int { value.load(ordering: .sequentiallyConsistent) }
}
