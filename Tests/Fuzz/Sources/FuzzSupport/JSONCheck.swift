import Foundation

/// Independent JSON checks, used as an oracle by the harnesses.
///
/// Foundation's parser is more lenient than RFC 8259: it accepts a trailing comma in an object or an array and a
/// leading byte-order mark, which Flipt's server never sends and the official engine (serde_json) refuses. So a
/// text counts as JSON here only when it passes ``StrictJSON/isValid(_:)``, and is then read by Foundation.
public enum JSONCheck {
    /// The top-level object of `bytes` as Foundation parses it, or nil when it is not strict JSON or not an object.
    public static func object(_ bytes: some Collection<UInt8>) -> [String: Any]? {
        let bytes = Array(bytes)
        guard StrictJSON.isValid(bytes) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// Whether `bytes` is one strict JSON value of any kind (fragments allowed) that Foundation also reads.
    public static func isValue(_ bytes: some Collection<UInt8>) -> Bool {
        let bytes = Array(bytes)
        guard StrictJSON.isValid(bytes) else { return false }
        return (try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil
    }
}

/// RFC 8259's grammar, checked byte by byte without building values: one value with optional white space around
/// it, UTF-8 text, no trailing commas, no byte-order mark. Iterative, so deep nesting cannot exhaust the stack.
public enum StrictJSON {
    /// Whether `bytes` is exactly one JSON text under RFC 8259.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        guard String(validating: bytes, as: UTF8.self) != nil else { return false }
        var index = 0
        // Open containers: `{` or `[`.
        var stack: [UInt8] = []

        func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        func isHex(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
        }
        func string() -> Bool {
            guard index < bytes.count, bytes[index] == 0x22 else { return false }
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case 0x22:
                    index += 1
                    return true
                case 0x5C:
                    guard index + 1 < bytes.count else { return false }
                    switch bytes[index + 1] {
                    case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: index += 2
                    case 0x75:
                        guard index + 5 < bytes.count, bytes[index + 2...index + 5].allSatisfy(isHex) else {
                            return false
                        }
                        index += 6
                    default: return false
                    }
                case 0x00..<0x20: return false
                default: index += 1
                }
            }
            return false
        }
        func digits() -> Bool {
            let start = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            return index > start
        }
        func number() -> Bool {
            if index < bytes.count, bytes[index] == 0x2D { index += 1 }
            guard index < bytes.count else { return false }
            if bytes[index] == 0x30 {
                index += 1
            } else if !digits() {
                return false
            }
            if index < bytes.count, bytes[index] == 0x2E {
                index += 1
                guard digits() else { return false }
            }
            if index < bytes.count, bytes[index] == 0x65 || bytes[index] == 0x45 {
                index += 1
                if index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D { index += 1 }
                guard digits() else { return false }
            }
            return true
        }
        func literal(_ word: String) -> Bool {
            let word = Array(word.utf8)
            guard bytes.count - index >= word.count, Array(bytes[index..<index + word.count]) == word else {
                return false
            }
            index += word.count
            return true
        }

        // Reads one value; a container is opened (pushed) and its first element or `]`/`}` is left to the loop.
        func openValue() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case 0x7B, 0x5B:
                stack.append(bytes[index])
                index += 1
                return true
            case 0x22: return string()
            case 0x74: return literal("true")
            case 0x66: return literal("false")
            case 0x6E: return literal("null")
            default: return number()
            }
        }
        func member() -> Bool {
            guard string() else { return false }
            skipSpace()
            guard index < bytes.count, bytes[index] == 0x3A else { return false }
            index += 1
            skipSpace()
            return openValue()
        }

        skipSpace()
        guard openValue() else { return false }
        // Just after an opening bracket the container may close at once or takes its first element; after an
        // element, a comma and another element (never the closing bracket: no trailing comma) or the close.
        var justOpened = !stack.isEmpty
        while let open = stack.last {
            skipSpace()
            guard index < bytes.count else { return false }
            let close: UInt8 = open == 0x7B ? 0x7D : 0x5D
            if bytes[index] == close {
                stack.removeLast()
                index += 1
                justOpened = false
                continue
            }
            if !justOpened {
                guard bytes[index] == 0x2C else { return false }
                index += 1
                skipSpace()
            }
            let depth = stack.count
            guard open == 0x7B ? member() : openValue() else { return false }
            justOpened = stack.count > depth
        }
        skipSpace()
        return index == bytes.count
    }
}
