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
