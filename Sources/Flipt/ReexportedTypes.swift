// The engine's and the sync layer's types that this module's API takes and returns, re-exported one by one so that
// `import Flipt` is all an app needs; the rest of FliptEngine and FliptSync (decoding, the evaluator, transports,
// their errors) is package API.
//
// Scoped re-exports rather than typealiases: with a typealias, an app that enables MemberImportVisibility
// (SE-0444) cannot reach the type's members (`result.variantKey`: "not available due to missing import of defining
// module 'FliptEngine'"); Tests/ReadmeExamples builds the README's examples with it on.

@_exported import struct FliptEngine.BatchErrorResult
@_exported import enum FliptEngine.BatchResponse
@_exported import enum FliptEngine.BatchResponseType
@_exported import struct FliptEngine.BatchResult
@_exported import struct FliptEngine.BooleanResult
@_exported import struct FliptEngine.DefaultVariant
@_exported import enum FliptEngine.ErrorEvaluationReason
@_exported import struct FliptEngine.EvaluationContext
@_exported import enum FliptEngine.EvaluationReason
@_exported import struct FliptEngine.EvaluationRequest
@_exported import struct FliptEngine.EvaluationTimestamp
@_exported import struct FliptEngine.FlagSummary
@_exported import enum FliptEngine.FlagType
@_exported import struct FliptEngine.VariantResult
@_exported import enum FliptSync.Authentication
@_exported import enum FliptSync.FetchMode
@_exported import struct FliptSync.TLSOptions
