import Foundation

/// What a cached snapshot belongs to: a server, an environment, a namespace and an optional reference.
///
/// The server URL is normalised so that equal servers give equal keys and no credential reaches the file:
/// user and password, query and fragment are dropped, scheme and host are lowercased, trailing slashes are
/// removed. A missing reference is stored as the empty string.
package struct SnapshotKey: Hashable, Sendable, CustomStringConvertible {
    /// The normalised server URL (`https://flipt.example.com/prefix`).
    package let serverURL: String
    /// The environment key (`default` on servers without environments).
    package let environment: String
    /// The namespace key.
    package let namespace: String
    /// The reference (a branch, tag or commit on v1 servers), or `""` when none is configured.
    package let reference: String

    /// Creates a key from the client's configuration.
    package init(url: URL, environment: String, namespace: String, reference: String? = nil) {
        self.init(
            normalizedServerURL: Self.normalize(url),
            environment: environment,
            namespace: namespace,
            reference: reference ?? ""
        )
    }

    /// Creates a key from values already normalised (as read back from the file).
    init(normalizedServerURL: String, environment: String, namespace: String, reference: String) {
        self.serverURL = normalizedServerURL
        self.environment = environment
        self.namespace = namespace
        self.reference = reference
    }

    /// `server_url environment/namespace@reference`, for logs.
    package var description: String {
        "\(serverURL) \(environment)/\(namespace)" + (reference.isEmpty ? "" : "@\(reference)")
    }

    /// The text a URL is stored as: no credentials, query or fragment; lowercase scheme and host; no trailing `/`.
    static func normalize(_ url: URL) -> String {
        if let plain = plainForm(url.absoluteString) { return plain }
        return normalizedByComponents(url)
    }

    /// ``normalize(_:)`` of a plain URL, read byte by byte: a scheme, a host name or IPv4 address, an optional port
    /// (digits without a leading zero) and a path of unreserved characters and slashes, which is what a Flipt server
    /// URL nearly always is; nil for anything else (credentials, a query, an escape, an IPv6 or non-ASCII host),
    /// which goes through `URLComponents`. Gives exactly what `URLComponents` gives for the URLs it accepts
    /// (`SnapshotKeyTests` compares both on a corpus), without its parser and IDNA set-up: ~0.25 ms of a cold
    /// boot here.
    static func plainForm(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        func isLetter(_ byte: UInt8) -> Bool {
            (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
        }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        func lowercased(_ byte: UInt8) -> UInt8 { isLetter(byte) ? byte | 0x20 : byte }
        var index = 0
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        // Scheme: a letter, then letters, digits, `+`, `-` or `.`.
        while index < bytes.count,
            isLetter(bytes[index])
                || (index > 0
                    && (isDigit(bytes[index]) || bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
                        || bytes[index] == UInt8(ascii: ".")))
        {
            result.append(lowercased(bytes[index]))
            index += 1
        }
        guard index > 0, bytes[index...].starts(with: "://".utf8) else { return nil }
        result += "://".utf8
        index += 3
        // Host: letters, digits, `-` and `.`, not empty.
        let hostStart = index
        while index < bytes.count,
            isLetter(bytes[index]) || isDigit(bytes[index]) || bytes[index] == UInt8(ascii: "-")
                || bytes[index] == UInt8(ascii: ".")
        {
            result.append(lowercased(bytes[index]))
            index += 1
        }
        guard index > hostStart else { return nil }
        // Port: `:` and one to five digits, no leading zero, at most 65535.
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            index += 1
            let portStart = index
            var port = 0
            while index < bytes.count, isDigit(bytes[index]), index - portStart < 5 {
                port = port * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            guard index > portStart, bytes[portStart] != UInt8(ascii: "0"), port <= 65_535 else { return nil }
            result.append(UInt8(ascii: ":"))
            result += bytes[portStart..<index]
        }
        // Path: slashes and unreserved characters only; trailing slashes dropped.
        let pathStart = index
        while index < bytes.count {
            let byte = bytes[index]
            guard
                isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            else { return nil }
            index += 1
        }
        guard pathStart == bytes.count || bytes[pathStart] == UInt8(ascii: "/") else { return nil }
        var pathEnd = bytes.count
        while pathEnd > pathStart, bytes[pathEnd - 1] == UInt8(ascii: "/") { pathEnd -= 1 }
        result += bytes[pathStart..<pathEnd]
        return String(decoding: result, as: UTF8.self)
    }

    /// ``normalize(_:)`` through `URLComponents`, for every URL.
    static func normalizedByComponents(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: true) else {
            return trimmingTrailingSlashes(url.absoluteString)
        }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        components.scheme = components.scheme?.lowercased()
        components.host = components.host?.lowercased()
        components.path = trimmingTrailingSlashes(components.path)
        return trimmingTrailingSlashes(components.string ?? url.absoluteString)
    }

    private static func trimmingTrailingSlashes(_ text: String) -> String {
        var text = Substring(text)
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }
}
