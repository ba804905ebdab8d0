internal import CFliptProcessor
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where evaluations find the current ``ClientCore/FastPath``: read on every evaluation without a lock and
/// without retaining it, replaced rarely (a new snapshot, a failed or recovered fetch).
///
/// A gate counts the readers inside ``read(_:)``; a writer raises a flag in it, waits for the readers already
/// inside to leave (new ones wait for the flag to drop), swaps the pointer and drops the flag. The old fast path is
/// released only when no reader can still hold it, so that a reader borrows the object instead of retaining it.
/// A read costs two atomic additions on one word (the shard below) and no lock; a mutex and a retain cost four
/// atomic operations and two calls into the C library.
///
/// The gate is split into shards, one cache line each, and a reader counts itself in the shard of the processor it
/// runs on (the number the kernel keeps in the thread's restartable-sequences area, read without a call where glibc
/// registered it; `sched_getcpu` otherwise). Threads evaluating at once on different processors then write
/// different cache lines. With one shared word, two threads on this machine's two cores each took 144-160 ns an
/// evaluation where one alone took 114-135 ns; with shards, 115-135 ns where one alone took 111-126 ns, and a lone
/// thread is as fast as before (`flipt-bench engine --threads 2`, issue18-40). A reader leaves the shard it
/// entered, wherever it runs by then. A writer raises the flag in every shard and waits for each to empty. All
/// synchronisation is through `Synchronization.Atomic` in this module, which the Thread Sanitizer understands.
///
/// Writers must be serialised by the caller (``ClientCore`` publishes under its state lock), and a reader must not
/// wait for anything a writer may hold while it publishes: the body of ``read(_:)`` only evaluates.
final class FastPathSlot: @unchecked Sendable {
    // @unchecked: `current` is an owned (+1) reference managed by hand, and `shards` is memory this object owns;
    // the gate protocol above makes every access to them safe.
    private let current: Atomic<UnsafeMutableRawPointer>
    private let shards: UnsafeMutablePointer<Shard>
    /// `shardCount - 1`; the count is a power of two.
    private let shardMask: Int

    private static let writerFlag = 1 << 62

    /// One shard of the gate, alone in its cache line.
    struct Shard: ~Copyable {
        let gate = Atomic<Int>(0)
        private let padding: (Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0)
    }

    /// Shards for `processors` processors: the next power of two, from 1 to 64.
    static func shardCount(processors: Int) -> Int {
        var count = 1
        while count < min(max(processors, 1), 64) { count <<= 1 }
        return count
    }

    init(_ initial: ClientCore.FastPath, shardCount: Int = FastPathSlot.shardCount(processors: processorCount)) {
        current = Atomic(Unmanaged.passRetained(initial).toOpaque())
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: shardCount * MemoryLayout<Shard>.stride,
            alignment: max(64, MemoryLayout<Shard>.alignment)
        )
        shards = raw.bindMemory(to: Shard.self, capacity: shardCount)
        for index in 0..<shardCount { (shards + index).initialize(to: Shard()) }
        shardMask = shardCount - 1
    }

    deinit {
        Unmanaged<ClientCore.FastPath>.fromOpaque(current.load(ordering: .acquiring)).release()
        shards.deinitialize(count: shardMask + 1)
        UnsafeMutableRawPointer(shards).deallocate()
    }

    /// The processors the system has (`sysconf`, a few instructions; `ProcessInfo.activeProcessorCount` reads the
    /// control group's CPU quota from files, ~600,000 instructions on the booting thread). Processor numbers run
    /// below it.
    static let processorCount = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_CONF))))

    /// The shard a reader on this processor counts itself in.
    @inline(__always)
    private func readerShard() -> Int {
        #if os(Linux)
        return Int(truncatingIfNeeded: flipt_current_processor()) & shardMask
        #else
        // No processor number here: threads spread by their identity instead.
        return Int(bitPattern: UInt(bitPattern: pthread_self()).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15).high)
            & shardMask
        #endif
    }

    /// Runs `body` with the current fast path, borrowed: it stays valid (and current or just replaced) until
    /// `body` returns.
    @inline(__always)
    func read<Result, Failure: Error>(
        _ body: (ClientCore.FastPath) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let shard = shards + readerShard()
        while _slowPath(shard.pointee.gate.wrappingAdd(1, ordering: .acquiring).oldValue & Self.writerFlag != 0) {
            leaveAndWaitForWriter(shard)
        }
        defer { shard.pointee.gate.wrappingSubtract(1, ordering: .releasing) }
        let pointer = current.load(ordering: .acquiring)
        // `_withUnsafeGuaranteedRef` borrows without a retain; it rethrows untyped errors, so the outcome crosses
        // it as a value.
        let outcome = Unmanaged<ClientCore.FastPath>.fromOpaque(pointer)._withUnsafeGuaranteedRef { fast in
            Swift.Result { () throws(Failure) -> Result in try body(fast) }
        }
        return try outcome.get()
    }

    /// The current fast path, retained.
    func load() -> ClientCore.FastPath {
        read { $0 }
    }

    /// Makes `fast` current, once no reader can still be using the one it replaces. Callers serialise writers.
    func publish(_ fast: ClientCore.FastPath) {
        for index in 0...shardMask {
            shards[index].gate.bitwiseOr(Self.writerFlag, ordering: .acquiringAndReleasing)
        }
        for index in 0...shardMask {
            var spins = 0
            while shards[index].gate.load(ordering: .acquiring) != Self.writerFlag {
                Self.pause(&spins)
            }
        }
        let old = current.exchange(Unmanaged.passRetained(fast).toOpaque(), ordering: .acquiringAndReleasing)
        for index in 0...shardMask {
            shards[index].gate.bitwiseAnd(~Self.writerFlag, ordering: .releasing)
        }
        Unmanaged<ClientCore.FastPath>.fromOpaque(old).release()
    }

    @inline(never)
    private func leaveAndWaitForWriter(_ shard: UnsafeMutablePointer<Shard>) {
        shard.pointee.gate.wrappingSubtract(1, ordering: .releasing)
        var spins = 0
        while shard.pointee.gate.load(ordering: .acquiring) & Self.writerFlag != 0 {
            Self.pause(&spins)
        }
    }

    /// Spins briefly, then gives the processor away: the other side holds the gate for nanoseconds (a pointer
    /// swap) or for one evaluation.
    private static func pause(_ spins: inout Int) {
        spins += 1
        if spins > 64 { sched_yield() }
    }
}
