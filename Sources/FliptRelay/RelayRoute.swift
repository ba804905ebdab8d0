/// Where a request path leads on the relay: Flipt's snapshot endpoints, its stream, health, or nowhere.
enum RelayRoute: Equatable, Sendable {
    /// `/internal/v1/evaluation/snapshot/namespace/{ns}` (environment nil) or
    /// `/client/v2/environments/{env}/namespaces/{ns}/snapshot`.
    case snapshot(namespace: String, environment: String?)
    /// `/client/v2/environments/{env}/namespaces/{ns}/stream`.
    case stream(namespace: String, environment: String)
    /// `/health`: the relay is up.
    case health
    /// Under `/internal/v1/` or `/client/v2/` but no route: the gateway's JSON 404.
    case unknownAPI
    /// Anywhere else: the plain-text 404 of Flipt's web UI.
    case unknown

    /// Routes a still percent-encoded path; one or more trailing slashes are ignored, as Flipt does.
    init(path: String) {
        var trimmed = Substring(path)
        while trimmed.utf8.count > 1 && trimmed.utf8.last == UInt8(ascii: "/") { trimmed = trimmed.dropLast() }
        let segments = trimmed.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            PercentDecoding.decode($0)
        }
        if segments == ["health"] {
            self = .health
        } else if segments.count == 6,
            Array(segments[0...4]) == ["internal", "v1", "evaluation", "snapshot", "namespace"],
            !segments[5].isEmpty
        {
            self = .snapshot(namespace: segments[5], environment: nil)
        } else if segments.count == 7, segments[0] == "client", segments[1] == "v2", segments[2] == "environments",
            segments[4] == "namespaces", !segments[3].isEmpty, !segments[5].isEmpty,
            segments[6] == "snapshot" || segments[6] == "stream"
        {
            self =
                segments[6] == "snapshot"
                ? .snapshot(namespace: segments[5], environment: segments[3])
                : .stream(namespace: segments[5], environment: segments[3])
        } else if segments.count >= 2, [["internal", "v1"], ["client", "v2"]].contains(Array(segments[0...1])) {
            self = .unknownAPI
        } else {
            self = .unknown
        }
    }
}

/// A request target split into its path and query; the absolute form (`http://host/path`, sent to proxies)
/// keeps only its path.
struct RequestTarget: Sendable {
    /// The path, still percent-encoded.
    var path: String
    /// The raw query after `?`, if any.
    var query: String?

    /// Splits `uri`; nil when it is neither an absolute path nor an absolute `http(s)` URL.
    init?(_ uri: String) {
        var target = Substring(uri)
        for scheme in ["http://", "https://"] where target.lowercased().hasPrefix(scheme) {
            let rest = target.dropFirst(scheme.count)
            target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        guard target.hasPrefix("/") else { return nil }
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = String(target)
            query = nil
        }
    }

    /// The query parameters the relay reads, whose values request logs show.
    static let loggedParameters: Set<String> = ["reference", "environmentKey", "digest"]

    /// `uri` as request logs show it: the path, and the query with the value of every parameter the relay does
    /// not read replaced by `REDACTED` (a client may put a secret there); an absolute-form target loses its
    /// scheme and authority, which may hold a user and password.
    static func loggable(_ uri: String) -> String {
        guard let target = RequestTarget(uri) else { return "(a target that is not a path, \(uri.utf8.count) bytes)" }
        guard let query = target.query else { return target.path }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count > 1, !loggedParameters.contains(PercentDecoding.decode(parts[0], plusIsSpace: true))
            else { return String(pair) }
            return parts[0] + "=REDACTED"
        }
        return target.path + "?" + pairs.joined(separator: "&")
    }

    /// The value of a query parameter (first occurrence, `+` and percent escapes decoded), if present.
    func queryValue(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if PercentDecoding.decode(parts[0], plusIsSpace: true) == name {
                return parts.count > 1 ? PercentDecoding.decode(parts[1], plusIsSpace: true) : ""
            }
        }
        return nil
    }
}

/// Percent-decoding of URL path segments and query parts.
enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as a space when asked); a malformed escape is kept as it is.
    static func decode(_ text: some StringProtocol, plusIsSpace: Bool = false) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.contains(UInt8(ascii: "%")) || (plusIsSpace && utf8.contains(UInt8(ascii: "+"))) else {
            return String(text)
        }
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), index + 2 < utf8.count,
                let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2])
            {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(plusIsSpace && byte == UInt8(ascii: "+") ? 32 : byte)
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    /// Whether the string equals `lowercase` (lowercase ASCII letters, digits and `-`), ignoring the case of ASCII
    /// letters, without allocating: for header field names.
    func isASCIICaseInsensitiveEqual(to lowercase: StaticString) -> Bool {
        guard utf8.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        var index = 0
        for byte in utf8 {
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == expected[index] else { return false }
            index += 1
        }
        return true
    }
}
