import Foundation

/// One line of the Flipt v2 stream, classified without decoding the snapshot itself.
package enum StreamMessage: Sendable, Hashable {
    /// `{"result": <document>}`: the raw bytes of the document, and its `digest` field if it has one.
    case result(document: [UInt8], digest: String?)
    /// `{"error": {"code": …, "message": …}}`: the server reports an error and will end the stream.
    case error(code: Int?, message: String)
    /// An empty or whitespace-only line: not a message.
    case blank
    /// Anything else: not JSON, not an object, or an object with neither `result` nor `error`.
    case invalid(reason: String)

    /// Classifies one line (without its newline).
    package init(line: some Collection<UInt8>) {
        let bytes = Array(line)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }) {
            self = .blank
            return
        }
        let members: [String: Range<Int>]
        do {
            members = try JSONMembers.scan(bytes)
        } catch {
            self = .invalid(reason: error.reason)
            return
        }
        if let span = members["result"] {
            let document = Array(bytes[span])
            let digest = (try? JSONMembers.scan(document))?["digest"].flatMap { Self.string(in: document[$0]) }
            self = .result(document: document, digest: digest)
        } else if let span = members["error"] {
            let object = (try? JSONSerialization.jsonObject(with: Data(bytes[span]))) as? [String: Any]
            let message = object?["message"] as? String ?? String(decoding: bytes[span], as: UTF8.self)
            self = .error(code: object?["code"] as? Int, message: message)
        } else {
            self = .invalid(reason: "the line is a JSON object without a \"result\" or \"error\" member")
        }
    }

    private static func string(in bytes: ArraySlice<UInt8>) -> String? {
        try? JSONDecoder().decode(String.self, from: Data(bytes))
    }
}

/// Finds the members of a top-level JSON object and the byte range of each value, without decoding the values.
///
/// Values are skipped structurally (strings with escapes, nested objects and arrays, literals); their contents are
/// checked later by whoever decodes them.
enum JSONMembers {
    struct Failure: Error {
        var reason: String
    }

    static func scan(_ bytes: [UInt8]) throws(Failure) -> [String: Range<Int>] {
        var index = 0
        func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        func fail(_ reason: String) -> Failure { Failure(reason: "\(reason) at byte \(index + 1)") }

        func skipString() throws(Failure) {
            guard index < bytes.count, bytes[index] == 0x22 else { throw fail("expected a string") }
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case 0x5C: index += 2
                case 0x22:
                    index += 1
                    return
                case 0x00..<0x20: throw fail("control character in a string")
                default: index += 1
                }
            }
            throw fail("unterminated string")
        }

        func skipValue() throws(Failure) {
            guard index < bytes.count else { throw fail("expected a value") }
            switch bytes[index] {
            case 0x22:
                try skipString()
            case 0x7B, 0x5B:
                var stack: [UInt8] = []
                repeat {
                    guard index < bytes.count else { throw fail("unterminated object or array") }
                    switch bytes[index] {
                    case 0x22:
                        try skipString()
                        continue
                    case 0x7B: stack.append(0x7D)
                    case 0x5B: stack.append(0x5D)
                    case 0x7D, 0x5D:
                        guard stack.popLast() == bytes[index] else { throw fail("mismatched bracket") }
                    default: break
                    }
                    index += 1
                } while !stack.isEmpty
            default:
                let start = index
                while index < bytes.count, !",}] \t\r\n".utf8.contains(bytes[index]) { index += 1 }
                let token = String(decoding: bytes[start..<index], as: UTF8.self)
                guard ["true", "false", "null"].contains(token) || Double(token) != nil else {
                    throw fail("expected a value")
                }
            }
        }

        skipSpace()
        if bytes[index...].starts(with: [0xEF, 0xBB, 0xBF]) {
            throw fail("a byte-order mark before the JSON object (JSON text has none)")
        }
        guard index < bytes.count, bytes[index] == 0x7B else { throw fail("expected a JSON object") }
        index += 1
        var members: [String: Range<Int>] = [:]
        skipSpace()
        if index < bytes.count, bytes[index] == 0x7D {
            index += 1
        } else {
            while true {
                skipSpace()
                let keyStart = index
                try skipString()
                guard let key = try? JSONDecoder().decode(String.self, from: Data(bytes[keyStart..<index])) else {
                    throw fail("invalid member name")
                }
                skipSpace()
                guard index < bytes.count, bytes[index] == 0x3A else { throw fail("expected ':'") }
                index += 1
                skipSpace()
                let valueStart = index
                try skipValue()
                if members[key] == nil { members[key] = valueStart..<index }
                skipSpace()
                guard index < bytes.count else { throw fail("unterminated object") }
                if bytes[index] == 0x2C {
                    index += 1
                    skipSpace()
                    if index < bytes.count, bytes[index] == 0x7D { throw fail("trailing comma in the object") }
                    continue
                }
                guard bytes[index] == 0x7D else { throw fail("expected ',' or '}'") }
                index += 1
                break
            }
        }
        skipSpace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON object") }
        return members
    }
}
