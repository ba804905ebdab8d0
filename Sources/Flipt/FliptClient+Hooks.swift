import FliptEngine

extension FliptClient {
    // MARK: Evaluation with hooks for one call

    /// Evaluates a variant flag for an entity, running `hooks` for this call besides the client's own
    /// (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the form without `hooks`; the hooks'
    ///   ``EvaluationHook/error(_:error:)`` sees the same error first.
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
        }
    }

    /// Evaluates a boolean flag for an entity, running `hooks` for this call besides the client's own
    /// (``ClientOptions/hooks``).
    ///
    /// - Throws: the errors of the form without `hooks`; the hooks'
    ///   ``EvaluationHook/error(_:error:)`` sees the same error first.
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
        // Straight to the out-of-line machinery: through observe(_:flagKey:…) it would also carry the inlined
        // plain path (and its clock metadata), about 90 instructions per evaluation for nothing.
        try observeInline(.variant, flagKey, entityID, context, nil, [], nil) { (evaluator) throws(EvaluationError) in
            try evaluator.variant(flagKey: flagKey, entityID: entityID, context: context)
        }
    }

    /// ``evaluateBoolean(flagKey:entityID:context:hooks:)`` with the client's hooks only, out of line (see
    /// ``observedVariant(flagKey:entityID:context:)``).
    @inline(never)
    func observedBoolean(
        flagKey: String,
        entityID: String,
        context: EvaluationContext
    ) throws(FliptError) -> BooleanEvaluationResponse {
        try observeInline(.boolean, flagKey, entityID, context, nil, [], nil) { (evaluator) throws(EvaluationError) in
            try evaluator.boolean(flagKey: flagKey, entityID: entityID, context: context)
        }
    }

    /// Evaluates with `body`, running the client's hooks and then `callHooks` before, and both in reverse order
    /// after (``EvaluationHook/after(_:result:)`` or ``EvaluationHook/error(_:error:)``) and last
    /// (``EvaluationHook/finally(_:)``); sets `provenance`, when given, to where the snapshot that answered came
    /// from. Validates the keys first; a blank one is an error the hooks see.
    @inline(__always)
    func observe<Value: FlagEvaluationResult>(
        _ flagType: FlagType,
        flagKey: String,
        entityID: String,
        context: EvaluationContext,
        defaultValue: FlagValue?,
        hooks callHooks: [any EvaluationHook],
        provenance: UnsafeMutablePointer<SnapshotProvenance>? = nil,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        if !core.instrumentation.observesEvaluations && callHooks.isEmpty {
            guard let provenance else {
                try Self.validateKeys(flagKey: flagKey, entityID: entityID)
                return try core.evaluate(body)
            }
            do throws(FliptError) {
                try Self.validateKeys(flagKey: flagKey, entityID: entityID)
            } catch {
                provenance.pointee = core.currentProvenance()
                throw error
            }
            return try core.evaluate(body, provenance: &provenance.pointee)
        }
        return try observe(flagType, flagKey, entityID, context, defaultValue, callHooks, provenance, body)
    }

    /// The evaluation with hooks, out of line so that the plain path stays small.
    ///
    /// What it costs per evaluation, and how that is kept small: the context is built once, on the stack, of
    /// pointers to the arguments (no copy, no reference count), and lent to every stage; the client's hooks are
    /// sorted by stage into chains when the client is made (``HookChain``), so a stage a hook does not implement
    /// costs nothing and each hook is called in place;
    /// the snapshot that answered is retained only when a hook reads its provenance; the context is one pointer to
    /// a frame on this stack. With one no-op hook (`Tests/Scripts/callgrind-hooks.sh hook`): 1,889 instructions per
    /// evaluation against 1,651 without hooks, and no retain or release more (2,690 when a context and a provenance
    /// were copied for each stage; 2,049 with an eight-word context passed by value).
    @inline(never)
    private func observe<Value: FlagEvaluationResult>(
        _ flagType: FlagType,
        _ flagKey: String,
        _ entityID: String,
        _ context: EvaluationContext,
        _ defaultValue: FlagValue?,
        _ callHooks: [any EvaluationHook],
        _ provenance: UnsafeMutablePointer<SnapshotProvenance>?,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        try observeInline(flagType, flagKey, entityID, context, defaultValue, callHooks, provenance, body)
    }

    /// The body of ``observe(_:_:_:_:_:_:_:_:)``, inlined into ``observedVariant(flagKey:entityID:context:)`` and
    /// ``observedBoolean(flagKey:entityID:context:)`` (themselves out of line) so that there the evaluation closure
    /// is inlined too instead of called through a context (about 110 instructions per evaluation, callgrind).
    @inline(__always)
    private func observeInline<Value: FlagEvaluationResult>(
        _ flagType: FlagType,
        _ flagKey: String,
        _ entityID: String,
        _ context: EvaluationContext,
        _ defaultValue: FlagValue?,
        _ callHooks: [any EvaluationHook],
        _ provenance: UnsafeMutablePointer<SnapshotProvenance>?,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        try withUnsafePointer(to: namespace) { (namespacePointer) throws(FliptError) -> Value in
            try withUnsafePointer(to: flagKey) { (flagKeyPointer) throws(FliptError) -> Value in
                try withUnsafePointer(to: entityID) { (entityIDPointer) throws(FliptError) -> Value in
                    try withUnsafePointer(to: context) { (contextPointer) throws(FliptError) -> Value in
                        try withUnsafePointer(to: defaultValue) { (defaultValuePointer) throws(FliptError) -> Value in
                            var frame = EvaluationHookContext.Frame(
                                namespace: namespacePointer,
                                flagKey: flagKeyPointer,
                                entityID: entityIDPointer,
                                context: contextPointer,
                                defaultValue: defaultValuePointer,
                                flagType: flagType,
                                core: core,
                                answered: nil
                            )
                            return try withUnsafeMutablePointer(to: &frame) { (frame) throws(FliptError) -> Value in
                                try run(
                                    EvaluationHookContext(frame: frame),
                                    flagKey,
                                    entityID,
                                    callHooks,
                                    provenance,
                                    body
                                )
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs the stages around the evaluation, with `evaluation` lent to each.
    @inline(__always)
    private func run<Value: FlagEvaluationResult>(
        _ evaluation: borrowing EvaluationHookContext,
        _ flagKey: String,
        _ entityID: String,
        _ callHooks: [any EvaluationHook],
        _ provenance: UnsafeMutablePointer<SnapshotProvenance>?,
        _ body: (Evaluator) throws(EvaluationError) -> Value
    ) throws(FliptError) -> Value {
        if let hooks = core.instrumentation.beforeHooks { HookChain.forEach(from: hooks) { $0.before(evaluation) } }
        var readsProvenance = provenance != nil || core.instrumentation.readsProvenance
        if _slowPath(!callHooks.isEmpty) {
            callHooks.withUnsafeBufferPointer { hooks in
                for index in hooks.indices {
                    let stages = hooks[index].stages
                    if stages.contains(.before) { hooks[index].before(evaluation) }
                    if stages.contains(.provenance) { readsProvenance = true }
                }
            }
        }
        var answered: Unmanaged<ClientCore.FastPath>?
        let result: Value
        do throws(FliptError) {
            try Self.validate(flagKey: flagKey, entityID: entityID)
            if readsProvenance {
                result = try core.evaluate(body, retaining: &answered)
            } else {
                result = try core.evaluate(body)
            }
        } catch {
            reportError(error, evaluation, answered, callHooks, provenance)
            throw error
        }
        evaluation.noteAnswered(answered)
        if _slowPath(!callHooks.isEmpty) {
            callHooks.withUnsafeBufferPointer { hooks in
                for index in hooks.indices.reversed() where hooks[index].stages.contains(.after) {
                    hooks[index].after(evaluation, result: result)
                }
            }
        }
        if let hooks = core.instrumentation.afterHooks {
            HookChain.forEach(from: hooks) { $0.after(evaluation, result: result) }
        }
        finish(evaluation, callHooks)
        if let answered {
            if let provenance { provenance.pointee = answered._withUnsafeGuaranteedRef { $0.provenance } }
            answered.release()
        }
        return result
    }

    /// Runs the error stage and then the finally stage of every hook, last first (the rare path); the context's
    /// provenance is that of the snapshot that failed to answer, or of the one in use when there was none.
    @inline(never)
    private func reportError(
        _ error: FliptError,
        _ evaluation: borrowing EvaluationHookContext,
        _ answered: Unmanaged<ClientCore.FastPath>?,
        _ callHooks: [any EvaluationHook],
        _ provenance: UnsafeMutablePointer<SnapshotProvenance>?
    ) {
        let answered = answered ?? core.retainedFastPath()
        defer { answered.release() }
        evaluation.noteAnswered(answered)
        for hook in callHooks.reversed() where hook.stages.contains(.error) {
            hook.error(evaluation, error: error)
        }
        if let hooks = core.instrumentation.errorHooks {
            HookChain.forEach(from: hooks) { $0.error(evaluation, error: error) }
        }
        finish(evaluation, callHooks)
        if let provenance { provenance.pointee = answered._withUnsafeGuaranteedRef { $0.provenance } }
    }

    /// Runs the finally stage of every hook, last first.
    @inline(__always)
    private func finish(_ evaluation: borrowing EvaluationHookContext, _ callHooks: [any EvaluationHook]) {
        if _slowPath(!callHooks.isEmpty) {
            callHooks.withUnsafeBufferPointer { hooks in
                for index in hooks.indices.reversed() where hooks[index].stages.contains(.finally) {
                    hooks[index].finally(evaluation)
                }
            }
        }
        if let hooks = core.instrumentation.finallyHooks { HookChain.forEach(from: hooks) { $0.finally(evaluation) } }
    }
}
