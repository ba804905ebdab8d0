import FliptFormats
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A complete answer with a known body: status, header fields and body bytes.
struct RelayAnswer: Sendable {
    /// The status.
    var status: HTTPResponseStatus
    /// Header fields other than `Date`, `Content-Length` and `Connection`, which the connection adds.
    var headers: HTTPHeaders
    /// More header fields, already encoded (`Name: value\r\n` each), sent after ``headers``: a snapshot's
    /// fixed fields (``SnapshotHeaderFields``).
    var encodedFields: ByteBuffer
    /// The body (empty for 304).
    var body: ByteBuffer

    init(
        status: HTTPResponseStatus,
        headers: HTTPHeaders = HTTPHeaders(),
        encodedFields: ByteBuffer = ByteBuffer(),
        body: ByteBuffer = ByteBuffer()
    ) {
        self.status = status
        self.headers = headers
        self.encodedFields = encodedFields
        self.body = body
    }

    /// Writes the response head to `buffer`: the status line, ``headers``, ``encodedFields``, `Date`,
    /// `Content-Length` (but for `304`), `Connection: close` unless `keepAlive`, and the blank line.
    ///
    /// The relay writes its heads itself rather than through NIO's `HTTPResponseEncoder`: its answers are
    /// complete (the length is always known) and most of their fields are encoded once per snapshot.
    func writeHead(into buffer: inout ByteBuffer, version: HTTPVersion, date: String, keepAlive: Bool) {
        buffer.writeStaticString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        switch status {
        case .ok: buffer.writeStaticString("200 OK\r\n")
        case .notModified: buffer.writeStaticString("304 Not Modified\r\n")
        default:
            buffer.writeString(String(status.code))
            buffer.writeStaticString(" ")
            buffer.writeString(status.reasonPhrase)
            buffer.writeStaticString("\r\n")
        }
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeImmutableBuffer(encodedFields)
        buffer.writeStaticString("Date: ")
        buffer.writeString(date)
        if status != .notModified {
            buffer.writeStaticString("\r\nContent-Length: ")
            buffer.writeString(String(body.readableBytes))
        }
        buffer.writeStaticString(keepAlive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n")
    }

    /// A JSON answer.
    static func json(_ status: HTTPResponseStatus, _ body: ByteBuffer, headers: HTTPHeaders = HTTPHeaders()) -> Self {
        var all: HTTPHeaders = ["Content-Type": "application/json"]
        all.add(contentsOf: headers)
        return RelayAnswer(status: status, headers: all, body: body)
    }

    /// Flipt's error body, `{"code":<gRPC code>,"message":"…","details":[]}`, with the status of that code.
    /// Shared caches are told not to keep it.
    static func fliptError(_ status: HTTPResponseStatus, _ message: String) -> Self {
        let code =
            switch status.code {
            case 400, 414: 3
            case 401: 16
            case 403: 7
            case 404: 5
            case 405, 501, 505: 12
            case 408: 4
            case 413, 431: 8
            case 503: 14
            default: 13
            }
        let body = "{\"code\":\(code),\"message\":\(JSONString.quoted(message)),\"details\":[]}"
        return json(status, ByteBuffer(string: body), headers: ["Cache-Control": "no-store"])
    }

    /// The web UI's plain-text 404 of a real Flipt server, for paths outside its APIs.
    static let plainNotFound = RelayAnswer(
        status: .notFound,
        headers: ["Content-Type": "text/plain; charset=utf-8"],
        body: ByteBuffer(string: "404 page not found\n")
    )

    /// The answer to a connection past the connection limit, as raw bytes: it is written before any request is
    /// read, with no HTTP handler on the connection.
    static func tooManyConnections(date: String) -> ByteBuffer {
        var answer = fliptError(.serviceUnavailable, "too many connections; try again later")
        answer.headers.add(name: "Retry-After", value: "1")
        var buffer = ByteBuffer()
        answer.writeHead(into: &buffer, version: .http1_1, date: date, keepAlive: false)
        buffer.writeImmutableBuffer(answer.body)
        return buffer
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
        current().text
    }

    /// The current second since 1970, and the HTTP date of it.
    mutating func current() -> (second: Int, text: String) {
        let current = time(nil)
        if current != second {
            second = current
            text = HTTPDate.format(current)
        }
        return (Int(second), text)
    }
}
