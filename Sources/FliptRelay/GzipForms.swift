import Dispatch
import FliptGzip
import NIOCore
import NIOHTTP1
import Synchronization

/// The gzip forms of one served snapshot, compressed once and shared by every connection: the document as a
/// whole gzip member, and the stream message as a ``DeflateSegment`` that every gzip stream sends as it is (each
/// connection keeps only a ``GzipChecksum``, no zlib state).
///
/// A small document is compressed by the first connection that asks, on its event loop (well under a
/// millisecond). A large one is never compressed on an event loop: the first request starts the work on a
/// background thread and is answered identity meanwhile, and a stream waits for it (``whenReady(_:)``). The cache
/// watcher compresses new documents on its own thread right after they are served, so that clients seldom meet
/// a document not yet compressed.
final class GzipForms: Sendable {
    /// The compressed bytes, as written to connections.
    struct Forms: Sendable {
        /// The document as a complete gzip member.
        var document: ByteBuffer
        /// The stream message as a deflate segment.
        var message: ByteBuffer
        /// The checksum of the (uncompressed) stream message.
        var messageChecksum: GzipChecksum
    }

    private enum State {
        case idle
        case compressing([@Sendable () -> Void])
        case ready(Forms)
    }

    /// Documents up to this size are compressed on the event loop that first needs them.
    static let inlineLimit = 64 * 1024

    private let source: (document: ByteBuffer, message: ByteBuffer)
    private let state = Mutex(State.idle)

    init(document: ByteBuffer, message: ByteBuffer) {
        source = (document, message)
    }

    /// The forms if they are ready, or can be made at once (a small document); else nil, and a background
    /// compression is started if none is running.
    var valueIfReady: Forms? {
        if case .ready(let forms) = state.withLock({ $0 }) { return forms }
        if source.document.readableBytes <= Self.inlineLimit { return compressNow() }
        whenReady {}
        return nil
    }

    /// Calls `body` once the forms are ready (at once if they are), from whichever thread finished them;
    /// starts compressing on a background thread if nobody did.
    func whenReady(_ body: @escaping @Sendable () -> Void) {
        enum Step {
            case callNow
            case wait
            case start
        }
        let step: Step = state.withLock { state in
            switch state {
            case .ready: return .callNow
            case .compressing(var waiting):
                waiting.append(body)
                state = .compressing(waiting)
                return .wait
            case .idle:
                state = .compressing([body])
                return .start
            }
        }
        switch step {
        case .callNow: body()
        case .wait: break
        case .start: DispatchQueue.global(qos: .utility).async { _ = self.compressNow() }
        }
    }

    /// Compresses on the caller's thread unless the forms are ready (waiting for nobody: a compression running
    /// elsewhere at the same moment does the same work once more, and the first result is kept).
    @discardableResult
    func compressNow() -> Forms {
        if case .ready(let forms) = state.withLock({ $0 }) { return forms }
        let computed = Self.compress(document: source.document, message: source.message)
        let (forms, waiting): (Forms, [@Sendable () -> Void]) = state.withLock { state in
            switch state {
            case .ready(let forms): return (forms, [])
            case .idle:
                state = .ready(computed)
                return (computed, [])
            case .compressing(let waiting):
                state = .ready(computed)
                return (computed, waiting)
            }
        }
        for body in waiting { body() }
        return forms
    }

    private static func compress(document: ByteBuffer, message: ByteBuffer) -> Forms {
        let documentSegment = DeflateSegment(compressing: document.readableBytesView)
        let messageSegment: DeflateSegment
        let prefix = Array(ServedSnapshot.messagePrefix.utf8)
        let suffix = Array(ServedSnapshot.messageSuffix.utf8)
        if message.readableBytes == document.readableBytes + prefix.count + suffix.count {
            // The document had no line breaks to remove: the message is prefix + document + suffix, so the
            // document's segment is reused between two tiny ones instead of compressing it a second time.
            messageSegment = DeflateSegment(concatenating: [
                DeflateSegment(compressing: prefix), documentSegment, DeflateSegment(compressing: suffix),
            ])
        } else {
            messageSegment = DeflateSegment(compressing: message.readableBytesView)
        }
        return Forms(
            document: ByteBuffer(bytes: Gzip.member(documentSegment)),
            message: ByteBuffer(bytes: messageSegment.bytes),
            messageChecksum: messageSegment.checksum
        )
    }
}

/// What a request's `Accept-Encoding` allows.
enum ContentCoding {
    /// Whether the answer may be gzip: `gzip` (or `x-gzip`) or `*` with a q-value above 0, and not ranked below
    /// an explicitly listed `identity`. No header means identity.
    static func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        var gzip: Double?
        var any: Double?
        var identity: Double?
        for value in headers[canonicalForm: "Accept-Encoding"] {
            var parameters = value.split(separator: ";").makeIterator()
            guard let name = parameters.next()?.trimmingSpaces.lowercased() else { continue }
            var quality = 1.0
            while let parameter = parameters.next() {
                let parts = parameter.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingSpaces.lowercased() == "q" {
                    quality = Double(parts[1].trimmingSpaces) ?? 0
                }
            }
            switch name {
            case "gzip", "x-gzip": gzip = max(gzip ?? 0, quality)
            case "*": any = quality
            case "identity": identity = quality
            default: break
            }
        }
        guard let chosen = gzip ?? any, chosen > 0 else { return false }
        return chosen >= (identity ?? 0)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

/// The two ETags of a snapshot: the one sent with the document as it is, and the one sent with its gzip form,
/// which must differ (a shared cache may keep both; RFC 9110 8.8.3): the same value with `-gzip` appended
/// inside the quotes, as Apache's mod_deflate does.
enum GzipETag {
    /// `"abc"` → `"abc-gzip"`, `W/"abc"` → `W/"abc-gzip"`, `abc` (unquoted, as some servers send) → `abc-gzip`.
    static func of(_ etag: String) -> String {
        if etag.count >= 2, etag.hasSuffix("\"") {
            return String(etag.dropLast()) + "-gzip\""
        }
        return etag + "-gzip"
    }
}
