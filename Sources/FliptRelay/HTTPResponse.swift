#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A complete HTTP response with a known body: status, header fields and body bytes.
struct HTTPResponse: Sendable {
    /// The status code.
    var status: Int
    /// Header fields other than `Date`, `Content-Length` and `Connection`, which serialisation adds.
    var headers: [(name: String, value: String)]
    /// The body (empty for 304).
    var body: [UInt8]

    /// A JSON response.
    static func json(_ status: Int, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body)
    }

    /// Flipt's error body, `{"code":<gRPC code>,"message":"…","details":[]}`, with the status of that code.
    static func fliptError(_ status: Int, _ message: String) -> HTTPResponse {
        let code =
            switch status {
            case 400: 3
            case 404: 5
            case 405, 501, 505: 12
            case 408: 4
            case 413, 431: 8
            case 503: 14
            default: 13
            }
        return json(status, Array("{\"code\":\(code),\"message\":\(JSONText.quoted(message)),\"details\":[]}".utf8))
    }

    /// The web UI's plain-text 404 of a real Flipt server, for paths outside its APIs.
    static let plainNotFound = HTTPResponse(
        status: 404,
        headers: [("Content-Type", "text/plain; charset=utf-8")],
        body: Array("404 page not found\n".utf8)
    )

    /// The status line and header block, ending with the blank line; `date` is the `Date` value (now by default).
    func head(keepAlive: Bool, contentLength: Int?, date: String = HTTPDate.now()) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Date: \(date)\r\n"
        if let contentLength { text += "Content-Length: \(contentLength)\r\n" }
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// The standard reason phrase of a status code.
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}

/// JSON text helpers for the few bodies the relay writes itself.
enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case let scalar where scalar.value < 0x20:
                output += "\\u00" + String(scalar.value >> 4, radix: 16) + String(scalar.value & 15, radix: 16)
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }
}

/// The `Date` header value (IMF-fixdate).
enum HTTPDate {
    /// The current time as `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func now() -> String {
        format(time(nil))
    }

    /// `seconds` since 1970 as `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func format(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// A `Date` header value kept by one connection and formatted again only when the second changes, so that
/// answering a request takes no lock and formats no date most of the time.
struct HTTPDateCache {
    private var second: time_t = -1
    private var text = ""

    /// The current time as an HTTP date.
    mutating func now() -> String {
        let current = time(nil)
        if current != second {
            second = current
            text = HTTPDate.format(current)
        }
        return text
    }
}
