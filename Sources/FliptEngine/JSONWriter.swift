import FliptFormats

/// Writes compact JSON into a byte buffer, escaping strings as the official engine (serde_json) does.
package struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func raw(_ literal: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Writes `"name":`.
    mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(name)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func comma() { bytes.append(UInt8(ascii: ",")) }

    mutating func bool(_ value: Bool) {
        if value { raw("true") } else { raw("false") }
    }

    /// Writes a duration the way serde prints an `f64` holding whole milliseconds: `0.0`, `12.0`.
    mutating func milliseconds(_ value: Double) {
        if value.isFinite && value.rounded() == value && value.magnitude < 1e15 {
            bytes.append(contentsOf: String(Int64(value)).utf8)
            raw(".0")
        } else {
            bytes.append(contentsOf: String(value).utf8)
        }
    }

    /// Writes a JSON string: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00XX`, and every
    /// other character as raw UTF-8 (`JSONString`).
    mutating func string(_ value: String) {
        JSONString.append(value, to: &bytes)
    }

    mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { raw("null") }
    }

    /// Writes segment keys as an array of strings, without making the array.
    mutating func stringArray(_ values: SegmentKeyStorage) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        values.forEachKey { value in
            if !first { comma() }
            first = false
            string(value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func timestamp(_ value: EvaluationTimestamp) {
        bytes.append(UInt8(ascii: "\""))
        value.appendRFC3339(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }
}

// MARK: The official engine's result shapes

extension JSONWriter {
    mutating func variant(_ result: VariantResult) {
        raw("{")
        key("match")
        bool(result.isMatch)
        comma()
        key("segment_keys")
        stringArray(result.matchedSegments)
        comma()
        key("reason")
        string(result.reason.rawValue)
        comma()
        key("flag_key")
        string(result.flagKey)
        comma()
        key("variant_key")
        string(result.variantKey)
        if let attachment = result.variantAttachment {
            comma()
            key("variant_attachment")
            string(attachment)
        }
        comma()
        key("request_duration_millis")
        milliseconds(result.requestDurationMillis)
        comma()
        key("timestamp")
        timestamp(result.evaluatedAt)
        raw("}")
    }

    mutating func boolean(_ result: BooleanResult) {
        raw("{")
        key("enabled")
        bool(result.isEnabled)
        comma()
        key("flag_key")
        string(result.flagKey)
        comma()
        key("reason")
        string(result.reason.rawValue)
        comma()
        key("request_duration_millis")
        milliseconds(result.requestDurationMillis)
        comma()
        key("timestamp")
        timestamp(result.evaluatedAt)
        comma()
        key("segment_keys")
        stringArray(result.matchedSegments)
        raw("}")
    }

    mutating func batch(_ result: BatchResult) {
        raw("{")
        key("responses")
        raw("[")
        for (position, response) in result.responses.enumerated() {
            if position > 0 { comma() }
            raw("{")
            key("type")
            string(response.type.rawValue)
            comma()
            key("boolean_evaluation_response")
            if case .boolean(let item) = response { boolean(item) } else { raw("null") }
            comma()
            key("variant_evaluation_response")
            if case .variant(let item) = response { variant(item) } else { raw("null") }
            comma()
            key("error_evaluation_response")
            if case .error(let item) = response {
                raw("{")
                key("flag_key")
                string(item.flagKey)
                comma()
                key("namespace_key")
                string(item.namespaceKey)
                comma()
                key("reason")
                string(item.reason.rawValue)
                raw("}")
            } else {
                raw("null")
            }
            raw("}")
        }
        raw("]")
        comma()
        key("request_duration_millis")
        milliseconds(result.requestDurationMillis)
        raw("}")
    }

    mutating func flagList(_ flags: [FlagSummary]) {
        raw("[")
        for (position, flag) in flags.enumerated() {
            if position > 0 { comma() }
            raw("{")
            key("key")
            string(flag.key)
            comma()
            key("enabled")
            bool(flag.isEnabled)
            comma()
            key("type")
            string(flag.type.rawValue)
            if let description = flag.description {
                comma()
                key("description")
                string(description)
            }
            if let variant = flag.defaultVariant {
                comma()
                key("default_variant")
                raw("{")
                key("id")
                string(variant.id)
                comma()
                key("key")
                string(variant.key)
                if let attachment = variant.attachment {
                    comma()
                    key("attachment")
                    string(attachment)
                }
                raw("}")
            }
            raw("}")
        }
        raw("]")
    }

    /// `{"status":"success","result":…,"error_message":null}` around whatever `result` writes.
    mutating func success(_ result: (inout JSONWriter) -> Void) {
        raw("{\"status\":\"success\",\"result\":")
        result(&self)
        raw(",\"error_message\":null}")
    }

    /// `{"status":"failure","result":null,"error_message":"…"}`.
    mutating func failure(_ message: String) {
        raw("{\"status\":\"failure\",\"result\":null,\"error_message\":")
        string(message)
        raw("}")
    }
}
