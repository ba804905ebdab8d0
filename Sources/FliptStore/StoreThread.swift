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
    /// A job runs its work and returns how to hand the result over. The thread drops the job, and with it what the
    /// work holds (the store among it), before it hands the result over: a caller that lets the store go right
    /// after lets it go for good, and the store closes (and checkpoints) its file before, say, the process exits.
    private typealias Job = @Sendable () -> @Sendable () -> Void

    private struct Queue: ~Copyable {
        var jobs: [Job] = []
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
                let result = Result { () throws(StoreError) -> Value in try work() }
                return { continuation.resume(returning: result) }
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
        queue.withLock { $0.jobs.count }
    }

    private func submit(_ job: @escaping Job) {
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
            // A queue holds a few jobs at most: taking the first out is cheap, and the queue no longer holds it.
            var job = queue.withLock { queue in queue.jobs.isEmpty ? nil : queue.jobs.removeFirst() }
            guard job != nil else { return }  // woken by finish() with nothing left to run
            let handOver = job!()
            job = nil
            handOver()
        }
    }
}
