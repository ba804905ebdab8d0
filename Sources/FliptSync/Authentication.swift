/// How requests authenticate to the Flipt server.
///
/// The token never appears in descriptions, mirrors, logs or errors.
public enum Authentication: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// No `Authorization` header.
    case none
    /// A Flipt client token, sent as `Authorization: Bearer <token>`.
    case clientToken(String)
    /// A JSON Web Token, sent as `Authorization: JWT <token>`.
    case jwt(String)

    /// The `Authorization` header value, or nil for ``none``.
    package var authorizationHeaderValue: String? {
        switch self {
        case .none: nil
        case .clientToken(let token): "Bearer \(token)"
        case .jwt(let token): "JWT \(token)"
        }
    }

    /// Why the token cannot be sent, naming no part of it; nil when it can (or for ``none``).
    ///
    /// A token must not be empty, and must hold no control character (a line break, a NUL, DEL; a tab is fine),
    /// which an HTTP header value cannot carry.
    package var problem: String? {
        switch self {
        case .none:
            return nil
        case .clientToken(let token), .jwt(let token):
            if token.isEmpty { return "The authentication token is empty; check how it is loaded." }
            if token.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
                return "The authentication token contains a line break or another control character, which an "
                    + "HTTP header cannot carry; check how it is loaded."
            }
            return nil
        }
    }

    /// The scheme without the token: `none`, `clientToken(<redacted>)` or `jwt(<redacted>)`.
    public var description: String {
        switch self {
        case .none: "none"
        case .clientToken: "clientToken(<redacted>)"
        case .jwt: "jwt(<redacted>)"
        }
    }

    /// Same as ``description``: the token is redacted.
    public var debugDescription: String { description }

    /// A mirror without children, so `dump` cannot print the token.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .enum) }
}
