/// Answers evaluation requests written as JSON lines, with the official engine's answer envelopes.
///
/// Each request line is one JSON object:
/// - `{"type":"variant","flag_key":"f","entity_id":"e","context":{"k":"v"}}` (`context` optional)
/// - `{"type":"boolean",…}` with the same members
/// - `{"type":"batch","requests":[{"flag_key":…,"entity_id":…,"context":{…}},…]}`
/// - `{"type":"list"}`
///
/// Each answer is one line, `{"status":"success","result":{…},"error_message":null}` or
/// `{"status":"failure","result":null,"error_message":"…"}`, with the official engine's field names and
/// values inside `result`. As in the official FFI, context values that are not strings are dropped, and a key
/// repeated in one context keeps its last value. A malformed line gets a failure answer naming the problem.
package struct JSONLinesEvaluator: Sendable {
    /// The evaluator requests are answered with.
    package let evaluator: Evaluator

    /// Creates a JSON-lines front end for `snapshot` in a client configured with `namespace`.
    package init(snapshot: Snapshot, namespace: String) {
        evaluator = Evaluator(snapshot: snapshot, namespace: namespace)
    }

    /// Creates a JSON-lines front end for an existing evaluator.
    package init(evaluator: Evaluator) {
        self.evaluator = evaluator
    }

    /// Answers one request line (UTF-8 JSON, without its line terminator) with one JSON line (no newline).
    package func answer(line: some Collection<UInt8>) -> String {
        if let answer = line.withContiguousStorageIfAvailable({ answer(bytes: $0) }) { return answer }
        return Array(line).withUnsafeBufferPointer { answer(bytes: $0) }
    }

    private func answer(bytes: UnsafeBufferPointer<UInt8>) -> String {
        let request: JSONLinesRequest
        do throws(DocumentError) {
            var cursor = JSONCursor(bytes)
            request = try cursor.decodeLineRequest()
        } catch {
            var writer = JSONWriter()
            writer.failure("malformed request line: \(error.lineDescription)")
            return writer.text
        }
        return answer(request)
    }

    /// Answers a request that is already parsed, with the same envelope as `answer(line:)`.
    package func answer(_ request: JSONLinesRequest) -> String {
        var writer = JSONWriter()
        switch request {
        case .variant(let item):
            do throws(EvaluationError) {
                let result = try evaluator.variant(
                    flagKey: item.flagKey,
                    entityID: item.entityID,
                    context: item.context
                )
                writer.success { $0.variant(result) }
            } catch {
                writer.failure(error.message)
            }
        case .boolean(let item):
            do throws(EvaluationError) {
                let result = try evaluator.boolean(
                    flagKey: item.flagKey,
                    entityID: item.entityID,
                    context: item.context
                )
                writer.success { $0.boolean(result) }
            } catch {
                writer.failure(error.message)
            }
        case .batch(let items):
            let result = evaluator.batch(items)
            writer.success { $0.batch(result) }
        case .list:
            do throws(EvaluationError) {
                let flags = try evaluator.listFlags()
                writer.success { $0.flagList(flags) }
            } catch {
                writer.failure(error.message)
            }
        }
        return writer.text
    }
}

/// One request of the JSON-lines protocol.
package enum JSONLinesRequest: Sendable, Hashable {
    /// Evaluate a variant flag (`"type":"variant"`).
    case variant(EvaluationRequest)
    /// Evaluate a boolean flag (`"type":"boolean"`).
    case boolean(EvaluationRequest)
    /// Evaluate several flags by their actual types (`"type":"batch"`).
    case batch([EvaluationRequest])
    /// List the flags (`"type":"list"`).
    case list
}

extension DocumentError {
    /// The error in request-line terms: `requests[2]: missing required field "entity_id" (at byte 40)`.
    var lineDescription: String {
        path.isEmpty ? "\(reason) (at byte \(byteOffset))" : "\(path): \(reason) (at byte \(byteOffset))"
    }
}

extension JSONCursor {
    mutating func decodeLineRequest() throws(DocumentError) -> JSONLinesRequest {
        guard let first = peekSignificant() else {
            throw error("empty line; expected a JSON object such as {\"type\":\"list\"}")
        }
        guard first == UInt8(ascii: "{") else { throw typeError(expected: "a JSON object") }
        var type = ""
        var flagKey = ""
        var entityID = ""
        var context = EvaluationContext()
        var requests: [EvaluationRequest] = []
        let fields: [StaticString] = ["type", "flag_key", "entity_id", "context", "requests"]
        let present = try readStruct(fields: fields, required: 0b1) { cursor, field throws(DocumentError) in
            switch field {
            case 0: type = try cursor.readString()
            case 1: flagKey = try cursor.readString()
            case 2: entityID = try cursor.readString()
            case 3: context = try cursor.decodeContext()
            default:
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    requests.append(try cursor.decodeBatchItem())
                }
            }
        }
        try expectEnd()
        func require(_ bit: Int, for kind: String) throws(DocumentError) {
            if present & (1 << UInt32(bit)) == 0 {
                throw error("missing required field \"\(fields[bit])\" for a \(kind) request")
            }
        }
        switch ByteName(type) {
        case "variant", "boolean":
            try require(1, for: type)
            try require(2, for: type)
            let item = EvaluationRequest(flagKey: flagKey, entityID: entityID, context: context)
            return ByteName(type) == "variant" ? .variant(item) : .boolean(item)
        case "batch":
            try require(4, for: type)
            return .batch(requests)
        case "list":
            return .list
        default:
            var shown = JSONWriter()
            shown.string(type)
            throw error("unknown request type \(shown.text); expected \"variant\", \"boolean\", \"batch\" or \"list\"")
        }
    }

    private mutating func decodeBatchItem() throws(DocumentError) -> EvaluationRequest {
        guard peekSignificant() == UInt8(ascii: "{") else { throw typeError(expected: "an object") }
        var item = EvaluationRequest(flagKey: "", entityID: "")
        let fields: [StaticString] = ["flag_key", "entity_id", "context"]
        _ = try readStruct(fields: fields, required: 0b011) { cursor, field throws(DocumentError) in
            switch field {
            case 0: item.flagKey = try cursor.readString()
            case 1: item.entityID = try cursor.readString()
            default: item.context = try cursor.decodeContext()
            }
        }
        return item
    }

    /// A context object (or null): string values kept, other values dropped, a repeated key keeps its last value.
    private mutating func decodeContext() throws(DocumentError) -> EvaluationContext {
        var context = EvaluationContext()
        if try consumeNull() { return context }
        guard peekSignificant() == UInt8(ascii: "{") else { throw typeError(expected: "an object or null") }
        index += 1
        var first = true
        while true {
            guard let next = peekSignificant() else { throw error("unexpected end of the line in an object") }
            if next == UInt8(ascii: "}") {
                if !first { throw error("trailing comma in an object") }
                index += 1
                return context
            }
            if !first {
                guard next == UInt8(ascii: ",") else {
                    throw error("expected ',' or '}' in an object, found \(foundDescription())")
                }
                index += 1
                if peekSignificant() == UInt8(ascii: "}") { throw error("trailing comma in an object") }
            }
            first = false
            guard peekSignificant() == UInt8(ascii: "\"") else {
                throw error("object keys must be strings, found \(foundDescription())")
            }
            let key = try readString()
            try expect(UInt8(ascii: ":"), "':' after an object key")
            if peekSignificant() == UInt8(ascii: "\"") {
                context[key] = try readString()
            } else {
                try skipValue()
                context[key] = nil
            }
            if peekSignificant() == UInt8(ascii: "}") {
                index += 1
                return context
            }
        }
    }
}
