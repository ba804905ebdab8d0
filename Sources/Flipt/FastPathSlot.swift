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
/// A reader announces the pointer it read in its thread's hazard record (`CFliptHazard.h`), reads the pointer again
/// and starts over if it changed; a writer swaps the pointer, then waits until no record names the old fast path
/// before releasing it. Where Linux's membarrier(2) offers its private expedited command, the writer's call to it
/// fences every reader thread at once, so a read costs plain loads and stores and no atomic read-modify-write: 104-106
/// against 111-114 ns an evaluation with the per-processor gate below (`flipt-bench engine --shapes`, issue18-40,
/// alternated), the same as with no protection at all (unsafe; measured only). Elsewhere a reader issues one full
/// fence. A publication costs a membarrier(2) call (an interrupt to each processor running a thread of the
/// process), which is rare: a new snapshot, a failed or recovered fetch. Registering for that command costs an RCU
/// grace period once the process has several threads (13-15 ms here), which the first evaluation of a booting
/// client used to wait for; a thread of its own now registers on first use, and readers fence until it is done.
///
/// A read nested in another on the same thread (its record is in use), or on a thread that could not get a
/// record, goes through a gate instead: readers count themselves in it, a writer raises a flag in it, waits for
/// the readers already inside to leave (new ones wait for the flag to drop), and swaps the pointer. The gate is
/// split into shards, one cache line each, and a reader counts itself in the shard of the processor it runs on (the
/// number the kernel keeps in the thread's restartable-sequences area, read without a call where glibc registered
/// it; `sched_getcpu` otherwise), so that threads on different processors write different cache lines. A reader
/// leaves the shard it entered, wherever it runs by then.
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

    #if DEBUG
    /// Tests only: busy iterations between reading the pointer and announcing it, which widen the window in which
    /// a writer can replace and free what the reader has read (it must then read again).
    private let spinsBeforeAnnouncing: Int
    #endif

    init(
        _ initial: ClientCore.FastPath,
        shardCount: Int = FastPathSlot.shardCount(processors: processorCount),
        spinsBeforeAnnouncing: Int = 0
    ) {
        #if DEBUG
        self.spinsBeforeAnnouncing = spinsBeforeAnnouncing
        #endif
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
        guard let record = flipt_hazard_free_record() else { return try gatedRead(body) }
        var pointer = current.load(ordering: .acquiring)
        while true {
            #if DEBUG
            var spin = 0
            while spin < spinsBeforeAnnouncing { spin = Self.opaque(spin + 1) }
            #endif
            flipt_hazard_announce(record, pointer)
            // Sequentially consistent, after the announcement's read of the fencing mode: see CFliptHazard.h for
            // why a mode change during the read cannot leave this reader with a freed object.
            let again = current.load(ordering: .sequentiallyConsistent)
            if _fastPath(again == pointer) { break }
            pointer = again
        }
        defer { flipt_hazard_clear(record) }
        return try Self.borrow(pointer, body)
    }

    #if DEBUG
    @inline(never)
    private static func opaque(_ value: Int) -> Int { value }
    #endif

    /// Calls `body` with the fast path at `pointer`, without retaining it.
    @inline(__always)
    private static func borrow<Result, Failure: Error>(
        _ pointer: UnsafeMutableRawPointer,
        _ body: (ClientCore.FastPath) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        // `_withUnsafeGuaranteedRef` borrows without a retain; it rethrows untyped errors, so the outcome crosses
        // it as a value.
        let outcome = Unmanaged<ClientCore.FastPath>.fromOpaque(pointer)._withUnsafeGuaranteedRef { fast in
            Swift.Result { () throws(Failure) -> Result in try body(fast) }
        }
        return try outcome.get()
    }

    /// ``read(_:)`` through the gate: for a read nested in another on the same thread (its record is in use), and
    /// for a thread that could not get a record.
    ///
    /// Inlined although rare: out of line it was not specialised, and every result crossed it through value
    /// witnesses (copied and destroyed field by field), 111 -> 160 ns an evaluation of issue18-40.
    @inline(__always)
    private func gatedRead<Result, Failure: Error>(
        _ body: (ClientCore.FastPath) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let shard = shards + readerShard()
        while _slowPath(shard.pointee.gate.wrappingAdd(1, ordering: .acquiring).oldValue & Self.writerFlag != 0) {
            leaveAndWaitForWriter(shard)
        }
        defer { shard.pointee.gate.wrappingSubtract(1, ordering: .releasing) }
        return try Self.borrow(current.load(ordering: .acquiring), body)
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
        let old = current.exchange(Unmanaged.passRetained(fast).toOpaque(), ordering: .sequentiallyConsistent)
        for index in 0...shardMask {
            shards[index].gate.bitwiseAnd(~Self.writerFlag, ordering: .releasing)
        }
        flipt_hazard_wait_for_readers(old)
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
