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
