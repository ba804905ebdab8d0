import FliptEngine

extension FliptClient {
    // MARK: Evaluation with hooks for one call

    /// Evaluates a variant flag for an entity, running `hooks` for this call besides the client's own
    /// (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the form without `hooks`; the hooks'
    ///   ``EvaluationHook/error(_:error:provenance:)`` sees the same error first.
    public func evaluateVariant(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        hooks: [any EvaluationHook]
    ) throws(FliptError) -> VariantEvaluationResponse {
        try evaluateVariant(flagKey: flagKey, entityID: entityID, context: EvaluationContext(context), hooks: hooks)
    }

    /// Evaluates a variant flag for an entity whose properties are an ``EvaluationContext``, running `hooks` for
    /// this call besides the client's own (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the `[String: String]` form.
    public func evaluateVariant(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        hooks: [any EvaluationHook]
    ) throws(FliptError) -> VariantEvaluationResponse {
        try observe(.variant, flagKey: flagKey, entityID: entityID, context: context, defaultValue: nil, hooks: hooks) {
            (evaluator) throws(EvaluationError) in
            try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
        }.result.get()
    }

    /// Evaluates a boolean flag for an entity, running `hooks` for this call besides the client's own
    /// (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the form without `hooks`; the hooks'
    ///   ``EvaluationHook/error(_:error:provenance:)`` sees the same error first.
    public func evaluateBoolean(
        flagKey: String,
        entityID: String,
        context: [String: String] = [:],
        hooks: [any EvaluationHook]
    ) throws(FliptError) -> BooleanEvaluationResponse {
        try evaluateBoolean(flagKey: flagKey, entityID: entityID, context: EvaluationContext(context), hooks: hooks)
    }

    /// Evaluates a boolean flag for an entity whose properties are an ``EvaluationContext``, running `hooks` for
    /// this call besides the client's own (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the `[String: String]` form.
    public func evaluateBoolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        hooks: [any EvaluationHook]
    ) throws(FliptError) -> BooleanEvaluationResponse {
        try observe(.boolean, flagKey: flagKey, entityID: entityID, context: context, defaultValue: nil, hooks: hooks) {
            (evaluator) throws(EvaluationError) in
            try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
        }.result.get()
    }

    // MARK: The hook machinery

    /// One evaluation with its outcome and the provenance of the snapshot that answered (or would have).
    struct Observed<Value> {
        var result: Result<Value, FliptError>
        var provenance: SnapshotProvenance
    }

    /// Evaluates with `body`, running the client's hooks and then `callHooks` before, and both in reverse order
    /// after (``EvaluationHook/after(_:result:provenance:)`` or ``EvaluationHook/error(_:error:provenance:)``) and
    /// last (``EvaluationHook/finally(_:)``). Validates the keys first; a blank one is an error the hooks see.
    @inline(never)
    func observe<Value: FlagEvaluationResult>(
        _ flagType: FlagType,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        defaultValue: FlagValue?,
        hooks callHooks: [any EvaluationHook],
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) -> Observed<Value> {
        let clientHooks = core.instrumentation.hooks
        if clientHooks.isEmpty && callHooks.isEmpty {
            return validatedEvaluation(flagKey: flagKey, entityID: entityID, body)
        }
        let evaluation = EvaluationHookContext(
            namespace: namespace,
            flagKey: flagKey,
            entityID: entityID,
            context: context,
            flagType: flagType,
            defaultValue: defaultValue
        )
        for hook in clientHooks { hook.before(evaluation) }
        for hook in callHooks { hook.before(evaluation) }
        let observed = validatedEvaluation(flagKey: flagKey, entityID: entityID, body)
        switch observed.result {
        case .success(let result):
            for hook in callHooks.reversed() { hook.after(evaluation, result: result, provenance: observed.provenance) }
            for hook in clientHooks.reversed() {
                hook.after(evaluation, result: result, provenance: observed.provenance)
            }
        case .failure(let error):
            for hook in callHooks.reversed() { hook.error(evaluation, error: error, provenance: observed.provenance) }
            for hook in clientHooks.reversed() { hook.error(evaluation, error: error, provenance: observed.provenance) }
        }
        for hook in callHooks.reversed() { hook.finally(evaluation) }
        for hook in clientHooks.reversed() { hook.finally(evaluation) }
        return observed
    }

    @inline(__always)
    private func validatedEvaluation<Value>(
        flagKey: String,
        entityID: String,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) -> Observed<Value> {
        do throws(FliptError) {
            try Self.validate(flagKey: flagKey, entityID: entityID)
        } catch {
            return Observed(result: .failure(error), provenance: core.currentProvenance())
        }
        let (result, provenance) = core.evaluateWithProvenance(body)
        return Observed(result: result, provenance: provenance)
    }
}
