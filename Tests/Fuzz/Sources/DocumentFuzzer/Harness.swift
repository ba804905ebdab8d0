import FliptEngine
import Foundation
import FuzzSupport

/// One fuzz input: a snapshot document.
///
/// Checks that decoding never crashes, that the contiguous, copying and split (two-thread) decode paths agree,
/// that errors point inside the document, and that every document that decodes evaluates consistently: listing, lookup, variant,
/// boolean, batch (against the single evaluations) and the JSON-lines answers.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    let direct = decode(bytes)
    let copied = decode(ScatteredBytes(bytes))
    // Split decoding (two threads) from a few places, one chosen by the input: the one-thread result exactly.
    for start in [size / 2, size / 3, size == 0 ? 0 : Int(bytes[size - 1]) * size / 256] {
        let split = Result { () throws(DocumentError) in
            try Snapshot(document: bytes, splitAbove: 0, searchStart: start)
        }
        switch (direct, split) {
        case (.failure(let error), .failure(let other)):
            require(error == other, "split decoding from byte \(start) disagrees: \(error) vs \(other)")
        case (.success(let snapshot), .success(let other)):
            require(snapshot.isIdentical(to: other), "split decoding from byte \(start) gives another snapshot")
        default:
            invariantFailure("split decoding from byte \(start) disagrees on whether the document is valid")
        }
    }
    switch (direct, copied) {
    case (.failure(let error), .failure(let other)):
        require(error == other, "the two decode paths disagree: \(error) vs \(other)")
        require((0...size).contains(error.byteOffset), "error offset \(error.byteOffset) outside 0...\(size)")
        require(!error.reason.isEmpty, "an error without a reason")
    case (.success(let snapshot), .success(let other)):
        require(snapshot.namespaceKey == other.namespaceKey, "the two decode paths disagree on the namespace")
        require(snapshot.flagCount == other.flagCount, "the two decode paths disagree on the flag count")
        EvaluationCheck(snapshot: snapshot, context: ContextSource.contexts(for: bytes)).run()
    default:
        invariantFailure("one decode path accepted the document and the other refused it")
    }
    return 0
}

private func decode(_ document: some Collection<UInt8>) -> Result<Snapshot, DocumentError> {
    do throws(DocumentError) {
        return .success(try Snapshot(document: document))
    } catch {
        return .failure(error)
    }
}

/// Contexts that reach the document's constraints: each constraint's property set to its own value, and set to
/// another constraint's value, so comparisons succeed and fail and every value parser sees document text.
enum ContextSource {
    static func contexts(for document: UnsafeBufferPointer<UInt8>) -> [EvaluationContext] {
        var pairs: [(String, String)] = []
        if let root = try? JSONSerialization.jsonObject(with: Data(document)) {
            collect(root, into: &pairs, depth: 0)
        }
        let own = EvaluationContext(pairs: pairs)
        let values = pairs.map(\.1)
        let shifted = EvaluationContext(
            pairs: pairs.enumerated().map { ($0.element.0, values[(values.count - 1 + $0.offset) % values.count]) }
        )
        return [EvaluationContext(), own, shifted]
    }

    private static func collect(_ value: Any, into pairs: inout [(String, String)], depth: Int) {
        guard depth < 12, pairs.count < 64 else { return }
        if let object = value as? [String: Any] {
            if let property = object["property"] as? String, let constraintValue = object["value"] as? String {
                pairs.append((property, constraintValue))
            }
            for member in object.values { collect(member, into: &pairs, depth: depth + 1) }
        } else if let array = value as? [Any] {
            for element in array { collect(element, into: &pairs, depth: depth + 1) }
        }
    }
}

/// Evaluation of a decoded snapshot, checked for consistency.
struct EvaluationCheck {
    let snapshot: Snapshot
    let context: [EvaluationContext]
    private static let flagLimit = 8

    init(snapshot: Snapshot, context: [EvaluationContext]) {
        self.snapshot = snapshot
        self.context = context
    }

    func run() {
        let evaluator = Evaluator(snapshot: snapshot, namespace: snapshot.namespaceKey)
        let flags: [FlagSummary]
        do throws(EvaluationError) {
            flags = try evaluator.listFlags()
        } catch {
            invariantFailure("listing the flags of the document's own namespace failed: \(error)")
        }
        require(flags.count == snapshot.flagCount, "listFlags returned \(flags.count) of \(snapshot.flagCount) flags")
        require(Set(flags.map { Array($0.key.utf8) }).count == flags.count, "listFlags repeats a key")
        for flag in flags {
            require(snapshot.flagSummary(forKey: flag.key) == flag, "flagSummary(forKey:) differs from the listing")
        }
        let entities = ["", "entity-1", snapshot.namespaceKey]
        var requests: [EvaluationRequest] = []
        for flag in flags.prefix(Self.flagLimit) {
            for entity in entities {
                for properties in context {
                    requests.append(EvaluationRequest(flagKey: flag.key, entityID: entity, context: properties))
                }
            }
        }
        let missing = (flags.map(\.key).max() ?? "") + "~missing"
        requests.append(EvaluationRequest(flagKey: missing, entityID: "entity-1"))
        let batch = evaluator.batch(requests)
        require(
            batch.responses.count == requests.count,
            "a batch answered \(batch.responses.count) of \(requests.count) requests"
        )
        for (request, response) in zip(requests, batch.responses) {
            check(request, response, in: evaluator, flags: flags)
        }
        checkLines(JSONLinesEvaluator(evaluator: evaluator), requests: requests)
        checkOtherNamespace(flags: flags)
    }

    private func check(
        _ request: EvaluationRequest,
        _ response: BatchResponse,
        in evaluator: Evaluator,
        flags: [FlagSummary]
    ) {
        let summary = flags.first { Array($0.key.utf8) == Array(request.flagKey.utf8) }
        let variant = Result { () throws(EvaluationError) in
            try evaluator.variant(flagKey: request.flagKey, entityID: request.entityID, context: request.context)
        }
        let boolean = Result { () throws(EvaluationError) in
            try evaluator.boolean(flagKey: request.flagKey, entityID: request.entityID, context: request.context)
        }
        switch response {
        case .error(let error):
            require(summary == nil, "a batch reported \(error.reason) for a listed flag")
            require(failureKind(variant) == .flagNotFound, "variant() found a flag the batch did not")
            require(failureKind(boolean) == .flagNotFound, "boolean() found a flag the batch did not")
        case .variant(let result):
            require(summary?.type == .variant, "a batch evaluated a \(String(describing: summary?.type)) as variant")
            require(failureKind(boolean) == .wrongFlagType, "boolean() accepted a variant flag")
            guard case .success(let single) = variant else { invariantFailure("variant() failed on a variant flag") }
            require(sameVariant(result, single), "batch and variant() differ: \(result) vs \(single)")
            require(result.flagKey == request.flagKey, "a result names another flag")
            if summary?.isEnabled == false { require(result.reason == .flagDisabled, "a disabled flag matched") }
            require(result.isMatch == (result.reason == .match), "isMatch and reason disagree: \(result)")
            require(result.isMatch || result.segmentKeys.isEmpty, "segment keys without a match: \(result)")
        case .boolean(let result):
            require(summary?.type == .boolean, "a batch evaluated a \(String(describing: summary?.type)) as boolean")
            require(failureKind(variant) == .wrongFlagType, "variant() accepted a boolean flag")
            guard case .success(let single) = boolean else { invariantFailure("boolean() failed on a boolean flag") }
            require(sameBoolean(result, single), "batch and boolean() differ: \(result) vs \(single)")
            require(result.flagKey == request.flagKey, "a result names another flag")
        }
    }

    private func failureKind<T>(_ result: Result<T, EvaluationError>) -> EvaluationError.Kind? {
        if case .failure(let error) = result { return error.kind }
        return nil
    }

    private func sameVariant(_ first: VariantResult, _ second: VariantResult) -> Bool {
        first.isMatch == second.isMatch && first.reason == second.reason && first.variantKey == second.variantKey
            && first.variantAttachment == second.variantAttachment && first.segmentKeys == second.segmentKeys
    }

    private func sameBoolean(_ first: BooleanResult, _ second: BooleanResult) -> Bool {
        first.isEnabled == second.isEnabled && first.reason == second.reason && first.segmentKeys == second.segmentKeys
    }

    /// Every JSON-lines answer is one line of valid JSON with a success status.
    private func checkLines(_ lines: JSONLinesEvaluator, requests: [EvaluationRequest]) {
        var answers = [lines.answer(.list), lines.answer(.batch(requests))]
        for request in requests.prefix(4) {
            answers.append(lines.answer(.variant(request)))
            answers.append(lines.answer(.boolean(request)))
        }
        for answer in answers {
            require(!answer.utf8.contains(0x0A), "an answer spans several lines: \(answer)")
            guard let object = JSONCheck.object(answer.utf8) else {
                invariantFailure("an answer is not a JSON object: \(answer)")
            }
            let status = object["status"] as? String
            require(status == "success" || status == "failure", "an answer has status \(String(describing: status))")
        }
    }

    /// A client configured with another namespace finds nothing.
    private func checkOtherNamespace(flags: [FlagSummary]) {
        let other = Evaluator(snapshot: snapshot, namespace: snapshot.namespaceKey + "-other")
        if case .success = Result(catching: { () throws(EvaluationError) in try other.listFlags() }) {
            invariantFailure("listFlags succeeded for another namespace")
        }
        for flag in flags.prefix(Self.flagLimit) {
            let result = Result { () throws(EvaluationError) in
                try other.variant(flagKey: flag.key, entityID: "entity-1", context: [:])
            }
            require(failureKind(result) == .flagNotFound, "another namespace found flag \(flag.key)")
        }
    }
}
