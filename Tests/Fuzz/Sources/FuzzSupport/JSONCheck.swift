import Foundation

/// Independent JSON checks through Foundation's parser, used as an oracle by the harnesses.
public enum JSONCheck {
    /// The top-level object of `bytes` as Foundation parses it, or nil when it is not valid JSON or not an object.
    public static func object(_ bytes: some Collection<UInt8>) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// Whether `bytes` is one valid JSON value of any kind (fragments allowed).
    public static func isValue(_ bytes: some Collection<UInt8>) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil
    }
}
