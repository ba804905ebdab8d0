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
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
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
