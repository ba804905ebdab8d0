import Foundation

/// An HTTP header field, kept in order.
public struct HTTPField: Sendable, Hashable, CustomStringConvertible {
    /// The field name.
    public var name: String
    /// The field value.
    public var value: String

    /// Creates a field.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// `name: value`, with the value of `Authorization` redacted.
    public var description: String {
        name.caseInsensitiveCompare("Authorization") == .orderedSame ? "\(name): <redacted>" : "\(name): \(value)"
    }
}

/// A GET request to send.
public struct HTTPRequest: Sendable, Hashable {
    /// The full URL.
    public var url: URL
    /// The request headers, in order.
    public var headers: [HTTPField]

    /// Creates a request.
    public init(url: URL, headers: [HTTPField]) {
        self.url = url
        self.headers = headers
    }
}

/// The status line and headers of a response.
public struct HTTPResponseHead: Sendable, Hashable {
    /// The status code.
    public var status: Int
    /// The response headers.
    public var headers: [HTTPField]
    /// The URL that answered, after redirects.
    public var url: URL?

    /// Creates a response head.
    public init(status: Int, headers: [HTTPField], url: URL?) {
        self.status = status
        self.headers = headers
        self.url = url
    }

    /// The first value of a header, compared case-insensitively.
    public func value(for name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A response with its whole body.
public struct HTTPResponse: Sendable, Hashable {
    /// Status and headers.
    public var head: HTTPResponseHead
    /// The body bytes.
    public var body: [UInt8]

    /// Creates a response.
    public init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }
}

/// A response whose body arrives as chunks, as they are received.
public struct HTTPStreamResponse: Sendable {
    /// Status and headers.
    public var head: HTTPResponseHead
    /// The body chunks; it finishes at the end of the body and throws a ``SyncError`` if the connection breaks.
    /// Ending the iteration (or cancelling the task iterating) cancels the request.
    public var body: AsyncThrowingStream<[UInt8], any Error>

    /// Creates a streamed response.
    public init(head: HTTPResponseHead, body: AsyncThrowingStream<[UInt8], any Error>) {
        self.head = head
        self.body = body
    }
}

/// The HTTP client the sync layer uses; ``URLSessionTransport`` is the standard one.
///
/// On Linux, `AsyncHTTPClientTransport` serves the TLS options URLSession cannot honour there (extra trust roots,
/// skip-verify); ``SnapshotFetcher`` picks it by itself.
///
/// Implementations follow redirects (dropping `Authorization` when a redirect leaves the original scheme, host and
/// port), never cache, never add `Accept-Encoding` other than what the request says, decode `Content-Encoding:
/// gzip` bodies (handing on decoded bytes as soon as they can be decoded, so that a flushed stream message arrives
/// whole, and refusing a body that inflates far beyond its compressed size), hand body chunks on as they arrive, report failures with the same ``SyncError`` kinds, and end promptly (with a
/// ``SyncError/Kind/cancelled`` error) when the calling task is cancelled.
public protocol HTTPTransport: Sendable {
    /// Sends a request and returns the whole response, whatever its status.
    func send(_ request: HTTPRequest) async throws(SyncError) -> HTTPResponse

    /// Sends a request and returns as soon as the response headers arrive, with the body as a stream of chunks.
    func openStream(_ request: HTTPRequest) async throws(SyncError) -> HTTPStreamResponse

    /// Closes the transport's connections and releases its resources; requests after this fail. Calling it more
    /// than once is harmless.
    ///
    /// A transport shared by several clients (``SnapshotFetcher``s) is shut down once, by its owner, after every
    /// client that uses it has stopped.
    func shutdown() async
}

extension HTTPTransport {
    /// Does nothing: for transports that hold nothing to release, or release it when they are deinitialised.
    public func shutdown() async {}
}

extension HTTPTransport {
    /// Sends a request and collects the whole body, using ``openStream(_:)``.
    public func collect(_ request: HTTPRequest) async throws(SyncError) -> HTTPResponse {
        let stream = try await openStream(request)
        var body: [UInt8] = []
        do {
            for try await chunk in stream.body { body += chunk }
        } catch let error as SyncError {
            throw error
        } catch {
            throw SyncError(.network, "Reading the response body failed: \(error).", url: request.url.absoluteString)
        }
        // A cancelled iteration ends quietly; never hand on a partial body.
        if Task.isCancelled { throw SyncError.cancelled(url: request.url.absoluteString) }
        return HTTPResponse(head: stream.head, body: body)
    }
}
