import FliptEngine
import FliptSync

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
/// How requests authenticate: none, a client token (`Bearer`) or a JWT (`JWT`).
public typealias Authentication = FliptSync.Authentication
/// Polling (the default) or streaming (Flipt v2).
public typealias FetchMode = FliptSync.FetchMode
/// TLS trust settings.
public typealias TLSOptions = FliptSync.TLSOptions
