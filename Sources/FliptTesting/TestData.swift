import Flipt
import Foundation
import Synchronization

/// The flags and segments of one namespace, built in code, and the ``Flipt/FliptClient``s that evaluate them with
/// no server and no cache file.
///
/// ```swift
/// let data = TestData()
/// try data.update(.all("pro-users", .string("plan", .equals("pro"))))
/// try data.update(
///     .variant("checkout", variants: ["classic", "express"], default: "classic")
///         .rule(matching: ["pro-users"], serve: "express")
/// )
/// let client = try data.makeClient()
/// #expect(try client.evaluateVariant(flagKey: "checkout", entityID: "u1", context: ["plan": "pro"]).variantKey
///     == "express")
///
/// try data.update(.boolean("dark-mode", value: true))   // reaches `client` at once, with its change events
/// ```
///
/// Every change (``update(_:)-(Flag)``, ``update(_:)-(Segment)``, ``removeFlag(_:)``, ``removeSegment(_:)``)
/// builds a new snapshot document, the same Flipt v2 JSON a server sends, and replaces the snapshot of every live
/// client made by ``makeClient(options:)``: evaluations see it at once, and ``Flipt/FliptClient/events()`` and
/// ``Flipt/FliptClient/changes(of:)`` report which flags it added, removed or changed, as they do for a fetch.
/// Evaluation is the client's own, which answers as Flipt's official engine does.
///
/// Safe to use from any task; changes are applied in the order they are made.
public final class TestData: Sendable {
    /// The namespace key of the documents and of the clients.
    public let namespace: String

    private struct State {
        var flags: [Flag] = []
        var segments: [String: Segment] = [:]
        var clients: [WeakClient] = []
    }

    private struct WeakClient {
        weak var client: FliptClient?
    }

    private let state = Mutex(State())

    /// Creates empty test data for `namespace` (default `default`): no flags, no segments.
    public init(namespace: String = "default") {
        self.namespace = namespace
    }

    // MARK: Changes

    /// Adds a flag, or replaces the flag with the same key in place, and updates every live client.
    ///
    /// - Throws: ``Flipt/FliptError/Code/invalidConfiguration`` when the flag is not one Flipt would store (an
    ///   empty key, repeated variant keys, a default variant or a distribution naming an unknown variant, a rule or
    ///   rollout naming a segment that was not added, a percentage outside 0…100). Nothing changes then.
    public func update(_ flag: Flag) throws(FliptError) {
        try change { state throws(FliptError) in
            try flag.validate(segments: state.segments)
            if let position = state.flags.firstIndex(where: { $0.key.utf8.elementsEqual(flag.key.utf8) }) {
                state.flags[position] = flag
            } else {
                state.flags.append(flag)
            }
        }
    }

    /// Adds a segment, or replaces the segment with the same key, and updates every live client. Every flag whose
    /// rules or rollouts use the segment changes with it.
    ///
    /// - Throws: ``Flipt/FliptError/Code/invalidConfiguration`` for an empty key.
    public func update(_ segment: Segment) throws(FliptError) {
        try change { state throws(FliptError) in
            guard !segment.key.isEmpty else {
                throw FliptError(.invalidConfiguration, "A segment needs a key; pass a non-empty one.")
            }
            state.segments[segment.key] = segment
        }
    }

    /// Removes the flag with this key (if any) and updates every live client; evaluating it then throws
    /// ``Flipt/FliptError/Code/flagNotFound``.
    public func removeFlag(_ key: String) {
        try? change { state in
            state.flags.removeAll { $0.key.utf8.elementsEqual(key.utf8) }
        }
    }

    /// Removes the segment with this key and updates every live client.
    ///
    /// - Throws: ``Flipt/FliptError/Code/invalidConfiguration`` while a flag uses it (as Flipt refuses to delete
    ///   a segment in use); remove or update those flags first.
    public func removeSegment(_ key: String) throws(FliptError) {
        try change { state throws(FliptError) in
            let users = state.flags.filter { $0.segmentKeys.contains(key) }.map(\.key)
            guard users.isEmpty else {
                throw FliptError(
                    .invalidConfiguration,
                    "Segment \"\(key)\" is used by flag(s) \(users.joined(separator: ", ")); remove or update them "
                        + "first."
                )
            }
            state.segments[key] = nil
        }
    }

    /// Applies `edit` to a copy of the state, and when it succeeds, keeps it and sends the new document to the live
    /// clients, in order (under the lock: replacing a client's snapshot never calls back into this object).
    private func change(_ edit: (inout State) throws(FliptError) -> Void) throws(FliptError) {
        try state.withLock { state throws(FliptError) in
            var edited = state
            try edit(&edited)
            edited.clients.removeAll { $0.client == nil }
            state = edited
            let document = Self.document(namespace: namespace, flags: state.flags, segments: state.segments)
            for entry in state.clients {
                // A document built here is always valid; a closed client no longer takes replacements.
                _ = try? entry.client?.replaceSnapshot(with: document)
            }
        }
    }

    // MARK: Documents and clients

    /// The snapshot document of the current flags, as a Flipt v2 server sends it (UTF-8 JSON).
    ///
    /// Use it as ``Flipt/ClientOptions/snapshot`` of any client, serve it from a test server, or write it to a file
    /// for `flipt-offline cache import`.
    public var document: Data {
        Data(state.withLock { Self.document(namespace: namespace, flags: $0.flags, segments: $0.segments) })
    }

    /// The snapshot document as a string (see ``document``).
    public var json: String {
        String(decoding: document, as: UTF8.self)
    }

    /// The current flags, in the order they were first added.
    public var flags: [Flag] { state.withLock { $0.flags } }

    /// The current segments, by key.
    public var segments: [String: Segment] { state.withLock { $0.segments } }

    /// Creates a client over the current flags that never touches the network or a cache file, and that every
    /// later change of this object reaches.
    ///
    /// - Parameter options: everything but the server and the cache is used as given (the error strategy, the
    ///   maximum age, the logger and so on); ``Flipt/ClientOptions/snapshot`` and ``Flipt/ClientOptions/cache``'s
    ///   location are replaced (no file: ``Flipt/CacheOptions/Location/disabled``).
    /// - Returns: a client that is ready at once (``Flipt/FliptClient/waitUntilReady(timeout:)`` returns
    ///   immediately), whose ``Flipt/FliptClient/status`` shows source ``Flipt/DataSource/seed``, and that stays
    ///   offline (``Flipt/FliptClient/refresh()`` returns ``Flipt/RefreshResult/failed(_:)`` with
    ///   ``Flipt/FliptError/Code/offline``).
    /// - Throws: the errors of ``Flipt/FliptClient/init(namespace:options:)`` for options that cannot work.
    public func makeClient(options: ClientOptions = ClientOptions()) throws(FliptError) -> FliptClient {
        var options = options
        options.cache.location = .disabled
        options.isFedInProcess = true
        return try state.withLock { state throws(FliptError) -> FliptClient in
            let document = Self.document(namespace: namespace, flags: state.flags, segments: state.segments)
            options.snapshot = String(decoding: document, as: UTF8.self)
            let client = try FliptClient(namespace: namespace, options: options)
            state.clients.removeAll { $0.client == nil }
            state.clients.append(WeakClient(client: client))
            return client
        }
    }
}
