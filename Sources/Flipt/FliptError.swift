import FliptEngine
import FliptStore
import FliptSync

/// An error from a ``FliptClient``: a stable code to branch on, a message that says what happened and what to
/// do, and the underlying error when there is one.
///
/// Messages never contain credentials. Evaluation errors carry the official engine's messages, so logs read
/// the same as with the official SDKs (`invalid request: failed to get flag information default/my-flag`).
public struct FliptError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, stable across releases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidConfiguration = "invalid_configuration"
            case invalidRequest = "invalid_request"
            case flagNotFound = "flag_not_found"
            case wrongFlagType = "wrong_flag_type"
            case namespaceMismatch = "namespace_mismatch"
            case noData = "no_data"
            case fetchFailed = "fetch_failed"
            case stale
            case invalidSnapshot = "invalid_snapshot"
            case cache
            case timedOut = "timed_out"
            case closed
            case offline
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The options cannot work (a bad URL, an empty namespace, a cache path that cannot be used).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The request is malformed: an empty flag key or entity id.
        public static let invalidRequest = Code(.invalidRequest)
        /// The namespace has no flag with that key.
        public static let flagNotFound = Code(.flagNotFound)
        /// A variant evaluation of a boolean flag, or the reverse.
        public static let wrongFlagType = Code(.wrongFlagType)
        /// The snapshot belongs to another namespace (only possible with a seed given by hand).
        public static let namespaceMismatch = Code(.namespaceMismatch)
        /// There is no flag data yet: no cached snapshot, no seed, and the first fetch has not completed.
        public static let noData = Code(.noData)
        /// The latest fetch failed and the error strategy is ``ErrorStrategy/fail``.
        public static let fetchFailed = Code(.fetchFailed)
        /// The snapshot is older than the maximum age and the stale behaviour is ``StaleBehavior/fail``.
        public static let stale = Code(.stale)
        /// A snapshot string or document given to the client cannot be used.
        public static let invalidSnapshot = Code(.invalidSnapshot)
        /// The cache file could not be read or written.
        public static let cache = Code(.cache)
        /// A bounded wait ended before the awaited state was reached.
        public static let timedOut = Code(.timedOut)
        /// The client was closed.
        public static let closed = Code(.closed)
        /// The client is offline (``FliptClient/setOffline(_:)``, ``ClientOptions/startsOffline``, or a client
        /// fed by `FliptTesting`), so it does not fetch.
        public static let offline = Code(.offline)

        /// The snake_case name of the code.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// What happened and what to do.
    public let message: String
    /// The error this one wraps (a fetch, engine or cache error), if any.
    public let underlying: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// The message.
    public var description: String { message }

    /// Errors are equal when their codes and messages are.
    public static func == (lhs: FliptError, rhs: FliptError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    /// Hashes the code and the message.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}

extension FliptError {
    /// Wraps an engine error, keeping its official message.
    init(_ error: EvaluationError) {
        let code: Code =
            switch error.kind {
            case .flagNotFound: .flagNotFound
            case .wrongFlagType: .wrongFlagType
            case .namespaceMismatch: .namespaceMismatch
            }
        self.init(code, error.message, underlying: error)
    }

    /// Wraps a fetch error.
    init(_ error: SyncError) {
        self.init(.fetchFailed, error.message, underlying: error)
    }

    /// Wraps a cache error.
    init(_ error: StoreError, doing what: String) {
        self.init(.cache, "\(what): \(error)", underlying: error)
    }
}
