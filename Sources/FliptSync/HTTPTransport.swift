import Foundation

/// An HTTP header field, kept in order.
package struct HeaderField: Sendable, Hashable, CustomStringConvertible {
    /// The field name.
    package var name: String
    /// The field value.
    package var value: String

    /// Creates a field.
    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// `name: value`, with the value of `Authorization` redacted.
    package var description: String {
        name.caseInsensitiveCompare("Authorization") == .orderedSame ? "\(name): <redacted>" : "\(name): \(value)"
    }
}

/// A GET request to send.
package struct TransportRequest: Sendable, Hashable {
    /// The full URL.
    package var url: URL
    /// The request headers, in order.
    package var headers: [HeaderField]
    /// The largest body ``HTTPTransport/collect(_:)`` accepts, in bytes as decoded; nil for no limit.
    package var maximumBodySize: Int?

    /// Creates a request.
    package init(url: URL, headers: [HeaderField], maximumBodySize: Int? = nil) {
        self.url = url
        self.headers = headers
        self.maximumBodySize = maximumBodySize
    }
}

/// The status line and headers of a response.
package struct TransportResponseHead: Sendable, Hashable {
    /// The status code.
    package var status: Int
    /// The response headers.
    package var headers: [HeaderField]
    /// The URL that answered, after redirects.
    package var url: URL?

    /// Creates a response head.
    package init(status: Int, headers: [HeaderField], url: URL?) {
        self.status = status
        self.headers = headers
        self.url = url
    }

    /// The first value of a header, compared case-insensitively.
    package func value(for name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A response with its whole body.
package struct TransportResponse: Sendable, Hashable {
    /// Status and headers.
    package var head: TransportResponseHead
    /// The body bytes.
    package var body: [UInt8]

    /// Creates a response.
    package init(head: TransportResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }
}

/// A response whose body arrives as chunks, as they are received.
package struct TransportStreamResponse: Sendable {
    /// Status and headers.
    package var head: TransportResponseHead
    /// The body chunks; it finishes at the end of the body and throws a ``SyncError`` if the connection breaks.
    /// Ending the iteration (or cancelling the task iterating) cancels the request.
    package var body: AsyncThrowingStream<[UInt8], any Error>

    /// Creates a streamed response.
    package init(head: TransportResponseHead, body: AsyncThrowingStream<[UInt8], any Error>) {
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
package protocol HTTPTransport: Sendable {
    /// Sends a request and returns the whole response, whatever its status.
    func send(_ request: TransportRequest) async throws(SyncError) -> TransportResponse

    /// Sends a request and returns as soon as the response headers arrive, with the body as a stream of chunks.
    func openStream(_ request: TransportRequest) async throws(SyncError) -> TransportStreamResponse

    /// Closes the transport's connections and releases its resources; requests after this fail. Calling it more
    /// than once is harmless.
    ///
    /// A transport shared by several clients (``SnapshotFetcher``s) is shut down once, by its owner, after every
    /// client that uses it has stopped.
    func shutdown() async
}

extension HTTPTransport {
    /// Does nothing: for transports that hold nothing to release, or release it when they are deinitialised.
    package func shutdown() async {}
}

/// How much of a body other than a `200`'s ``HTTPTransport/collect(_:)`` keeps: 64 KiB, plenty for an error
/// message.
package let errorBodyLimit = 65_536

extension HTTPTransport {
    /// Sends a request and collects the whole body, using ``openStream(_:)``.
    ///
    /// A `200` body larger than the request's ``TransportRequest/maximumBodySize`` fails with
    /// ``SyncError/Kind/badDocument`` as soon as its `Content-Length` or its bytes so far say so; the rest is not
    /// read. Of any other answer (an error, whose status decides what happens next), only the first
    /// ``errorBodyLimit`` bytes are kept, for its message.
    package func collect(_ request: TransportRequest) async throws(SyncError) -> TransportResponse {
        let stream = try await openStream(request)
        let isDocument = stream.head.status == 200
        let limit = isDocument ? request.maximumBodySize ?? .max : errorBodyLimit
        func tooLarge() -> SyncError {
            SyncError(
                .badDocument,
                "The response body is larger than \(limit) bytes, the largest snapshot document this client accepts "
                    + "(ClientOptions.maximumDocumentSize, --max-document-size): check that the URL points at a Flipt "
                    + "server, or raise the limit for a namespace this large.",
                url: request.url.absoluteString
            )
        }
        // A compressed body's Content-Length is not its decoded size.
        if isDocument, stream.head.value(for: "Content-Encoding") == nil,
            let length = stream.head.value(for: "Content-Length").flatMap({ Int($0) }), length > limit
        {
            throw tooLarge()
        }
        var body: [UInt8] = []
        do {
            for try await chunk in stream.body {
                guard chunk.count <= limit - body.count else {
                    if isDocument { throw tooLarge() }
                    body += chunk.prefix(limit - body.count)
                    break
                }
                body += chunk
            }
        } catch let error as SyncError {
            throw error
        } catch {
            throw SyncError(.network, "Reading the response body failed: \(error).", url: request.url.absoluteString)
        }
        // A cancelled iteration ends quietly; never hand on a partial body.
        if Task.isCancelled { throw SyncError.cancelled(url: request.url.absoluteString) }
        return TransportResponse(head: stream.head, body: body)
    }
}
