import Dispatch
import Foundation
import Synchronization

/// A Flipt server on 127.0.0.1 for tests: real HTTP/1.1 over POSIX sockets, with fault injection.
///
/// It serves the snapshot endpoints (`/internal/v1/evaluation/snapshot/namespace/{ns}` and, in v2 mode,
/// `/client/v2/environments/{env}/namespaces/{ns}/snapshot`) with `Etag`/`If-None-Match`, and the newline-delimited
/// JSON stream `/client/v2/environments/{env}/namespaces/{ns}/stream`, which pushes every document change. Every
/// request is logged with its headers in wire order. Faults queued with ``enqueue(_:on:times:)`` replace the normal
/// answer of the next matching requests, byte for byte. One thread serves each connection; ``stop()`` closes every
/// socket and waits for every thread. The control surface is safe to call from any thread or task.
package final class TestFliptServer: Sendable {
    /// Which Flipt server generation to imitate.
    package enum Version: Sendable, Hashable {
        /// Flipt v1: only the `/internal/v1` snapshot endpoint; `/client/v2/...` answers `404 page not found`.
        case v1
        /// Flipt v2: snapshot, `/client/v2` snapshot and stream endpoints.
        case v2
    }

    /// The TCP port on 127.0.0.1 the server listens on.
    package let port: UInt16
    /// A path prefix every endpoint lives under, for example `/flipt` (empty by default).
    package let basePath: String
    /// The server generation imitated.
    package let version: Version

    private let listener: Int32
    private let state = Mutex(State())
    private let threads = DispatchGroup()

    /// The URL clients should use: `http://127.0.0.1:<port><basePath>`.
    package var baseURL: URL { URL(string: "http://127.0.0.1:\(port)\(basePath)")! }

    /// Starts listening on 127.0.0.1 on a free port.
    ///
    /// - Parameters:
    ///   - version: the server generation to imitate.
    ///   - basePath: a path prefix for every endpoint, such as `/flipt`; no trailing slash.
    package init(version: Version = .v2, basePath: String = "") throws {
        self.version = version
        self.basePath = basePath
        let (fd, port) = try LoopbackSocket.openListener()
        self.listener = fd
        self.port = port
        threads.enter()
        let thread = Thread { [self] in
            acceptLoop()
            threads.leave()
        }
        thread.name = "TestFliptServer.accept"
        thread.start()
    }

    deinit {
        stop()
    }

    /// A port on 127.0.0.1 where nothing listens, for connection-refused tests.
    package static func unusedPort() throws -> UInt16 {
        try LoopbackSocket.unusedPort()
    }

    // MARK: - Documents

    /// Sets the snapshot document of a namespace and pushes it to open streams if its digest changed.
    ///
    /// The ETag and `digest` is the SHA-1 of the bytes, as 40 lowercase hex characters. The bytes are served
    /// as given, so tests can serve invalid or schema-invalid documents.
    package func setDocument(
        _ document: some Collection<UInt8>,
        namespace: String = "default",
        environment: String = "default"
    ) {
        let bytes = Array(document)
        let stored = StoredDocument(bytes: bytes, digest: SHA1.hexDigest(of: bytes))
        state.withLock { state in
            state.documents[environment, default: [:]][namespace] = stored
            for (id, stream) in state.streams
            where stream.environment == environment && stream.namespace == namespace
                && stream.lastDigest != stored.digest
            {
                state.streams[id]?.pending.append(stored.streamLine)
                state.streams[id]?.lastDigest = stored.digest
            }
        }
    }

    /// Sets the snapshot document of a namespace from JSON text.
    package func setDocument(json: String, namespace: String = "default", environment: String = "default") {
        setDocument(Array(json.utf8), namespace: namespace, environment: environment)
    }

    /// Removes a namespace; requests for it then get `404`, and open streams are not told (as in Flipt).
    package func removeNamespace(_ namespace: String, environment: String = "default") {
        state.withLock { _ = $0.documents[environment]?.removeValue(forKey: namespace) }
    }

    /// The current digest (and ETag) of a namespace, or nil if it has no document.
    package func digest(namespace: String = "default", environment: String = "default") -> String? {
        state.withLock { $0.documents[environment]?[namespace]?.digest }
    }

    // MARK: - Authentication

    /// Requires `Authorization: Bearer <token>` with one of `clientTokens`, or `JWT <token>` with one of
    /// `jwtTokens`; anything else gets Flipt's `401`.
    package func requireAuthentication(clientTokens: Set<String> = [], jwtTokens: Set<String> = []) {
        state.withLock { $0.authentication = AuthenticationRule(clientTokens: clientTokens, jwtTokens: jwtTokens) }
    }

    /// Stops checking credentials; the `Authorization` header is then ignored.
    package func disableAuthentication() {
        state.withLock { $0.authentication = nil }
    }

    // MARK: - Compression

    /// Turns gzip answers on or off (off by default, so bodies are the documents' bytes).
    ///
    /// When on, a snapshot `200` to a request whose `Accept-Encoding` allows gzip carries the document
    /// gzip-compressed, with `Content-Encoding: gzip` and `Vary: Accept-Encoding`; a stream is compressed too, each
    /// message (and each scripted chunk) flushed on its own so that it decodes at once, as Flipt's compression
    /// middleware does. The ETag stays the document's digest. Fault responses are sent as scripted.
    package func answerGzip(_ enabled: Bool = true) {
        state.withLock { $0.gzip = enabled }
    }

    // MARK: - Faults

    /// Queues a fault for the next `times` requests to `endpoint`. Faults are applied in the order queued.
    package func enqueue(_ fault: Fault, on endpoint: Endpoint = .snapshot, times: Int = 1) {
        state.withLock { state in
            for _ in 0..<max(0, times) { state.faults.append(QueuedFault(endpoint: endpoint, fault: fault)) }
        }
    }

    /// Drops every queued fault.
    package func clearFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    /// How many queued faults have not been applied yet.
    package var pendingFaultCount: Int {
        state.withLock { $0.faults.count }
    }

    // MARK: - Observation

    /// Every request read so far, in arrival order.
    package var requests: [RecordedRequest] {
        state.withLock { $0.requests }
    }

    /// The requests whose path is a snapshot (or stream) endpoint.
    package func requests(to endpoint: Endpoint) -> [RecordedRequest] {
        let all = requests
        guard endpoint != .any else { return all }
        return all.filter { Route(path: $0.path, basePath: basePath, version: version).endpoint == endpoint }
    }

    /// How many stream requests are being served right now (with or without headers sent).
    package var openStreamCount: Int {
        state.withLock { $0.openStreams }
    }

    /// Bytes, connections and requests seen so far.
    package var traffic: Traffic {
        state.withLock { $0.traffic }
    }

    /// Clears the request log and the traffic counters.
    package func resetLog() {
        state.withLock { state in
            state.requests.removeAll()
            state.traffic = Traffic()
        }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
    package func wait(
        timeout: Duration = .seconds(5),
        until condition: @Sendable (TestFliptServer) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }

    // MARK: - Lifecycle

    /// Closes the listening socket and every connection, and waits for every server thread to end.
    ///
    /// Safe to call more than once. Silent and held connections are shut down, so nothing leaks.
    package func stop() {
        let connections: [Int32]? = state.withLock { state in
            guard !state.stopping else { return nil }
            state.stopping = true
            return Array(state.connections.values)
        }
        if let connections {
            LoopbackSocket.shutdownBoth(listener)
            for fd in connections { LoopbackSocket.shutdownBoth(fd) }
        }
        _ = threads.wait(timeout: .now() + .seconds(10))
        state.withLock { state in
            if !state.listenerClosed {
                state.listenerClosed = true
                LoopbackSocket.closeSocket(listener)
            }
        }
    }

    var isStopping: Bool {
        state.withLock { $0.stopping }
    }

    // MARK: - Internals

    private func acceptLoop() {
        while let fd = LoopbackSocket.acceptConnection(from: listener) {
            let id: Int? = state.withLock { state in
                guard !state.stopping else { return nil }
                let id = state.nextConnectionID
                state.nextConnectionID += 1
                state.connections[id] = fd
                state.traffic.connections += 1
                return id
            }
            guard let id else {
                LoopbackSocket.closeSocket(fd)
                return
            }
            threads.enter()
            let thread = Thread { [self] in
                var connection = Connection(server: self, fd: fd, id: id)
                connection.serve()
                state.withLock { _ = $0.connections.removeValue(forKey: id) }
                LoopbackSocket.closeSocket(fd)
                threads.leave()
            }
            thread.name = "TestFliptServer.connection.\(id)"
            thread.start()
        }
    }

    func withState<Result>(_ body: (inout State) -> Result) -> Result {
        state.withLock { body(&$0) }
    }
}

extension TestFliptServer {
    struct StoredDocument: Sendable {
        var bytes: [UInt8]
        var digest: String

        /// The document as one stream message line: `{"result":<document without line breaks>}\n`.
        var streamLine: [UInt8] {
            // Line breaks can only be whitespace in valid JSON (inside strings they must be escaped), so removing
            // them keeps a valid document valid and puts it on one line.
            Array("{\"result\":".utf8) + bytes.filter { $0 != 0x0A && $0 != 0x0D } + Array("}\n".utf8)
        }
    }

    struct AuthenticationRule: Sendable {
        var clientTokens: Set<String>
        var jwtTokens: Set<String>

        func accepts(_ authorization: String?) -> Bool {
            guard let authorization else { return false }
            if authorization.hasPrefix("Bearer ") {
                return clientTokens.contains(String(authorization.dropFirst("Bearer ".count)))
            }
            if authorization.hasPrefix("JWT ") {
                return jwtTokens.contains(String(authorization.dropFirst("JWT ".count)))
            }
            return false
        }
    }

    struct QueuedFault: Sendable {
        var endpoint: Endpoint
        var fault: Fault
    }

    struct StreamSubscription: Sendable {
        var environment: String
        var namespace: String
        var lastDigest: String?
        var pending: [[UInt8]] = []
    }

    struct State: Sendable {
        var documents: [String: [String: StoredDocument]] = [:]
        var authentication: AuthenticationRule?
        var gzip = false
        var faults: [QueuedFault] = []
        var requests: [RecordedRequest] = []
        var traffic = Traffic()
        var connections: [Int: Int32] = [:]
        var nextConnectionID = 1
        var streams: [Int: StreamSubscription] = [:]
        var openStreams = 0
        var stopping = false
        var listenerClosed = false

        mutating func takeFault(for endpoint: Endpoint) -> Fault? {
            guard let index = faults.firstIndex(where: { $0.endpoint == .any || $0.endpoint == endpoint }) else {
                return nil
            }
            return faults.remove(at: index).fault
        }
    }
}
