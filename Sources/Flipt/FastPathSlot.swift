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
/// A read costs two atomic additions on one word and no function call; a mutex and a retain cost four atomic
/// operations and two calls into the C library. All synchronisation is through `Synchronization.Atomic` in this
/// module, which the Thread Sanitizer understands.
///
/// Writers must be serialised by the caller (``ClientCore`` publishes under its state lock), and a reader must not
/// wait for anything a writer may hold while it publishes: the body of ``read(_:)`` only evaluates.
final class FastPathSlot: @unchecked Sendable {
    // @unchecked: `current` is an owned (+1) reference managed by hand; the gate protocol above makes every access
    // to it safe.
    private let gate = Atomic<Int>(0)
    private let current: Atomic<UnsafeMutableRawPointer>

    private static let writerFlag = 1 << 62

    init(_ initial: ClientCore.FastPath) {
        current = Atomic(Unmanaged.passRetained(initial).toOpaque())
    }

    deinit {
        Unmanaged<ClientCore.FastPath>.fromOpaque(current.load(ordering: .acquiring)).release()
    }

    /// Runs `body` with the current fast path, borrowed: it stays valid (and current or just replaced) until
    /// `body` returns.
    @inline(__always)
    func read<Result, Failure: Error>(
        _ body: (ClientCore.FastPath) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        while _slowPath(gate.wrappingAdd(1, ordering: .acquiring).oldValue & Self.writerFlag != 0) {
            leaveAndWaitForWriter()
        }
        defer { gate.wrappingSubtract(1, ordering: .releasing) }
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
        gate.bitwiseOr(Self.writerFlag, ordering: .acquiringAndReleasing)
        var spins = 0
        while gate.load(ordering: .acquiring) != Self.writerFlag {
            Self.pause(&spins)
        }
        let old = current.exchange(Unmanaged.passRetained(fast).toOpaque(), ordering: .acquiringAndReleasing)
        gate.bitwiseAnd(~Self.writerFlag, ordering: .releasing)
        Unmanaged<ClientCore.FastPath>.fromOpaque(old).release()
    }

    @inline(never)
    private func leaveAndWaitForWriter() {
        gate.wrappingSubtract(1, ordering: .releasing)
        var spins = 0
        while gate.load(ordering: .acquiring) & Self.writerFlag != 0 {
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
