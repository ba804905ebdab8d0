#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a POSIX mutex.
///
/// `Synchronization.Mutex` would do, but its futex-based lock lives in a library that Thread Sanitizer does not
/// instrument, so TSan reports every access it guards as a race; `pthread_mutex_t` is intercepted by TSan, costs the
/// same uncontended, and keeps the client's concurrency verifiable. Evaluations do not take it: they read the
/// current snapshot through a ``FastPathSlot``.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: the value is only ever read or written inside `withLock`, under `mutex`. It lives in memory of
    // its own rather than in a stored property, so that an access costs no dynamic exclusivity check (the lock
    // already makes accesses exclusive); status reads and sync updates take this lock often.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
