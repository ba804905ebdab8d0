import Foundation
import Synchronization

/// An HTTP proxy on 127.0.0.1 that answers `CONNECT host:port` by opening a tunnel to `port` on 127.0.0.1,
/// whatever the host: a client that reaches a server named `flipt.test` (which no resolver knows) got there
/// through the proxy.
///
/// It records each `CONNECT` it receives (target and `Proxy-Authorization` header) and, when ``requiredAuthorization``
/// is set, refuses others with `407`. Bytes are copied both ways until either side closes. ``stop()`` closes the
/// listener and every tunnel.
package final class ConnectProxy: Sendable {
    /// One `CONNECT` request the proxy received.
    package struct Tunnel: Sendable, Hashable {
        /// The request target, `host:port`.
        package var target: String
        /// The `Proxy-Authorization` header, if any.
        package var authorization: String?
    }

    /// The TCP port on 127.0.0.1 the proxy listens on.
    package let port: UInt16
    /// The `Proxy-Authorization` value a `CONNECT` must carry; nil accepts any.
    package let requiredAuthorization: String?
    private let listener: Int32
    private let state = Mutex(State())
    private let threads = DispatchGroup()

    private struct State {
        var tunnels: [Tunnel] = []
        var sockets: Set<Int32> = []
        /// Tunnels (by their lower descriptor) one of whose two directions has ended.
        var finishedPipes: Set<Int32> = []
        var stopped = false
    }

    /// The `CONNECT` requests received so far, in order.
    package var tunnels: [Tunnel] { state.withLock { $0.tunnels } }

    /// Starts listening on a free port of 127.0.0.1.
    package init(requiredAuthorization: String? = nil) throws {
        self.requiredAuthorization = requiredAuthorization
        (listener, port) = try LoopbackSocket.openListener()
        threads.enter()
        let thread = Thread { [self] in
            while let client = LoopbackSocket.acceptConnection(from: listener) {
                guard track(client) else {
                    LoopbackSocket.closeSocket(client)
                    break
                }
                spawn { self.serve(client) }
            }
            threads.leave()
        }
        thread.name = "ConnectProxy.accept"
        thread.start()
    }

    deinit {
        stop()
    }

    /// Closes the listener and every tunnel, and waits for the proxy's threads to end.
    package func stop() {
        let sockets: Set<Int32>? = state.withLock { state in
            guard !state.stopped else { return nil }
            state.stopped = true
            return state.sockets
        }
        guard let sockets else { return }
        LoopbackSocket.shutdownBoth(listener)
        for fd in sockets { LoopbackSocket.shutdownBoth(fd) }
        _ = threads.wait(timeout: .now() + .seconds(10))
        LoopbackSocket.closeSocket(listener)
    }

    private func track(_ fd: Int32) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.sockets.insert(fd)
            return true
        }
    }

    private func close(_ fd: Int32) {
        state.withLock { _ = $0.sockets.remove(fd) }
        LoopbackSocket.closeSocket(fd)
    }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        threads.enter()
        let thread = Thread { [threads] in
            body()
            threads.leave()
        }
        thread.name = "ConnectProxy.connection"
        thread.start()
    }

    /// Reads the `CONNECT` head, opens the tunnel and pipes it; closes both ends when either side is done.
    private func serve(_ client: Int32) {
        var head: [UInt8] = []
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            guard let bytes = LoopbackSocket.receiveSome(client, capacity: 1), !bytes.isEmpty, head.count < 16_384
            else {
                close(client)
                return
            }
            head += bytes
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[0] == "CONNECT", let colon = parts[1].lastIndex(of: ":"),
            let port = UInt16(parts[1][parts[1].index(after: colon)...])
        else {
            _ = LoopbackSocket.sendAll(
                client,
                Array("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".utf8)
            )
            close(client)
            return
        }
        let authorization = lines.dropFirst().first { $0.lowercased().hasPrefix("proxy-authorization:") }.map {
            $0.dropFirst("proxy-authorization:".count).trimmingCharacters(in: .whitespaces)
        }
        state.withLock { $0.tunnels.append(Tunnel(target: String(parts[1]), authorization: authorization)) }
        if let requiredAuthorization, authorization != requiredAuthorization {
            let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
            _ = LoopbackSocket.sendAll(client, Array(refusal.utf8))
            close(client)
            return
        }
        guard let server = LoopbackSocket.connectToLoopback(port: port), track(server) else {
            _ = LoopbackSocket.sendAll(client, Array("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".utf8))
            close(client)
            return
        }
        _ = LoopbackSocket.sendAll(client, Array("HTTP/1.1 200 Connection Established\r\n\r\n".utf8))
        spawn { self.pipe(from: server, to: client) }
        pipe(from: client, to: server)
    }

    /// Copies bytes until `source` ends, then shuts both sockets so the other direction ends too; the direction
    /// that finishes second closes them.
    private func pipe(from source: Int32, to destination: Int32) {
        while let bytes = LoopbackSocket.receiveSome(source), !bytes.isEmpty,
            LoopbackSocket.sendAll(destination, bytes)
        {}
        LoopbackSocket.shutdownBoth(source)
        LoopbackSocket.shutdownBoth(destination)
        let last = state.withLock { state -> Bool in
            let key = min(source, destination)
            if state.finishedPipes.remove(key) != nil { return true }
            state.finishedPipes.insert(key)
            return false
        }
        if last {
            close(source)
            close(destination)
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
