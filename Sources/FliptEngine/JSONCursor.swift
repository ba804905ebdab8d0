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
    0x3FF0000000000000, 0x4024000000000000, 0x4059000000000000, 0x408F400000000000, 0x40C3880000000000,
    0x40F86A0000000000, 0x412E848000000000, 0x416312D000000000, 0x4197D78400000000, 0x41CDCD6500000000,
    0x4202A05F20000000, 0x42374876E8000000, 0x426D1A94A2000000, 0x42A2309CE5400000, 0x42D6BCC41E900000,
    0x430C6BF526340000, 0x4341C37937E08000, 0x4376345785D8A000, 0x43ABC16D674EC800, 0x43E158E460913D00,
    0x4415AF1D78B58C40, 0x444B1AE4D6E2EF50, 0x4480F0CF064DD592, 0x44B52D02C7E14AF6, 0x44EA784379D99DB4,
    0x45208B2A2C280291, 0x4554ADF4B7320335, 0x4589D971E4FE8402, 0x45C027E72F1F1281, 0x45F431E0FAE6D721,
    0x46293E5939A08CEA, 0x465F8DEF8808B024, 0x4693B8B5B5056E17, 0x46C8A6E32246C99C, 0x46FED09BEAD87C03,
    0x4733426172C74D82, 0x476812F9CF7920E3, 0x479E17B84357691B, 0x47D2CED32A16A1B1, 0x48078287F49C4A1D,
    0x483D6329F1C35CA5, 0x48725DFA371A19E7, 0x48A6F578C4E0A061, 0x48DCB2D6F618C879, 0x4911EFC659CF7D4C,
    0x49466BB7F0435C9E, 0x497C06A5EC5433C6, 0x49B18427B3B4A05C, 0x49E5E531A0A1C873, 0x4A1B5E7E08CA3A8F,
    0x4A511B0EC57E649A, 0x4A8561D276DDFDC0, 0x4ABABA4714957D30, 0x4AF0B46C6CDD6E3E, 0x4B24E1878814C9CE,
    0x4B5A19E96A19FC41, 0x4B905031E2503DA9, 0x4BC4643E5AE44D13, 0x4BF97D4DF19D6057, 0x4C2FDCA16E04B86D,
    0x4C63E9E4E4C2F344, 0x4C98E45E1DF3B015, 0x4CCF1D75A5709C1B, 0x4D03726987666191, 0x4D384F03E93FF9F5,
    0x4D6E62C4E38FF872, 0x4DA2FDBB0E39FB47, 0x4DD7BD29D1C87A19, 0x4E0DAC74463A989F, 0x4E428BC8ABE49F64,
    0x4E772EBAD6DDC73D, 0x4EACFA698C95390C, 0x4EE21C81F7DD43A7, 0x4F16A3A275D49491, 0x4F4C4C8B1349B9B5,
    0x4F81AFD6EC0E1411, 0x4FB61BCCA7119916, 0x4FEBA2BFD0D5FF5B, 0x502145B7E285BF99, 0x50559725DB272F7F,
    0x508AFCEF51F0FB5F, 0x50C0DE1593369D1B, 0x50F5159AF8044462, 0x512A5B01B605557B, 0x516078E111C3556D,
    0x5194971956342AC8, 0x51C9BCDFABC1357A, 0x5200160BCB58C16C, 0x52341B8EBE2EF1C7, 0x526922726DBAAE39,
    0x529F6B0F092959C7, 0x52D3A2E965B9D81D, 0x53088BA3BF284E24, 0x533EAE8CAEF261AD, 0x53732D17ED577D0C,
    0x53A7F85DE8AD5C4F, 0x53DDF67562D8B363, 0x5412BA095DC7701E, 0x5447688BB5394C25, 0x547D42AEA2879F2E,
    0x54B249AD2594C37D, 0x54E6DC186EF9F45C, 0x551C931E8AB87173, 0x5551DBF316B346E8, 0x558652EFDC6018A2,
    0x55BBE7ABD3781ECA, 0x55F170CB642B133F, 0x5625CCFE3D35D80E, 0x565B403DCC834E12, 0x569108269FD210CB,
    0x56C54A3047C694FE, 0x56FA9CBC59B83A3D, 0x5730A1F5B8132466, 0x5764CA732617ED80, 0x5799FD0FEF9DE8E0,
    0x57D03E29F5C2B18C, 0x58044DB473335DEF, 0x583961219000356B, 0x586FB969F40042C5, 0x58A3D3E2388029BB,
    0x58D8C8DAC6A0342A, 0x590EFB1178484135, 0x59435CEAEB2D28C1, 0x59783425A5F872F1, 0x59AE412F0F768FAD,
    0x59E2E8BD69AA19CC, 0x5A17A2ECC414A03F, 0x5A4D8BA7F519C84F, 0x5A827748F9301D32, 0x5AB7151B377C247E,
    0x5AECDA62055B2D9E, 0x5B22087D4358FC82, 0x5B568A9C942F3BA3, 0x5B8C2D43B93B0A8C, 0x5BC19C4A53C4E697,
    0x5BF6035CE8B6203D, 0x5C2B843422E3A84D, 0x5C6132A095CE4930, 0x5C957F48BB41DB7C, 0x5CCADF1AEA12525B,
    0x5D00CB70D24B7379, 0x5D34FE4D06DE5057, 0x5D6A3DE04895E46D, 0x5DA066AC2D5DAEC4, 0x5DD4805738B51A75,
    0x5E09A06D06E26112, 0x5E400444244D7CAB, 0x5E7405552D60DBD6, 0x5EA906AA78B912CC, 0x5EDF485516E7577F,
    0x5F138D352E5096AF, 0x5F48708279E4BC5B, 0x5F7E8CA3185DEB72, 0x5FB317E5EF3AB327, 0x5FE7DDDF6B095FF1,
    0x601DD55745CBB7ED, 0x6052A5568B9F52F4, 0x60874EAC2E8727B1, 0x60BD22573A28F19D, 0x60F2357684599702,
    0x6126C2D4256FFCC3, 0x615C73892ECBFBF4, 0x6191C835BD3F7D78, 0x61C63A432C8F5CD6, 0x61FBC8D3F7B3340C,
    0x62315D847AD00087, 0x6265B4E5998400A9, 0x629B221EFFE500D4, 0x62D0F5535FEF2084, 0x630532A837EAE8A5,
    0x633A7F5245E5A2CF, 0x63708F936BAF85C1, 0x63A4B378469B6732, 0x63D9E056584240FE, 0x64102C35F729689F,
    0x6444374374F3C2C6, 0x647945145230B378, 0x64AF965966BCE056, 0x64E3BDF7E0360C36, 0x6518AD75D8438F43,
    0x654ED8D34E547314, 0x6583478410F4C7EC, 0x65B819651531F9E8, 0x65EE1FBE5A7E7861, 0x6622D3D6F88F0B3D,
    0x665788CCB6B2CE0C, 0x668D6AFFE45F818F, 0x66C262DFEEBBB0F9, 0x66F6FB97EA6A9D38, 0x672CBA7DE5054486,
    0x6761F48EAF234AD4, 0x679671B25AEC1D89, 0x67CC0E1EF1A724EB, 0x680188D357087713, 0x6835EB082CCA94D7,
    0x686B65CA37FD3A0D, 0x68A11F9E62FE4448, 0x68D56785FBBDD55A, 0x690AC1677AAD4AB1, 0x6940B8E0ACAC4EAF,
    0x6974E718D7D7625A, 0x69AA20DF0DCD3AF1, 0x69E0548B68A044D6, 0x6A1469AE42C8560C, 0x6A498419D37A6B8F,
    0x6A7FE52048590673, 0x6AB3EF342D37A408, 0x6AE8EB0138858D0A, 0x6B1F25C186A6F04C, 0x6B537798F4285630,
    0x6B88557F31326BBB, 0x6BBE6ADEFD7F06AA, 0x6BF302CB5E6F642A, 0x6C27C37E360B3D35, 0x6C5DB45DC38E0C82,
    0x6C9290BA9A38C7D1, 0x6CC734E940C6F9C6, 0x6CFD022390F8B837, 0x6D3221563A9B7323, 0x6D66A9ABC9424FEB,
    0x6D9C5416BB92E3E6, 0x6DD1B48E353BCE70, 0x6E0621B1C28AC20C, 0x6E3BAA1E332D728F, 0x6E714A52DFFC6799,
    0x6EA59CE797FB817F, 0x6EDB04217DFA61DF, 0x6F10E294EEBC7D2C, 0x6F451B3A2A6B9C76, 0x6F7A6208B5068394,
    0x6FB07D457124123D, 0x6FE49C96CD6D16CC, 0x7019C3BC80C85C7F, 0x70501A55D07D39CF, 0x708420EB449C8843,
    0x70B9292615C3AA54, 0x70EF736F9B3494E9, 0x7123A825C100DD11, 0x7158922F31411456, 0x718EB6BAFD91596B,
    0x71C33234DE7AD7E3, 0x71F7FEC216198DDC, 0x722DFE729B9FF153, 0x7262BF07A143F6D4, 0x72976EC98994F489,
    0x72CD4A7BEBFA31AB, 0x73024E8D737C5F0B, 0x7336E230D05B76CD, 0x736C9ABD04725481, 0x73A1E0B622C774D0,
    0x73D658E3AB795204, 0x740BEF1C9657A686, 0x74417571DDF6C814, 0x7475D2CE55747A18, 0x74AB4781EAD1989E,
    0x74E10CB132C2FF63, 0x75154FDD7F73BF3C, 0x754AA3D4DF50AF0B, 0x7580A6650B926D67, 0x75B4CFFE4E7708C0,
    0x75EA03FDE214CAF1, 0x7620427EAD4CFED6, 0x7654531E58A03E8C, 0x768967E5EEC84E2F, 0x76BFC1DF6A7A61BB,
    0x76F3D92BA28C7D15, 0x7728CF768B2F9C5A, 0x775F03542DFB8370, 0x779362149CBD3226, 0x77C83A99C3EC7EB0,
    0x77FE494034E79E5C, 0x7832EDC82110C2F9, 0x7867A93A2954F3B8, 0x789D9388B3AA30A5, 0x78D27C35704A5E67,
    0x79071B42CC5CF601, 0x793CE2137F743382, 0x79720D4C2FA8A031, 0x79A6909F3B92C83D, 0x79DC34C70A777A4D,
    0x7A11A0FC668AAC70, 0x7A46093B802D578C, 0x7A7B8B8A6038AD6F, 0x7AB137367C236C65, 0x7AE585041B2C477F,
    0x7B1AE64521F7595E, 0x7B50CFEB353A97DB, 0x7B8503E602893DD2, 0x7BBA44DF832B8D46, 0x7BF06B0BB1FB384C,
    0x7C2485CE9E7A065F, 0x7C59A742461887F6, 0x7C9008896BCF54FA, 0x7CC40AABC6C32A38, 0x7CF90D56B873F4C7,
    0x7D2F50AC6690F1F8, 0x7D63926BC01A973B, 0x7D987706B0213D0A, 0x7DCE94C85C298C4C, 0x7E031CFD3999F7B0,
    0x7E37E43C8800759C, 0x7E6DDD4BAA009303, 0x7EA2AA4F4A405BE2, 0x7ED754E31CD072DA, 0x7F0D2A1BE4048F90,
    0x7F423A516E82D9BA, 0x7F76C8E5CA239029, 0x7FAC7B1F3CAC7433, 0x7FE1CCF385EBC8A0,
]
