/// A failure to fetch or stream a snapshot, classified, with a message that says what to do.
///
/// Messages never contain credentials. Nothing that failed is ever handed on as a snapshot.
package struct SyncError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    package enum Kind: Sendable, Hashable {
        /// The server could not be reached or the connection broke: refused, reset, DNS, TLS, a truncated body.
        case network
        /// An attempt did not finish within `requestTimeout`, or the transport's idle timeout fired.
        case timeout
        /// The server answered with an error status other than 401 and 403.
        case httpStatus(Int)
        /// The server rejected the credential: 401 or 403.
        case authentication(Int)
        /// The server sent a document that is not a valid snapshot of the requested namespace.
        case badDocument
        /// The server answered in a way the protocol does not allow here, such as 204, or 304 to an
        /// unconditional request.
        case unexpectedResponse
        /// The server reported an error on an open stream with an `{"error": …}` line.
        case streamError
        /// The configuration cannot work; nothing was sent.
        case configuration
        /// The task was cancelled or the client closed.
        case cancelled
    }

    /// What kind of failure this is.
    package var kind: Kind
    /// What happened and what to do, in one or two sentences.
    package var message: String
    /// The URL of the failed request (never with credentials), if there was one.
    package var url: String?
    /// How many attempts were made, retries included, if known.
    package var attempts: Int?
    /// The delay the server asked for with `Retry-After` on this response, if any.
    package var retryAfter: Duration?

    /// Creates an error.
    package init(_ kind: Kind, _ message: String, url: String? = nil, attempts: Int? = nil) {
        self.kind = kind
        self.message = message
        self.url = url
        self.attempts = attempts
    }

    /// The message, with the attempt count when there was more than one.
    package var description: String {
        if let attempts, attempts > 1 { return "\(message) (\(attempts) attempts)" }
        return message
    }

    /// Whether the retry policy may retry an attempt that failed this way.
    package var isTransient: Bool {
        switch kind {
        case .network, .timeout: true
        case .httpStatus(let code): RetryPolicy.isRetryable(status: code)
        default: false
        }
    }

    static func cancelled(url: String? = nil) -> SyncError {
        SyncError(
            .cancelled,
            "The request was cancelled because the sync task was cancelled or the client closed.",
            url: url
        )
    }
}

extension SyncError {
    /// The HTTP status of the response behind the error, if one arrived.
    package var httpStatus: Int? {
        switch kind {
        case .httpStatus(let code), .authentication(let code): code
        default: nil
        }
    }

    /// A short, stable class for attempt logs and metrics (`network`, `timeout`, `http_503`, `auth_401`,
    /// `invalid_document`, …). Never the message, which may hold a URL.
    package var errorClass: String {
        switch kind {
        case .network: "network"
        case .timeout: "timeout"
        case .httpStatus(let code): "http_\(code)"
        case .authentication(let code): "auth_\(code)"
        case .badDocument: "invalid_document"
        case .unexpectedResponse: "unexpected_response"
        case .streamError: "stream_error"
        case .configuration: "configuration"
        case .cancelled: "cancelled"
        }
    }
}
