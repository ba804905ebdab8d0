import FliptGzip
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension TestFliptServer {
    /// Where a request path leads.
    struct Route {
        enum Kind: Equatable {
            /// E1 (`environment` nil) or E2.
            case snapshot(namespace: String, environment: String?)
            /// E3.
            case stream(namespace: String, environment: String)
            /// Under a mounted API prefix but no route: the gateway's JSON 404.
            case unknownAPI
            /// Anywhere else: the UI file server's plain-text 404.
            case unknownOther
        }

        var kind: Kind

        var endpoint: Endpoint {
            switch kind {
            case .snapshot: .snapshot
            case .stream: .stream
            case .unknownAPI, .unknownOther: .any
            }
        }

        init(path: String, basePath: String, version: Version) {
            guard path.hasPrefix(basePath) else {
                kind = .unknownOther
                return
            }
            var relative = String(path.dropFirst(basePath.count))
            while relative.count > 1 && relative.hasSuffix("/") { relative.removeLast() }
            let segments = relative.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
                String($0).removingPercentEncoding ?? String($0)
            }
            if segments.count == 5, segments[0...3] == ["internal", "v1", "evaluation", "snapshot"] {
                kind = .unknownAPI
                return
            }
            if segments.count == 6, Array(segments[0...4]) == ["internal", "v1", "evaluation", "snapshot", "namespace"]
            {
                kind = .snapshot(namespace: segments[5], environment: nil)
                return
            }
            if version == .v2, segments.count == 7, segments[0] == "client", segments[1] == "v2",
                segments[2] == "environments", segments[4] == "namespaces"
            {
                switch segments[6] {
                case "snapshot":
                    kind = .snapshot(namespace: segments[5], environment: segments[3])
                    return
                case "stream":
                    kind = .stream(namespace: segments[5], environment: segments[3])
                    return
                default:
                    break
                }
            }
            let apiPrefixes = version == .v2 ? [["internal", "v1"], ["client", "v2"]] : [["internal", "v1"]]
            if apiPrefixes.contains(where: { segments.count >= 2 && Array(segments[0...1]) == $0 }) {
                kind = .unknownAPI
            } else {
                kind = .unknownOther
            }
        }
    }

    /// An HTTP request head as parsed off the socket.
    struct ParsedRequest {
        var recorded: RecordedRequest
        var wantsClose: Bool
    }

    /// A complete response with a known body.
    struct Response {
        var status: Int
        var headers: [HeaderField]
        var body: [UInt8]

        static func json(_ status: Int, _ body: [UInt8], headers: [HeaderField] = []) -> Response {
            Response(status: status, headers: [HeaderField("Content-Type", "application/json")] + headers, body: body)
        }

        static func error(_ status: Int, message: String? = nil) -> Response {
            var response = json(status, TestFliptServer.errorBody(forStatus: status, message: message))
            if status == 401 {
                response.headers.append(HeaderField("WWW-Authenticate", message ?? "request was not authenticated"))
            }
            return response
        }

        static let plainNotFound = Response(
            status: 404,
            headers: [HeaderField("Content-Type", "text/plain; charset=utf-8")],
            body: Array("404 page not found\n".utf8)
        )
    }

    /// One accepted connection, served on its own thread until the client leaves, a fault closes it, or the
    /// server stops.
    struct Connection {
        let server: TestFliptServer
        let fd: Int32
        let id: Int
        private var buffer: [UInt8] = []

        init(server: TestFliptServer, fd: Int32, id: Int) {
            self.server = server
            self.fd = fd
            self.id = id
        }

        mutating func serve() {
            while !server.isStopping {
                guard let request = readRequest() else { return }
                server.withState { state in
                    state.requests.append(request.recorded)
                    state.traffic.requests += 1
                }
                guard handle(request) else { return }
            }
        }

        // MARK: Reading

        private mutating func readRequest() -> ParsedRequest? {
            let terminator: [UInt8] = [13, 10, 13, 10]
            var headEnd: Int?
            while true {
                if let end = buffer.firstRange(of: terminator)?.upperBound {
                    headEnd = end
                    break
                }
                guard buffer.count < 1 << 20, let bytes = LoopbackSocket.receiveSome(fd), !bytes.isEmpty else {
                    return nil
                }
                server.withState { $0.traffic.bytesReceived += bytes.count }
                buffer += bytes
            }
            guard let headEnd else { return nil }
            let head = String(decoding: buffer[0..<headEnd - 4], as: UTF8.self)
            buffer.removeFirst(headEnd)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return nil }
            let target = String(requestLine[1])
            let path: String
            let query: String?
            if let mark = target.firstIndex(of: "?") {
                path = String(target[..<mark])
                query = String(target[target.index(after: mark)...])
            } else {
                path = target
                query = nil
            }
            var headers: [HeaderField] = []
            for line in lines where !line.isEmpty {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers.append(HeaderField(name, value))
            }
            let recorded = RecordedRequest(
                method: String(requestLine[0]),
                path: path,
                rawQuery: query,
                headers: headers,
                receivedAt: .now,
                connectionID: id
            )
            // Discard a request body, if any.
            if let length = recorded.header("Content-Length").flatMap(Int.init), length > 0 {
                while buffer.count < length {
                    guard let bytes = LoopbackSocket.receiveSome(fd), !bytes.isEmpty else { return nil }
                    buffer += bytes
                }
                buffer.removeFirst(length)
            }
            let wantsClose = recorded.header("Connection")?.lowercased() == "close"
            return ParsedRequest(recorded: recorded, wantsClose: wantsClose)
        }

        // MARK: Dispatch

        /// Answers one request; returns whether the connection stays open for another.
        private func handle(_ request: ParsedRequest) -> Bool {
            let route = Route(path: request.recorded.path, basePath: server.basePath, version: server.version)
            if let fault = server.withState({ $0.takeFault(for: route.endpoint) }) {
                return apply(fault, to: request, route: route) && !request.wantsClose
            }
            if case .stream(let namespace, let environment) = route.kind {
                if let rejection = check(request, streaming: true) {
                    return write(rejection) && !request.wantsClose
                }
                serveStream(request, namespace: namespace, pathEnvironment: environment, script: nil)
                return false
            }
            return write(normalResponse(to: request, route: route)) && !request.wantsClose
        }

        /// The authentication and parameter checks done before a snapshot or stream is served.
        private func check(_ request: ParsedRequest, streaming: Bool) -> Response? {
            let rule = server.withState { $0.authentication }
            if let rule, !rule.accepts(request.recorded.header("Authorization")) {
                return .error(401, message: "request was not authenticated")
            }
            if streaming, let digest = request.recorded.queryValues("digest").first, digest.count != 40 {
                return .error(400, message: "invalid field digest: must be a 40-character string")
            }
            return nil
        }

        private func normalResponse(to request: ParsedRequest, route: Route) -> Response {
            switch route.kind {
            case .unknownOther, .stream:
                return .plainNotFound
            case .unknownAPI:
                return .json(404, Array("{\"code\":5,\"message\":\"Not Found\",\"details\":[]}".utf8))
            case .snapshot(let namespace, let pathEnvironment):
                if let rejection = check(request, streaming: false) { return rejection }
                let environment: String
                switch resolveEnvironment(request, pathEnvironment: pathEnvironment) {
                case .success(let resolved): environment = resolved
                case .failure(let failure): return failure.response
                }
                guard let document = server.withState({ $0.documents[environment]?[namespace] }) else {
                    return .error(404, message: "evaluation snapshot for namespace \"\(namespace)\" not found")
                }
                let etag = HeaderField("Etag", document.digest)
                if request.recorded.header("If-None-Match") == document.digest {
                    return Response(status: 304, headers: [etag], body: [])
                }
                if wantsGzip(request) {
                    let encoding = [HeaderField("Content-Encoding", "gzip"), HeaderField("Vary", "Accept-Encoding")]
                    return .json(200, Gzip.compress(document.bytes), headers: [etag] + encoding)
                }
                return .json(200, document.bytes, headers: [etag])
            }
        }

        /// Whether gzip answers are on (``TestFliptServer/answerGzip(_:)``) and the request's `Accept-Encoding`
        /// allows gzip (`gzip` or `*`, without `q=0`).
        private func wantsGzip(_ request: ParsedRequest) -> Bool {
            guard server.withState({ $0.gzip }), let accepted = request.recorded.header("Accept-Encoding") else {
                return false
            }
            for item in accepted.split(separator: ",") {
                let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard let name = parts.first, name == "gzip" || name == "*" else { continue }
                let quality = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) }
                return (quality ?? 1) > 0
            }
            return false
        }

        struct EnvironmentFailure: Error {
            var response: Response
        }

        /// Picks the environment as Flipt v2 does: the path (E2/E3) or `environmentKey` query (E1) when it exists,
        /// else the `X-Flipt-Environment` header, else the default environment.
        private func resolveEnvironment(
            _ request: ParsedRequest,
            pathEnvironment: String?
        ) -> Result<String, EnvironmentFailure> {
            guard server.version == .v2 else { return .success("default") }
            let known = Set(server.withState { $0.documents.keys })
            let explicit =
                pathEnvironment ?? request.recorded.queryValues("environmentKey").first
                ?? request.recorded.queryValues("environment_key").first
            if let explicit, known.contains(explicit) { return .success(explicit) }
            if let header = request.recorded.header("X-Flipt-Environment"), !header.isEmpty {
                if known.contains(header) || header == "default" { return .success(header) }
                let message =
                    "failed to get environment \"\(header)\" from context: environment: \"\(header)\" not found"
                return .failure(EnvironmentFailure(response: .error(404, message: message)))
            }
            return .success("default")
        }

        // MARK: Faults

        private func apply(_ fault: Fault, to request: ParsedRequest, route: Route) -> Bool {
            switch fault {
            case .respond(let status, let headers, let body):
                return write(Response(status: status, headers: headers, body: body))
            case .closeConnection:
                return false
            case .resetConnection:
                LoopbackSocket.armReset(fd)
                return false
            case .silent:
                _ = pause(.seconds(3_600))
                return false
            case .slowBody(let chunkSize, let interval):
                let response = normalResponse(to: request, route: route)
                guard write(response, bodyBytes: 0) else { return false }
                var offset = 0
                while offset < response.body.count {
                    guard pause(interval) else { return false }
                    let end = min(response.body.count, offset + max(1, chunkSize))
                    guard send(response.body[offset..<end]) else { return false }
                    offset = end
                }
                return true
            case .truncatedBody(let sentBytes):
                let response = normalResponse(to: request, route: route)
                _ = write(response, bodyBytes: min(sentBytes, response.body.count))
                return false
            case .raw(let bytes, let close):
                return send(bytes) && !close
            case .stream(let steps):
                if case .stream(let namespace, let environment) = route.kind {
                    serveStream(request, namespace: namespace, pathEnvironment: environment, script: steps)
                } else {
                    serveStream(request, namespace: "default", pathEnvironment: "default", script: steps)
                }
                return false
            }
        }

        // MARK: Streams

        private func serveStream(
            _ request: ParsedRequest,
            namespace: String,
            pathEnvironment: String,
            script: [StreamStep]?
        ) {
            let environment: String
            switch resolveEnvironment(request, pathEnvironment: pathEnvironment) {
            case .success(let resolved): environment = resolved
            case .failure(let failure):
                _ = write(failure.response)
                return
            }
            let requestDigest = request.recorded.queryValues("digest").first
            let current: StoredDocument? = server.withState { state in
                let document = state.documents[environment]?[namespace]
                state.openStreams += 1
                state.streams[id] = StreamSubscription(
                    environment: environment,
                    namespace: namespace,
                    lastDigest: script == nil ? (document?.digest ?? requestDigest) : document?.digest
                )
                return document
            }
            defer {
                server.withState { state in
                    state.openStreams -= 1
                    state.streams.removeValue(forKey: id)
                }
            }
            var headersSent = false
            // With gzip, every message is compressed and flushed on its own, as Flipt's middleware does.
            let encoder = wantsGzip(request) ? GzipEncoder() : nil
            guard let script else {
                if let current, current.digest != requestDigest {
                    guard sendStreamHeaders(&headersSent, encoder: encoder), sendChunk(current.streamLine, encoder)
                    else { return }
                }
                hold(headersSent: &headersSent, encoder: encoder)
                return
            }
            for step in script {
                switch step {
                case .headers:
                    guard sendStreamHeaders(&headersSent, encoder: encoder) else { return }
                case .currentSnapshot:
                    let document = server.withState { $0.documents[environment]?[namespace] }
                    if let document { guard sendChunk(document.streamLine, encoder) else { return } }
                case .chunk(let bytes):
                    guard sendChunk(bytes, encoder) else { return }
                case .pause(let duration):
                    guard pause(duration) else { return }
                case .end:
                    if let encoder { guard sendChunk(encoder.finish(), nil) else { return } }
                    _ = send(Array("0\r\n\r\n".utf8))
                    return
                case .reset:
                    LoopbackSocket.armReset(fd)
                    return
                case .hold:
                    hold(headersSent: &headersSent, encoder: encoder)
                    return
                }
            }
        }

        /// Serves pushes until the client leaves or the server stops.
        private func hold(headersSent: inout Bool, encoder: GzipEncoder?) {
            while !server.isStopping {
                let lines = server.withState { state in
                    let lines = state.streams[id]?.pending ?? []
                    state.streams[id]?.pending.removeAll()
                    return lines
                }
                for line in lines {
                    guard sendStreamHeaders(&headersSent, encoder: encoder), sendChunk(line, encoder) else { return }
                }
                if LoopbackSocket.waitReadable(fd, milliseconds: 20) {
                    guard let bytes = LoopbackSocket.receiveSome(fd), !bytes.isEmpty else { return }
                }
            }
        }

        private func sendStreamHeaders(_ sent: inout Bool, encoder: GzipEncoder?) -> Bool {
            guard !sent else { return true }
            sent = true
            let encoding = encoder == nil ? "" : "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n"
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                + encoding + "Date: \(httpDate())\r\n\r\n"
            return send(Array(head.utf8))
        }

        /// Sends one HTTP chunk: the bytes, compressed and flushed by `encoder` if there is one.
        private func sendChunk(_ bytes: [UInt8], _ encoder: GzipEncoder?) -> Bool {
            guard !bytes.isEmpty else { return true }
            let body = encoder?.compress(bytes) ?? bytes
            return send(Array((String(body.count, radix: 16) + "\r\n").utf8) + body + [13, 10])
        }

        // MARK: Writing

        /// Writes a response; `bodyBytes` limits how much of the body goes out (the head still announces it all).
        private func write(_ response: Response, bodyBytes: Int? = nil) -> Bool {
            var head = "HTTP/1.1 \(response.status) \(TestFliptServer.reasonPhrase(for: response.status))\r\n"
            let names = Set(response.headers.map { $0.name.lowercased() })
            if !names.contains("date") { head += "Date: \(httpDate())\r\n" }
            for field in response.headers { head += "\(field.name): \(field.value)\r\n" }
            let bodyless = response.status == 204 || response.status == 304 || (100..<200).contains(response.status)
            if !bodyless && !names.contains("content-length") { head += "Content-Length: \(response.body.count)\r\n" }
            head += "\r\n"
            let body = bodyless ? [] : response.body.prefix(bodyBytes ?? response.body.count)
            return send(Array(head.utf8) + body)
        }

        private func send(_ bytes: some Collection<UInt8>) -> Bool {
            server.withState { $0.traffic.bytesSent += bytes.count }
            return LoopbackSocket.sendAll(fd, bytes)
        }

        /// Waits for `duration`; returns false early if the client leaves or the server stops.
        private func pause(_ duration: Duration) -> Bool {
            let deadline = ContinuousClock.now + duration
            while true {
                if server.isStopping { return false }
                let remaining = deadline - .now
                if remaining <= .zero { return true }
                let milliseconds = Int32(
                    min(
                        20,
                        max(
                            1,
                            remaining.components.seconds * 1_000
                                + remaining.components.attoseconds / 1_000_000_000_000_000
                        )
                    )
                )
                if LoopbackSocket.waitReadable(fd, milliseconds: milliseconds) {
                    guard let bytes = LoopbackSocket.receiveSome(fd), !bytes.isEmpty else { return false }
                }
            }
        }
    }
}

/// The current time in the HTTP date format, for example `Sun, 06 Nov 1994 08:49:37 GMT`.
func httpDate(_ date: Date = Date()) -> String {
    var seconds = time_t(date.timeIntervalSince1970)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
}
