import FliptEngine

// The engine's types that appear in this module's public API, named here so that `import Flipt` is all an app
// needs. The rest of FliptEngine (decoding, indexing, the evaluator) is package API.

/// The properties of the entity being evaluated, keys compared byte for byte as the official engine does; a
/// dictionary literal makes one (`["plan": "pro"]`).
public typealias EvaluationContext = FliptEngine.EvaluationContext
/// One request of ``FliptClient/evaluateBatch(requests:)``: a flag key, an entity ID and its context.
public typealias EvaluationRequest = FliptEngine.EvaluationRequest
/// The result of evaluating a variant flag: the variant's key and attachment, the reason and the matched segments.
public typealias VariantResult = FliptEngine.VariantResult
/// The result of evaluating a boolean flag: its value, the reason and the matched segments.
public typealias BooleanResult = FliptEngine.BooleanResult
/// The result of ``FliptClient/evaluateBatch(requests:)``: one ``BatchResponse`` per request, in request order.
public typealias BatchResult = FliptEngine.BatchResult
/// One response of a batch: a variant result, a boolean result, or an item that could not be evaluated.
public typealias BatchResponse = FliptEngine.BatchResponse
/// The wire type of a ``BatchResponse``.
public typealias BatchResponseType = FliptEngine.BatchResponseType
/// A batch item that could not be evaluated, with the reason.
public typealias BatchErrorResult = FliptEngine.BatchErrorResult
/// Why a batch item could not be evaluated (the flag does not exist, or an unknown error).
public typealias ErrorEvaluationReason = FliptEngine.ErrorEvaluationReason
/// Why an evaluation produced its result: a match, the default, a disabled flag, or unknown.
public typealias EvaluationReason = FliptEngine.EvaluationReason
/// The type of a flag: variant or boolean.
public typealias FlagType = FliptEngine.FlagType
/// One flag of ``FliptClient/listFlags()``: its key, whether it is enabled, its type, description and default
/// variant. The official Swift SDK's name for it is ``Flag``.
public typealias FlagSummary = FliptEngine.FlagSummary
/// A flag's default variant, as in ``FlagSummary/defaultVariant``.
public typealias DefaultVariant = FliptEngine.DefaultVariant
/// When an evaluation happened, with nanosecond precision (``VariantResult/evaluatedAt``).
public typealias EvaluationTimestamp = FliptEngine.EvaluationTimestamp
