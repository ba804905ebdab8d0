/// Evaluates flags of one snapshot for a client configured with a namespace, with the official engine's
/// semantics (variant, boolean, batch and flag listing).
///
/// Evaluation never blocks and never allocates beyond the result; an `Evaluator` is a cheap value that can be
/// created per snapshot and shared across threads.
public struct Evaluator: Sendable {
    /// The snapshot evaluated.
    public let snapshot: Snapshot
    /// The client's configured namespace.
    public let namespace: String
    /// Whether the document's namespace equals the configured one (byte for byte); when not, every lookup fails.
    private let namespaceMatches: Bool

    /// Creates an evaluator for `snapshot` in a client configured with `namespace`.
    public init(snapshot: Snapshot, namespace: String) {
        self.snapshot = snapshot
        self.namespace = namespace
        namespaceMatches = snapshot.namespaceKey.bytesEqual(namespace)
    }

    @inline(__always)
    private func lookUp(_ flagKey: String) -> CompiledFlag? {
        guard namespaceMatches else { return nil }
        return snapshot.flag(forKey: flagKey)
    }

    /// Evaluates a variant flag for an entity.
    ///
    /// - Throws: `EvaluationError` when the flag does not exist in the namespace or is a boolean flag.
    public func variant(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(EvaluationError)
        -> VariantResult
    {
        let start = EvaluationTimestamp.now()
        guard let flag = lookUp(flagKey) else {
            throw .flagNotFound(namespace: namespace, flagKey: flagKey)
        }
        guard flag.type == .variant else { throw .notVariant(flagKey: flagKey) }
        return evaluateVariant(flag, entityID: entityID, context: context, start: start)
    }

    /// Evaluates a boolean flag for an entity.
    ///
    /// - Throws: `EvaluationError` when the flag does not exist in the namespace or is a variant flag.
    public func boolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(EvaluationError)
        -> BooleanResult
    {
        let start = EvaluationTimestamp.now()
        guard let flag = lookUp(flagKey) else {
            throw .flagNotFound(namespace: namespace, flagKey: flagKey)
        }
        guard flag.type == .boolean else { throw .notBoolean(flagKey: flagKey) }
        return evaluateBoolean(flag, entityID: entityID, context: context, start: start)
    }

    /// Evaluates each request by its flag's actual type, in order. Unknown flags give error responses; the batch
    /// itself never fails.
    public func batch(_ requests: [EvaluationRequest]) -> BatchResult {
        let start = EvaluationTimestamp.now()
        var responses: [BatchResponse] = []
        responses.reserveCapacity(requests.count)
        for request in requests {
            let itemStart = EvaluationTimestamp.now()
            guard let flag = lookUp(request.flagKey) else {
                responses.append(
                    .error(BatchErrorResult(flagKey: request.flagKey, namespaceKey: namespace, reason: .notFound))
                )
                continue
            }
            switch flag.type {
            case .variant:
                responses.append(
                    .variant(
                        evaluateVariant(flag, entityID: request.entityID, context: request.context, start: itemStart)
                    )
                )
            case .boolean:
                responses.append(
                    .boolean(
                        evaluateBoolean(flag, entityID: request.entityID, context: request.context, start: itemStart)
                    )
                )
            }
        }
        return BatchResult(
            responses: responses,
            requestDurationMillis: start.wholeMilliseconds(until: .now())
        )
    }

    /// Lists the flags of the namespace, in document order.
    ///
    /// - Throws: `EvaluationError` when the document's namespace is not the configured one.
    public func listFlags() throws(EvaluationError) -> [FlagSummary] {
        guard namespaceMatches else { throw .flagsUnavailable(namespace: namespace) }
        return snapshot.flags.map(\.summary)
    }

    // MARK: Evaluation proper

    private func evaluateVariant(
        _ flag: CompiledFlag,
        entityID: String,
        context: EvaluationContext,
        start: EvaluationTimestamp
    ) -> VariantResult {
        var reason = EvaluationReason.unknown
        var variantKey = ""
        var attachment: String?
        if let defaultVariant = flag.defaultVariant {
            reason = .default
            variantKey = defaultVariant.key
            attachment = defaultVariant.attachment
        }
        var match = false
        var segmentKeys: [String] = []
        if !flag.isEnabled {
            reason = .flagDisabled
        } else if !flag.rules.isEmpty {
            snapshot.arena.withView { arena in
                entityID.withUTF8Bytes { entity in
                    let input = EvaluationInput(context: context, entityID: entity, arena: arena)
                    flag.rules.withUnsafeBufferPointer { rules in
                        for index in rules.indices {
                            guard let keys = rules[index].group.match(input) else { continue }
                            match = true
                            segmentKeys = keys
                            reason = .match
                            var checksum = flag.keyChecksum
                            checksum.update(entity)
                            if let distribution = rules[index].distribution(forBucket: checksum.value % 1000) {
                                variantKey = distribution.variantKey
                                attachment = distribution.attachment
                            }
                            return
                        }
                    }
                }
            }
        }
        return VariantResult(
            flagKey: flag.key,
            isMatch: match,
            segmentKeys: segmentKeys,
            reason: reason,
            variantKey: variantKey,
            variantAttachment: attachment,
            requestDurationMillis: start.wholeMilliseconds(until: .now()),
            evaluatedAt: start
        )
    }

    private func evaluateBoolean(
        _ flag: CompiledFlag,
        entityID: String,
        context: EvaluationContext,
        start: EvaluationTimestamp
    ) -> BooleanResult {
        var enabled = flag.isEnabled
        var reason: EvaluationReason = !flag.isEnabled && !flag.hasRolloutEntries ? .flagDisabled : .default
        var segmentKeys: [String] = []
        if !flag.rollouts.isEmpty {
            snapshot.arena.withView { arena in
                entityID.withUTF8Bytes { entity in
                    let input = EvaluationInput(context: context, entityID: entity, arena: arena)
                    flag.rollouts.withUnsafeBufferPointer { rollouts in
                        for index in rollouts.indices {
                            switch rollouts[index] {
                            case .threshold(let percentage, let value):
                                var checksum = CRC32()
                                checksum.update(entity)
                                checksum.update(flag.key)
                                guard Float(checksum.value % 100) < percentage else { continue }
                                enabled = value
                                reason = .match
                                return
                            case .segment(let group, let value):
                                guard let keys = group.match(input) else { continue }
                                enabled = value
                                reason = .match
                                segmentKeys = keys
                                return
                            }
                        }
                    }
                }
            }
        }
        return BooleanResult(
            flagKey: flag.key,
            isEnabled: enabled,
            reason: reason,
            segmentKeys: segmentKeys,
            requestDurationMillis: start.wholeMilliseconds(until: .now()),
            evaluatedAt: start
        )
    }
}
