import FliptGzip
import Foundation
import NIOCore
import NIOHTTP1

/// Answers the requests of one connection, one after another (keep-alive, pipelining), until the client leaves,
/// a request asks to close, a refusal closes it, it turns into a stream, or the server stops.
///
/// It holds no snapshot between requests: each answer reads the catalog's current view, and a stream keeps only
/// the ETag it sent last.
final class RelayHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Request {
        var head: HTTPRequestHead
        var target: RequestTarget
        var route: RelayRoute
        var started: NIODeadline
        /// The header fields the answer depends on, found in the one pass over the head that validates it.
        var fields: RequestFields
        /// Whether the head asks to keep the connection open (`HTTPRequestHead.isKeepAlive`, read once).
        var keepAlive: Bool
        /// For a snapshot request, the environments to look for, in order (the path's or the query's, then
        /// `X-Flipt-Environment`); empty for other routes.
        var environments: [String?]
    }

    /// The request header fields the relay reads, found in one pass (the first of each).
    private struct RequestFields {
        var ifNoneMatch: String?
        var environment: String?
        /// Whether `Accept-Encoding` allows gzip (``ContentCoding/acceptsGzip(_:)``, read only when the field
        /// is there).
        var acceptsGzip = false
        /// Whether there is an `Upgrade` field: such a request is never answered from its bytes alone (see
        /// ``lastRequestIsRepeatable``).
        var hasUpgrade = false
        /// Whether a `Content-Length` other than `0` announced a body.
        var hasBody = false
    }

    /// The last request target parsed on this connection, with its route: a polling client asks for the same
    /// target again and again, and comparing it costs less than parsing it again.
    private var lastTarget: (uri: String, target: RequestTarget, route: RelayRoute)?

    /// The last request answered, when the same bytes may be answered again without the decoder: it had no body
    /// and no `Upgrade`, kept the connection open and did not start a stream (``ConnectionGuard`` keeps its
    /// bytes and calls ``answerRepeatedRequest()`` when they come again).
    private var repeatableRequest: Request?

    /// The head of the last snapshot answer, with what it was made for: a connection polling the same snapshot
    /// sends the same bytes until the second (`Date`) changes. It holds no snapshot (a small body copied into
    /// it, at most ``copiedBodyLimit`` bytes, is a copy).
    private var lastSnapshotHead: (key: SnapshotHeadKey, bytes: ByteBuffer)?

    private struct Stream {
        var namespace: String
        var environments: [String?]
        var chunked: Bool
        var subscription: SnapshotCatalog.Subscription
        var lastETag: String?
        var lastGeneration: UInt64 = 0
        var headSent = false
        /// A change arrived while the client was not reading; sent when it reads again.
        var pushPending = false
        /// For a gzip stream (one gzip member for the whole response), the checksum of everything sent so far;
        /// nil for identity.
        var gzip: GzipChecksum?
    }

    private enum State {
        case awaitingHead
        case readingBody(Request)
        case streaming(Stream)
        /// A refusal was answered, or the connection is closing: everything else is ignored.
        case closing
    }

    private let server: RelayServer
    private let connectionGuard: ConnectionGuard
    private let client: String
    private var state = State.awaitingHead
    private var context: ChannelHandlerContext?
    private var dates = HTTPDateCache()
    private var shutdownRequested = false
    /// Whether answers were written and not flushed yet: they are flushed together when the read that brought
    /// their requests is complete, one system call for a pipelined batch.
    private var flushPending = false
    private var readPending = false
    private var configuration: RelayServer.Configuration { server.configuration }
    private let requiresAuthorization: Bool

    /// The header of a gzip member, sent first on every gzip stream.
    private static let gzipHeader = ByteBuffer(bytes: Gzip.header)

    /// Whether large bodies go out as files (``BodyFile``): on plain connections, not through TLS.
    private let sendsFiles: Bool

    /// The event loop's core sharing: told when a read was answered (nil: the loop does not yield).
    private let coreSharing: CoreSharing?

    init(
        server: RelayServer,
        connectionGuard: ConnectionGuard,
        client: String,
        sendsFiles: Bool,
        coreSharing: CoreSharing?
    ) {
        self.server = server
        self.connectionGuard = connectionGuard
        self.client = client
        self.sendsFiles = sendsFiles
        self.coreSharing = coreSharing
        self.requiresAuthorization = server.configuration.requiresAuthorization
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connectionGuard.responder = self
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connectionGuard.responder = nil
        endStream()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        endStream()
        state = .closing
        context.fireChannelInactive()
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead = state else { return }
            connectionGuard.headArrived()
            switch validate(head) {
            case .failure(let refusal):
                refuse(refusal.answer, context: context, method: head.method, uri: head.uri)
            case .success(let request):
                state = .readingBody(request)
            }
        case .body:
            // Bodies are bounded by the Content-Length check and discarded.
            break
        case .end:
            guard case .readingBody(let request) = state else { return }
            state = .awaitingHead
            connectionGuard.requestCompleted(hadBody: request.fields.hasBody)
            answer(request, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            context.flush()
            coreSharing?.roundAnswered()
        }
        context.fireChannelReadComplete()
    }

    private struct Refusal: Error {
        var answer: RelayAnswer
    }

    /// The request with its target, route and fields, or the refusal of a head the relay does not accept.
    private func validate(_ head: HTTPRequestHead) -> Result<Request, Refusal> {
        func refusal(_ status: HTTPResponseStatus, _ message: String) -> Result<Request, Refusal> {
            .failure(Refusal(answer: .fliptError(status, message)))
        }
        guard head.version.major == 1, head.version.minor <= 1 else {
            return refusal(.httpVersionNotSupported, "HTTP version not supported: use HTTP/1.1")
        }
        guard head.uri.utf8.count <= configuration.maxRequestLineLength else {
            return refusal(.uriTooLong, "the request line is longer than \(configuration.maxRequestLineLength) bytes")
        }
        // One pass over the header fields, allocating nothing.
        var hosts = 0
        var lengths = 0
        var length: String?
        var transferEncoding = false
        var hasAcceptEncoding = false
        var fields = RequestFields()
        for (name, value) in head.headers {
            if name.isASCIICaseInsensitiveEqual(to: "host") {
                hosts += 1
            } else if name.isASCIICaseInsensitiveEqual(to: "if-none-match") {
                // Several fields are one comma-separated list (RFC 9110 §5.3).
                fields.ifNoneMatch = fields.ifNoneMatch.map { "\($0), \(value)" } ?? value
            } else if name.isASCIICaseInsensitiveEqual(to: "x-flipt-environment") {
                if fields.environment == nil { fields.environment = value }
            } else if name.isASCIICaseInsensitiveEqual(to: "accept-encoding") {
                hasAcceptEncoding = true
            } else if name.isASCIICaseInsensitiveEqual(to: "upgrade") {
                fields.hasUpgrade = true
            } else if name.isASCIICaseInsensitiveEqual(to: "content-length") {
                lengths += 1
                length = value
            } else if name.isASCIICaseInsensitiveEqual(to: "transfer-encoding") {
                transferEncoding = true
            }
        }
        if hosts > 1 { return refusal(.badRequest, "bad request: more than one Host header") }
        if hosts == 0 && head.version.minor == 1 {
            return refusal(.badRequest, "bad request: missing the Host header")
        }
        if transferEncoding {
            return refusal(.badRequest, "bad request: request bodies are not accepted (Transfer-Encoding)")
        }
        if lengths > 1 { return refusal(.badRequest, "bad request: more than one Content-Length header") }
        if let text = length {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let length = Int(text)
            else {
                return refusal(.badRequest, "bad request: invalid Content-Length")
            }
            guard length <= configuration.maxBodySize else {
                return refusal(.payloadTooLarge, "the request body is larger than \(configuration.maxBodySize) bytes")
            }
            fields.hasBody = length > 0
        }
        let target: RequestTarget
        let route: RelayRoute
        if let last = lastTarget, last.uri == head.uri {
            (target, route) = (last.target, last.route)
        } else {
            guard let parsed = RequestTarget(head.uri) else {
                return refusal(.badRequest, "bad request: the request target must start with /")
            }
            (target, route) = (parsed, RelayRoute(path: parsed.path))
            lastTarget = (head.uri, target, route)
        }
        if hasAcceptEncoding { fields.acceptsGzip = ContentCoding.acceptsGzip(head.headers) }
        let environments: [String?]
        switch route {
        case .snapshot(_, let environment?):
            environments = [environment, fields.environment]
        case .snapshot(_, nil):
            environments = [
                target.queryValue("environmentKey") ?? target.queryValue("environment_key"), fields.environment,
            ]
        case .stream, .health, .unknownAPI, .unknown:
            environments = []
        }
        return .success(
            Request(
                head: head,
                target: target,
                route: route,
                started: .now(),
                fields: fields,
                keepAlive: head.isKeepAlive,
                environments: environments
            )
        )
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .awaitingHead, .readingBody:
            guard let parserError = error as? HTTPParserError else { break }
            let answer: RelayAnswer =
                switch parserError {
                case .headerOverflow:
                    headOverflow
                case .invalidVersion where connectionGuard.requestedOtherVersion:
                    .fliptError(.httpVersionNotSupported, "HTTP version not supported: use HTTP/1.1")
                default:
                    .fliptError(.badRequest, "bad request: \(parserError)")
                }
            refuse(answer, context: context, method: nil, uri: nil)
            return
        case .streaming, .closing:
            break
        }
        server.problems.log(.debug, kind: "connection error", "connection from \(client) failed: \(error)")
        state = .closing
        context.close(promise: nil)
    }

    /// The answer to a request head over a size limit: `414` while its request line has not ended, else `431`.
    private var headOverflow: RelayAnswer {
        connectionGuard.sawLineEnd
            ? .fliptError(
                .requestHeaderFieldsTooLarge,
                "the request head is larger than \(configuration.maxHeadSize) bytes"
            )
            : .fliptError(
                .uriTooLong,
                "the request line is longer than \(configuration.maxRequestLineLength) bytes"
            )
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is RequestHeadTooLarge:
            switch state {
            case .awaitingHead, .readingBody:
                refuse(headOverflow, context: context, method: nil, uri: nil)
            case .streaming, .closing:
                break
            }
        case is RequestDeadlineExceeded:
            switch state {
            case .awaitingHead, .readingBody:
                let seconds = configuration.requestTimeout.components.seconds
                refuse(
                    .fliptError(.requestTimeout, "the request was not complete within \(seconds) s"),
                    context: context,
                    method: nil,
                    uri: nil
                )
            case .streaming, .closing:
                break
            }
        case is RelayShutdownEvent:
            shutdownRequested = true
            switch state {
            case .streaming(let stream):
                endStream()
                if stream.headSent {
                    // A gzip member's end, the chunked terminator (nothing for HTTP/1.0, whose body ends with the
                    // connection), then close once everything sent is out.
                    if let checksum = stream.gzip {
                        writeStreamPart(ByteBuffer(bytes: Gzip.ending(checksum)), chunked: stream.chunked, context)
                    }
                    let end = stream.chunked ? Self.lastChunk : ByteBuffer()
                    context.writeAndFlush(wrapOutboundOut(end)).assumeIsolated().whenComplete { _ in
                        context.close(promise: nil)
                    }
                } else {
                    context.close(promise: nil)
                }
            case .awaitingHead:
                // A request being read is answered (with Connection: close) before the connection closes; an
                // idle one closes once the answers written before are out (writes complete in order).
                if connectionGuard.isIdle {
                    state = .closing
                    flushPending = false
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in
                        context.close(promise: nil)
                    }
                }
            case .readingBody, .closing:
                break
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Back-pressure

    func read(context: ChannelHandlerContext) {
        // A client that sends requests but does not read the answers is not read from until it catches up.
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if readPending {
                readPending = false
                context.read()
            }
            if case .streaming(let stream) = state, stream.pushPending { deliver(server.catalog.view) }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Answering

    private func answer(_ request: Request, context: ChannelHandlerContext) {
        let head = request.head
        let keepAlive = request.keepAlive && !shutdownRequested && !server.stopRequested.load(ordering: .acquiring)
        repeatableRequest = nil
        let answer: RelayAnswer
        let route = request.route
        if head.method != .GET && head.method != .HEAD {
            var refusal = RelayAnswer.fliptError(.methodNotAllowed, "method \(head.method) is not allowed; use GET")
            refusal.headers.add(name: "Allow", value: "GET, HEAD")
            answer = refusal
        } else {
            switch route {
            case .health:
                answer = .json(.ok, ByteBuffer(string: "{\"status\":\"SERVING\"}"))
            case .snapshot(let namespace, _):
                if let denied = authorize(head, namespace: namespace) {
                    answer = denied
                    break
                }
                switch snapshotAnswer(namespace: namespace, request: request) {
                case .missing(let notFound):
                    answer = notFound
                case .found(let snapshot, let kind, let body):
                    writeSnapshot(snapshot, kind: kind, body: body, request: request, keepAlive: keepAlive)
                    return
                }
            case .stream(let namespace, let environment):
                if head.method != .GET {
                    var refusal = RelayAnswer.fliptError(.methodNotAllowed, "a stream answers GET only")
                    refusal.headers.add(name: "Allow", value: "GET")
                    answer = refusal
                } else if let denied = authorize(head, namespace: namespace) {
                    answer = denied
                } else {
                    startStream(request, namespace: namespace, environment: environment, context: context)
                    return
                }
            case .unknownAPI:
                answer = authorize(head, namespace: nil) ?? .fliptError(.notFound, "Not Found")
            case .unknown:
                answer = .plainNotFound
            }
        }
        server.record(answer, route: route.metricsRoute, method: head.method)
        write(answer, version: head.version, includeBody: head.method != .HEAD, keepAlive: keepAlive, context: context)
        noteRepeatable(request, keepAlive: keepAlive)
        // The message is an autoclosure: nothing is formatted unless debug logging is on.
        server.logger.debug(
            "\(logLine(head, status: answer.status, bodyBytes: answer.body.readableBytes, started: request.started))"
        )
    }

    /// Whether the last request answered may be answered again from its bytes alone (see ``repeatableRequest``).
    var lastRequestIsRepeatable: Bool { repeatableRequest != nil }

    /// Answers the last request again, as if the decoder had delivered the same head once more; false (and
    /// nothing done) when the connection is not waiting for a request or there is no such request.
    func answerRepeatedRequest() -> Bool {
        guard case .awaitingHead = state, let context, var request = repeatableRequest else { return false }
        request.started = .now()
        answer(request, context: context)
        return true
    }

    private func noteRepeatable(_ request: Request, keepAlive: Bool) {
        if keepAlive && !request.fields.hasBody && !request.fields.hasUpgrade { repeatableRequest = request }
    }

    /// nil when the hook allows the request; else the answer to send.
    private func authorize(_ head: HTTPRequestHead, namespace: String?) -> RelayAnswer? {
        switch configuration.authorize(head, namespace) {
        case .allowed:
            return nil
        case .unauthorized(let message):
            var answer = RelayAnswer.fliptError(.unauthorized, message)
            answer.headers.add(name: "WWW-Authenticate", value: "Bearer")
            return answer
        case .forbidden(let message):
            return .fliptError(.forbidden, message)
        }
    }

    /// What a snapshot request is answered with: the snapshot, which of its answers, and the body.
    private enum SnapshotLookup {
        case found(ServedSnapshot, SnapshotHeaderFields.Kind, ByteBuffer)
        case missing(RelayAnswer)
    }

    private func snapshotAnswer(namespace: String, request: Request) -> SnapshotLookup {
        let view = server.catalog.view
        guard let snapshot = view.snapshot(namespace: namespace, environments: request.environments) else {
            var message = "evaluation snapshot for namespace \"\(namespace)\" not found"
            let held = view.environments(of: namespace)
            if !held.isEmpty {
                message +=
                    "; this relay holds it for the environments \(held.joined(separator: ", ")): name one in "
                    + "the path or in X-Flipt-Environment"
            }
            return .missing(.fliptError(.notFound, message))
        }
        // Either ETag matches: the client holds this very snapshot, in one encoding or the other. The 304 names
        // the one it holds, so that a cache updates that stored answer.
        if let condition = request.fields.ifNoneMatch {
            if EntityTagCondition.matches(condition, etag: snapshot.etag) {
                return .found(snapshot, .notModified, ByteBuffer())
            }
            if EntityTagCondition.matches(condition, etag: snapshot.gzipETag) {
                return .found(snapshot, .gzipNotModified, ByteBuffer())
            }
        }
        // A large document not compressed yet goes out as it is while a background thread compresses it.
        if request.fields.acceptsGzip, let gzip = snapshot.gzip.valueIfReady {
            return .found(snapshot, .gzipDocument, gzip.document)
        }
        return .found(snapshot, .document, snapshot.documentBuffer)
    }

    /// Writes a snapshot answer (`200` or `304`) with its head from ``lastSnapshotHead`` when that was made for
    /// the same answer in the same second, and counts and logs it.
    private func writeSnapshot(
        _ snapshot: ServedSnapshot,
        kind: SnapshotHeaderFields.Kind,
        body: ByteBuffer,
        request: Request,
        keepAlive: Bool
    ) {
        guard let context else { return }
        let head = request.head
        let notModified = kind == .notModified || kind == .gzipNotModified
        let status: HTTPResponseStatus = notModified ? .notModified : .ok
        let includeBody = head.method != .HEAD && !notModified
        let date = dates.current()
        let etag = kind == .document || kind == .notModified ? snapshot.etag : snapshot.gzipETag
        let key = SnapshotHeadKey(
            version: snapshot.version,
            kind: kind,
            bodyLength: body.readableBytes,
            includesBody: includeBody && body.readableBytes <= Self.copiedBodyLimit,
            age: snapshot.lastConfirmedAt.map { max(0, Int(Date().timeIntervalSince($0))) } ?? -1,
            second: date.second,
            minorVersion: head.version.minor,
            keepAlive: keepAlive
        )
        let bytes: ByteBuffer
        if let last = lastSnapshotHead, last.key == key {
            bytes = last.bytes
        } else {
            var headers = HTTPHeaders()
            if key.age >= 0 { headers.add(name: "Age", value: String(key.age)) }
            let answer = RelayAnswer(
                status: status,
                headers: headers,
                encodedFields: snapshot.headerFields.fields(kind, requiresAuthorization: requiresAuthorization),
                body: body
            )
            bytes = encoded(
                answer,
                version: head.version,
                date: date.text,
                keepAlive: keepAlive,
                copying: key.includesBody ? body : nil,
                context: context
            )
            lastSnapshotHead = (key, bytes)
        }
        server.record(
            status: status,
            route: request.route.metricsRoute,
            bodyBytes: includeBody ? body.readableBytes : 0
        )
        if !notModified { server.snapshotsSent.add(1, ordering: .relaxed) }
        // The body goes out after the head, not copied into it.
        let bodyApart = includeBody && !key.includesBody
        if bodyApart, sendsFiles, body.readableBytes >= BodyFiles.minimumSize,
            let file = snapshot.bodyFiles.file(kind == .gzipDocument ? .gzipDocument : .document, bytes: body),
            let region = file.region(for: context.eventLoop)
        {
            // Corked from the head to the file's last byte, as nginx's `tcp_nopush` does, so that the head and the
            // file leave in full segments. Measured with wrk receiving a 1.1 MB file over loopback by sendfile (10
            // connections): the receiver's kernel time per answer halved with the cork (0.40 -> 0.22 ms).
            let corked = Self.setCork(true, on: context.channel)
            context.write(wrapOutboundOut(bytes), promise: nil)
            // The file stays open until the write is done, even if the snapshot is replaced meanwhile.
            let written = context.eventLoop.makePromise(of: Void.self)
            let channel = context.channel
            written.futureResult.whenComplete { _ in
                if corked { _ = Self.setCork(false, on: channel) }
                withExtendedLifetime(file) {}
            }
            context.write(NIOAny(IOData.fileRegion(region)), promise: written)
        } else {
            context.write(wrapOutboundOut(bytes), promise: nil)
            if bodyApart { context.write(wrapOutboundOut(body), promise: nil) }
        }
        finishAnswer(keepAlive: keepAlive, context: context)
        noteRepeatable(request, keepAlive: keepAlive)
        let served = (snapshot: snapshot, etag: etag)
        server.logger.debug(
            "\(logLine(head, status: status, bodyBytes: body.readableBytes, started: request.started, served: served))"
        )
    }

    /// Sets or clears `TCP_CORK` on a plain TCP connection (Linux; elsewhere nothing is done); returns whether it
    /// was set. Called on the channel's event loop.
    private static func setCork(_ on: Bool, on channel: any Channel) -> Bool {
        #if os(Linux)
        let option = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: TCP_CORK))
        guard let options = channel.syncOptions else { return false }
        do {
            try options.setOption(option, value: on ? 1 : 0)
            return true
        } catch {
            // A closed connection: nothing is left to send on it.
            return false
        }
        #else
        return false
        #endif
    }

    private func write(
        _ answer: RelayAnswer,
        version: HTTPVersion,
        includeBody: Bool,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        let body = includeBody ? answer.body : ByteBuffer()
        // A small body goes out in the head's buffer (one write(2) of one piece); a larger one is shared, not
        // copied, and goes out with the head in one writev(2).
        let copiesBody = body.readableBytes <= Self.copiedBodyLimit
        let head = encoded(
            answer,
            version: version,
            date: dates.now(),
            keepAlive: keepAlive,
            copying: copiesBody ? body : nil,
            context: context
        )
        context.write(wrapOutboundOut(head), promise: nil)
        if !copiesBody { context.write(wrapOutboundOut(body), promise: nil) }
        finishAnswer(keepAlive: keepAlive, context: context)
    }

    /// The answer's status line and header fields in one buffer, followed by `body` when given (a small body goes
    /// out in the head's buffer: one write(2) of one piece).
    private func encoded(
        _ answer: RelayAnswer,
        version: HTTPVersion,
        date: String,
        keepAlive: Bool,
        copying body: ByteBuffer?,
        context: ChannelHandlerContext
    ) -> ByteBuffer {
        var buffer = context.channel.allocator.buffer(
            capacity: 192 + answer.encodedFields.readableBytes + (body?.readableBytes ?? 0)
        )
        answer.writeHead(into: &buffer, version: version, date: date, keepAlive: keepAlive)
        if let body { buffer.writeImmutableBuffer(body) }
        return buffer
    }

    /// After an answer was written: flushed with the others of the same read when the connection stays open;
    /// else flushed now, and the connection closes once it is out.
    private func finishAnswer(keepAlive: Bool, context: ChannelHandlerContext) {
        if keepAlive {
            // Flushed when the read that brought the request is complete (channelReadComplete).
            flushPending = true
        } else {
            flushPending = false
            // Once everything written is out (or failed: the connection is gone anyway).
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { [self] _ in
                state = .closing
                context.close(promise: nil)
            }
        }
    }

    /// Bodies up to this size are copied into the head's buffer.
    private static let copiedBodyLimit = 1024
    /// The end of a chunked body.
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")
    private static let chunkEnd = ByteBuffer(string: "\r\n")

    /// Writes `bytes` as one part of a stream's body: as a chunk when `chunked`, else as they are. Not flushed.
    private func writeStreamPart(_ bytes: ByteBuffer, chunked: Bool, _ context: ChannelHandlerContext) {
        guard chunked else {
            context.write(wrapOutboundOut(bytes), promise: nil)
            return
        }
        guard bytes.readableBytes > 0 else { return }
        var size = context.channel.allocator.buffer(capacity: 18)
        size.writeString(String(bytes.readableBytes, radix: 16))
        size.writeStaticString("\r\n")
        context.write(wrapOutboundOut(size), promise: nil)
        context.write(wrapOutboundOut(bytes), promise: nil)
        context.write(wrapOutboundOut(Self.chunkEnd), promise: nil)
    }

    /// Answers a request the relay does not accept, and closes the connection.
    private func refuse(_ answer: RelayAnswer, context: ChannelHandlerContext, method: HTTPMethod?, uri: String?) {
        state = .closing
        connectionGuard.refused()
        server.record(answer, route: .other, method: .GET)
        server.problems.log(
            .debug,
            kind: "refused request",
            "refused a request from \(client): \(answer.status.code) \(method.map { "\($0) " } ?? "")"
                + (uri.map(RequestTarget.loggable) ?? "")
        )
        write(answer, version: .http1_1, includeBody: true, keepAlive: false, context: context)
    }

    // MARK: Streaming

    /// Opens a v2 stream: the current snapshot at once (unless its ETag equals the `digest` query parameter),
    /// then each new one as the catalog pushes it. Headers go out with the first message, as on Flipt; an unknown
    /// namespace waits, silent, until it appears.
    private func startStream(
        _ request: Request,
        namespace: String,
        environment: String,
        context: ChannelHandlerContext
    ) {
        server.record(status: .ok, route: .v2Stream, bodyBytes: 0)
        server.openStreams.add(1, ordering: .relaxed)
        connectionGuard.streamStarted()
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        let subscription = server.catalog.subscribe(namespace: namespace) { view in
            eventLoop.execute { handler.value.deliver(view) }
        }
        state = .streaming(
            Stream(
                namespace: namespace,
                environments: [environment, request.head.headers.first(name: "X-Flipt-Environment")],
                chunked: request.head.version.minor >= 1,
                subscription: subscription,
                lastETag: request.target.queryValue("digest").flatMap { $0.isEmpty ? nil : $0 },
                gzip: request.fields.acceptsGzip ? GzipChecksum() : nil
            )
        )
        let target = RequestTarget.loggable(request.head.uri)
        server.logger.debug("GET \(target) stream opened for \(environment)/\(namespace), from \(client)")
        deliver(server.catalog.view)
    }

    /// Sends the stream's snapshot in `view` if it is newer than the last one sent.
    private func deliver(_ view: SnapshotCatalog.View) {
        guard let context, case .streaming(var stream) = state, view.generation >= stream.lastGeneration else {
            return
        }
        stream.lastGeneration = view.generation
        guard context.channel.isWritable else {
            stream.pushPending = true
            state = .streaming(stream)
            return
        }
        stream.pushPending = false
        guard let snapshot = view.snapshot(namespace: stream.namespace, environments: stream.environments),
            snapshot.etag != stream.lastETag
        else {
            state = .streaming(stream)
            return
        }
        var compressed: GzipForms.Forms?
        if stream.gzip != nil {
            compressed = snapshot.gzip.valueIfReady
            if compressed == nil {
                // A large document being compressed off the event loop: sent when that is done.
                state = .streaming(stream)
                let eventLoop = context.eventLoop
                let handler = NIOLoopBound(self, eventLoop: eventLoop)
                let server = server
                snapshot.gzip.whenReady { eventLoop.execute { handler.value.deliver(server.catalog.view) } }
                return
            }
        }
        if !stream.headSent {
            var head = context.channel.allocator.buffer(capacity: 256)
            head.writeStaticString(stream.chunked ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n")
            head.writeStaticString(
                "Content-Type: application/json\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nDate: "
            )
            head.writeString(dates.now())
            if stream.gzip != nil { head.writeStaticString("\r\nContent-Encoding: gzip") }
            head.writeStaticString(
                stream.chunked ? "\r\nTransfer-Encoding: chunked\r\n\r\n" : "\r\nConnection: close\r\n\r\n"
            )
            context.write(wrapOutboundOut(head), promise: nil)
            stream.headSent = true
            if compressed != nil { writeStreamPart(Self.gzipHeader, chunked: stream.chunked, context) }
        }
        // The same bytes on every gzip stream; only the running checksum is this connection's.
        let body = compressed?.message ?? snapshot.streamMessageBuffer
        if let compressed { stream.gzip?.append(compressed.messageChecksum) }
        server.metrics?.recordSent(route: .v2Stream, bodyBytes: body.readableBytes)
        writeStreamPart(body, chunked: stream.chunked, context)
        context.flush()
        stream.lastETag = snapshot.etag
        state = .streaming(stream)
        server.logger.debug(
            "stream \(snapshot.environment)/\(snapshot.namespace): sent etag \(snapshot.etag) to \(client)"
        )
    }

    private func endStream() {
        guard case .streaming(let stream) = state else { return }
        stream.subscription.cancel()
        server.openStreams.subtract(1, ordering: .relaxed)
        state = .closing
    }

    private func logLine(
        _ head: HTTPRequestHead,
        status: HTTPResponseStatus,
        bodyBytes: Int,
        started: NIODeadline,
        served: (snapshot: ServedSnapshot, etag: String)? = nil
    ) -> String {
        let detail = served.map { " \($0.snapshot.environment)/\($0.snapshot.namespace) etag \($0.etag)" } ?? ""
        let micro = (NIODeadline.now() - started).nanoseconds / 1000
        let milliseconds = String(format: "%.3f", Double(micro) / 1000)
        return "\(head.method) \(RequestTarget.loggable(head.uri)) \(status.code) \(bodyBytes) B \(milliseconds) ms "
            + "from \(client)\(detail)"
    }
}

/// What the head of a snapshot answer depends on: equal keys, equal bytes.
private struct SnapshotHeadKey: Equatable {
    /// The snapshot's content identity (its ETag and content hash): the ETag in the head, and a small body
    /// copied into it, are those of this content.
    var version: String
    var kind: SnapshotHeaderFields.Kind
    /// The body's length, for `Content-Length`.
    var bodyLength: Int
    /// Whether the body is copied into the head's buffer.
    var includesBody: Bool
    /// The `Age` in seconds, or -1 for none.
    var age: Int
    /// The second of the `Date`.
    var second: Int
    var minorVersion: Int
    var keepAlive: Bool
}
