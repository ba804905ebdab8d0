import Testing

@testable import Flipt

/// The client's lifecycle as values: every transition of ``ClientLifecycle`` from every state, with numbers for
/// tasks and names for the tasks waiting for the close.
@Suite("Client lifecycle transitions")
struct ClientLifecycleTests {
    typealias Lifecycle = ClientLifecycle<Int, String>
    typealias OfflineChange = Lifecycle.OfflineChange

    /// Hands out task numbers from 1, so that a test sees which tasks a transition made.
    final class Tasks {
        var made: [Int] = []
        func make() -> Int {
            made.append(made.count + 1)
            return made.count
        }
    }

    @Test("start: online makes the loop and the watch, offline only the watch, a second start nothing")
    func start() {
        let tasks = Tasks()
        var online = Lifecycle(offline: false)
        let first = online.start(loop: tasks.make, watch: tasks.make)
        #expect(first)
        #expect(online == .running(offline: false, loop: 1, watch: 2, closeWaiters: []))
        let second = online.start(loop: tasks.make, watch: tasks.make)
        #expect(!second)
        #expect(tasks.made == [1, 2], "a started client starts nothing again")

        var offline = Lifecycle(offline: true)
        let offlineStart = offline.start(loop: tasks.make, watch: tasks.make)
        #expect(offlineStart)
        #expect(offline == .running(offline: true, loop: nil, watch: 3, closeWaiters: []))

        var noWatch = Lifecycle(offline: false)
        _ = noWatch.start(loop: tasks.make, watch: nil)
        #expect(noWatch == .running(offline: false, loop: 4, watch: nil, closeWaiters: []))
        #expect(noWatch.work == [4])
    }

    @Test("offline before the start changes what the start begins with")
    func offlineBeforeStart() {
        let tasks = Tasks()
        var lifecycle = Lifecycle(offline: false)
        let change = lifecycle.setOffline(true, resume: { _ in tasks.make() })
        #expect(change == OfflineChange(changed: true, cancel: nil))
        #expect(lifecycle == .idle(offline: true, closeWaiters: []))
        #expect(lifecycle.isOffline)
        let again = lifecycle.setOffline(true, resume: { _ in tasks.make() })
        #expect(again == OfflineChange(changed: false, cancel: nil))
        _ = lifecycle.start(loop: tasks.make, watch: nil)
        #expect(lifecycle == .running(offline: true, loop: nil, watch: nil, closeWaiters: []))
        #expect(tasks.made.isEmpty, "an offline start makes no loop")
    }

    @Test("running: offline cancels the loop and keeps it; online makes a loop that is given the cancelled one")
    func offlineAndBack() {
        let tasks = Tasks()
        var lifecycle = Lifecycle(offline: false)
        _ = lifecycle.start(loop: tasks.make, watch: tasks.make)
        let off = lifecycle.setOffline(true, resume: { _ in tasks.make() })
        #expect(off == OfflineChange(changed: true, cancel: 1))
        #expect(lifecycle == .running(offline: true, loop: 1, watch: 2, closeWaiters: []))
        let offAgain = lifecycle.setOffline(true, resume: { _ in tasks.make() })
        #expect(offAgain == OfflineChange(changed: false, cancel: nil))

        var resumedAfter: Int?
        let on = lifecycle.setOffline(false) { previous in
            resumedAfter = previous
            return tasks.make()
        }
        #expect(on == OfflineChange(changed: true, cancel: nil))
        #expect(resumedAfter == 1, "the new loop waits for the cancelled one")
        #expect(lifecycle == .running(offline: false, loop: 3, watch: 2, closeWaiters: []))
        #expect(!lifecycle.isOffline)
        let onAgain = lifecycle.setOffline(false, resume: { _ in tasks.make() })
        #expect(onAgain == OfflineChange(changed: false, cancel: nil))
        #expect(tasks.made == [1, 2, 3])
    }

    @Test("close: cancels what runs, resumes the waiters, keeps the tasks to wait for; a second close does nothing")
    func close() {
        let tasks = Tasks()
        var lifecycle = Lifecycle(offline: false)
        _ = lifecycle.start(loop: tasks.make, watch: tasks.make)
        let waits = [lifecycle.awaitClose("run"), lifecycle.awaitClose("run 2")]
        #expect(waits == [true, true])
        let closing = lifecycle.close()
        #expect(closing == Lifecycle.Closing(cancel: [2, 1], resume: ["run", "run 2"]))
        #expect(lifecycle == .closed(offline: false, ending: [2, 1]))
        #expect(lifecycle.isClosed)
        #expect(lifecycle.work == [2, 1], "closeAndWait still finds the tasks after another caller closed")
        let second = lifecycle.close()
        #expect(second == nil)
        let late = lifecycle.awaitClose("late")
        #expect(!late, "a waiter after the close is resumed at once by the caller")
        #expect(lifecycle == .closed(offline: false, ending: [2, 1]))
    }

    @Test("closed for good: no start, no offline change; offline is kept as it was")
    func closedForGood() {
        let tasks = Tasks()
        var lifecycle = Lifecycle(offline: true)
        let waits = lifecycle.awaitClose("run")
        #expect(waits)
        let closing = lifecycle.close()
        #expect(closing == Lifecycle.Closing(cancel: [], resume: ["run"]))
        #expect(lifecycle == .closed(offline: true, ending: []))
        let started = lifecycle.start(loop: tasks.make, watch: tasks.make)
        #expect(!started)
        let change = lifecycle.setOffline(false, resume: { _ in tasks.make() })
        #expect(change == OfflineChange(changed: false, cancel: nil))
        #expect(lifecycle.isOffline)
        #expect(lifecycle.work.isEmpty)
        #expect(tasks.made.isEmpty)
    }

    @Test("a client closed after an offline spell: the cancelled loop is among the tasks to wait for")
    func closeWhileOffline() {
        let tasks = Tasks()
        var lifecycle = Lifecycle(offline: false)
        _ = lifecycle.start(loop: tasks.make, watch: nil)
        _ = lifecycle.setOffline(true, resume: { _ in tasks.make() })
        let closing = lifecycle.close()
        #expect(closing == Lifecycle.Closing(cancel: [1], resume: []))
        #expect(lifecycle == .closed(offline: true, ending: [1]))
    }
}

/// The evaluation exporter's phases as values.
@Suite("Exporter phases")
struct ExporterPhaseTests {
    typealias Phase = JSONLinesEvaluationExporter.Phase

    @Test("the first close closes, later ones return at once; only an open exporter takes records")
    func transitions() {
        var phase = Phase.open
        #expect(phase.accepts)
        let first = phase.close()
        #expect(first && phase == .closing && !phase.accepts)
        let second = phase.close()
        #expect(!second && phase == .closing)
        phase.finishClosing()
        #expect(phase == .closed && !phase.accepts)
        let third = phase.close()
        #expect(!third && phase == .closed)

        var neverClosed = Phase.open
        neverClosed.finishClosing()
        #expect(neverClosed == .open, "only a close in progress finishes")
    }
}
