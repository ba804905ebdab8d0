import Dispatch
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An HTTP/1.1 server that answers Flipt's snapshot API from a ``SnapshotCatalog``, so that official Flipt SDKs
/// and other devices can use it as their Flipt server.
///
/// Endpoints: `GET /internal/v1/evaluation/snapshot/namespace/{ns}`,
/// `GET /client/v2/environments/{env}/namespaces/{ns}/snapshot` (both with `Etag` and exact-match
/// `If-None-Match` → `304`), `GET /client/v2/environments/{env}/namespaces/{ns}/stream` (one
/// `{"result":…}` line per snapshot, chunked) and `GET /health`.
///
/// One thread per connection, blocking sockets, no lock on the request path: every answer is a precomputed
/// document, so a request costs some parsing and one `send`. Chosen by measurement (Tests/Load/run.sh, 200
/// keep-alive clients on a shared 2-core machine): about 30,000 requests/s at a p99 of 10-12 ms and 35 MiB,
/// where a FlyingFox 0.27.1 server answering the same way managed 2,100 requests/s at a p99 of 200 ms.
/// Connections are capped (``Configuration/maxConnections``), request heads and bodies are bounded, idle and slow
/// clients time out.
public final class RelayServer: Sendable {
    /// Limits and timeouts of the server.
    public struct Configuration: Sendable {
        /// Where to listen.
        public var address: ListenAddress
        /// Connections served at once; more are answered `503` and closed (default 1024).
        public var maxConnections: Int
        /// The largest request head (request line and header fields) accepted; larger gets `431` (default 16 KiB).
        public var maxHeadSize: Int
        /// The largest request body accepted (and discarded); larger gets `413` (default 64 KiB).
        public var maxBodySize: Int
        /// How long a kept-alive connection may stay silent before it is closed (default 75 s).
        public var idleTimeout: Duration
        /// How long a client may take to send a request head once it started (default 10 s); then `408`.
        public var headTimeout: Duration
        /// How long one send may block on a client that does not read (default 30 s); then the connection closes.
        public var sendTimeout: Duration
        /// How often an open stream looks for a new snapshot in the catalog (default 100 ms).
        public var streamCheckInterval: Duration
        /// The stack size of each connection thread (default 512 KiB).
        public var threadStackSize: Int
        /// Where requests (debug), refusals and problems (warning) are logged.
        public var logger: Logger

        /// Creates a configuration; every parameter has the default described on its property.
        public init(
            address: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080),
            maxConnections: Int = 1024,
            maxHeadSize: Int = 16 * 1024,
            maxBodySize: Int = 64 * 1024,
            idleTimeout: Duration = .seconds(75),
            headTimeout: Duration = .seconds(10),
            sendTimeout: Duration = .seconds(30),
            streamCheckInterval: Duration = .milliseconds(100),
            threadStackSize: Int = 512 * 1024,
            logger: Logger = Logger(label: "flipt.relay", factory: { _ in SwiftLogNoOpLogHandler() })
        ) {
            self.address = address
            self.maxConnections = maxConnections
            self.maxHeadSize = maxHeadSize
            self.maxBodySize = maxBodySize
            self.idleTimeout = idleTimeout
            self.headTimeout = headTimeout
            self.sendTimeout = sendTimeout
            self.streamCheckInterval = streamCheckInterval
            self.threadStackSize = threadStackSize
            self.logger = logger
        }
    }

    /// Counters since the server started.
    public struct Statistics: Sendable, Hashable {
        /// Requests answered (a stream counts once, when it opens).
        public var requests: Int
        /// `200` answers to snapshot requests.
        public var snapshotsSent: Int
        /// `304` answers.
        public var notModified: Int
        /// `4xx` and `5xx` answers.
        public var errors: Int
        /// Connections refused because ``Configuration/maxConnections`` were open.
        public var refusedConnections: Int
        /// Connections open now.
        public var openConnections: Int
        /// Streams open now.
        public var openStreams: Int
    }

    /// The configuration.
    public let configuration: Configuration
    /// What the server serves.
    public let catalog: SnapshotCatalog
    var logger: Logger { configuration.logger }

    private let state = Mutex(State())
    private let acceptEnded = DispatchSemaphore(value: 0)
    let requests = Atomic<Int>(0)
    let snapshotsSent = Atomic<Int>(0)
    let notModified = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let openStreams = Atomic<Int>(0)

    private struct State {
        var listener: Int32?
        var boundAddress: ListenAddress?
        var connections: [Int: Int32] = [:]
        var nextConnectionID = 0
        var refusedConnections = 0
    }

    /// Creates a server; nothing listens until ``start()``.
    public init(configuration: Configuration = Configuration(), catalog: SnapshotCatalog) {
        self.configuration = configuration
        self.catalog = catalog
    }

    /// Where the server listens (with the real port when port 0 was asked), or nil before ``start()``.
    public var boundAddress: ListenAddress? { state.withLock { $0.boundAddress } }

    /// Whether ``stop(timeout:)`` was called.
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }
    private let stopping = Atomic<Bool>(false)

    /// The counters.
    public var statistics: Statistics {
        let (refused, open) = state.withLock { ($0.refusedConnections, $0.connections.count) }
        return Statistics(
            requests: requests.load(ordering: .relaxed),
            snapshotsSent: snapshotsSent.load(ordering: .relaxed),
            notModified: notModified.load(ordering: .relaxed),
            errors: errors.load(ordering: .relaxed),
            refusedConnections: refused,
            openConnections: open,
            openStreams: openStreams.load(ordering: .relaxed)
        )
    }

    /// Binds, listens and starts accepting connections on a background thread; returns the bound address.
    ///
    /// - Throws: ``RelaySocketError`` when the address cannot be resolved or bound (in use, not local).
    @discardableResult
    public func start() throws(RelaySocketError) -> ListenAddress {
        let (fd, port) = try RelaySocket.openListener(on: configuration.address)
        let bound = ListenAddress(host: configuration.address.host, port: port)
        state.withLock { state in
            state.listener = fd
            state.boundAddress = bound
        }
        let thread = Thread { [self] in
            acceptLoop(listener: fd)
            acceptEnded.signal()
        }
        thread.name = "flipt-relay-accept"
        thread.start()
        return bound
    }

    /// Stops accepting, ends open streams (with the chunked terminator) and closes every connection; waits up to
    /// `timeout` for the connection threads to finish. Idempotent.
    public func stop(timeout: Duration = .seconds(2)) {
        let listener: Int32? = state.withLock { state in
            guard
                stopping.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
                    .exchanged
            else { return nil }
            return state.listener
        }
        guard let listener else { return }
        RelaySocket.shutdownBoth(listener)
        acceptEnded.wait()
        RelaySocket.closeSocket(listener)
        // Streams notice `isStopping` within one check interval and end themselves cleanly; then the rest are
        // woken by shutting their sockets down.
        let clock = ContinuousClock()
        let streamDeadline = clock.now + min(timeout, configuration.streamCheckInterval * 3)
        while openStreams.load(ordering: .relaxed) > 0 && clock.now < streamDeadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        state.withLock { state in
            for fd in state.connections.values { RelaySocket.shutdownBoth(fd) }
        }
        let deadline = clock.now + timeout
        while state.withLock({ !$0.connections.isEmpty }) && clock.now < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    // MARK: Accepting

    private func acceptLoop(listener: Int32) {
        var lastRetryLog = ContinuousClock.now - .seconds(60)
        while true {
            switch RelaySocket.acceptConnection(from: listener) {
            case .connection(let fd):
                admit(fd)
            case .retry(let code):
                if isStopping { return }
                if code != EINTR && code != ECONNABORTED {
                    if ContinuousClock.now - lastRetryLog > .seconds(10) {
                        lastRetryLog = .now
                        let reason = String(cString: strerror(code))
                        let advice = "raise the open-file limit (ulimit -n) or lower the number of clients"
                        logger.warning("accept failed (\(reason)); \(advice)")
                    }
                    Thread.sleep(forTimeInterval: 0.01)
                }
            case .closed:
                return
            }
        }
    }

    private func admit(_ fd: Int32) {
        let id: Int? = state.withLock { state in
            guard !isStopping, state.connections.count < configuration.maxConnections else {
                state.refusedConnections += 1
                return nil
            }
            state.nextConnectionID += 1
            state.connections[state.nextConnectionID] = fd
            return state.nextConnectionID
        }
        guard let id else {
            errors.add(1, ordering: .relaxed)
            let response = HTTPResponse.fliptError(503, "too many connections; try again later")
            RelaySocket.setSendTimeout(fd, .seconds(1))
            RelaySocket.sendAll(fd, response.head(keepAlive: false, contentLength: response.body.count), response.body)
            RelaySocket.closeSocket(fd)
            logger.warning("refused a connection: \(configuration.maxConnections) connections are open")
            return
        }
        RelaySocket.setSendTimeout(fd, configuration.sendTimeout)
        let thread = Thread { [self] in
            var connection = RelayConnection(server: self, fd: fd, id: id)
            connection.serve()
            state.withLock { state in
                state.connections[id] = nil
                RelaySocket.closeSocket(fd)
            }
        }
        thread.stackSize = configuration.threadStackSize
        thread.name = "flipt-relay-connection"
        thread.start()
    }

    /// Counts one answer by its status.
    func record(status: Int) {
        requests.add(1, ordering: .relaxed)
        switch status {
        case 200: break
        case 304: notModified.add(1, ordering: .relaxed)
        default: if status >= 400 { errors.add(1, ordering: .relaxed) }
        }
    }
}
