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
        var provenance = SnapshotProvenance()
        return try observe(
            .variant,
            flagKey: flagKey,
            entityID: entityID,
            context: context,
            defaultValue: nil,
            hooks: hooks,
            provenance: &provenance
        ) { (evaluator) throws(EvaluationError) in
            try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
        }
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
        var provenance = SnapshotProvenance()
        return try observe(
            .boolean,
            flagKey: flagKey,
            entityID: entityID,
            context: context,
            defaultValue: nil,
            hooks: hooks,
            provenance: &provenance
        ) { (evaluator) throws(EvaluationError) in
            try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
        }
    }

    // MARK: The hook machinery

    /// ``evaluateVariant(flagKey:entityID:context:hooks:)`` with the client's hooks only, out of line: the plain
    /// form calls it when the client has hooks, and stays as small as it was without them.
    @inline(never)
    func observedVariant(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(FliptError) -> VariantEvaluationResponse {
        try evaluateVariant(flagKey: flagKey, entityID: entityID, context: context, hooks: [])
    }

    /// ``evaluateBoolean(flagKey:entityID:context:hooks:)`` with the client's hooks only, out of line (see
    /// ``observedVariant(flagKey:entityID:context:)``).
    @inline(never)
    func observedBoolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(FliptError) -> BooleanEvaluationResponse {
        try evaluateBoolean(flagKey: flagKey, entityID: entityID, context: context, hooks: [])
    }

    /// Evaluates with `body`, running the client's hooks and then `callHooks` before, and both in reverse order
    /// after (``EvaluationHook/after(_:result:provenance:)`` or ``EvaluationHook/error(_:error:provenance:)``) and
    /// last (``EvaluationHook/finally(_:)``); sets `provenance` to where the snapshot that answered came from.
    /// Validates the keys first; a blank one is an error the hooks see.
    @inline(__always)
    func observe<Value: FlagEvaluationResult>(
        _ flagType: FlagType,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        defaultValue: FlagValue?,
        hooks callHooks: [any EvaluationHook],
        provenance: inout SnapshotProvenance,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        let instrumentation = core.instrumentation
        if !instrumentation.observesEvaluations && callHooks.isEmpty {
            do throws(FliptError) {
                try Self.validateKeys(flagKey: flagKey, entityID: entityID)
            } catch {
                provenance = core.currentProvenance()
                throw error
            }
            return try core.evaluate(body, provenance: &provenance)
        }
        return try observe(
            EvaluationHookContext(
                namespace: namespace,
                flagKey: flagKey,
                entityID: entityID,
                context: context,
                flagType: flagType,
                defaultValue: defaultValue
            ),
            clientHooks: instrumentation.hooks,
            callHooks: callHooks,
            provenance: &provenance,
            body
        )
    }

    /// The evaluation with hooks, out of line so that the plain path stays small. The loops borrow each hook in
    /// place from the array's buffer (`for hook in hooks` would copy every existential out first), and the result
    /// is moved out, never copied.
    @inline(never)
    private func observe<Value: FlagEvaluationResult>(
        _ evaluation: EvaluationHookContext,
        clientHooks: [any EvaluationHook],
        callHooks: [any EvaluationHook],
        provenance: inout SnapshotProvenance,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        clientHooks.withUnsafeBufferPointer { hooks in
            for index in hooks.indices { hooks[index].before(evaluation) }
        }
        callHooks.withUnsafeBufferPointer { hooks in
            for index in hooks.indices { hooks[index].before(evaluation) }
        }
        do throws(FliptError) {
            try Self.validateKeys(flagKey: evaluation.flagKey, entityID: evaluation.entityID)
        } catch {
            provenance = core.currentProvenance()
            Self.reportError(error, evaluation, clientHooks, callHooks, provenance)
            throw error
        }
        var answering = SnapshotProvenance()
        do throws(FliptError) {
            let result = try core.evaluate(body, provenance: &answering)
            // Moved out of the variable, so that the closures below borrow it instead of copying it (about 290
            // instructions per evaluation fewer, callgrind).
            let answered = consume answering
            callHooks.withUnsafeBufferPointer { hooks in
                var index = hooks.count
                while index > 0 {
                    index &-= 1
                    hooks[index].after(evaluation, result: result, provenance: answered)
                }
            }
            clientHooks.withUnsafeBufferPointer { hooks in
                var index = hooks.count
                while index > 0 {
                    index &-= 1
                    hooks[index].after(evaluation, result: result, provenance: answered)
                }
            }
            Self.finish(evaluation, clientHooks, callHooks)
            provenance = answered
            return result
        } catch {
            provenance = answering
            Self.reportError(error, evaluation, clientHooks, callHooks, provenance)
            throw error
        }
    }

    /// Runs the error stage and then the finally stage of every hook, last first (the rare path).
    @inline(never)
    private static func reportError(
        _ error: FliptError,
        _ evaluation: EvaluationHookContext,
        _ clientHooks: [any EvaluationHook],
        _ callHooks: [any EvaluationHook],
        _ provenance: SnapshotProvenance
    ) {
        for index in callHooks.indices.reversed() {
            callHooks[index].error(evaluation, error: error, provenance: provenance)
        }
        for index in clientHooks.indices.reversed() {
            clientHooks[index].error(evaluation, error: error, provenance: provenance)
        }
        finish(evaluation, clientHooks, callHooks)
    }

    /// Runs the finally stage of every hook, last first.
    @inline(__always)
    private static func finish(
        _ evaluation: EvaluationHookContext,
        _ clientHooks: [any EvaluationHook],
        _ callHooks: [any EvaluationHook]
    ) {
        callHooks.withUnsafeBufferPointer { hooks in
            var index = hooks.count
            while index > 0 {
                index &-= 1
                hooks[index].finally(evaluation)
            }
        }
        clientHooks.withUnsafeBufferPointer { hooks in
            var index = hooks.count
            while index > 0 {
                index &-= 1
                hooks[index].finally(evaluation)
            }
        }
    }
}
