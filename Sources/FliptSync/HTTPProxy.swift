import Foundation

/// A proxy that requests to the Flipt server go through: an HTTP proxy (which the transport asks to `CONNECT` to
/// the server, for `http` and `https` alike) or a SOCKS5 proxy.
///
/// ``fromEnvironment(for:environment:)`` reads the variables curl and most Unix tools use, so a device configured
/// for them needs nothing else:
/// - `https_proxy` (or `HTTPS_PROXY`) for an `https` server, `http_proxy` for an `http` server (lower case only,
///   as curl: `HTTP_PROXY` can be set by a request header in CGI programs), else `all_proxy` (or `ALL_PROXY`);
/// - `no_proxy` (or `NO_PROXY`): comma-separated host names, domain suffixes (`.example.com` or `example.com`
///   match `flipt.example.com`), IP addresses, or `*` for every host; a `host:port` entry matches that port only.
///
/// A server on this machine (`localhost`, `127.0.0.0/8`, `::1`), such as a `flipt-offline serve` relay, is
/// always reached directly, as Go's HTTP client (and so Flipt's own tools) does.
///
/// A proxy is written `[scheme://][user:password@]host[:port]`, where the scheme is `http` (the default) or
/// `socks5`/`socks5h`, the port defaults to 1080 (as in curl), and the user name and password are
/// percent-decoded. Credentials in a proxy URL are sent only to the proxy and never logged.
package struct HTTPProxy: Sendable, Hashable {
    /// How the transport talks to the proxy.
    package enum Kind: Sendable, Hashable {
        /// An HTTP proxy, asked to `CONNECT` to the server.
        case http
        /// A SOCKS5 proxy.
        case socks5
    }

    /// How the transport talks to the proxy.
    package var kind: Kind
    /// The proxy's host name or IP address.
    package var host: String
    /// The proxy's port.
    package var port: Int
    /// The user name for an HTTP proxy's `Proxy-Authorization: Basic`, if it needs one.
    package var username: String?
    /// The password that goes with ``username``.
    package var password: String?

    /// Creates a proxy setting.
    package init(kind: Kind = .http, host: String, port: Int, username: String? = nil, password: String? = nil) {
        self.kind = kind
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }

    /// The proxy the environment names for requests to `url`, or nil when there is none or `no_proxy` exempts the
    /// host.
    ///
    /// - Parameter environment: the variables to read (the process environment by default).
    /// - Throws: a ``SyncError/Kind/configuration`` error naming the variable when its value is not a usable proxy
    ///   (an `https` or `socks4` proxy, a missing host, a bad port), rather than bypassing the proxy.
    package static func fromEnvironment(
        for url: URL,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SyncError) -> HTTPProxy? {
        func variable(_ names: String...) -> (name: String, value: String)? {
            for name in names {
                if let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty {
                    return (name, value)
                }
            }
            return nil
        }
        let scheme = url.scheme?.lowercased() ?? "http"
        let named =
            (scheme == "https" ? variable("https_proxy", "HTTPS_PROXY") : variable("http_proxy"))
            ?? variable("all_proxy", "ALL_PROXY")
        guard let named, let host = url.host.map(bareHost), !isLoopback(host) else { return nil }
        if let exemptions = variable("no_proxy", "NO_PROXY")?.value,
            isExempt(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), exemptions: exemptions)
        {
            return nil
        }
        return try parse(named.value, variable: named.name)
    }

    /// A host name in the form the checks below compare: lower case, an IPv6 literal without its brackets.
    static func bareHost(_ host: some StringProtocol) -> String {
        host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    }

    /// Whether `host` (a ``bareHost(_:)``) names this machine: `localhost` (and its subdomains), an IPv4 address in
    /// 127.0.0.0/8, or ::1.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Whether `no_proxy`'s list exempts `host` (a ``bareHost(_:)``; entries are compared without case).
    static func isExempt(host: String, port: Int, exemptions: String) -> Bool {
        for raw in exemptions.split(separator: ",") {
            var entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry == "*" { return true }
            var entryPort: Int?
            // `host:port`, but not a bare IPv6 address (several colons, no brackets).
            if entry.hasPrefix("[") {
                if let close = entry.firstIndex(of: "]") {
                    let rest = entry[entry.index(after: close)...]
                    if rest.hasPrefix(":") { entryPort = Int(rest.dropFirst()) }
                    entry = String(entry[entry.index(after: entry.startIndex)..<close])
                }
            } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
                entryPort = Int(entry[entry.index(after: colon)...])
                entry = String(entry[..<colon])
            }
            if let entryPort, entryPort != port { continue }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            let suffix = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
            guard !suffix.isEmpty else { continue }
            if host == suffix || host.hasSuffix("." + suffix) { return true }
        }
        return false
    }

    /// Parses one proxy URL; `variable` names where it came from, for the error.
    static func parse(_ value: String, variable: String) throws(SyncError) -> HTTPProxy {
        func failure(_ problem: String) -> SyncError {
            SyncError(
                .configuration,
                "The proxy in \(variable) \(problem). Write it as http://host:port or socks5://host:port (with "
                    + "user:password@ before the host if the proxy needs it), or unset \(variable)."
            )
        }
        let text = value.contains("://") ? value : "http://" + value
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw failure("has no host name")
        }
        let kind: Kind
        switch components.scheme?.lowercased() {
        case "http": kind = .http
        case "socks5", "socks5h": kind = .socks5
        case let other: throw failure("uses the scheme \"\(other ?? "")\", which is not supported")
        }
        let port = components.port ?? 1080
        guard (1...65_535).contains(port) else { throw failure("has the port \(port), which is not a TCP port") }
        var proxy = HTTPProxy(
            kind: kind,
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
            port: port
        )
        proxy.username = components.user?.removingPercentEncoding
        proxy.password = components.password?.removingPercentEncoding
        return proxy
    }
}

extension HTTPProxy: CustomStringConvertible {
    /// The proxy without its credentials, for logs: `http://proxy.internal:3128`.
    package var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(kind == .http ? "http" : "socks5")://\(host):\(port)"
    }
}
