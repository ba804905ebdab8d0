#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A socket call of the relay failed: which call, for which address, and the system's reason.
public struct RelaySocketError: Error, CustomStringConvertible, Sendable {
    /// The call that failed, for example `bind`.
    public var operation: String
    /// The address concerned, as given on the command line.
    public var address: String
    /// The system's explanation (`strerror` or `gai_strerror`).
    public var reason: String

    /// A sentence naming the call, the address and the reason, with what to do for the usual causes.
    public var description: String {
        var text = "cannot listen on \(address): \(operation) failed: \(reason)"
        if operation == "bind" {
            text += "; choose another address or port with --listen, or stop the process that uses it"
        } else if operation == "getaddrinfo" {
            text += "; give a numeric address such as 127.0.0.1:8080 or [::1]:8080"
        }
        return text
    }
}

/// Thin wrappers over the POSIX calls the relay makes: one listening socket, blocking connection sockets.
enum RelaySocket {
    #if canImport(Darwin)
    static let streamType = SOCK_STREAM
    static let noSignal: Int32 = 0
    #else
    static let streamType = Int32(SOCK_STREAM.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    #endif

    /// Opens a listening socket on the first address `host` resolves to; returns it and the bound port.
    static func openListener(
        on address: ListenAddress,
        backlog: Int32 = 511
    ) throws(RelaySocketError) -> (
        fd: Int32, port: UInt16
    ) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = streamType
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard status == 0, let first = list else {
            throw RelaySocketError(
                operation: "getaddrinfo",
                address: address.description,
                reason: String(cString: gai_strerror(status))
            )
        }
        defer { freeaddrinfo(list) }
        var failure = RelaySocketError(operation: "socket", address: address.description, reason: "no address")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else {
                failure = error("socket", address)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
                failure = error("bind", address)
                close(fd)
                continue
            }
            if listen(fd, backlog) != 0 {
                failure = error("listen", address)
                close(fd)
                continue
            }
            return (fd, localPort(of: fd))
        }
        throw failure
    }

    private static func error(_ operation: String, _ address: ListenAddress) -> RelaySocketError {
        RelaySocketError(operation: operation, address: address.description, reason: String(cString: strerror(errno)))
    }

    /// The local port a socket is bound to (0 if it cannot be read).
    static func localPort(of fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return 0 }
        return withUnsafePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    UInt16(bigEndian: $0.pointee.sin6_port)
                }
            default:
                0
            }
        }
    }

    /// The outcome of `accept`.
    enum Accepted {
        /// A new connection.
        case connection(Int32)
        /// A transient failure (out of descriptors, an aborted handshake): try again.
        case retry(Int32)
        /// The listening socket was shut down or closed.
        case closed
    }

    /// Accepts one connection and turns Nagle's algorithm off on it.
    static func acceptConnection(from listener: Int32) -> Accepted {
        let fd = accept(listener, nil, nil)
        if fd >= 0 {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            return .connection(fd)
        }
        switch errno {
        case EINTR, ECONNABORTED, EPROTO, EMFILE, ENFILE, ENOBUFS, ENOMEM: return .retry(errno)
        default: return .closed
        }
    }

    /// Bounds how long one `send` may block, so that a client that stops reading cannot hold a thread forever.
    static func setSendTimeout(_ fd: Int32, _ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends every byte of the given buffers in order, or returns false when the peer is gone or too slow.
    @discardableResult
    static func sendAll(_ fd: Int32, _ buffers: [UInt8]...) -> Bool {
        for buffer in buffers where !sendAll(fd, buffer) { return false }
        return true
    }

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = send(fd, buffer.baseAddress! + offset, buffer.count - offset, noSignal)
                if sent < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += sent
            }
            return true
        }
    }

    /// Receives up to `buffer.count` bytes into `buffer`: the count, 0 when the peer closed, -1 on an error.
    static func receive(_ fd: Int32, into buffer: inout [UInt8]) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            return count
        }
    }

    /// Waits up to `timeout` for the socket to be readable (data, close or error); false on timeout.
    static func waitReadable(_ fd: Int32, timeout: Duration) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: max(0, timeout.milliseconds))
        while true {
            let result = poll(&descriptor, 1, milliseconds)
            if result < 0 && errno == EINTR { continue }
            return result != 0
        }
    }

    /// Shuts both directions down, waking a thread blocked on the socket.
    static func shutdownBoth(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Closes the descriptor.
    static func closeSocket(_ fd: Int32) {
        _ = close(fd)
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
