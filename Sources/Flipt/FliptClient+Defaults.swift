import FliptEngine

extension FliptClient {
    // MARK: Values with a default, never throwing

    /// The value of a boolean flag for an entity, or `defaultValue` when it cannot be evaluated; never throws.
    ///
    /// For hot paths that must not fail: any error (no data yet, a missing flag, a variant flag, a failed fetch
    /// under ``ErrorStrategy/fail``, a stale snapshot under ``StaleBehavior/fail``, an empty key) returns
    /// `defaultValue`. The error still reaches the hooks (``EvaluationHook/error(_:error:)``), the
    /// `flipt_evaluation_defaults_total{namespace, code}` counter and the log (a warning, at most one per error code
    /// every 30 s, the next one counting those left out). ``booleanValueDetails(flagKey:entityID:context:default:hooks:)``
    /// says which error it was.
    ///
    /// ```swift
    /// if client.booleanValue(flagKey: "new-checkout", entityID: user.id, default: false) { … }
    /// ```
    public func booleanValue(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        default defaultValue: Bool,
        hooks: [any EvaluationHook] = []
    ) -> Bool {
        booleanValue(
            flagKey: flagKey,
            entityID: entityID,
            context: EvaluationContext(context),
            default: defaultValue,
            hooks: hooks
        )
    }

    /// The value of a boolean flag for an entity whose properties are an ``EvaluationContext``, or `defaultValue`
    /// when it cannot be evaluated; never throws. See the `[String: String]` form.
    public func booleanValue(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        default defaultValue: Bool,
        hooks: [any EvaluationHook] = []
    ) -> Bool {
        // Without hooks the value needs no provenance: the plain path, as the throwing forms take it.
        if hooks.isEmpty && !core.instrumentation.observesEvaluations {
            do throws(FliptError) {
                return try evaluateBoolean(flagKey: flagKey, entityID: entityID, context: context).isEnabled
            } catch {
                core.instrumentation.reportDefault(flagKey: flagKey, error: error)
                return defaultValue
            }
        }
        do throws(FliptError) {
            return try observe(
                .boolean,
                flagKey: flagKey,
                entityID: entityID,
                context: context,
                defaultValue: .boolean(defaultValue),
                hooks: hooks
            ) { (evaluator) throws(EvaluationError) in
                try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
            }.isEnabled
        } catch {
            core.instrumentation.reportDefault(flagKey: flagKey, error: error)
            return defaultValue
        }
    }

    /// The variant key of a variant flag for an entity, or `defaultValue` when it cannot be evaluated; never
    /// throws.
    ///
    /// A flag that evaluates to no variant (no rule matched and no default variant) gives `""`, as
    /// ``VariantResult/variantKey`` does, not `defaultValue`: the flag was evaluated. Errors are handled as
    /// ``booleanValue(flagKey:entityID:context:default:hooks:)`` handles them.
    public func variantKey(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        default defaultValue: String,
        hooks: [any EvaluationHook] = []
    ) -> String {
        variantKey(
            flagKey: flagKey,
            entityID: entityID,
            context: EvaluationContext(context),
            default: defaultValue,
            hooks: hooks
        )
    }

    /// The variant key of a variant flag for an entity whose properties are an ``EvaluationContext``, or
    /// `defaultValue` when it cannot be evaluated; never throws. See the `[String: String]` form.
    public func variantKey(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        default defaultValue: String,
        hooks: [any EvaluationHook] = []
    ) -> String {
        // Without hooks the value needs no provenance: the plain path, as the throwing forms take it.
        if hooks.isEmpty && !core.instrumentation.observesEvaluations {
            do throws(FliptError) {
                return try evaluateVariant(flagKey: flagKey, entityID: entityID, context: context).variantKey
            } catch {
                core.instrumentation.reportDefault(flagKey: flagKey, error: error)
                return defaultValue
            }
        }
        do throws(FliptError) {
            return try observe(
                .variant,
                flagKey: flagKey,
                entityID: entityID,
                context: context,
                defaultValue: .variant(defaultValue),
                hooks: hooks
            ) { (evaluator) throws(EvaluationError) in
                try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
            }.variantKey
        } catch {
            core.instrumentation.reportDefault(flagKey: flagKey, error: error)
            return defaultValue
        }
    }

    // MARK: Details

    /// The value of a boolean flag for an entity with why it has it and where the snapshot came from, or
    /// `defaultValue` with the error; never throws.
    ///
    /// The counterpart of LaunchDarkly's `boolVariationDetail`: ``EvaluationDetails/reason`` is the evaluation's
    /// reason, or nil with ``EvaluationDetails/error`` set when `defaultValue` was returned;
    /// ``EvaluationDetails/provenance`` tells the snapshot's source (network, cache, seed), ETag and age. Errors
    /// reach hooks, metrics and the log as in ``booleanValue(flagKey:entityID:context:default:hooks:)``.
    public func booleanValueDetails(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        default defaultValue: Bool,
        hooks: [any EvaluationHook] = []
    ) -> EvaluationDetails<Bool> {
        booleanValueDetails(
            flagKey: flagKey,
            entityID: entityID,
            context: EvaluationContext(context),
            default: defaultValue,
            hooks: hooks
        )
    }

    /// The value of a boolean flag for an entity whose properties are an ``EvaluationContext``, with why it has
    /// it and where the snapshot came from, or `defaultValue` with the error; never throws. See the
    /// `[String: String]` form.
    public func booleanValueDetails(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        default defaultValue: Bool,
        hooks: [any EvaluationHook] = []
    ) -> EvaluationDetails<Bool> {
        var provenance = SnapshotProvenance()
        do throws(FliptError) {
            let result = try observe(
                .boolean,
                flagKey: flagKey,
                entityID: entityID,
                context: context,
                defaultValue: .boolean(defaultValue),
                hooks: hooks,
                provenance: &provenance
            ) { (evaluator) throws(EvaluationError) in
                try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
            }
            return EvaluationDetails(
                flagKey: flagKey,
                value: result.isEnabled,
                reason: result.reason,
                segmentKeys: result.segmentKeys,
                provenance: provenance
            )
        } catch {
            core.instrumentation.reportDefault(flagKey: flagKey, error: error)
            return EvaluationDetails(
                flagKey: flagKey,
                value: defaultValue,
                reason: nil,
                error: error,
                provenance: provenance
            )
        }
    }

    /// The variant key of a variant flag for an entity with why it has it and where the snapshot came from, or
    /// `defaultValue` with the error; never throws.
    ///
    /// The counterpart of LaunchDarkly's `stringVariationDetail`; see
    /// ``booleanValueDetails(flagKey:entityID:context:default:hooks:)``. ``EvaluationDetails/variantAttachment``
    /// carries the chosen variant's attachment.
    public func variantKeyDetails(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        default defaultValue: String,
        hooks: [any EvaluationHook] = []
    ) -> EvaluationDetails<String> {
        variantKeyDetails(
            flagKey: flagKey,
            entityID: entityID,
            context: EvaluationContext(context),
            default: defaultValue,
            hooks: hooks
        )
    }

    /// The variant key of a variant flag for an entity whose properties are an ``EvaluationContext``, with why it
    /// has it and where the snapshot came from, or `defaultValue` with the error; never throws. See the
    /// `[String: String]` form.
    public func variantKeyDetails(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        default defaultValue: String,
        hooks: [any EvaluationHook] = []
    ) -> EvaluationDetails<String> {
        var provenance = SnapshotProvenance()
        do throws(FliptError) {
            let result = try observe(
                .variant,
                flagKey: flagKey,
                entityID: entityID,
                context: context,
                defaultValue: .variant(defaultValue),
                hooks: hooks,
                provenance: &provenance
            ) { (evaluator) throws(EvaluationError) in
                try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
            }
            return EvaluationDetails(
                flagKey: flagKey,
                value: result.variantKey,
                reason: result.reason,
                segmentKeys: result.segmentKeys,
                variantAttachment: result.variantAttachment,
                provenance: provenance
            )
        } catch {
            core.instrumentation.reportDefault(flagKey: flagKey, error: error)
            return EvaluationDetails(
                flagKey: flagKey,
                value: defaultValue,
                reason: nil,
                error: error,
                provenance: provenance
            )
        }
    }
}
