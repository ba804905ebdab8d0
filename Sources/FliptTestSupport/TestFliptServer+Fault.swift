import FliptFormats
import Foundation

extension TestFliptServer {
    /// Which requests a queued fault applies to.
    package enum Endpoint: Sendable, Hashable {
        /// The snapshot endpoints: `/internal/v1/evaluation/snapshot/...` and `/client/v2/.../snapshot`.
        case snapshot
        /// The stream endpoint `/client/v2/environments/{env}/namespaces/{ns}/stream`.
        case stream
        /// Any request, whatever its path.
        case any
    }

    /// One step of a scripted stream response (see ``Fault/stream(_:)``).
    package enum StreamStep: Sendable, Hashable {
        /// Sends `HTTP/1.1 200`, `Content-Type: application/json` and `Transfer-Encoding: chunked`.
        case headers
        /// Sends the current document of the requested namespace as one `{"result":…}\n` line, in one chunk.
        case currentSnapshot
        /// Sends these bytes as one HTTP chunk (use it to split lines, merge them, or send bad lines).
        case chunk([UInt8])
        /// Waits before the next step.
        case pause(Duration)
        /// Ends the response cleanly with the terminating zero-length chunk and closes the connection.
        case end
        /// Aborts the connection with a TCP reset.
        case reset
        /// Keeps the stream open as a normal stream does: pushes each document change, until the client leaves.
        case hold

        /// A chunk holding the UTF-8 bytes of `text`.
        package static func text(_ text: String) -> StreamStep { .chunk(Array(text.utf8)) }
    }

    /// A misbehaviour the server applies to the next matching request instead of its normal answer.
    package enum Fault: Sendable, Hashable {
        /// Answers with this status, these headers and this body (`Content-Length` is added).
        case respond(status: Int, headers: [HeaderField] = [], body: [UInt8] = [])
        /// Reads the request and closes the connection without answering.
        case closeConnection
        /// Reads the request and resets the connection (TCP RST) without answering.
        case resetConnection
        /// Reads the request and never answers: the connection stays open until the client leaves or the
        /// server stops.
        case silent
        /// Serves the normal response, but sends its body `chunkSize` bytes at a time with `interval` between.
        case slowBody(chunkSize: Int, interval: Duration)
        /// Serves the normal response headers (with the full `Content-Length`), sends only the first `sentBytes`
        /// bytes of the body, then closes.
        case truncatedBody(sentBytes: Int)
        /// Sends these bytes verbatim, then closes the connection if `close` is true.
        case raw([UInt8], close: Bool)
        /// Serves a stream request with this script instead of the normal stream behaviour.
        case stream([StreamStep])

        /// A response with only a status, and the standard error body for statuses of 400 and above.
        package static func status(_ code: Int, headers: [HeaderField] = []) -> Fault {
            .respond(status: code, headers: headers, body: code >= 400 ? errorBody(forStatus: code) : [])
        }

        /// A `429` or `503` style response carrying `Retry-After: value`.
        package static func retryAfter(_ value: String, status: Int = 429) -> Fault {
            .status(status, headers: [HeaderField("Retry-After", value)])
        }

        /// A redirect to `location` (a path, or an absolute URL).
        package static func redirect(to location: String, status: Int = 302) -> Fault {
            .respond(status: status, headers: [HeaderField("Location", location)])
        }

        /// A stream that never sends its response headers.
        package static let streamWithoutHeaders = Fault.stream([.pause(.seconds(3_600))])

        /// A stream that sends its headers, then nothing at all.
        package static let streamSilentAfterHeaders = Fault.stream([.headers, .pause(.seconds(3_600))])
    }

    /// An HTTP header name and value, kept in order.
    package struct HeaderField: Sendable, Hashable, CustomStringConvertible {
        /// The header name as sent.
        package var name: String
        /// The header value as sent.
        package var value: String

        /// Creates a header field.
        package init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }

        /// `name: value`.
        package var description: String { "\(name): \(value)" }
    }

    /// The gateway-style JSON error body Flipt sends with a status: `{"code":N,"message":"…","details":[]}`.
    package static func errorBody(forStatus status: Int, message: String? = nil) -> [UInt8] {
        let grpcCode: Int
        switch status {
        case 400: grpcCode = 3
        case 401: grpcCode = 16
        case 403: grpcCode = 7
        case 404: grpcCode = 5
        case 409: grpcCode = 6
        case 429: grpcCode = 8
        case 501: grpcCode = 12
        case 503: grpcCode = 14
        case 504: grpcCode = 4
        default: grpcCode = 13
        }
        let text = message ?? reasonPhrase(for: status)
        return Array("{\"code\":\(grpcCode),\"message\":\(JSONString.quoted(text)),\"details\":[]}".utf8)
    }

    /// The standard reason phrase of an HTTP status.
    package static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}
