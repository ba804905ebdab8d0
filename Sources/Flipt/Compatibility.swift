import FliptEngine

/// The official SDKs' name for ``FliptClient``.
public typealias FliptEvaluationClient = FliptClient
/// The official Swift SDK's name for a variant evaluation result.
public typealias VariantEvaluationResponse = VariantResult
/// The official Swift SDK's name for a boolean evaluation result.
public typealias BooleanEvaluationResponse = BooleanResult
/// The official Swift SDK's name for a batch evaluation result.
public typealias BatchEvaluationResponse = BatchResult
/// The official Swift SDK's name for a flag in ``FliptClient/listFlags()``.
public typealias Flag = FlagSummary
