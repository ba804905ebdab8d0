/// The head of one HTTP/1.x request (request line and header fields), as parsed off a connection.
struct HTTPRequestHead: Sendable {
    /// The protocol versions the relay speaks.
    enum Version: Sendable {
        case http10, http11
    }

    /// Why a request head was refused; each case maps to a status code.
    enum ParseError: Error, Equatable {
        /// A malformed request line or header field (400).
        case malformed(String)
        /// An HTTP version other than 1.0 or 1.1 (505).
        case unsupportedVersion

        var status: Int {
            switch self {
            case .malformed: 400
            case .unsupportedVersion: 505
            }
        }

        var message: String {
            switch self {
            case .malformed(let reason): "bad request: \(reason)"
            case .unsupportedVersion: "HTTP version not supported: use HTTP/1.1"
            }
        }
    }

    /// The method, as sent (`GET`).
    var method: String
    /// The path, still percent-encoded, without the query.
    var path: String
    /// The raw query after `?`, if any.
    var query: String?
    /// The protocol version.
    var version: Version
    /// The header fields in order, names as sent.
    var headers: [(name: String, value: String)]

    /// The first value of a header, matched without regard to case.
    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Whether the client asked to keep the connection open after this request (the version's default otherwise).
    var keepsAlive: Bool {
        let tokens = (header("Connection") ?? "").lowercased().split(separator: ",").map {
            $0.trimmingWhitespace()
        }
        switch version {
        case .http11: return !tokens.contains("close")
        case .http10: return tokens.contains("keep-alive")
        }
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

    /// Finds the end of a request head in `bytes`: the index just past the blank line (CRLF CRLF, or bare LFs).
    static func endOfHead(in bytes: [UInt8], from start: Int = 0) -> Int? {
        var index = max(start, 1)
        while index < bytes.count {
            if bytes[index] == 10 {
                if bytes[index - 1] == 10 { return index + 1 }
                if index >= 2 && bytes[index - 1] == 13 && bytes[index - 2] == 10 { return index + 1 }
            }
            index += 1
        }
        return nil
    }

    /// Parses a complete request head (up to and including its blank line).
    static func parse(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> HTTPRequestHead {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = bytes.startIndex
        for index in bytes.indices where bytes[index] == 10 {
            var line = bytes[lineStart..<index]
            if line.last == 13 { line = line.dropLast() }
            lines.append(line)
            lineStart = index + 1
        }
        // Robustness: empty lines before the request line are ignored (RFC 9112 §2.2).
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let requestLine = lines.first else { throw .malformed("empty request") }
        guard !requestLine.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .malformed("control characters in the request line")
        }
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("the request line is not METHOD TARGET HTTP/1.1") }
        guard !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte) else { throw .malformed("invalid method") }
        let version: Version
        switch String(decoding: parts[2], as: UTF8.self) {
        case "HTTP/1.1": version = .http11
        case "HTTP/1.0": version = .http10
        case let other where other.hasPrefix("HTTP/"): throw .unsupportedVersion
        default: throw .malformed("the request line does not end with HTTP/1.1")
        }
        var target = String(decoding: parts[1], as: UTF8.self)
        for scheme in ["http://", "https://"] where target.lowercased().hasPrefix(scheme) {
            // Absolute form (proxies): keep the path of the URL.
            let rest = target.dropFirst(scheme.count)
            target = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        guard target.hasPrefix("/") else { throw .malformed("the request target must start with /") }
        let path: String
        let query: String?
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = nil
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let first = line.first else { throw .malformed("an empty line inside the header") }
            if first == 32 || first == 9 { throw .malformed("folded header lines are not accepted") }
            guard let colon = line.firstIndex(of: 58) else { throw .malformed("a header line without a colon") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformed("an invalid header name") }
            let value = line[(colon + 1)...]
            guard !value.contains(where: { ($0 < 0x20 && $0 != 9) || $0 == 0x7F }) else {
                throw .malformed("control characters in a header value")
            }
            headers.append(
                (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self).trimmingWhitespace())
            )
        }
        let head = HTTPRequestHead(
            method: String(decoding: parts[0], as: UTF8.self),
            path: path,
            query: query,
            version: version,
            headers: headers
        )
        if version == .http11 && head.header("Host") == nil { throw .malformed("missing the Host header") }
        return head
    }

    /// Whether `byte` may appear in an HTTP token (method, header name).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
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

extension StringProtocol {
    /// Equality that ignores ASCII case (header names).
    func caseInsensitiveEquals(_ other: some StringProtocol) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return zip(utf8, other.utf8).allSatisfy { a, b in
            a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z"))
        }
    }

    /// The text without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
