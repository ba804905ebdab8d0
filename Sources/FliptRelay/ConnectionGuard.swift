import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Sent up the pipeline when a request was not complete within its deadline.
struct RequestDeadlineExceeded: Sendable {}

/// Sent up the pipeline when a request's head (request line, header fields and the blank line, as sent) is
/// larger than the limit. The decoder's own limits count only header names and values, so white space and many
/// short fields could otherwise make a head of any size.
struct RequestHeadTooLarge: Sendable {}

/// The byte-level watch over one connection, in front of the HTTP decoder: one deadline for each whole request
/// (head and body) from its first byte, an idle timeout between requests, and no input at all once the
/// connection streams or refuses.
///
/// It does not parse HTTP. It only notes whether a line end passed since the current request began, which tells
/// an overlong request line (`414`) from overlong header fields (`431`) when the decoder's size limit trips, and
/// counts the bytes of a request until its head has arrived: the decoder is given at most `maxHeadSize` of them,
/// and a head not whole by then is refused. ``RelayHTTPHandler`` tells it when a head arrived
/// (``headArrived()``), when a request is complete (``requestCompleted()``), when the connection became a stream
/// (``streamStarted()``) and when it answered a refusal (``refused()``).
final class ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        /// Between requests: the idle timeout runs.
        case idle
        /// A request began: its deadline runs.
        case receiving
        /// A stream: input is ignored, no timer.
        case streaming
        /// A refusal was answered; input is ignored until the connection closes.
        case refusing
    }

    private let requestTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    /// The largest request head, in bytes as sent.
    private let maxHeadSize: Int
    /// Bytes of the current request passed to the decoder before its head arrived.
    private var headBytes = 0
    /// Whether the current request's head arrived.
    private var headDone = false
    /// Heads that arrived on this connection (wrapping), to tell whether one arrived while passing a read.
    private var headsArrived = 0
    /// The server, whose count of requests being read this connection keeps up to date.
    private let server: RelayServer
    private var phase = Phase.idle {
        didSet {
            switch (oldValue, phase) {
            case (.receiving, .receiving): break
            case (.receiving, _): server.requestsBeingRead.subtract(1, ordering: .relaxed)
            case (_, .receiving): server.requestsBeingRead.add(1, ordering: .relaxed)
            default: break
            }
        }
    }
    private var timer: Scheduled<Void>?
    /// When the current phase times out (idle or receiving).
    private var deadline = NIODeadline.distantFuture
    /// When the scheduled timer fires.
    private var timerDeadline = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?
    /// Whether a line feed arrived since the current request began.
    private(set) var sawLineEnd = false
    /// The first read of the current request (shared with the decoder's copy, not copied), kept so that a
    /// refusal can tell a well-formed but unsupported HTTP version (`505`) from a malformed request line (`400`).
    private var firstRead: ByteBuffer?
    /// Whether the decoder is working on a read passed on by ``channelRead(context:data:)`` right now.
    private var passingRead = false
    /// Whether a request without a body was completed while the decoder worked on the current read.
    private var completedInRead = false
    /// Requests completed while the decoder worked on the current read.
    private var requestsCompletedInRead = 0
    /// The bytes of the last request that came alone in one read, began and ended it, and that ``responder``
    /// can answer again without the decoder (see ``channelRead(context:data:)``). Its storage is reused.
    private var repeatableRequest = ByteBuffer()
    /// Whether ``repeatableRequest`` holds a request.
    private var hasRepeatableRequest = false
    /// Whether the decoder may hold the start of a request while the connection counts as idle: after a request
    /// with a body, until a read ends a request at its own end.
    private var mayHoldPartialRequest = false
    /// The connection's HTTP handler, which answers a repeated request; set by it when it is added, cleared
    /// when either handler is removed.
    var responder: RelayHTTPHandler?
    /// Requests longer than this are not kept for ``repeatableRequest`` (an official SDK's poll is ~250 bytes).
    static let repeatableRequestLimit = 2048

    init(server: RelayServer, requestTimeout: TimeAmount, idleTimeout: TimeAmount, maxHeadSize: Int) {
        self.server = server
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.maxHeadSize = maxHeadSize
    }

    /// Whether the connection waits for a request with nothing of one received.
    var isIdle: Bool {
        if case .idle = phase { return true }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm(idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        phase = .refusing
        responder = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        phase = .refusing
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let startedIdle: Bool
        switch phase {
        case .streaming, .refusing:
            return
        case .idle:
            // A polling client sends the same request again and again. When this read is, byte for byte, the
            // last request that came alone in a read, the decoder would turn it into the same request head as
            // then, from the same state (it holds nothing between requests while the connection is idle): the
            // HTTP handler answers that head again, and the read does not go through the decoder. The answer
            // itself is made anew from the current snapshot, tokens and server state.
            if hasRepeatableRequest, !mayHoldPartialRequest, bytes.readableBytes == repeatableRequest.readableBytes,
                let responder,
                Self.equalBytes(bytes, repeatableRequest), responder.answerRepeatedRequest()
            {
                arm(idleTimeout)
                return
            }
            startedIdle = true
            beginRequest()
            firstRead = bytes
        case .receiving:
            startedIdle = false
        }
        if !headDone {
            // The decoder gets no more of a head than the limit: past it, the head must have arrived.
            let allowance = maxHeadSize - headBytes
            if bytes.readableBytes > allowance {
                var rest = bytes
                let heads = headsArrived
                if allowance > 0, let first = rest.readSlice(length: allowance) {
                    headBytes = maxHeadSize
                    pass(first, startedIdle: startedIdle, context: context)
                }
                switch phase {
                case .streaming, .refusing:
                    return
                case .idle, .receiving:
                    if headsArrived == heads {
                        refused()
                        context.fireUserInboundEventTriggered(RequestHeadTooLarge())
                    } else {
                        // The head arrived within the limit: the rest holds its body or the next request.
                        channelRead(context: context, data: wrapInboundOut(rest))
                    }
                }
                return
            }
            headBytes += bytes.readableBytes
        }
        pass(bytes, startedIdle: startedIdle, context: context)
    }

    /// A request begins: its deadline runs, and its head is counted from here.
    private func beginRequest() {
        phase = .receiving
        sawLineEnd = false
        headBytes = 0
        headDone = false
        arm(requestTimeout)
    }

    /// Passes one read to the decoder, and notes what it did to the connection's requests.
    private func pass(_ bytes: ByteBuffer, startedIdle: Bool, context: ChannelHandlerContext) {
        if !sawLineEnd && Self.containsLineFeed(bytes) { sawLineEnd = true }
        let mayHaveJoined = mayHoldPartialRequest
        passingRead = true
        completedInRead = false
        requestsCompletedInRead = 0
        context.fireChannelRead(wrapInboundOut(bytes))
        passingRead = false
        // Kept for the next read: a read that began while idle and held exactly one request without a body,
        // ending with it, which left the connection idle and which the HTTP handler may answer again.
        if startedIdle, !mayHaveJoined, requestsCompletedInRead == 1, completedInRead, case .idle = phase,
            bytes.readableBytes <= Self.repeatableRequestLimit, Self.endsWithBlankLine(bytes),
            responder?.lastRequestIsRepeatable == true
        {
            repeatableRequest.clear()
            repeatableRequest.writeImmutableBuffer(bytes)
            hasRepeatableRequest = true
        } else if startedIdle {
            hasRepeatableRequest = false
        }
        // A pipelining client may send the start of its next request in the read that ended the last one: the
        // decoder keeps those bytes and reports nothing until the next head is whole, so the connection is not
        // idle but receiving. A request without a body ends with its head's blank line; a read that ends
        // elsewhere holds more, and the next request's deadline starts now.
        if completedInRead, case .idle = phase {
            if Self.endsWithBlankLine(bytes) {
                // A request ended at the read's end: the decoder holds nothing.
                mayHoldPartialRequest = false
            } else {
                // The next head's bytes in this read are not counted: at most one read more than the limit.
                beginRequest()
            }
        }
        completedInRead = false
    }

    /// Whether `bytes` hold a line feed (`memchr`, rather than a byte-by-byte loop over the view).
    private static func containsLineFeed(_ bytes: ByteBuffer) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return false }
            return memchr(base, 10, raw.count) != nil
        }
    }

    /// Whether `first` and `second` hold the same bytes; their lengths are equal.
    private static func equalBytes(_ first: ByteBuffer, _ second: ByteBuffer) -> Bool {
        first.withUnsafeReadableBytes { one in
            second.withUnsafeReadableBytes { other in
                guard let oneBase = one.baseAddress, let otherBase = other.baseAddress else { return one.count == 0 }
                return memcmp(oneBase, otherBase, one.count) == 0
            }
        }
    }

    /// Whether `bytes` end with the blank line that ends a request head (`CRLF CRLF`, or `LF LF`).
    private static func endsWithBlankLine(_ bytes: ByteBuffer) -> Bool {
        let view = bytes.readableBytesView
        guard view.last == 10 else { return false }
        let beforeLast = view.dropLast()
        if beforeLast.last == 10 { return true }
        return beforeLast.last == 13 && beforeLast.dropLast().last == 10
    }

    /// The current request was read whole: the connection is idle again. `hadBody` says whether it had a
    /// body, after which the guard cannot tell whether the same read held more.
    func requestCompleted(hadBody: Bool = false) {
        guard case .receiving = phase else { return }
        phase = .idle
        sawLineEnd = false
        firstRead = nil
        arm(idleTimeout)
        if passingRead {
            requestsCompletedInRead += 1
            if !hadBody { completedInRead = true }
        }
        if hadBody {
            // The read that ended the body may also have begun another request, which the decoder now holds
            // while the connection counts as idle: reads go to the decoder, and are not kept as repeatable,
            // until one ends a request at its own end.
            mayHoldPartialRequest = true
            hasRepeatableRequest = false
        }
    }

    /// The decoder delivered a whole request head. When the connection counted as idle (the head was already in
    /// the decoder), the request's deadline starts.
    func headArrived() {
        if case .idle = phase {
            beginRequest()
            sawLineEnd = true
        }
        headDone = true
        headsArrived &+= 1
    }

    /// Whether the current request's line ends with a well-formed HTTP version other than 1.x (`HTTP/2.0`).
    var requestedOtherVersion: Bool {
        guard let view = firstRead?.readableBytesView, let end = view.firstIndex(of: 10) else { return false }
        let line = String(decoding: view[view.startIndex..<end], as: UTF8.self)
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return false }
        let version = Array(parts[2].utf8.prefix { $0 != 13 })
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        return version.count == 8 && version.starts(with: Array("HTTP/".utf8)) && digits.contains(version[5])
            && version[6] == UInt8(ascii: ".") && digits.contains(version[7]) && version[5] != UInt8(ascii: "1")
    }

    /// The connection streams from now on: no timeout, input ignored (keepalive reaps a vanished client).
    func streamStarted() {
        phase = .streaming
        firstRead = nil
        timer?.cancel()
        timer = nil
    }

    /// A refusal was answered and the connection closes: input is ignored.
    func refused() {
        phase = .refusing
        firstRead = nil
        timer?.cancel()
        timer = nil
    }

    /// Sets the current phase's deadline.
    ///
    /// The timer is not rescheduled for each request: cancelling a scheduled task costs a search through the
    /// event loop's queue, which holds one timer per connection. It fires at least every ``requestTimeout``
    /// and then either acts or sets itself again for the current deadline, so that a request's deadline, never
    /// more than ``requestTimeout`` ahead, is met on time and an idle connection is checked a few times.
    private func arm(_ timeout: TimeAmount) {
        deadline = .now() + timeout
        if let timer, timerDeadline > deadline {
            // Only when an idle timeout is shorter than the request timeout.
            timer.cancel()
            self.timer = nil
        }
        if timer == nil { scheduleTimer() }
    }

    private func scheduleTimer() {
        guard let context else { return }
        let at = min(deadline, .now() + requestTimeout)
        timerDeadline = at
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [self] in
            timer = nil
            guard let context = self.context else { return }
            switch phase {
            case .streaming, .refusing:
                return
            case .idle, .receiving:
                guard NIODeadline.now() >= deadline else {
                    scheduleTimer()
                    return
                }
            }
            if case .idle = phase {
                context.close(promise: nil)
            } else {
                phase = .refusing
                context.fireUserInboundEventTriggered(RequestDeadlineExceeded())
            }
        }
    }
}
