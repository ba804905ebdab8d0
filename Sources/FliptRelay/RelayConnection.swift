import Foundation

/// One accepted connection, served on its own thread: requests one after another (keep-alive) until the client
/// leaves, a request asks to close, an error closes it, it turns into a stream, or the server stops.
struct RelayConnection {
    let server: RelayServer
    let fd: Int32
    let id: Int
    private var buffer: [UInt8] = []
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)
    /// This connection's copy of the catalog, refreshed when the catalog's generation moves.
    private var view: SnapshotCatalog.View
    private var dates = HTTPDateCache()
    private var configuration: RelayServer.Configuration { server.configuration }

    init(server: RelayServer, fd: Int32, id: Int) {
        self.server = server
        self.fd = fd
        self.id = id
        self.view = server.catalog.view
    }

    /// The catalog as it is now, taking its lock only when it changed since this connection last looked.
    private mutating func currentView() -> SnapshotCatalog.View {
        if server.catalog.generation != view.generation { view = server.catalog.view }
        return view
    }

    /// What reading a request produced.
    private enum Reading {
        case request(HTTPRequestHead)
        /// Answer this and close.
        case refusal(HTTPResponse)
        /// The client left, stayed silent too long, or the server stops.
        case closed
    }

    mutating func serve() {
        while true {
            switch readRequest() {
            case .closed:
                return
            case .refusal(let response):
                server.record(status: response.status)
                send(response, keepAlive: false, includeBody: true)
                server.logger.debug("connection \(id): refused a request: \(response.status)")
                return
            case .request(let head):
                guard handle(head) else { return }
            }
        }
    }

    // MARK: Reading

    private mutating func readRequest() -> Reading {
        let clock = ContinuousClock()
        var startedAt: ContinuousClock.Instant? = buffer.isEmpty ? nil : clock.now
        var searchFrom = 0
        while true {
            if let end = HTTPRequestHead.endOfHead(in: buffer, from: max(0, searchFrom - 3)) {
                let parsed = Result { () throws(HTTPRequestHead.ParseError) in
                    try HTTPRequestHead.parse(buffer[0..<end])
                }
                buffer.removeFirst(end)
                switch parsed {
                case .failure(let error):
                    return .refusal(.fliptError(error.status, error.message))
                case .success(let head):
                    return readBody(of: head)
                }
            }
            if buffer.count > configuration.maxHeadSize {
                return .refusal(
                    .fliptError(431, "the request head is larger than \(configuration.maxHeadSize) bytes")
                )
            }
            if server.isStopping { return .closed }
            let timeout = startedAt.map { configuration.headTimeout - (clock.now - $0) } ?? configuration.idleTimeout
            guard timeout > .zero, RelaySocket.waitReadable(fd, timeout: timeout) else {
                return startedAt == nil ? .closed : .refusal(.fliptError(408, "the request head took too long"))
            }
            let count = RelaySocket.receive(fd, into: &scratch)
            guard count > 0 else { return .closed }
            if startedAt == nil { startedAt = clock.now }
            searchFrom = buffer.count
            buffer.append(contentsOf: scratch[0..<count])
        }
    }

    /// Reads and discards a request body (the API takes none), within the size bound.
    private mutating func readBody(of head: HTTPRequestHead) -> Reading {
        if head.header("Transfer-Encoding") != nil {
            return .refusal(.fliptError(400, "bad request: request bodies are not accepted (Transfer-Encoding)"))
        }
        guard let lengthText = head.header("Content-Length") else { return .request(head) }
        guard let length = Int(lengthText), length >= 0, lengthText.allSatisfy(\.isASCII) else {
            return .refusal(.fliptError(400, "bad request: invalid Content-Length"))
        }
        guard length <= configuration.maxBodySize else {
            return .refusal(.fliptError(413, "the request body is larger than \(configuration.maxBodySize) bytes"))
        }
        while buffer.count < length {
            guard RelaySocket.waitReadable(fd, timeout: configuration.headTimeout) else {
                return .refusal(.fliptError(408, "the request body took too long"))
            }
            let count = RelaySocket.receive(fd, into: &scratch)
            guard count > 0 else { return .closed }
            buffer.append(contentsOf: scratch[0..<count])
        }
        buffer.removeFirst(length)
        return .request(head)
    }

    // MARK: Answering

    /// Answers one request; returns whether the connection stays open for another.
    private mutating func handle(_ head: HTTPRequestHead) -> Bool {
        let started = ContinuousClock.now
        let keepAlive = head.keepsAlive && !server.isStopping
        let route = RelayRoute(path: head.path)
        let response: HTTPResponse
        var detail = ""
        if head.method != "GET" && head.method != "HEAD" {
            var refusal = HTTPResponse.fliptError(405, "method \(head.method) is not allowed; use GET")
            refusal.headers.append(("Allow", "GET, HEAD"))
            response = refusal
        } else {
            switch route {
            case .health:
                response = .json(200, Array("{\"status\":\"SERVING\"}".utf8))
            case .snapshot(let namespace, let environment):
                let environments =
                    environment.map { [$0, head.header("X-Flipt-Environment")] }
                    ?? [
                        head.queryValue("environmentKey") ?? head.queryValue("environment_key"),
                        head.header("X-Flipt-Environment"),
                    ]
                (response, detail) = snapshotResponse(namespace: namespace, environments: environments, head: head)
            case .stream(let namespace, let environment):
                guard head.method == "GET" else {
                    response = .fliptError(405, "a stream answers GET only")
                    break
                }
                server.record(status: 200)
                streamSnapshots(namespace: namespace, environment: environment, head: head)
                return false
            case .unknownAPI:
                response = .fliptError(404, "Not Found")
            case .unknown:
                response = .plainNotFound
            }
        }
        server.record(status: response.status)
        if response.status == 200, case .snapshot = route { server.snapshotsSent.add(1, ordering: .relaxed) }
        let sent = send(response, keepAlive: keepAlive, includeBody: head.method != "HEAD")
        // The message is an autoclosure: nothing is formatted unless debug logging is on.
        server.logger.debug("\(logLine(head, response, started: started, detail: detail))")
        return sent && keepAlive
    }

    private mutating func snapshotResponse(
        namespace: String,
        environments: [String?],
        head: HTTPRequestHead
    ) -> (HTTPResponse, String) {
        let view = currentView()
        guard let snapshot = view.snapshot(namespace: namespace, environments: environments) else {
            var message = "evaluation snapshot for namespace \"\(namespace)\" not found"
            let held = view.environments(of: namespace)
            if !held.isEmpty {
                message +=
                    "; this relay holds it for the environments \(held.joined(separator: ", ")): name one in "
                    + "the path or in X-Flipt-Environment"
            }
            return (.fliptError(404, message), "")
        }
        var headers: [(name: String, value: String)] = [("Etag", snapshot.etag)]
        if let confirmed = snapshot.lastConfirmedAt {
            headers.append(("Age", "\(max(0, Int(Date().timeIntervalSince(confirmed))))"))
        }
        let detail = " \(snapshot.environment)/\(snapshot.namespace) etag \(snapshot.etag)"
        if head.header("If-None-Match") == snapshot.etag {
            return (HTTPResponse(status: 304, headers: headers, body: []), detail)
        }
        return (.json(200, snapshot.document, headers: headers), detail)
    }

    @discardableResult
    private mutating func send(_ response: HTTPResponse, keepAlive: Bool, includeBody: Bool) -> Bool {
        let head = response.head(
            keepAlive: keepAlive,
            contentLength: response.status == 304 ? nil : response.body.count,
            date: dates.now()
        )
        guard includeBody, !response.body.isEmpty else { return RelaySocket.sendAll(fd, head) }
        if response.body.count <= 16 * 1024 { return RelaySocket.sendAll(fd, head + response.body) }
        return RelaySocket.sendAll(fd, head, response.body)
    }

    // MARK: Streaming

    /// Serves a v2 stream until the client leaves or the server stops: the current snapshot at once (unless its
    /// ETag equals the `digest` query parameter), then each new one. Headers go out with the first message, as on
    /// Flipt; an unknown namespace waits, silent, until it appears.
    private mutating func streamSnapshots(namespace: String, environment: String, head: HTTPRequestHead) {
        server.openStreams.add(1, ordering: .relaxed)
        defer { server.openStreams.subtract(1, ordering: .relaxed) }
        let chunked = head.version == .http11
        let environments = [environment, head.header("X-Flipt-Environment")]
        var lastSent = head.queryValue("digest").flatMap { $0.isEmpty ? nil : $0 }
        var headSent = false
        var seenGeneration: UInt64?
        server.logger.debug("GET \(head.path) stream opened for \(environment)/\(namespace), connection \(id)")
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !server.isStopping {
            let generation = server.catalog.generation
            if generation != seenGeneration {
                seenGeneration = generation
                if let snapshot = currentView().snapshot(namespace: namespace, environments: environments),
                    snapshot.etag != lastSent
                {
                    var prefix: [UInt8] = []
                    if !headSent {
                        prefix = HTTPResponse(
                            status: 200,
                            headers: [("Content-Type", "application/json")]
                                + (chunked ? [("Transfer-Encoding", "chunked")] : []),
                            body: []
                        )
                        .head(keepAlive: chunked, contentLength: nil, date: dates.now())
                    }
                    let message = snapshot.streamMessage
                    let sent =
                        chunked
                        ? RelaySocket.sendAll(
                            fd,
                            prefix + Array((String(message.count, radix: 16) + "\r\n").utf8),
                            message,
                            Array("\r\n".utf8)
                        )
                        : RelaySocket.sendAll(fd, prefix, message)
                    guard sent else { return }
                    headSent = true
                    lastSent = snapshot.etag
                    server.logger.debug(
                        "stream \(environment)/\(namespace): sent etag \(snapshot.etag), connection \(id)"
                    )
                }
            }
            if RelaySocket.waitReadable(fd, timeout: configuration.streamCheckInterval) {
                // Anything the client sends on a stream is ignored; end of file means it left.
                guard RelaySocket.receive(fd, into: &scratch) > 0 else { return }
            }
        }
        if headSent && chunked { RelaySocket.sendAll(fd, Array("0\r\n\r\n".utf8)) }
    }

    private func logLine(
        _ head: HTTPRequestHead,
        _ response: HTTPResponse,
        started: ContinuousClock.Instant,
        detail: String
    ) -> String {
        "\(head.method) \(head.path)\(head.query.map { "?\($0)" } ?? "") \(response.status) \(response.body.count) B "
            + "\(Self.milliseconds(since: started)) ms connection \(id)\(detail)"
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        let micro = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        return String(format: "%.3f", Double(micro) / 1000)
    }
}
