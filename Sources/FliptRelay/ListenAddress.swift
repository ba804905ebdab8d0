#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the relay listens: a host (a numeric address or a name) and a TCP port.
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host: `127.0.0.1`, `0.0.0.0` (every IPv4 interface), `::1`, `::` or a name such as `localhost`.
    package var host: String
    /// The port; 0 picks a free one.
    package var port: UInt16

    /// Creates an address.
    package init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[ipv6]:port`, or a bare `port` (meaning 127.0.0.1); nil for anything else.
    package init?(parsing text: String) {
        if let port = UInt16(text) {
            self.init(host: "127.0.0.1", port: port)
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, let port = UInt16(portText) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with brackets around an IPv6 address.
    package var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The base URL clients use to reach this address (`http://127.0.0.1:8080`); a wildcard host becomes loopback.
    package var url: String { url(scheme: "http") }

    /// The base URL with `scheme` (`https://127.0.0.1:8443`); a wildcard host becomes loopback.
    package func url(scheme: String) -> String {
        let reachable =
            switch host {
            case "0.0.0.0": "127.0.0.1"
            case "::": "::1"
            default: host
            }
        return scheme + "://" + ListenAddress(host: reachable, port: port).description
    }

    /// Whether only this machine can reach the address: `localhost`, an IPv4 address in 127.0.0.0/8, `::1`, or
    /// an IPv4-mapped IPv6 address in 127.0.0.0/8. Wildcards (`0.0.0.0`, `::`) and other names are not.
    package var isLoopback: Bool {
        if host.lowercased() == "localhost" || host.lowercased() == "localhost." { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        return mapped && bytes[12] == 127
    }
}
