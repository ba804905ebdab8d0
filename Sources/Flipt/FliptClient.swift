import FliptEngine
import FliptStore
import FliptSync
import Foundation

/// Evaluates Flipt feature flags locally, from a snapshot of one namespace that it keeps fresh in the background
/// and keeps in a SQLite cache, so that it answers at once after a restart, even with no network.
///
/// ```swift
/// let client = try FliptClient(
///     namespace: "default",
///     options: ClientOptions(url: "https://flipt.example.com", authentication: .clientToken(token),
///                            errorStrategy: .fallback)
/// )
/// let result = try client.evaluateVariant(flagKey: "new-checkout", entityID: "user-42", context: ["plan": "pro"])
/// print(result.variantKey)
/// ```
///
/// Initialising never waits for the network: the last good snapshot for (url, environment, namespace, reference)
/// is loaded from the cache, or the seed from ``ClientOptions/snapshot``, and a background task starts fetching.
/// Evaluation is synchronous, never waits on I/O, and is safe from any thread or task. Call ``close()`` (or drop
/// the last reference) to stop the background work.
public final class FliptClient: Sendable {
    /// The namespace the client evaluates.
    public let namespace: String
    /// The options the client was created with.
    public var options: ClientOptions { core.options }

    let core: ClientCore

    /// Creates a client and starts syncing in the background.
    ///
    /// - Parameters:
    ///   - namespace: the namespace to evaluate (default `default`).
    ///   - options: the server, credentials, fetch mode, error strategy and cache.
    /// - Throws: ``FliptError/Code/invalidConfiguration`` for options that cannot work or a cache location that
    ///   cannot be used, and ``FliptError/Code/invalidSnapshot`` for a seed that is not a valid snapshot. Never
    ///   for network problems: those surface through evaluations (``ErrorStrategy/fail``) and ``status``.
    public init(namespace: String = "default", options: ClientOptions = ClientOptions()) throws(FliptError) {
        self.namespace = namespace
        core = try ClientCore(namespace: namespace, options: options)
        core.start()
    }

    /// Creates a client that evaluates from the cache or seed at once and starts syncing only when its ``run()``
    /// runs: the form for a `ServiceGroup`, which then owns the client's lifetime.
    ///
    /// - Parameters:
    ///   - namespace: the namespace to evaluate (default `default`).
    ///   - options: the server, credentials, fetch mode, error strategy and cache.
    ///   - startsSyncing: `true` to start syncing now, as ``init(namespace:options:)`` does; `false` to wait for
    ///     ``run()``.
    /// - Throws: the errors of ``init(namespace:options:)``.
    public init(
        namespace: String = "default",
        options: ClientOptions = ClientOptions(),
        startsSyncing: Bool
    )
        throws(FliptError)
    {
        self.namespace = namespace
        core = try ClientCore(namespace: namespace, options: options)
        if startsSyncing { core.start() }
    }

    deinit {
        core.close()
    }

    // MARK: Evaluation

    /// Evaluates a variant flag for an entity.
    ///
    /// - Throws: ``FliptError/Code/invalidRequest`` for an empty flag key or entity id,
    ///   ``FliptError/Code/flagNotFound``, ``FliptError/Code/wrongFlagType``, and the data errors described on
    ///   ``FliptError/Code`` (no data yet, a failed fetch under ``ErrorStrategy/fail``, a stale snapshot).
    public func evaluateVariant(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:]
    ) throws(FliptError) -> VariantEvaluationResponse {
        try evaluateVariant(flagKey: flagKey, entityID: entityID, context: EvaluationContext(context))
    }

    /// Evaluates a variant flag for an entity whose properties are an ``EvaluationContext``.
    ///
    /// The same as the `[String: String]` form, for callers that evaluate the same entity many times: build the
    /// context once and pass it to each call. Looking a property up in an `EvaluationContext` costs a fraction of
    /// a lookup in a dictionary, and its keys are compared byte for byte as the official engine does (a
    /// `[String: String]` merges canonically equivalent keys such as "é" and "e\u{301}").
    ///
    /// - Throws: the errors of the `[String: String]` form.
    public func evaluateVariant(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(FliptError) -> VariantEvaluationResponse {
        if _slowPath(core.instrumentation.observesEvaluations) {
            return try observedVariant(flagKey: flagKey, entityID: entityID, context: context)
        }
        try Self.validate(flagKey: flagKey, entityID: entityID)
        return try core.evaluate { (evaluator) throws(EvaluationError) in
            try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
        }
    }

    /// Evaluates a boolean flag for an entity.
    ///
    /// - Throws: the errors of ``evaluateVariant(flagKey:entityID:context:)``.
    public func evaluateBoolean(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:]
    ) throws(FliptError) -> BooleanEvaluationResponse {
        try evaluateBoolean(flagKey: flagKey, entityID: entityID, context: EvaluationContext(context))
    }

    /// Evaluates a boolean flag for an entity whose properties are an ``EvaluationContext``.
    ///
    /// The same as the `[String: String]` form, for callers that evaluate the same entity many times: build the
    /// context once and pass it to each call. Looking a property up in an `EvaluationContext` costs a fraction of
    /// a lookup in a dictionary, and its keys are compared byte for byte as the official engine does (a
    /// `[String: String]` merges canonically equivalent keys such as "é" and "e\u{301}").
    ///
    /// - Throws: the errors of the `[String: String]` form.
    public func evaluateBoolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(FliptError) -> BooleanEvaluationResponse {
        if _slowPath(core.instrumentation.observesEvaluations) {
            return try observedBoolean(flagKey: flagKey, entityID: entityID, context: context)
        }
        try Self.validate(flagKey: flagKey, entityID: entityID)
        return try core.evaluate { (evaluator) throws(EvaluationError) in
            try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
        }
    }

    /// Evaluates several flags at once, each by its own type; a missing flag gives an error item, not an error.
    ///
    /// - Throws: ``FliptError/Code/invalidRequest`` when a request has an empty flag key or entity id, and the
    ///   data errors described on ``FliptError/Code``.
    public func evaluateBatch(requests: [EvaluationRequest]) throws(FliptError) -> BatchEvaluationResponse {
        for (index, request) in requests.enumerated() {
            try Self.validate(flagKey: request.flagKey, entityID: request.entityID, index: index)
        }
        return try core.currentEvaluator().batch(requests)
    }

    /// Lists the flags of the namespace, in document order.
    ///
    /// - Throws: the data errors described on ``FliptError/Code``.
    public func listFlags() throws(FliptError) -> [Flag] {
        do {
            return try core.currentEvaluator().listFlags()
        } catch let error as FliptError {
            throw error
        } catch let error as EvaluationError {
            throw FliptError(error)
        } catch {
            throw FliptError(.invalidRequest, "\(error)")
        }
    }

    /// Throws the error for a blank flag key or entity id; for the hook machinery in other files, out of line so
    /// that the evaluation forms keep their own inlined check.
    @inline(never)
    static func validateKeys(flagKey: String, entityID: String) throws(FliptError) {
        try validate(flagKey: flagKey, entityID: entityID)
    }

    @inline(__always)
    static func validate(flagKey: String, entityID: String, index: Int? = nil) throws(FliptError) {
        if isBlank(flagKey) || isBlank(entityID) { try reportBlank(flagKey: flagKey, entityID: entityID, index: index) }
    }

    /// Throws the error for a blank flag key or entity id (the rare path, kept out of line).
    @inline(never)
    private static func reportBlank(flagKey: String, entityID: String, index: Int?) throws(FliptError) {
        if isBlank(flagKey) {
            let place = index.map { " (request \($0))" } ?? ""
            throw FliptError(.invalidRequest, "flag_key cannot be empty or blank\(place); pass the key of a flag.")
        }
        if isBlank(entityID) {
            let place = index.map { " (request \($0))" } ?? ""
            throw FliptError(
                .invalidRequest,
                "entity_id cannot be empty or blank\(place); pass the id of the user or device evaluated."
            )
        }
    }

    /// Whether `text` is empty or only white space. Keys almost always start with a visible ASCII character, which
    /// answers at once without walking grapheme clusters.
    @inline(__always)
    private static func isBlank(_ text: String) -> Bool {
        // `String.isEmpty` inlines; `utf8.isEmpty` (Collection's) was a call where the hooks' path inlines this.
        if text.isEmpty { return true }
        let utf8 = text.utf8
        let first = utf8[utf8.startIndex]
        if first > 0x20 && first < 0x7F { return false }
        return text.allSatisfy(\.isWhitespace)
    }

    // MARK: Snapshot

    /// The snapshot in use, as a string that another client accepts as ``ClientOptions/snapshot`` and that
    /// `flipt-offline cache import` accepts: standard base64 of the snapshot document (Flipt's wire format).
    ///
    /// Unlike the official SDKs it returns the last good snapshot even while the latest fetch has failed.
    /// - Throws: ``FliptError/Code/noData`` when the client has no snapshot yet.
    public func getSnapshot() throws(FliptError) -> String {
        guard let document = core.state.withLock({ $0.served?.document }) else {
            throw FliptError(
                .noData,
                "There is no snapshot to export yet for namespace \"\(namespace)\": no cached or seeded data, "
                    + "and no fetch has completed."
            )
        }
        return SnapshotString.encode(document.bytes())
    }

    // MARK: Status and events

    /// Where the data in use came from, how old it is, and how the last fetch went.
    public var status: ClientStatus { core.status() }

    /// A stream of changes: snapshot replaced, became stale, fetch failed, recovered. Each call returns a new
    /// stream; it finishes when the client closes. Events that arrive while nobody reads are buffered (the
    /// newest 256).
    public func events() -> AsyncStream<ClientEvent> { core.events() }

    /// Waits until a fetch has succeeded (a new snapshot or a `304` confirming the cached one), at most
    /// `timeout`. Returns at once if one already has.
    ///
    /// Evaluations do not need this: they answer from the cache or seed at once. Use it where fresh data
    /// matters more than starting quickly.
    /// - Throws: ``FliptError/Code/timedOut`` (carrying the last fetch error, if any) or
    ///   ``FliptError/Code/closed``.
    public func waitUntilReady(timeout: Duration) async throws(FliptError) {
        try await core.waitUntilReady(timeout: timeout)
    }

    // MARK: Credentials and lifecycle

    /// Replaces the credential; the next request, and the next stream connection, use it. An open stream is
    /// not interrupted (the server checks credentials only when a stream opens).
    ///
    /// - Throws: ``FliptError/Code/invalidConfiguration`` when the token is empty or holds a line break or another
    ///   control character, which an HTTP header cannot carry; the credential in use is kept. The error names no
    ///   part of the token.
    public func updateAuthentication(_ authentication: Authentication) throws(FliptError) {
        if let problem = authentication.problem { throw FliptError(.invalidConfiguration, problem) }
        core.fetcher.updateAuthentication(authentication)
    }

    /// Stops the background sync. Returns at once, even with a request or stream in flight; idempotent.
    ///
    /// Evaluations keep answering from the snapshot in use after `close()`.
    public func close() {
        core.close()
    }

    /// Stops the background sync and waits until it has ended, so no cache write follows.
    public func shutdown() async {
        await core.closeAndWait()
    }
}
