/// One step of the path from a document's root to a value, used only to name locations in errors.
enum PathComponent {
    case field(StaticString)
    case index(Int)
}

/// A number token as the official engine's JSON parser (serde_json, without `float_roundtrip`) reads it.
enum ParsedNumber {
    case unsigned(UInt64)
    case signed(Int64)
    case double(Double)

    /// The value narrowed to `Float` the way Rust's `as f32` narrows each case (round to nearest, ties to even).
    var float32: Float {
        switch self {
        case .unsigned(let value): Float(value)
        case .signed(let value): Float(value)
        case .double(let value): Float(value)
        }
    }
}

/// A cursor over UTF-8 JSON bytes that decodes typed values the way the official engine's serde-based parser
/// does: the same grammar, the same number conversion, the same rules for strings that are decoded (validated
/// UTF-8, paired surrogates) and for values that are skipped (syntax only).
///
/// The cursor never recurses while skipping, so deeply nested unknown fields cannot exhaust the stack.
struct JSONCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var path: [PathComponent] = []
    /// Whether containers record the path to the current value. A snapshot is decoded without it (it cost about
    /// a tenth of the time) and, only when that fails, decoded again with it, so that the error names its path.
    var tracksPath = true
    private var scratch: [UInt8] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: Errors

    /// An error at the current location.
    func error(_ reason: String) -> DocumentError {
        DocumentError(path: renderedPath, reason: reason, byteOffset: index)
    }

    var renderedPath: String {
        var text = ""
        for component in path {
            switch component {
            case .field(let name):
                if !text.isEmpty { text += "." }
                text += name.description
            case .index(let position):
                text += "[\(position)]"
            }
        }
        return text
    }

    /// Describes the value that starts at the current byte, for "expected X, found Y" messages.
    func foundDescription() -> String {
        guard index < bytes.count else { return "the end of the document" }
        switch bytes[index] {
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "{"): return "an object"
        case let byte where byte >= 0x20 && byte < 0x7F:
            return "unexpected character '\(Character(Unicode.Scalar(byte)))'"
        case let byte: return "unexpected byte 0x\(String(byte, radix: 16))"
        }
    }

    func typeError(expected: String) -> DocumentError {
        error("expected \(expected), found \(foundDescription())")
    }

    // MARK: Whitespace and structure

    /// Skips JSON whitespace and returns the next byte without consuming it, or nil at the end.
    @inline(__always)
    mutating func peekSignificant() -> UInt8? {
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                index += 1
            } else {
                return byte
            }
        }
        return nil
    }

    /// Requires that nothing but whitespace follows the top-level value.
    mutating func expectEnd() throws(DocumentError) {
        if peekSignificant() != nil {
            throw error("unexpected trailing characters after the top-level value")
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(DocumentError) {
        guard peekSignificant() == byte else {
            throw error("expected \(what), found \(foundDescription())")
        }
        index += 1
    }

    private mutating func expectLiteral(_ rest: StaticString) throws(DocumentError) {
        // The first byte has been checked and consumed by the caller.
        let tail = UnsafeBufferPointer(start: rest.utf8Start, count: rest.utf8CodeUnitCount)
        for expected in tail {
            guard index < bytes.count else { throw error("unexpected end of the document in a literal") }
            guard bytes[index] == expected else { throw error("invalid literal") }
            index += 1
        }
    }

    /// Consumes `null` when it is the next value (as serde does for an `Option`); returns false otherwise.
    mutating func consumeNull() throws(DocumentError) -> Bool {
        guard peekSignificant() == UInt8(ascii: "n") else { return false }
        index += 1
        try expectLiteral("ull")
        return true
    }

    // MARK: Typed values

    mutating func readBool() throws(DocumentError) -> Bool {
        switch peekSignificant() {
        case UInt8(ascii: "t"):
            index += 1
            try expectLiteral("rue")
            return true
        case UInt8(ascii: "f"):
            index += 1
            try expectLiteral("alse")
            return false
        default:
            throw typeError(expected: "a boolean")
        }
    }

    /// Reads a string value, decoding escapes and requiring valid UTF-8 and paired surrogates.
    mutating func readString() throws(DocumentError) -> String {
        guard peekSignificant() == UInt8(ascii: "\"") else { throw typeError(expected: "a string") }
        index += 1
        let start = index
        // Most strings are plain ASCII without escapes: find their end a word at a time and copy them once.
        let plainEnd = plainRunEnd(from: start)
        if plainEnd < bytes.count && bytes[plainEnd] == UInt8(ascii: "\"") {
            index = plainEnd + 1
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<plainEnd]), as: UTF8.self)
        }
        index = plainEnd
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if ascii { return String(decoding: slice, as: UTF8.self) }
                guard let text = String(validating: slice, as: UTF8.self) else {
                    index = start
                    throw error("invalid UTF-8 in a string")
                }
                return text
            }
            if byte == UInt8(ascii: "\\") {
                index = start
                let copiedNonASCII = try readEscapedString()
                return try makeString(from: scratch, at: start, validating: copiedNonASCII)
            }
            if byte < 0x20 { throw error("control character in a string (it must be escaped)") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        throw error("unterminated string")
    }

    /// Reads a string value that is not kept: checked exactly as `readString` checks it, but a plain ASCII string
    /// without escapes (the usual case) is only scanned, not copied.
    mutating func skipString() throws(DocumentError) {
        guard peekSignificant() == UInt8(ascii: "\"") else { throw typeError(expected: "a string") }
        let end = plainRunEnd(from: index + 1)
        if end < bytes.count && bytes[end] == UInt8(ascii: "\"") {
            index = end + 1
            return
        }
        _ = try readString()
    }

    /// The position of the first byte at or after `start` that ends a plain run: a quote, a backslash, a control
    /// character or a non-ASCII byte (or the end of the document). Words of 8 bytes are tested at once.
    @inline(__always)
    func plainRunEnd(from start: Int) -> Int {
        var position = start
        if let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            while position + 8 <= bytes.count {
                let word = raw.loadUnaligned(fromByteOffset: position, as: UInt64.self)
                if Self.hasSpecialByte(word) { break }
                position += 8
            }
        }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            position += 1
        }
        return position
    }

    /// Whether any byte of `word` is a quote, a backslash, below 0x20 or above 0x7F (the classic "has a zero
    /// byte" and "has a byte less than n" bit tricks; exact as to whether such a byte exists).
    @inline(__always)
    static func hasSpecialByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* 0x22)
        let backslashes = word ^ (ones &* 0x5C)
        let zeroQuote = (quotes &- ones) & ~quotes
        let zeroBackslash = (backslashes &- ones) & ~backslashes
        let control = (word &- ones &* 0x20) & ~word
        return (zeroQuote | zeroBackslash | control | word) & high != 0
    }

    /// The string of the decoded bytes of a string with escapes. Only bytes copied from the document can be
    /// invalid UTF-8 (escapes are written as valid sequences, surrogates paired), so without such a byte above 0x7F
    /// (`validating` false) the bytes are taken as they are. `String(validating:as:)` is generic and costs ~650
    /// instructions per string, plus ~0.53 M the first time (its metadata), against ~160 for `String(decoding:as:)`
    /// (callgrind, a cold boot of the 1,000-flag issue18 document, whose 1,064 attachments are escaped JSON).
    private func makeString(from decoded: [UInt8], at start: Int, validating: Bool) throws(DocumentError) -> String {
        guard validating else { return String(decoding: decoded, as: UTF8.self) }
        guard let text = String(validating: decoded, as: UTF8.self) else {
            throw DocumentError(path: renderedPath, reason: "invalid UTF-8 in a string", byteOffset: start)
        }
        return text
    }

    /// Decodes the string whose body starts at `index` into `scratch`, leaving `index` after the closing quote;
    /// returns whether a byte above 0x7F was copied from the document (only such bytes need UTF-8 validation).
    /// Byte by byte: copying the plain runs between escapes at once cost more on short runs (907 against 583
    /// instructions per string on the issue18 attachments such as `{\"n\":0}`, callgrind).
    private mutating func readEscapedString() throws(DocumentError) -> Bool {
        scratch.removeAll(keepingCapacity: true)
        var copiedNonASCII = false
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return copiedNonASCII
            case UInt8(ascii: "\\"):
                try readEscape()
            case 0..<0x20:
                index -= 1
                throw error("control character in a string (it must be escaped)")
            default:
                if byte >= 0x80 { copiedNonASCII = true }
                scratch.append(byte)
            }
        }
        throw error("unterminated string")
    }

    private mutating func readEscape() throws(DocumentError) {
        guard index < bytes.count else { throw error("unterminated string") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): scratch.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): scratch.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): scratch.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let first = try readHex4()
            if (0xDC00...0xDFFF).contains(first) {
                throw error("lone trailing surrogate in a \\u escape")
            }
            guard (0xD800...0xDBFF).contains(first) else {
                appendUTF8(UInt32(first))
                return
            }
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else {
                throw error("lone leading surrogate in a \\u escape")
            }
            index += 2
            let second = try readHex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw error("lone leading surrogate in a \\u escape")
            }
            appendUTF8(0x10000 + ((UInt32(first) - 0xD800) << 10) + (UInt32(second) - 0xDC00))
        default:
            index -= 1
            throw error("invalid escape sequence in a string")
        }
    }

    private mutating func readHex4() throws(DocumentError) -> UInt16 {
        guard index + 4 <= bytes.count else {
            index = bytes.count
            throw error("unterminated \\u escape")
        }
        var value: UInt16 = 0
        for offset in 0..<4 {
            guard let digit = hexValue(bytes[index + offset]) else {
                index += 4
                throw error("invalid \\u escape")
            }
            value = value << 4 | UInt16(digit)
        }
        index += 4
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    // MARK: Numbers

    /// Reads a JSON number into a `Float` the way serde reads an `f32` field.
    mutating func readFloat32() throws(DocumentError) -> Float {
        try readNumber().float32
    }

    /// Reads a number token with serde_json's algorithm: integers stay integers while they fit in 64 bits; other
    /// numbers become `significand × 10^exponent` computed with one multiplication or division by a power of ten.
    mutating func readNumber() throws(DocumentError) -> ParsedNumber {
        switch peekSignificant() {
        case UInt8(ascii: "-"):
            index += 1
            return try readInteger(positive: false)
        case .some(UInt8(ascii: "0")...UInt8(ascii: "9")):
            return try readInteger(positive: true)
        default:
            throw typeError(expected: "a number")
        }
    }

    private func peekOrZero() -> UInt8 { index < bytes.count ? bytes[index] : 0 }

    private mutating func readInteger(positive: Bool) throws(DocumentError) -> ParsedNumber {
        guard index < bytes.count else { throw error("unexpected end of the document in a number") }
        let first = bytes[index]
        index += 1
        switch first {
        case UInt8(ascii: "0"):
            if isDigit(peekOrZero()) { throw error("invalid number (leading zero)") }
            return try readNumberTail(positive: positive, significand: 0)
        case UInt8(ascii: "1")...UInt8(ascii: "9"):
            var significand = UInt64(first - UInt8(ascii: "0"))
            while true {
                let byte = peekOrZero()
                guard isDigit(byte) else { return try readNumberTail(positive: positive, significand: significand) }
                let digit = UInt64(byte - UInt8(ascii: "0"))
                if Self.overflows(significand, digit) {
                    return .double(try readLongInteger(positive: positive, significand: significand))
                }
                index += 1
                significand = significand * 10 + digit
            }
        default:
            index -= 1
            throw error("invalid number")
        }
    }

    private static func overflows(_ value: UInt64, _ digit: UInt64) -> Bool {
        value >= UInt64.max / 10 && (value > UInt64.max / 10 || digit > UInt64.max % 10)
    }

    private mutating func readNumberTail(positive: Bool, significand: UInt64) throws(DocumentError) -> ParsedNumber {
        switch peekOrZero() {
        case UInt8(ascii: "."):
            return .double(try readDecimal(positive: positive, significand: significand, exponent: 0))
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            return .double(try readExponent(positive: positive, significand: significand, startingExponent: 0))
        default:
            if positive { return .unsigned(significand) }
            let negated = Int64(bitPattern: significand) &* -1
            if negated >= 0 { return .double(-Double(significand)) }
            return .signed(negated)
        }
    }

    private mutating func readLongInteger(positive: Bool, significand: UInt64) throws(DocumentError) -> Double {
        var exponent: Int32 = 0
        while true {
            let byte = peekOrZero()
            if isDigit(byte) {
                index += 1
                exponent += 1
            } else if byte == UInt8(ascii: ".") {
                return try readDecimal(positive: positive, significand: significand, exponent: exponent)
            } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                return try readExponent(positive: positive, significand: significand, startingExponent: exponent)
            } else {
                return try doubleFromParts(positive: positive, significand: significand, exponent: exponent)
            }
        }
    }

    private mutating func readDecimal(
        positive: Bool,
        significand start: UInt64,
        exponent exponentBeforePoint: Int32
    ) throws(DocumentError) -> Double {
        index += 1  // the '.'
        var significand = start
        var fractionDigits: Int32 = 0
        while isDigit(peekOrZero()) {
            let digit = UInt64(peekOrZero() - UInt8(ascii: "0"))
            if Self.overflows(significand, digit) {
                // Further digits are ignored, as serde_json does without `float_roundtrip`.
                while isDigit(peekOrZero()) { index += 1 }
                let exponent = exponentBeforePoint - fractionDigits
                let next = peekOrZero()
                if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                    return try readExponent(positive: positive, significand: significand, startingExponent: exponent)
                }
                return try doubleFromParts(positive: positive, significand: significand, exponent: exponent)
            }
            index += 1
            significand = significand * 10 + digit
            fractionDigits += 1
        }
        if fractionDigits == 0 { throw error("invalid number (no digit after the decimal point)") }
        let exponent = exponentBeforePoint - fractionDigits
        let next = peekOrZero()
        if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            return try readExponent(positive: positive, significand: significand, startingExponent: exponent)
        }
        return try doubleFromParts(positive: positive, significand: significand, exponent: exponent)
    }

    private mutating func readExponent(
        positive: Bool,
        significand: UInt64,
        startingExponent: Int32
    ) throws(DocumentError) -> Double {
        index += 1  // the 'e'
        var positiveExponent = true
        if peekOrZero() == UInt8(ascii: "+") {
            index += 1
        } else if peekOrZero() == UInt8(ascii: "-") {
            index += 1
            positiveExponent = false
        }
        guard index < bytes.count else { throw error("unexpected end of the document in a number") }
        let first = bytes[index]
        index += 1
        guard isDigit(first) else { throw error("invalid number (no digit in the exponent)") }
        var exponent = Int32(first - UInt8(ascii: "0"))
        while isDigit(peekOrZero()) {
            let digit = Int32(peekOrZero() - UInt8(ascii: "0"))
            index += 1
            if exponent >= Int32.max / 10 && (exponent > Int32.max / 10 || digit > Int32.max % 10) {
                if significand != 0 && positiveExponent { throw error("number out of range") }
                while isDigit(peekOrZero()) { index += 1 }
                return positive ? 0.0 : -0.0
            }
            exponent = exponent * 10 + digit
        }
        let (sum, overflow) =
            positiveExponent
            ? startingExponent.addingReportingOverflow(exponent)
            : startingExponent.subtractingReportingOverflow(exponent)
        let finalExponent = overflow ? (positiveExponent ? Int32.max : Int32.min) : sum
        return try doubleFromParts(positive: positive, significand: significand, exponent: finalExponent)
    }

    private func doubleFromParts(
        positive: Bool,
        significand: UInt64,
        exponent start: Int32
    ) throws(DocumentError)
        -> Double
    {
        var value = Double(significand)
        var exponent = start
        while true {
            let magnitude = exponent.magnitude
            if magnitude < UInt32(powersOfTen.count) {
                let power = powersOfTen[Int(magnitude)]
                if exponent >= 0 {
                    value *= power
                    if value.isInfinite { throw error("number out of range") }
                } else {
                    value /= power
                }
                break
            }
            if value == 0 { break }
            if exponent >= 0 { throw error("number out of range") }
            value /= 1e308
            exponent += 308
        }
        return positive ? value : -value
    }

    // MARK: Skipping

    /// Skips one value of any kind, checking its syntax the way serde checks an ignored field.
    mutating func skipValue() throws(DocumentError) {
        var frames: [UInt8] = []
        while true {
            // A value starts here.
            guard let byte = peekSignificant() else { throw error("unexpected end of the document") }
            switch byte {
            case UInt8(ascii: "n"):
                index += 1
                try expectLiteral("ull")
            case UInt8(ascii: "t"):
                index += 1
                try expectLiteral("rue")
            case UInt8(ascii: "f"):
                index += 1
                try expectLiteral("alse")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try skipNumber()
            case UInt8(ascii: "\""):
                index += 1
                try skipStringBody()
            case UInt8(ascii: "["):
                index += 1
                if peekSignificant() == UInt8(ascii: "]") {
                    index += 1
                } else {
                    frames.append(byte)
                    continue
                }
            case UInt8(ascii: "{"):
                index += 1
                if peekSignificant() == UInt8(ascii: "}") {
                    index += 1
                } else {
                    try skipKeyAndColon()
                    frames.append(byte)
                    continue
                }
            default:
                throw error("expected a value, found \(foundDescription())")
            }
            // A value ended: close containers or move to the next member.
            var resumed = false
            while let frame = frames.last, !resumed {
                let next = peekSignificant()
                if next == UInt8(ascii: ",") {
                    index += 1
                    if frame == UInt8(ascii: "{") { try skipKeyAndColon() }
                    resumed = true
                } else if frame == UInt8(ascii: "[") && next == UInt8(ascii: "]") {
                    index += 1
                    frames.removeLast()
                } else if frame == UInt8(ascii: "{") && next == UInt8(ascii: "}") {
                    index += 1
                    frames.removeLast()
                } else {
                    throw error(frame == UInt8(ascii: "[") ? "expected ',' or ']'" : "expected ',' or '}'")
                }
            }
            if !resumed { return }
        }
    }

    private mutating func skipKeyAndColon() throws(DocumentError) {
        guard peekSignificant() == UInt8(ascii: "\"") else { throw error("object keys must be strings") }
        index += 1
        try skipStringBody()
        try expect(UInt8(ascii: ":"), "':'")
    }

    /// Skips a string body (after the opening quote): escapes must be well formed; the text is not validated.
    private mutating func skipStringBody() throws(DocumentError) {
        while index < bytes.count {
            index = plainRunEnd(from: index)
            guard index < bytes.count else { break }
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return }
            if byte == UInt8(ascii: "\\") {
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    _ = try readHex4()
                default:
                    index -= 1
                    throw error("invalid escape sequence in a string")
                }
            } else if byte < 0x20 {
                index -= 1
                throw error("control character in a string (it must be escaped)")
            }
        }
        throw error("unterminated string")
    }

    private mutating func skipNumber() throws(DocumentError) {
        if peekOrZero() == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw error("unexpected end of the document in a number") }
        let first = bytes[index]
        index += 1
        if first == UInt8(ascii: "0") {
            if isDigit(peekOrZero()) { throw error("invalid number (leading zero)") }
        } else if isDigit(first) {
            while isDigit(peekOrZero()) { index += 1 }
        } else {
            index -= 1
            throw error("invalid number")
        }
        if peekOrZero() == UInt8(ascii: ".") {
            index += 1
            guard isDigit(peekOrZero()) else { throw error("invalid number (no digit after the decimal point)") }
            while isDigit(peekOrZero()) { index += 1 }
        }
        let next = peekOrZero()
        if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            index += 1
            if peekOrZero() == UInt8(ascii: "+") || peekOrZero() == UInt8(ascii: "-") { index += 1 }
            guard isDigit(peekOrZero()) else { throw error("invalid number (no digit in the exponent)") }
            while isDigit(peekOrZero()) { index += 1 }
        }
    }

    // MARK: Containers

    /// Reads an array, calling `element` once per element with the path extended by the element's index.
    mutating func readArray(
        _ element: (inout JSONCursor, Int) throws(DocumentError) -> Void
    ) throws(DocumentError) {
        guard peekSignificant() == UInt8(ascii: "[") else { throw typeError(expected: "an array") }
        index += 1
        if peekSignificant() == UInt8(ascii: "]") {
            index += 1
            return
        }
        var position = 0
        while true {
            if tracksPath { path.append(.index(position)) }
            try element(&self, position)
            if tracksPath { path.removeLast() }
            position += 1
            switch peekSignificant() {
            case UInt8(ascii: ","):
                index += 1
                if peekSignificant() == UInt8(ascii: "]") { throw error("trailing comma in an array") }
            case UInt8(ascii: "]"):
                index += 1
                return
            default:
                throw error("expected ',' or ']' in an array, found \(foundDescription())")
            }
        }
    }

    /// Reads a struct the way serde's derived code does: either an object whose known keys are `fields` (unknown
    /// keys are skipped; a known key twice is an error), or an array holding exactly one element per field, in
    /// order. Calls `field` for each field present and returns a bit mask of the fields that were present.
    /// Fields whose bit is in `required` and that are absent cause a "missing required field" error. `ignoring`
    /// names unknown keys that documents usually carry (they are skipped like any unknown key, only found sooner).
    mutating func readStruct(
        fields: [StaticString],
        ignoring: [StaticString] = [],
        required: UInt32,
        _ field: (inout JSONCursor, Int) throws(DocumentError) -> Void
    ) throws(DocumentError) -> UInt32 {
        switch peekSignificant() {
        case UInt8(ascii: "{"):
            index += 1
            var present: UInt32 = 0
            var first = true
            while true {
                guard let next = peekSignificant() else { throw error("unexpected end of the document in an object") }
                if next == UInt8(ascii: "}") {
                    if !first { throw error("trailing comma in an object") }
                    index += 1
                    break
                }
                if !first {
                    guard next == UInt8(ascii: ",") else {
                        throw error("expected ',' or '}' in an object, found \(foundDescription())")
                    }
                    index += 1
                    if peekSignificant() == UInt8(ascii: "}") { throw error("trailing comma in an object") }
                }
                first = false
                let keyStart = index
                let fieldIndex = try readKey(fields, ignoring)
                if index < bytes.count && bytes[index] == UInt8(ascii: ":") {
                    index += 1
                } else {
                    try expect(UInt8(ascii: ":"), "':' after an object key")
                }
                if fieldIndex < 0 {
                    try skipValue()
                } else {
                    let bit = UInt32(1) << UInt32(fieldIndex)
                    if present & bit != 0 {
                        throw DocumentError(
                            path: renderedPath,
                            reason: "duplicate field \"\(fields[fieldIndex])\"",
                            byteOffset: keyStart
                        )
                    }
                    present |= bit
                    if tracksPath { path.append(.field(fields[fieldIndex])) }
                    try field(&self, fieldIndex)
                    if tracksPath { path.removeLast() }
                }
                if peekSignificant() == UInt8(ascii: "}") {
                    index += 1
                    break
                }
            }
            let missing = required & ~present
            if missing != 0 {
                let first = missing.trailingZeroBitCount
                throw error("missing required field \"\(fields[first])\"")
            }
            return present
        case UInt8(ascii: "["):
            index += 1
            for fieldIndex in fields.indices {
                let next = peekSignificant()
                if fieldIndex > 0 {
                    guard next == UInt8(ascii: ",") else {
                        throw error("an array standing for an object must have \(fields.count) elements")
                    }
                    index += 1
                } else if next == UInt8(ascii: "]") {
                    throw error("an array standing for an object must have \(fields.count) elements")
                }
                if tracksPath { path.append(.field(fields[fieldIndex])) }
                try field(&self, fieldIndex)
                if tracksPath { path.removeLast() }
            }
            guard peekSignificant() == UInt8(ascii: "]") else {
                throw error("an array standing for an object must have exactly \(fields.count) elements")
            }
            index += 1
            return fields.isEmpty ? 0 : UInt32.max >> UInt32(32 - fields.count)
        default:
            throw typeError(expected: "an object")
        }
    }

    /// Reads an object key (decoded and validated) and returns the index of the matching field, or -1.
    private mutating func readKey(_ fields: [StaticString], _ ignoring: [StaticString]) throws(DocumentError) -> Int {
        guard peekSignificant() == UInt8(ascii: "\"") else {
            throw error("object keys must be strings, found \(foundDescription())")
        }
        // Fastest path: the key is one of the fields, written plainly. A field name has no quote, backslash or
        // control byte, so its bytes followed by a quote are exactly a key with that name; no scan is needed.
        if let (position, end) = plainMatch(fields) {
            index = end + 1
            return position
        }
        if let (_, end) = plainMatch(ignoring) {
            index = end + 1
            return -1
        }
        // Fast path: a plain ASCII key without escapes is compared in place.
        if let end = plainStringEnd() {
            let key = UnsafeBufferPointer(rebasing: bytes[(index + 1)..<end])
            index = end + 1
            return Self.field(matching: key, in: fields)
        }
        let key = try readString()
        return key.withUTF8Bytes { Self.field(matching: $0, in: fields) }
    }

    /// The position of the name in `names` that the string starting at `index` is, written plainly, and the index of
    /// its closing quote; nil when it is none of them (or is written with escapes). A name has no quote, backslash
    /// or control byte, so its bytes followed by a quote are exactly a string with that text: nothing is scanned.
    @inline(__always)
    private func plainMatch(_ names: [StaticString]) -> (position: Int, end: Int)? {
        let body = index + 1
        guard let base = bytes.baseAddress else { return nil }
        for (position, name) in names.enumerated() {
            let count = name.utf8CodeUnitCount
            let end = body + count
            if end < bytes.count && base[end] == UInt8(ascii: "\"")
                && bytesEqualBuffers(
                    UnsafeBufferPointer(start: base + body, count: count),
                    UnsafeBufferPointer(start: name.utf8Start, count: count)
                )
            {
                return (position, end)
            }
        }
        return nil
    }

    private static func field(matching key: UnsafeBufferPointer<UInt8>, in fields: [StaticString]) -> Int {
        for (position, name) in fields.enumerated()
        where bytesEqualBuffers(key, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) {
            return position
        }
        return -1
    }

    /// The index of the closing quote of the string starting at `index` when its body is plain ASCII with no
    /// escapes (so that its bytes are its text), or nil.
    @inline(__always)
    private func plainStringEnd() -> Int? {
        let end = plainRunEnd(from: index + 1)
        return end < bytes.count && bytes[end] == UInt8(ascii: "\"") ? end : nil
    }

    /// The enum values documents use, as strings made from literals, which cost no allocation: a value equal to
    /// one of them is returned as that string rather than a new one (most are too long for a small string).
    private static let knownEnumNames: [String] = [
        "STRING_CONSTRAINT_COMPARISON_TYPE", "NUMBER_CONSTRAINT_COMPARISON_TYPE", "BOOLEAN_CONSTRAINT_COMPARISON_TYPE",
        "DATETIME_CONSTRAINT_COMPARISON_TYPE", "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE",
        "UNKNOWN_CONSTRAINT_COMPARISON_TYPE", "ALL_SEGMENT_MATCH_TYPE", "ANY_SEGMENT_MATCH_TYPE",
        "OR_SEGMENT_OPERATOR", "AND_SEGMENT_OPERATOR", "VARIANT_FLAG_TYPE", "BOOLEAN_FLAG_TYPE",
    ]

    /// `knownEnumNames` as the compiler laid them out, for `plainMatch`.
    private static let knownEnumLiterals: [StaticString] = [
        "STRING_CONSTRAINT_COMPARISON_TYPE", "NUMBER_CONSTRAINT_COMPARISON_TYPE", "BOOLEAN_CONSTRAINT_COMPARISON_TYPE",
        "DATETIME_CONSTRAINT_COMPARISON_TYPE", "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE",
        "UNKNOWN_CONSTRAINT_COMPARISON_TYPE", "ALL_SEGMENT_MATCH_TYPE", "ANY_SEGMENT_MATCH_TYPE",
        "OR_SEGMENT_OPERATOR", "AND_SEGMENT_OPERATOR", "VARIANT_FLAG_TYPE", "BOOLEAN_FLAG_TYPE",
    ]

    /// Positions in `knownEnumNames`, for `readKnownEnum`.
    static let allSegmentMatchType = 6
    static let andSegmentOperator = 9
    static let booleanFlagType = 11

    /// Reads an enum value as `readEnumName` does and returns its position in `knownEnumNames`, or -1 for any
    /// other name.
    mutating func readKnownEnum() throws(DocumentError) -> Int {
        if peekSignificant() == UInt8(ascii: "\""), let (position, end) = plainMatch(Self.knownEnumLiterals) {
            index = end + 1
            return position
        }
        let name = try readEnumName()
        return Self.knownEnumNames.firstIndex { $0.bytesEqual(name) } ?? -1
    }

    /// Reads the name of an enum value as serde does: a string, or an object `{"NAME": null}`.
    mutating func readEnumName() throws(DocumentError) -> String {
        switch peekSignificant() {
        case UInt8(ascii: "\""):
            if let (position, end) = plainMatch(Self.knownEnumLiterals) {
                index = end + 1
                return Self.knownEnumNames[position]
            }
            return try readString()
        case UInt8(ascii: "{"):
            index += 1
            guard peekSignificant() == UInt8(ascii: "\"") else { throw typeError(expected: "a string") }
            let name = try readString()
            try expect(UInt8(ascii: ":"), "':' after an object key")
            guard try consumeNull() else { throw typeError(expected: "null") }
            try expect(UInt8(ascii: "}"), "'}'")
            return name
        default:
            throw typeError(expected: "a string")
        }
    }
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool {
    byte &- UInt8(ascii: "0") < 10
}

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// 10^0 … 10^308, each correctly rounded, as in serde_json's table: their bit patterns, written out. Not
/// `Double("1e\(n)")` at first use (that cost each cold boot ~50 µs of string interpolation, parsing and runtime
/// type lookups, perf over 40 boots), and not float literals either: the compiler reads those through an 80-bit
/// value and rounds twice, so the literal `1e126` is one unit in the last place off.
let powersOfTen: [Double] = powerOfTenBits.map(Double.init(bitPattern:))

private let powerOfTenBits: [UInt64] = [
    0x3FF0_0000_0000_0000, 0x4024_0000_0000_0000, 0x4059_0000_0000_0000, 0x408F_4000_0000_0000, 0x40C3_8800_0000_0000,
    0x40F8_6A00_0000_0000, 0x412E_8480_0000_0000, 0x4163_12D0_0000_0000, 0x4197_D784_0000_0000, 0x41CD_CD65_0000_0000,
    0x4202_A05F_2000_0000, 0x4237_4876_E800_0000, 0x426D_1A94_A200_0000, 0x42A2_309C_E540_0000, 0x42D6_BCC4_1E90_0000,
    0x430C_6BF5_2634_0000, 0x4341_C379_37E0_8000, 0x4376_3457_85D8_A000, 0x43AB_C16D_674E_C800, 0x43E1_58E4_6091_3D00,
    0x4415_AF1D_78B5_8C40, 0x444B_1AE4_D6E2_EF50, 0x4480_F0CF_064D_D592, 0x44B5_2D02_C7E1_4AF6, 0x44EA_7843_79D9_9DB4,
    0x4520_8B2A_2C28_0291, 0x4554_ADF4_B732_0335, 0x4589_D971_E4FE_8402, 0x45C0_27E7_2F1F_1281, 0x45F4_31E0_FAE6_D721,
    0x4629_3E59_39A0_8CEA, 0x465F_8DEF_8808_B024, 0x4693_B8B5_B505_6E17, 0x46C8_A6E3_2246_C99C, 0x46FE_D09B_EAD8_7C03,
    0x4733_4261_72C7_4D82, 0x4768_12F9_CF79_20E3, 0x479E_17B8_4357_691B, 0x47D2_CED3_2A16_A1B1, 0x4807_8287_F49C_4A1D,
    0x483D_6329_F1C3_5CA5, 0x4872_5DFA_371A_19E7, 0x48A6_F578_C4E0_A061, 0x48DC_B2D6_F618_C879, 0x4911_EFC6_59CF_7D4C,
    0x4946_6BB7_F043_5C9E, 0x497C_06A5_EC54_33C6, 0x49B1_8427_B3B4_A05C, 0x49E5_E531_A0A1_C873, 0x4A1B_5E7E_08CA_3A8F,
    0x4A51_1B0E_C57E_649A, 0x4A85_61D2_76DD_FDC0, 0x4ABA_BA47_1495_7D30, 0x4AF0_B46C_6CDD_6E3E, 0x4B24_E187_8814_C9CE,
    0x4B5A_19E9_6A19_FC41, 0x4B90_5031_E250_3DA9, 0x4BC4_643E_5AE4_4D13, 0x4BF9_7D4D_F19D_6057, 0x4C2F_DCA1_6E04_B86D,
    0x4C63_E9E4_E4C2_F344, 0x4C98_E45E_1DF3_B015, 0x4CCF_1D75_A570_9C1B, 0x4D03_7269_8766_6191, 0x4D38_4F03_E93F_F9F5,
    0x4D6E_62C4_E38F_F872, 0x4DA2_FDBB_0E39_FB47, 0x4DD7_BD29_D1C8_7A19, 0x4E0D_AC74_463A_989F, 0x4E42_8BC8_ABE4_9F64,
    0x4E77_2EBA_D6DD_C73D, 0x4EAC_FA69_8C95_390C, 0x4EE2_1C81_F7DD_43A7, 0x4F16_A3A2_75D4_9491, 0x4F4C_4C8B_1349_B9B5,
    0x4F81_AFD6_EC0E_1411, 0x4FB6_1BCC_A711_9916, 0x4FEB_A2BF_D0D5_FF5B, 0x5021_45B7_E285_BF99, 0x5055_9725_DB27_2F7F,
    0x508A_FCEF_51F0_FB5F, 0x50C0_DE15_9336_9D1B, 0x50F5_159A_F804_4462, 0x512A_5B01_B605_557B, 0x5160_78E1_11C3_556D,
    0x5194_9719_5634_2AC8, 0x51C9_BCDF_ABC1_357A, 0x5200_160B_CB58_C16C, 0x5234_1B8E_BE2E_F1C7, 0x5269_2272_6DBA_AE39,
    0x529F_6B0F_0929_59C7, 0x52D3_A2E9_65B9_D81D, 0x5308_8BA3_BF28_4E24, 0x533E_AE8C_AEF2_61AD, 0x5373_2D17_ED57_7D0C,
    0x53A7_F85D_E8AD_5C4F, 0x53DD_F675_62D8_B363, 0x5412_BA09_5DC7_701E, 0x5447_688B_B539_4C25, 0x547D_42AE_A287_9F2E,
    0x54B2_49AD_2594_C37D, 0x54E6_DC18_6EF9_F45C, 0x551C_931E_8AB8_7173, 0x5551_DBF3_16B3_46E8, 0x5586_52EF_DC60_18A2,
    0x55BB_E7AB_D378_1ECA, 0x55F1_70CB_642B_133F, 0x5625_CCFE_3D35_D80E, 0x565B_403D_CC83_4E12, 0x5691_0826_9FD2_10CB,
    0x56C5_4A30_47C6_94FE, 0x56FA_9CBC_59B8_3A3D, 0x5730_A1F5_B813_2466, 0x5764_CA73_2617_ED80, 0x5799_FD0F_EF9D_E8E0,
    0x57D0_3E29_F5C2_B18C, 0x5804_4DB4_7333_5DEF, 0x5839_6121_9000_356B, 0x586F_B969_F400_42C5, 0x58A3_D3E2_3880_29BB,
    0x58D8_C8DA_C6A0_342A, 0x590E_FB11_7848_4135, 0x5943_5CEA_EB2D_28C1, 0x5978_3425_A5F8_72F1, 0x59AE_412F_0F76_8FAD,
    0x59E2_E8BD_69AA_19CC, 0x5A17_A2EC_C414_A03F, 0x5A4D_8BA7_F519_C84F, 0x5A82_7748_F930_1D32, 0x5AB7_151B_377C_247E,
    0x5AEC_DA62_055B_2D9E, 0x5B22_087D_4358_FC82, 0x5B56_8A9C_942F_3BA3, 0x5B8C_2D43_B93B_0A8C, 0x5BC1_9C4A_53C4_E697,
    0x5BF6_035C_E8B6_203D, 0x5C2B_8434_22E3_A84D, 0x5C61_32A0_95CE_4930, 0x5C95_7F48_BB41_DB7C, 0x5CCA_DF1A_EA12_525B,
    0x5D00_CB70_D24B_7379, 0x5D34_FE4D_06DE_5057, 0x5D6A_3DE0_4895_E46D, 0x5DA0_66AC_2D5D_AEC4, 0x5DD4_8057_38B5_1A75,
    0x5E09_A06D_06E2_6112, 0x5E40_0444_244D_7CAB, 0x5E74_0555_2D60_DBD6, 0x5EA9_06AA_78B9_12CC, 0x5EDF_4855_16E7_577F,
    0x5F13_8D35_2E50_96AF, 0x5F48_7082_79E4_BC5B, 0x5F7E_8CA3_185D_EB72, 0x5FB3_17E5_EF3A_B327, 0x5FE7_DDDF_6B09_5FF1,
    0x601D_D557_45CB_B7ED, 0x6052_A556_8B9F_52F4, 0x6087_4EAC_2E87_27B1, 0x60BD_2257_3A28_F19D, 0x60F2_3576_8459_9702,
    0x6126_C2D4_256F_FCC3, 0x615C_7389_2ECB_FBF4, 0x6191_C835_BD3F_7D78, 0x61C6_3A43_2C8F_5CD6, 0x61FB_C8D3_F7B3_340C,
    0x6231_5D84_7AD0_0087, 0x6265_B4E5_9984_00A9, 0x629B_221E_FFE5_00D4, 0x62D0_F553_5FEF_2084, 0x6305_32A8_37EA_E8A5,
    0x633A_7F52_45E5_A2CF, 0x6370_8F93_6BAF_85C1, 0x63A4_B378_469B_6732, 0x63D9_E056_5842_40FE, 0x6410_2C35_F729_689F,
    0x6444_3743_74F3_C2C6, 0x6479_4514_5230_B378, 0x64AF_9659_66BC_E056, 0x64E3_BDF7_E036_0C36, 0x6518_AD75_D843_8F43,
    0x654E_D8D3_4E54_7314, 0x6583_4784_10F4_C7EC, 0x65B8_1965_1531_F9E8, 0x65EE_1FBE_5A7E_7861, 0x6622_D3D6_F88F_0B3D,
    0x6657_88CC_B6B2_CE0C, 0x668D_6AFF_E45F_818F, 0x66C2_62DF_EEBB_B0F9, 0x66F6_FB97_EA6A_9D38, 0x672C_BA7D_E505_4486,
    0x6761_F48E_AF23_4AD4, 0x6796_71B2_5AEC_1D89, 0x67CC_0E1E_F1A7_24EB, 0x6801_88D3_5708_7713, 0x6835_EB08_2CCA_94D7,
    0x686B_65CA_37FD_3A0D, 0x68A1_1F9E_62FE_4448, 0x68D5_6785_FBBD_D55A, 0x690A_C167_7AAD_4AB1, 0x6940_B8E0_ACAC_4EAF,
    0x6974_E718_D7D7_625A, 0x69AA_20DF_0DCD_3AF1, 0x69E0_548B_68A0_44D6, 0x6A14_69AE_42C8_560C, 0x6A49_8419_D37A_6B8F,
    0x6A7F_E520_4859_0673, 0x6AB3_EF34_2D37_A408, 0x6AE8_EB01_3885_8D0A, 0x6B1F_25C1_86A6_F04C, 0x6B53_7798_F428_5630,
    0x6B88_557F_3132_6BBB, 0x6BBE_6ADE_FD7F_06AA, 0x6BF3_02CB_5E6F_642A, 0x6C27_C37E_360B_3D35, 0x6C5D_B45D_C38E_0C82,
    0x6C92_90BA_9A38_C7D1, 0x6CC7_34E9_40C6_F9C6, 0x6CFD_0223_90F8_B837, 0x6D32_2156_3A9B_7323, 0x6D66_A9AB_C942_4FEB,
    0x6D9C_5416_BB92_E3E6, 0x6DD1_B48E_353B_CE70, 0x6E06_21B1_C28A_C20C, 0x6E3B_AA1E_332D_728F, 0x6E71_4A52_DFFC_6799,
    0x6EA5_9CE7_97FB_817F, 0x6EDB_0421_7DFA_61DF, 0x6F10_E294_EEBC_7D2C, 0x6F45_1B3A_2A6B_9C76, 0x6F7A_6208_B506_8394,
    0x6FB0_7D45_7124_123D, 0x6FE4_9C96_CD6D_16CC, 0x7019_C3BC_80C8_5C7F, 0x7050_1A55_D07D_39CF, 0x7084_20EB_449C_8843,
    0x70B9_2926_15C3_AA54, 0x70EF_736F_9B34_94E9, 0x7123_A825_C100_DD11, 0x7158_922F_3141_1456, 0x718E_B6BA_FD91_596B,
    0x71C3_3234_DE7A_D7E3, 0x71F7_FEC2_1619_8DDC, 0x722D_FE72_9B9F_F153, 0x7262_BF07_A143_F6D4, 0x7297_6EC9_8994_F489,
    0x72CD_4A7B_EBFA_31AB, 0x7302_4E8D_737C_5F0B, 0x7336_E230_D05B_76CD, 0x736C_9ABD_0472_5481, 0x73A1_E0B6_22C7_74D0,
    0x73D6_58E3_AB79_5204, 0x740B_EF1C_9657_A686, 0x7441_7571_DDF6_C814, 0x7475_D2CE_5574_7A18, 0x74AB_4781_EAD1_989E,
    0x74E1_0CB1_32C2_FF63, 0x7515_4FDD_7F73_BF3C, 0x754A_A3D4_DF50_AF0B, 0x7580_A665_0B92_6D67, 0x75B4_CFFE_4E77_08C0,
    0x75EA_03FD_E214_CAF1, 0x7620_427E_AD4C_FED6, 0x7654_531E_58A0_3E8C, 0x7689_67E5_EEC8_4E2F, 0x76BF_C1DF_6A7A_61BB,
    0x76F3_D92B_A28C_7D15, 0x7728_CF76_8B2F_9C5A, 0x775F_0354_2DFB_8370, 0x7793_6214_9CBD_3226, 0x77C8_3A99_C3EC_7EB0,
    0x77FE_4940_34E7_9E5C, 0x7832_EDC8_2110_C2F9, 0x7867_A93A_2954_F3B8, 0x789D_9388_B3AA_30A5, 0x78D2_7C35_704A_5E67,
    0x7907_1B42_CC5C_F601, 0x793C_E213_7F74_3382, 0x7972_0D4C_2FA8_A031, 0x79A6_909F_3B92_C83D, 0x79DC_34C7_0A77_7A4D,
    0x7A11_A0FC_668A_AC70, 0x7A46_093B_802D_578C, 0x7A7B_8B8A_6038_AD6F, 0x7AB1_3736_7C23_6C65, 0x7AE5_8504_1B2C_477F,
    0x7B1A_E645_21F7_595E, 0x7B50_CFEB_353A_97DB, 0x7B85_03E6_0289_3DD2, 0x7BBA_44DF_832B_8D46, 0x7BF0_6B0B_B1FB_384C,
    0x7C24_85CE_9E7A_065F, 0x7C59_A742_4618_87F6, 0x7C90_0889_6BCF_54FA, 0x7CC4_0AAB_C6C3_2A38, 0x7CF9_0D56_B873_F4C7,
    0x7D2F_50AC_6690_F1F8, 0x7D63_926B_C01A_973B, 0x7D98_7706_B021_3D0A, 0x7DCE_94C8_5C29_8C4C, 0x7E03_1CFD_3999_F7B0,
    0x7E37_E43C_8800_759C, 0x7E6D_DD4B_AA00_9303, 0x7EA2_AA4F_4A40_5BE2, 0x7ED7_54E3_1CD0_72DA, 0x7F0D_2A1B_E404_8F90,
    0x7F42_3A51_6E82_D9BA, 0x7F76_C8E5_CA23_9029, 0x7FAC_7B1F_3CAC_7433, 0x7FE1_CCF3_85EB_C8A0,
]
