// Decoding a large document on two cores: the calling thread decodes the flags array from its start, while a
// second thread guesses where a flag begins past the middle of the document and decodes from there to the array's
// end into a builder of its own. The guess needs no structural scan and no trust:
//
// - A candidate is a `{` that follows a `,` (and whitespace). It is kept when one flag decodes there within
//   64 KiB and is followed by `,` or `]`; otherwise the next candidate is tried (64 at most). The calling thread
//   waits for this search when it reaches the middle (it has long ended by then), so that whether the work is
//   shared depends on the document alone; the window bounds the wait on any document.
// - The calling thread adopts the other thread's work only when one of its own flag elements starts exactly at
//   the kept candidate. Then the candidate is a real element start of the flags array, and the other thread read
//   from it exactly what the calling thread would have read (the same bytes, the same decoder, a fresh draft per
//   flag); `ProgramBuilder.append(contentsOf:)` makes the merged builder the one a single pass gives, byte for
//   byte. When the calling thread steps past the candidate instead (it was inside a string or a nested value),
//   the other thread is stopped and the calling thread decodes on alone.
// - Whatever goes wrong in the adopted part (any error), the caller decodes the whole document again on one
//   thread, so that a malformed document is rejected with the same first error in document order as before.
//
// Measured (callgrind, `flipt-bench load --callgrind SHAPE`, instructions per load on the calling thread, the
// other thread's share not counted): issue18-10000 (9.9 MB) 464 M -> 247 M, issue18-1000 (1 MB) 48.1 M ->
// 25.9 M. The wall-clock gain needs the second core to be free; `flipt-bench load` shows both forms side by side.

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The flags of a document from a guessed element start to the end of the flags array, decoded on a thread of
/// its own.
///
/// `@unchecked Sendable`: `document` is only read (the caller keeps it alive until `join()` returns); `outcome`
/// is written by the decoding thread before it ends and read by the calling thread only after `join()`, whose
/// `pthread_join` orders the two; `thread` and `joined` are touched by the calling thread only.
final class FlagRunDecoding: @unchecked Sendable {
    /// What the decoding thread ended with.
    enum Outcome {
        /// The flags from the kept candidate to the end of the array, and the index after the closing `]`.
        case decoded(ProgramBuilder, end: Int)
        /// No candidate was kept, the decoding was stopped, or the rest of the array is malformed.
        case failed
    }

    /// What the calling thread should do at one of its element starts.
    enum Step {
        /// Decode this flag itself (the other thread's candidate lies further on).
        case decode
        /// Take the other thread's flags: this element starts at its candidate.
        case adopt
        /// Decode on alone: the candidate was passed (it was no element start) or none was kept.
        case alone
    }

    /// Thrown by the calling thread's decoder when the adopted part failed; never reaches users: the document is
    /// then decoded again on one thread, which finds the first error itself.
    static let failure = DocumentError(
        path: "",
        reason: "the flags decoded on another thread are not valid",
        byteOffset: 0
    )

    private static let searching = -2
    private static let noCandidate = -1
    /// Candidates tried before the decoding thread gives up.
    private static let candidateLimit = 64
    /// The most bytes a candidate's first flag may take: the trial of a candidate stops there, so that the search
    /// (which the calling thread waits for) reads at most `candidateLimit` times this much, whatever the document.
    private static let trialWindow = 1 << 16

    private let document: UnsafeBufferPointer<UInt8>
    /// Where the search for a candidate begins; the calling thread checks its element starts from here on.
    let searchStart: Int
    /// The kept candidate's index, `searching` or `noCandidate`.
    private let candidate = Atomic<Int>(FlagRunDecoding.searching)
    private let stopped = Atomic<Bool>(false)
    private var outcome = Outcome.failed
    private var thread: pthread_t?
    private var joined = false

    /// Starts decoding the flags of `document` from the first flag found at or after `searchStart`; nil when no
    /// thread could be started.
    init?(document: UnsafeBufferPointer<UInt8>, searchStart: Int) {
        self.document = document
        self.searchStart = searchStart
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Glibc)
        var handle = pthread_t()
        let status = pthread_create(
            &handle,
            nil,
            { context in
                Unmanaged<FlagRunDecoding>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            },
            context
        )
        #else
        var handle: pthread_t?
        let status = pthread_create(
            &handle,
            nil,
            { context in
                Unmanaged<FlagRunDecoding>.fromOpaque(context).takeRetainedValue().run()
                return nil
            },
            context
        )
        #endif
        guard status == 0 else {
            Unmanaged<FlagRunDecoding>.fromOpaque(context).release()
            return nil
        }
        thread = handle
    }

    /// Whether splitting a document of `count` bytes can pay: it is large and there is a second processor.
    static func pays(forDocumentOf count: Int, threshold: Int) -> Bool {
        count >= threshold && sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1
    }

    /// Compares an element start of the calling thread (at or after `searchStart`) with the kept candidate,
    /// waiting for the other thread to keep one or give up: its search is short, and by the time the calling
    /// thread has decoded up to `searchStart` it has long ended, so the wait only matters on a starved machine,
    /// and it makes the outcome depend on the document alone.
    func step(atElement index: Int) -> Step {
        var kept = candidate.load(ordering: .acquiring)
        while kept == Self.searching {
            sched_yield()
            kept = candidate.load(ordering: .acquiring)
        }
        if kept == Self.noCandidate || kept < index { return .alone }
        return kept == index ? .adopt : .decode
    }

    /// Asks the decoding thread to stop at its next flag.
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// Waits for the decoding thread to end and returns what it decoded.
    func join() -> Outcome {
        if !joined, let thread {
            pthread_join(thread, nil)
            joined = true
        }
        return outcome
    }

    // MARK: The decoding thread

    private func run() {
        var draft = FlagDraft()
        var position = searchStart
        for _ in 0..<Self.candidateLimit {
            guard !stopped.load(ordering: .relaxed), let start = nextCandidate(from: position) else { break }
            position = start + 1
            // The trial reads the same bytes up to the window's end (the same indices), and fails past it.
            var trial = JSONCursor(
                UnsafeBufferPointer(rebasing: document[..<min(document.count, start + Self.trialWindow)])
            )
            trial.tracksPath = false
            trial.index = start
            draft.reset()
            do throws(DocumentError) {
                try trial.decodeFlag(&draft)
            } catch {
                continue
            }
            let next = trial.peekSignificant()
            guard next == UInt8(ascii: ",") || next == UInt8(ascii: "]") else { continue }
            var cursor = JSONCursor(document)
            cursor.tracksPath = false
            cursor.index = trial.index
            var builder = ProgramBuilder(documentSize: document.count - start)
            builder.add(draft)
            candidate.store(start, ordering: .releasing)
            outcome = decodeRest(&cursor, &builder, &draft)
            return
        }
        candidate.store(Self.noCandidate, ordering: .releasing)
    }

    /// The index of the next `{` at or after `position` that follows a `,` and whitespace, or nil.
    private func nextCandidate(from position: Int) -> Int? {
        var index = position
        while index < document.count {
            if document[index] == UInt8(ascii: ",") {
                index += 1
                while index < document.count {
                    let byte = document[index]
                    guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { break }
                    index += 1
                }
                if index < document.count && document[index] == UInt8(ascii: "{") { return index }
            } else {
                index += 1
            }
        }
        return nil
    }

    /// Decodes the flags after the first one, as `JSONCursor.decodeFlags` does, to the array's end.
    private func decodeRest(
        _ cursor: inout JSONCursor,
        _ builder: inout ProgramBuilder,
        _ draft: inout FlagDraft
    ) -> Outcome {
        do throws(DocumentError) {
            while true {
                switch cursor.peekSignificant() {
                case UInt8(ascii: ","):
                    cursor.index += 1
                    if cursor.peekSignificant() == UInt8(ascii: "]") { return .failed }
                case UInt8(ascii: "]"):
                    return .decoded(builder, end: cursor.index + 1)
                default:
                    return .failed
                }
                if stopped.load(ordering: .relaxed) { return .failed }
                draft.reset()
                try cursor.decodeFlag(&draft)
                builder.add(draft)
            }
        } catch {
            return .failed
        }
    }
}
