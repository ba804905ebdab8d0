/// Evaluates flags of one snapshot for a client configured with a namespace, with the official engine's
/// semantics (variant, boolean, batch and flag listing).
///
/// Evaluation never blocks and never allocates beyond the result; an `Evaluator` is a cheap value that can be
/// created per snapshot and shared across threads.
package struct Evaluator: Sendable {
    /// The snapshot evaluated.
    package let snapshot: Snapshot
    /// The client's configured namespace.
    package let namespace: String
    /// Whether the document's namespace equals the configured one (byte for byte); when not, every lookup fails.
    private let namespaceMatches: Bool
    /// CRC-32's tables, kept here so that bucketing does not check the lazy global's initialisation each time.
    private let checksumTables = CRC32.tables

    /// Creates an evaluator for `snapshot` in a client configured with `namespace`.
    package init(snapshot: Snapshot, namespace: String) {
        self.snapshot = snapshot
        self.namespace = namespace
        namespaceMatches = snapshot.namespaceKey.bytesEqual(namespace)
    }

    /// The byte offset of the flag's record in the program, or nil when the namespace does not match or the flag
    /// does not exist.
    @inline(__always)
    private func lookUp(_ flagKey: String) -> Int? {
        guard namespaceMatches else { return nil }
        return flagKey.withUTF8Bytes { snapshot.program.offset(ofKey: $0) }
    }

    /// Evaluates a variant flag for an entity.
    ///
    /// - Throws: `EvaluationError` when the flag does not exist in the namespace or is a boolean flag.
    package func variant(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(EvaluationError)
        -> VariantResult
    {
        let start = EvaluationStart.now()
        guard let flag = lookUp(flagKey) else {
            throw .flagNotFound(namespace: namespace, flagKey: flagKey)
        }
        guard !snapshot.program.flag(at: flag).isBoolean else { throw .notVariant(flagKey: flagKey) }
        return evaluateVariant(at: flag, flagKey: flagKey, entityID: entityID, context: context, start: start)
    }

    /// Evaluates a boolean flag for an entity.
    ///
    /// - Throws: `EvaluationError` when the flag does not exist in the namespace or is a variant flag.
    package func boolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(EvaluationError)
        -> BooleanResult
    {
        let start = EvaluationStart.now()
        guard let flag = lookUp(flagKey) else {
            throw .flagNotFound(namespace: namespace, flagKey: flagKey)
        }
        guard snapshot.program.flag(at: flag).isBoolean else { throw .notBoolean(flagKey: flagKey) }
        return evaluateBoolean(at: flag, flagKey: flagKey, entityID: entityID, context: context, start: start)
    }

    /// Evaluates each request by its flag's actual type, in order. Unknown flags give error responses; the batch
    /// itself never fails.
    package func batch(_ requests: [EvaluationRequest]) -> BatchResult {
        let start = EvaluationStart.now()
        var responses: [BatchResponse] = []
        responses.reserveCapacity(requests.count)
        for request in requests {
            let itemStart = EvaluationStart.now()
            guard let flag = lookUp(request.flagKey) else {
                responses.append(
                    .error(BatchErrorResult(flagKey: request.flagKey, namespaceKey: namespace, reason: .notFound))
                )
                continue
            }
            if snapshot.program.flag(at: flag).isBoolean {
                responses.append(
                    .boolean(
                        evaluateBoolean(
                            at: flag,
                            flagKey: request.flagKey,
                            entityID: request.entityID,
                            context: request.context,
                            start: itemStart
                        )
                    )
                )
            } else {
                responses.append(
                    .variant(
                        evaluateVariant(
                            at: flag,
                            flagKey: request.flagKey,
                            entityID: request.entityID,
                            context: request.context,
                            start: itemStart
                        )
                    )
                )
            }
        }
        return BatchResult(
            responses: responses,
            requestDurationMillis: start.wholeMillisecondsElapsed()
        )
    }

    /// Lists the flags of the namespace, in document order.
    ///
    /// - Throws: `EvaluationError` when the document's namespace is not the configured one.
    package func listFlags() throws(EvaluationError) -> [FlagSummary] {
        guard namespaceMatches else { throw .flagsUnavailable(namespace: namespace) }
        return snapshot.summaries
    }

    // MARK: Evaluation proper
    //
    // `flagKey` is the requested key, whose bytes equal the flag's: results carry it, so that building one
    // retains nothing of the snapshot's but the strings a rule chose.

    @inline(__always)
    private func evaluateVariant(
        at offset: Int,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        start: EvaluationStart
    ) -> VariantResult {
        context.withProperties(
            packed: {
                evaluateVariant(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            },
            indexed: {
                evaluateVariant(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            },
            dictionary: {
                evaluateVariant(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            }
        )
    }

    private func evaluateVariant(
        at offset: Int,
        flagKey: String,
        entityID: String,
        properties: some PropertyReader,
        start: EvaluationStart
    ) -> VariantResult {
        let program = snapshot.program
        let flag = program.flag(at: offset)
        var reason = EvaluationReason.unknown
        var variantKey: Int32 = -1
        var attachment: Int32 = -1
        if flag.defaultVariantKey >= 0 {
            reason = .default
            variantKey = flag.defaultVariantKey
            attachment = flag.defaultAttachment
        }
        var match = false
        var keys = GroupOutcome.notApplying
        if !flag.isEnabled {
            reason = .flagDisabled
        } else if flag.itemCount > 0 {
            entityID.withUTF8Bytes { entity in
                var item = program.firstItem(ofFlagAt: offset, flag)
                for _ in 0..<Int(flag.itemCount) {
                    let rule = program.base.loadUnaligned(fromByteOffset: item, as: RuleRecord.self)
                    let outcome = program.matchGroup(at: item, rule, entity: entity, properties: properties)
                    if outcome.applies {
                        match = true
                        keys = outcome
                        reason = .match
                        var checksum = CRC32(state: flag.keyChecksum)
                        checksum.update(entity, tables: checksumTables.pointer)
                        if let distribution = program.distribution(
                            at: item,
                            rule,
                            forBucket: checksum.value % 1000
                        ) {
                            variantKey = distribution.variantKey
                            attachment = distribution.attachment
                        }
                        return
                    }
                    item &+= Int(rule.byteCount)
                }
            }
        }
        return VariantResult(
            flagKey: flagKey,
            isMatch: match,
            matchedSegments: program.segmentKeys(keys),
            reason: reason,
            variantKey: program.string(variantKey) ?? "",
            variantAttachment: program.string(attachment),
            requestDurationMillis: start.wholeMillisecondsElapsed(),
            evaluatedAt: start.timestamp
        )
    }

    @inline(__always)
    private func evaluateBoolean(
        at offset: Int,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        start: EvaluationStart
    ) -> BooleanResult {
        context.withProperties(
            packed: {
                evaluateBoolean(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            },
            indexed: {
                evaluateBoolean(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            },
            dictionary: {
                evaluateBoolean(at: offset, flagKey: flagKey, entityID: entityID, properties: $0, start: start)
            }
        )
    }

    private func evaluateBoolean(
        at offset: Int,
        flagKey: String,
        entityID: String,
        properties: some PropertyReader,
        start: EvaluationStart
    ) -> BooleanResult {
        let program = snapshot.program
        let flag = program.flag(at: offset)
        var enabled = flag.isEnabled
        var reason: EvaluationReason = !flag.isEnabled && !flag.hasRolloutEntries ? .flagDisabled : .default
        var keys = GroupOutcome.notApplying
        if flag.itemCount > 0 {
            entityID.withUTF8Bytes { entity in
                var item = program.firstItem(ofFlagAt: offset, flag)
                for _ in 0..<Int(flag.itemCount) {
                    let rollout = program.base.loadUnaligned(fromByteOffset: item, as: RuleRecord.self)
                    if rollout.kind == .threshold {
                        var checksum = CRC32()
                        checksum.update(entity, tables: checksumTables.pointer)
                        checksum.update(
                            program.bytes(offset + FlagRecord.size, Int(flag.keyCount)),
                            tables: checksumTables.pointer
                        )
                        if Float(checksum.value % 100) < rollout.percentage {
                            enabled = rollout.value
                            reason = .match
                            return
                        }
                    } else {
                        let outcome = program.matchGroup(at: item, rollout, entity: entity, properties: properties)
                        if outcome.applies {
                            enabled = rollout.value
                            reason = .match
                            keys = outcome
                            return
                        }
                    }
                    item &+= Int(rollout.byteCount)
                }
            }
        }
        return BooleanResult(
            flagKey: flagKey,
            isEnabled: enabled,
            reason: reason,
            matchedSegments: program.segmentKeys(keys),
            requestDurationMillis: start.wholeMillisecondsElapsed(),
            evaluatedAt: start.timestamp
        )
    }
}
