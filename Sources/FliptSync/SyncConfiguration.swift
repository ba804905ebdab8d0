import Foundation

/// How the client fetches snapshots from a Flipt server.
public enum FetchMode: String, Sendable, Hashable, CaseIterable {
    /// Conditional GETs of the snapshot endpoint at the update interval (the default).
    case polling
    /// One conditional GET, then the Flipt v2 newline-delimited JSON stream, reconnecting with back-off.
    case streaming
}

/// Transport security options.
public struct TLSOptions: Sendable, Hashable {
    /// A certificate authority to trust in addition to the system trust store.
    public enum TrustRoot: Sendable, Hashable {
        /// A PEM file on disk.
        case pemFile(String)
        /// PEM text.
        case pem(String)
    }

    /// Extra certificate authorities to trust for the server's certificate.
    public var additionalTrustRoots: [TrustRoot]
    /// Accept any server certificate and host name. Only for tests against a self-signed server: it makes the
    /// connection trivially interceptable, and a warning is logged.
    public var insecureSkipVerify: Bool

    /// Creates TLS options; the defaults trust the system store and verify everything.
    public init(additionalTrustRoots: [TrustRoot] = [], insecureSkipVerify: Bool = false) {
        self.additionalTrustRoots = additionalTrustRoots
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// Everything the sync layer needs to talk to one namespace on one Flipt server.
package struct SyncConfiguration: Sendable {
    /// The client's default `User-Agent`.
    package static let defaultUserAgent = "flipt-offline-swift/0.1.0"

    /// The server's base URL, `http` or `https`; a path prefix (`https://host/flipt`) and a trailing slash work.
    package var url: URL
    /// The namespace key.
    package var namespace: String
    /// The environment key, sent as `X-Flipt-Environment` and used in the stream path.
    package var environment: String
    /// A reference (branch, tag, commit) for Flipt v1 storage backends, sent as `?reference=` on snapshot requests.
    package var reference: String?
    /// The credential; it can be replaced at run time with ``SnapshotFetcher/updateAuthentication(_:)``.
    package var authentication: Authentication
    /// A total deadline for each attempt (connect, headers and body); nil means none. Not applied to streams.
    package var requestTimeout: Duration?
    /// The time between the end of one poll and the start of the next (polling mode).
    package var updateInterval: Duration
    /// How much each wait between polls may differ from ``updateInterval``, as a fraction in `0...1`: each wait is
    /// uniform in `updateInterval × (1 ± jitter)`, so a fleet of devices does not poll in lock-step.
    package var jitter: Double
    /// Polling or streaming.
    package var fetchMode: FetchMode
    /// Transport security.
    package var tls: TLSOptions
    /// The `User-Agent` header.
    package var userAgent: String
    /// Retries of a single request (its state is fresh for every request).
    package var retryPolicy: RetryPolicy
    /// Stream reconnection back-off (streaming mode).
    package var reconnectPolicy: ReconnectPolicy
    /// The `X-Flipt-Accept-Server-Version` value; v1 servers strip newer fields below `1.47.0`.
    package var acceptServerVersion: String
    /// The largest snapshot document accepted, in bytes as decoded: a polled body or a stream line over it fails
    /// (``SyncError/Kind/badDocument``) instead of growing without bound.
    package var maximumDocumentSize = SyncConfiguration.defaultMaximumDocumentSize

    /// The default of ``maximumDocumentSize``: 64 MiB, five times a 10,000-flag document.
    package static let defaultMaximumDocumentSize = 64 << 20

    /// Creates a configuration; only the URL is required.
    package init(
        url: URL,
        namespace: String = "default",
        environment: String = "default",
        reference: String? = nil,
        authentication: Authentication = .none,
        requestTimeout: Duration? = nil,
        updateInterval: Duration = .seconds(120),
        jitter: Double = 0.1,
        fetchMode: FetchMode = .polling,
        tls: TLSOptions = TLSOptions(),
        userAgent: String = SyncConfiguration.defaultUserAgent,
        retryPolicy: RetryPolicy = RetryPolicy(),
        reconnectPolicy: ReconnectPolicy = ReconnectPolicy(),
        acceptServerVersion: String = "1.47.0"
    ) {
        self.url = url
        self.namespace = namespace
        self.environment = environment
        self.reference = reference
        self.authentication = authentication
        self.requestTimeout = requestTimeout
        self.updateInterval = updateInterval
        self.jitter = jitter
        self.fetchMode = fetchMode
        self.tls = tls
        self.userAgent = userAgent
        self.retryPolicy = retryPolicy
        self.reconnectPolicy = reconnectPolicy
        self.acceptServerVersion = acceptServerVersion
    }

    /// Checks the configuration; throws a ``SyncError/Kind/configuration`` error that says what to change.
    package func validate() throws(SyncError) {
        func fail(_ message: String) -> SyncError { SyncError(.configuration, message) }
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw fail("The Flipt URL must start with http:// or https://; got \"\(Self.redacted(url))\".")
        }
        guard let host = url.host, !host.isEmpty else {
            throw fail("The Flipt URL has no host; use a URL such as https://flipt.example.com.")
        }
        if let port = url.port, !(1...65_535).contains(port) {
            throw fail("The Flipt URL's port \(port) is not a TCP port (1 to 65535); check the URL.")
        }
        guard url.query == nil, url.fragment == nil else {
            throw fail("The Flipt URL must not have a query or fragment; set `reference` instead of a query.")
        }
        guard url.user == nil, url.password == nil else {
            throw fail("The Flipt URL must not carry a user or password; use `authentication` instead.")
        }
        guard !namespace.isEmpty else { throw fail("The namespace is empty; set it to a namespace key.") }
        guard !environment.isEmpty else { throw fail("The environment is empty; use \"default\" if unsure.") }
        guard updateInterval > .zero else { throw fail("The update interval must be positive.") }
        if let requestTimeout, requestTimeout <= .zero {
            throw fail("The request timeout must be positive; use nil for no timeout.")
        }
        guard (0...1).contains(jitter) else { throw fail("The jitter must be a fraction between 0 and 1.") }
        guard maximumDocumentSize >= 1024 else {
            throw fail("The maximum document size must be at least 1024 bytes (default 64 MiB).")
        }
        if let problem = authentication.problem { throw fail(problem) }
        try retryPolicy.validate()
        try reconnectPolicy.validate()
    }

    /// The snapshot endpoint: `{url}/internal/v1/evaluation/snapshot/namespace/{namespace}[?reference=…]`.
    package var snapshotURL: URL {
        var text = Self.base(url) + "/internal/v1/evaluation/snapshot/namespace/" + Self.pathSegment(namespace)
        if let reference, !reference.isEmpty { text += "?reference=" + Self.queryValue(reference) }
        return URL(string: text)!
    }

    /// The stream endpoint: `{url}/client/v2/environments/{environment}/namespaces/{namespace}/stream`.
    package var streamURL: URL {
        URL(
            string: Self.base(url) + "/client/v2/environments/" + Self.pathSegment(environment) + "/namespaces/"
                + Self.pathSegment(namespace) + "/stream"
        )!
    }

    private static func base(_ url: URL) -> String {
        var text = url.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )

    private static func pathSegment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static func queryValue(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    static func redacted(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "<url>" }
        if components.password != nil { components.password = "redacted" }
        return components.string ?? "<url>"
    }
}
