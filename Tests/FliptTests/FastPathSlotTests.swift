internal import CFliptProcessor
import FliptEngine
import FliptTestSupport
import Foundation
import Synchronization
import Testing

@testable import Flipt

/// Serialized: the record-reuse test counts the process's hazard records, which the reader tests' threads claim too.
@Suite("FastPathSlot: lock-free reads while fast paths are replaced", .serialized)
struct FastPathSlotTests {
    /// A fast path told apart by its deadline, which stands for a generation number here.
    private static func fastPath(generation: Int) -> ClientCore.FastPath {
        ClientCore.FastPath(evaluator: nil, failure: nil, staleDeadline: Int64(generation))
    }

    /// Shard counts: one shard (every reader in one word), the count for this machine, and more shards than
    /// readers. Three reader threads on this machine's cores share shards, move between processors mid-read, and
    /// leave the shard they entered.
    @Test(
        "readers see generations in publication order, whole, and every replaced one is freed",
        .timeLimit(.minutes(1)),
        arguments: [1, FastPathSlot.shardCount(processors: FastPathSlot.processorCount), 64]
    )
    func readersDuringPublications(shardCount: Int) async throws {
        try await readersDuringPublications(shardCount: shardCount, nested: false)
    }

    /// A read inside another on the same thread finds the thread's announcement in use and goes through the gate;
    /// a writer must wait for both.
    @Test(
        "nested reads (the inner one through the gate) see whole generations, and none is freed under them",
        .timeLimit(.minutes(1))
    )
    func nestedReadsDuringPublications() async throws {
        try await readersDuringPublications(
            shardCount: FastPathSlot.shardCount(processors: FastPathSlot.processorCount),
            nested: true
        )
    }

    @Test("a thread's announcement record is given back when it exits and taken by the next thread")
    func recordsAreReused() async throws {
        let slot = FastPathSlot(Self.fastPath(generation: 7))
        let seen = Atomic<Int>(0)
        // One thread at a time: each claims a record on its first read and gives it back when it exits.
        func runThread() async throws {
            let thread = Thread { slot.read { if $0.staleDeadline == 7 { seen.add(1, ordering: .relaxed) } } }
            thread.start()
            while !thread.isFinished { try await Task.sleep(for: .milliseconds(1)) }
        }
        try await runThread()
        let before = flipt_hazard_record_count()
        for _ in 0..<50 { try await runThread() }
        #expect(seen.load(ordering: .relaxed) == 51)
        // Other suites' threads may claim records meanwhile, but not one per thread here.
        #expect(flipt_hazard_record_count() < before + 10, "\(flipt_hazard_record_count()) records after \(before)")
    }

    /// The registration for membarrier(2) runs on a thread of its own (it takes an RCU grace period), and readers
    /// fence until it is done: the mode must reach asymmetric where the command exists, and stay fencing elsewhere.
    @Test("readers switch from fencing to the asymmetric barrier once the background registration is done")
    func registrationCompletes() async throws {
        let slot = FastPathSlot(Self.fastPath(generation: 3))
        #expect(slot.read { $0.staleDeadline } == 3)
        if flipt_hazard_membarrier_available() != 0 {
            #expect([1, 2].contains(flipt_hazard_mode()), "mode \(flipt_hazard_mode()) after the first read")
            #expect(await eventually { flipt_hazard_mode() == 2 }, "still mode \(flipt_hazard_mode())")
            // A publication now fences readers with membarrier(2), and a read after it sees the new fast path.
            slot.publish(Self.fastPath(generation: 4))
            #expect(slot.read { $0.staleDeadline } == 4)
        } else {
            #expect(flipt_hazard_mode() == 0)
        }
    }

    private func readersDuringPublications(shardCount: Int, nested: Bool) async throws {
        // Readers pause between reading the pointer and announcing it, so that publications often fall in between.
        let slot = FastPathSlot(Self.fastPath(generation: 0), shardCount: shardCount, spinsBeforeAnnouncing: 300)
        // Each publication waits for a membarrier(2), an interrupt to every processor running a reader: fewer
        // publications than the gate alone could take in the time.
        let publications = 10_000
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let problems = Atomic<Int>(0)
        let retiredProblems = Atomic<Int>(0)
        // The newest generation `publish` has returned from replacing: from then on no reader may hold it.
        let retired = Atomic<Int64>(-1)
        let readers = (0..<3).map { _ in
            Thread {
                var last: Int64 = 0
                var round = 0
                while !stop.load(ordering: .relaxed) {
                    round += 1
                    let check = { (fast: ClientCore.FastPath) in
                        let first = fast.staleDeadline
                        // Read the object again a little later: it must not change or be freed in between. Every
                        // eighth read holds on longer, so that publications overlap reads still inside.
                        var spin = 0
                        let spins = round % 8 == 0 ? 2_000 : 20
                        while spin < spins { spin += 1 }
                        if fast.staleDeadline != first || first < last || fast.hasData {
                            problems.add(1, ordering: .relaxed)
                        }
                        if first <= retired.load(ordering: .acquiring) {
                            retiredProblems.add(1, ordering: .relaxed)
                        }
                        last = first
                    }
                    if nested {
                        slot.read { outer in
                            check(outer)
                            slot.read { inner in
                                check(inner)
                                if inner.staleDeadline < outer.staleDeadline { problems.add(1, ordering: .relaxed) }
                            }
                        }
                    } else {
                        slot.read(check)
                    }
                    reads.add(1, ordering: .relaxed)
                }
            }
        }
        for reader in readers { reader.start() }
        // Publications start once readers are reading, and go on until they have read a thousand times: while
        // membarrier(2) is still being registered (the first uses in a process), a publication only fences and
        // could otherwise be over before a reader thread has run.
        while reads.load(ordering: .relaxed) < readers.count { try await Task.sleep(for: .milliseconds(1)) }
        var replaced: [Weak] = []
        var generation = 0
        while generation < publications || reads.load(ordering: .relaxed) <= 1_000 {
            generation += 1
            replaced.append(Weak(slot.load()))
            slot.publish(Self.fastPath(generation: generation))
            retired.store(Int64(generation - 1), ordering: .releasing)
        }
        stop.store(true, ordering: .relaxed)
        while readers.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(problems.load(ordering: .relaxed) == 0)
        #expect(retiredProblems.load(ordering: .relaxed) == 0, "publish returned while a reader held the old one")
        #expect(reads.load(ordering: .relaxed) > 1_000)
        #expect(slot.load().staleDeadline == Int64(generation))
        #expect(replaced.count == generation)
        #expect(replaced.allSatisfy { $0.object == nil }, "a replaced fast path is still alive")
    }

    @Test("the gate has a power-of-two number of shards, one per processor, from 1 to 64")
    func shardCounts() {
        #expect(
            [0, 1, 2, 3, 4, 5, 8, 9, 64, 65, 1_000].map { FastPathSlot.shardCount(processors: $0) }
                == [1, 1, 2, 4, 4, 8, 8, 16, 64, 64, 64]
        )
    }

    private final class Weak: @unchecked Sendable {
        weak var object: ClientCore.FastPath?
        init(_ object: ClientCore.FastPath) { self.object = object }
    }
}
