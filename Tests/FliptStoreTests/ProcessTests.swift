import FliptEngine
import FliptTestSupport
import Foundation
import Testing

@testable import FliptStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Real child processes writing the same file: `flipt-bench store writer`, built with the package.
@Suite("Several processes", .serialized)
struct ProcessTests {
    /// The `flipt-bench` executable next to the test bundle (both live in the build's bin directory).
    static func writerExecutable() throws -> URL {
        let binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [binDirectory, Bundle.main.bundleURL.deletingLastPathComponent()]
        candidates += candidates.map { $0.deletingLastPathComponent() }
        for directory in candidates {
            let url = directory.appendingPathComponent("flipt-bench")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw CocoaError(
            .fileNoSuchFile,
            userInfo: [
                NSLocalizedDescriptionKey:
                    "flipt-bench not found next to the tests in \(binDirectory.path); build it first with the same "
                    + "scratch path: swift build --product flipt-bench"
            ]
        )
    }

    static func writer(path: String, count: Int, flags: Int, tag: String) throws -> Process {
        let process = Process()
        process.executableURL = try writerExecutable()
        process.arguments = [
            "store", "writer", "--path", path, "--count", "\(count)", "--flags", "\(flags)", "--tag", tag,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    @Test("two processes writing one file at once both succeed, and a reader never sees a torn snapshot")
    func twoWriters() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            _ = try await SnapshotStore(path: path)  // create the file, so both writers race on writes, not creation
            let count = 40
            let writers = try ["a", "b"].map { try Self.writer(path: path, count: count, flags: 100, tag: $0) }
            for writer in writers { try ChildProcesses.run(writer) }
            let reader = try await SnapshotStore(path: path)
            var reads = 0
            while writers.contains(where: \.isRunning) {
                if let stored = try await reader.lastGood(for: testKey) {
                    #expect(SHA256.hex(stored.document) == stored.contentHash)
                    _ = try Snapshot(data: stored.document)
                    reads += 1
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            for writer in writers {
                writer.waitUntilExit()
                #expect(writer.terminationStatus == 0)
            }
            let store = try await SnapshotStore(path: path)
            let history = try await store.history(for: testKey)
            #expect(history.first?.generation == 2 * count)
            #expect(history.count == 3)
            await #expect(try store.attempts(for: testKey, limit: 1000).count == 2 * count)
            let etags = await Set(try store.attempts(for: testKey, limit: 1000).map(\.startedAt)).count
            #expect(etags > 1)
            await #expect(try store.verify().isHealthy)
            #expect(reads > 0)
        }
    }

    /// Kills a writer with SIGKILL at random moments, at least 200 times, and checks after each kill that the
    /// file opens (no recovery needed) with a complete last good snapshot that the engine accepts.
    ///
    /// One round in five kills at a random time after the spawn (during start-up, open, or the first saves);
    /// the others wait until the writer has opened the store and completed 0, 1 or 2 saves, then kill it a
    /// random few milliseconds later, inside its next save or between saves. Waiting for the writer's own
    /// progress lines keeps the test meaningful however loaded the machine is.
    @Test("SIGKILL at random points while writing always leaves a complete last good snapshot")
    func killedWriters() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("cache.sqlite").path
            let flags = 30
            try SnapshotStore(path: path).save(validatedSnapshot(snapshotDocument(flags: 10)), for: testKey)
            let kills = 210
            let deadline = ContinuousClock.now + .seconds(120)
            var lastGeneration = 1
            var roundsWithProgress = 0
            var generator = SystemRandomNumberGenerator()
            for round in 0..<kills {
                try #require(ContinuousClock.now < deadline, "the kill test ran out of time after \(round) kills")
                let writer = try Self.writer(path: path, count: 0, flags: flags, tag: "k\(round)")
                let output = Pipe()
                writer.standardOutput = output
                try ChildProcesses.run(writer)
                if round % 5 == 0 {
                    usleep(UInt32.random(in: 0...150_000, using: &generator))
                } else {
                    let saves = Int.random(in: 0...2, using: &generator)
                    try Self.waitForLines(saves + 1, from: output.fileHandleForReading)  // "opened", "saved …"
                    usleep(UInt32.random(in: 0...20_000, using: &generator))
                }
                kill(writer.processIdentifier, SIGKILL)
                writer.waitUntilExit()
                #expect(writer.terminationReason == .uncaughtSignal, "round \(round): the writer was not killed")

                let store = try SnapshotStore(path: path)
                #expect(store.recovery == nil, "round \(round): the file needed recovery")
                #expect(!store.isReadOnly)
                let stored = try #require(try store.lastGood(for: testKey), "round \(round): no last good snapshot")
                #expect(SHA256.hex(stored.document) == stored.contentHash, "round \(round): torn document")
                #expect(stored.size == stored.document.count)
                let snapshot = try Snapshot(data: stored.document)
                #expect(snapshot.flagCount == (stored.generation == 1 ? 10 : flags))
                #expect(stored.generation >= lastGeneration, "round \(round): the last good generation went back")
                if stored.generation > lastGeneration { roundsWithProgress += 1 }
                lastGeneration = stored.generation
            }
            let report = try SnapshotStore(path: path).verify()
            #expect(report.isHealthy, "\(report)")
            // Most kills must have landed inside the save loop, not only before the writer got going.
            #expect(roundsWithProgress > kills / 3, "only \(roundsWithProgress) of \(kills) rounds saved anything")
        }
    }

    /// Reads `handle` until `count` complete lines have arrived.
    private static func waitForLines(_ count: Int, from handle: FileHandle) throws {
        var lines = 0
        while lines < count {
            let chunk = handle.availableData
            if chunk.isEmpty { throw CocoaError(.fileReadUnknown) }  // the writer exited early
            lines += chunk.filter { $0 == UInt8(ascii: "\n") }.count
        }
    }
}
