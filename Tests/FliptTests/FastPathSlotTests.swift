import FliptEngine
import Foundation
import Synchronization
import Testing

@testable import Flipt

@Suite("FastPathSlot: lock-free reads while fast paths are replaced")
struct FastPathSlotTests {
    /// A fast path told apart by its deadline, which stands for a generation number here.
    private static func fastPath(generation: Int) -> ClientCore.FastPath {
        ClientCore.FastPath(evaluator: nil, failure: nil, staleDeadline: Int64(generation))
    }

    @Test(
        "readers see generations in publication order, whole, and every replaced one is freed",
        .timeLimit(.minutes(1))
    )
    func readersDuringPublications() async throws {
        let slot = FastPathSlot(Self.fastPath(generation: 0))
        let publications = 20_000
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let problems = Atomic<Int>(0)
        let readers = (0..<3).map { _ in
            Thread {
                var last: Int64 = 0
                while !stop.load(ordering: .relaxed) {
                    slot.read { fast in
                        let first = fast.staleDeadline
                        // Read the object again a little later: it must not change or be freed in between.
                        var spin = 0
                        while spin < 20 { spin += 1 }
                        if fast.staleDeadline != first || first < last || fast.hasData {
                            problems.add(1, ordering: .relaxed)
                        }
                        last = first
                    }
                    reads.add(1, ordering: .relaxed)
                }
            }
        }
        for reader in readers { reader.start() }
        var replaced: [Weak] = []
        for generation in 1...publications {
            replaced.append(Weak(slot.load()))
            slot.publish(Self.fastPath(generation: generation))
        }
        stop.store(true, ordering: .relaxed)
        while readers.contains(where: { !$0.isFinished }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(problems.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 1_000)
        #expect(slot.load().staleDeadline == Int64(publications))
        #expect(replaced.count == publications)
        #expect(replaced.allSatisfy { $0.object == nil }, "a replaced fast path is still alive")
    }

    private final class Weak: @unchecked Sendable {
        weak var object: ClientCore.FastPath?
        init(_ object: ClientCore.FastPath) { self.object = object }
    }
}
