import Dispatch
import Foundation
import Synchronization

/// One dedicated thread that runs a store's SQLite work for async callers, a job at a time, in the order the jobs
/// were submitted.
///
/// SQLite blocks: a write waits up to the busy timeout (5 s by default) for another process's lock, opening a
/// file retries while another connection switches it to WAL, and a migration or a prune rewrites pages. Swift's
/// cooperative pool has one thread per core (two here), so a task that blocked in SQLite would stall every other
/// task of the process for as long. Async callers therefore hand the work to this thread and suspend until it is
/// done, as GRDB gives each connection a serial dispatch queue of its own.
///
/// The thread starts with the first job and ends once ``finish()`` was called and every job before it has run.
/// A job that has been submitted always runs, even when the task that waits for it is cancelled: it is one
/// transaction, which must not be abandoned half-way.
final class StoreThread: Sendable {
    private struct Queue: ~Copyable {
        var jobs: [@Sendable () -> Void] = []
        var next = 0
        var started = false
        var finished = false
    }

    private let name: String
    private let queue = Mutex(Queue())
    /// Signalled once per job and once by ``finish()``: the thread waits on it while the queue is empty.
    private let wake = DispatchSemaphore(value: 0)

    /// Creates the thread, which starts with the first job; `name` shows in debuggers and `top -H`.
    init(name: String) {
        self.name = name
    }

    /// Runs `work` on the thread and returns its result once it has run; the calling task suspends meanwhile.
    func run<Value: Sendable>(
        _ work: @escaping @Sendable () throws(StoreError) -> Value
    ) async throws(StoreError) -> Value {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Value, StoreError>, Never>) in
            submit {
                continuation.resume(returning: Result { () throws(StoreError) -> Value in try work() })
            }
        }
        return try result.get()
    }

    /// Lets the thread end once the jobs submitted so far have run; its owner calls this last, when no job can
    /// follow.
    func finish() {
        let running = queue.withLock { queue in
            queue.finished = true
            return queue.started
        }
        if running { wake.signal() }
    }

    /// How many submitted jobs have not started yet (the one running, if any, is not counted).
    var queuedJobCount: Int {
        queue.withLock { $0.jobs.count - $0.next }
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        let starts = queue.withLock { queue in
            precondition(!queue.finished, "a job was submitted to a finished store thread")
            queue.jobs.append(job)
            defer { queue.started = true }
            return !queue.started
        }
        if starts {
            let thread = Thread { [self] in
                // Named from inside: on Linux a name set before `start()` does not reach the system thread, which
                // would keep the name of the thread that created it.
                Thread.current.name = name
                drain()
            }
            thread.start()
        }
        wake.signal()
    }

    /// The thread's body: runs jobs as they come until ``finish()`` and an empty queue. The semaphore counts one
    /// signal per job and one for ``finish()``, which comes last, so the queue is empty only then.
    private func drain() {
        while true {
            wake.wait()
            let job = queue.withLock { queue -> (@Sendable () -> Void)? in
                guard queue.next < queue.jobs.count else { return nil }
                let job = queue.jobs[queue.next]
                queue.next += 1
                if queue.next == queue.jobs.count {
                    queue.jobs.removeAll(keepingCapacity: true)
                    queue.next = 0
                }
                return job
            }
            guard let job else { return }  // woken by finish() with nothing left to run
            job()
        }
    }
}
