import FliptFormats

/// A comparison between two ordered values.
enum Comparison: UInt8, Sendable {
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual

    init?(operator name: String) {
        switch ByteName(name) {
        case "eq": self = .equal
        case "neq": self = .notEqual
        case "lt": self = .less
        case "lte": self = .lessOrEqual
        case "gt": self = .greater
        case "gte": self = .greaterOrEqual
        default: return nil
        }
    }

    @inline(__always)
    func holds<Value: Comparable>(_ lhs: Value, _ rhs: Value) -> Bool {
        switch self {
        case .equal: lhs == rhs
        case .notEqual: lhs != rhs
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        }
    }
}

/// A name compared byte for byte with ASCII literals (no Unicode canonical equivalence).
struct ByteName {
    let text: String

    init(_ text: String) { self.text = text }

    /// A literal a name is compared with, kept as the compiler laid it out (making a `String` of it on every
    /// comparison cost more than the comparison).
    struct Literal: ExpressibleByStringLiteral {
        let value: StaticString

        init(stringLiteral value: StaticString) { self.value = value }
    }

    static func == (name: ByteName, literal: Literal) -> Bool {
        literal.value.withUTF8Buffer { name.text.bytesEqual($0) }
    }

    static func ~= (pattern: Literal, name: ByteName) -> Bool { name == pattern }
}

/// A run of bytes in a snapshot's `ConstraintArena`.
struct ByteSpan: Sendable {
    var start: Int32
    var count: Int32
}

/// A run of elements in one of the arena's element arrays (in a program block: a byte offset and a count).
struct ElementSpan: Sendable {
    var start: Int32
    var count: Int32
}

/// The bytes and lists constraints refer to while a document is decoded, laid end to end so that compiled
/// constraints hold only plain numbers; `ProgramBuilder` copies them next to each flag's records.
struct ConstraintArena: Sendable {
    var bytes: [UInt8] = []
    var strings: [ByteSpan] = []
    var numbers: [Int32] = []

    mutating func add(_ text: String) -> ByteSpan {
        let start = Int32(bytes.count)
        bytes.append(contentsOf: text.utf8)
        return ByteSpan(start: start, count: Int32(bytes.count) - start)
    }

    /// Adds the strings of a constraint value read as the engine's `Vec<&str>`: a strict JSON array of strings,
    /// none of which may contain an escape (a borrowed string cannot hold one). Nil, with nothing added, when the
    /// value does not parse.
    ///
    /// The strings go straight into `bytes` and `strings`: with a list of arrays made first and copied after (the
    /// previous form), compiling the string constraints of a cold boot of the 1,000-flag issue18 document took
    /// 2.73 M instructions on the booting thread; 1.47 M so (callgrind).
    mutating func add(stringList text: String) -> ElementSpan? {
        if text.utf8.contains(UInt8(ascii: "\\")) { return nil }
        let firstString = strings.count
        let firstByte = bytes.count
        let parsed = text.withUTF8Bytes { raw -> Bool in
            var cursor = JSONCursor(raw)
            // A list that does not parse is only refused, never reported: no path to record.
            cursor.tracksPath = false
            do throws(DocumentError) {
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    let element = try cursor.readString()
                    let begin = Int32(bytes.count)
                    bytes.append(contentsOf: element.utf8)
                    strings.append(ByteSpan(start: begin, count: Int32(bytes.count) - begin))
                }
                try cursor.expectEnd()
                return true
            } catch {
                return false
            }
        }
        guard parsed else {
            bytes.removeSubrange(firstByte...)
            strings.removeSubrange(firstString...)
            return nil
        }
        return ElementSpan(start: Int32(firstString), count: Int32(strings.count - firstString))
    }

    mutating func add(numbers list: [Int32]) -> ElementSpan {
        let start = Int32(numbers.count)
        numbers.append(contentsOf: list)
        return ElementSpan(start: start, count: Int32(list.count))
    }
}

/// Borrowed access to the bytes and lists that compiled constraints refer to, in a snapshot's program block:
/// byte spans are offsets from `base`; a string list's `ElementSpan` locates its `ByteSpan` records and a number
/// list's its `Int32` values (by byte offset and count).
struct ArenaView {
    let base: UnsafeRawPointer

    @inline(__always)
    subscript(span: ByteSpan) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(
            start: base.assumingMemoryBound(to: UInt8.self) + Int(span.start),
            count: Int(span.count)
        )
    }

    @inline(__always)
    func stringSpan(_ list: ElementSpan, _ index: Int) -> ByteSpan {
        base.loadUnaligned(
            fromByteOffset: Int(list.start) + index * MemoryLayout<ByteSpan>.stride,
            as: ByteSpan.self
        )
    }

    @inline(__always)
    func number(_ list: ElementSpan, _ index: Int) -> Int32 {
        base.loadUnaligned(fromByteOffset: Int(list.start) + index * 4, as: Int32.self)
    }
}

/// What a constraint checks, with its constraint value parsed once when the snapshot is indexed.
enum ConstraintTest: Sendable {
    /// The constraint type is unknown: the whole segment fails at once.
    case unknownType
    /// Always false (unknown operator, unparsable constraint value, ...).
    case never
    /// The value is `""` (a missing property counts as `""`).
    case isEmpty
    /// The value is not `""`.
    case isNotEmpty
    case equals(ByteSpan)
    case notEquals(ByteSpan)
    case hasPrefix(ByteSpan)
    case hasSuffix(ByteSpan)
    case contains(ByteSpan)
    case notContains(ByteSpan)
    case oneOf(ElementSpan)
    case notOneOf(ElementSpan)
    case numberComparison(Comparison, Int32)
    case numberOneOf(ElementSpan)
    case numberNotOneOf(ElementSpan)
    case boolean(Bool)
    case dateTimeComparison(Comparison, Int64)
}

/// A segment constraint, ready to evaluate. It holds only plain values; its bytes live in the arena.
struct CompiledConstraint: Sendable {
    /// The context property the constraint reads (ignored when `readsEntityID`).
    let property: ByteSpan
    /// Whether the constraint reads the entity id instead of a context property.
    let readsEntityID: Bool
    let test: ConstraintTest

    init(property: ByteSpan, readsEntityID: Bool, test: ConstraintTest) {
        self.property = property
        self.readsEntityID = readsEntityID
        self.test = test
    }

    init(type: String, property: String, operator name: String, value: String, arena: inout ConstraintArena) {
        let operatorName = ByteName(name)
        self.property = arena.add(property)
        readsEntityID = ByteName(type) == "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"
        switch ByteName(type) {
        case "STRING_CONSTRAINT_COMPARISON_TYPE", "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE":
            test = Self.stringTest(operatorName, value, &arena)
        case "NUMBER_CONSTRAINT_COMPARISON_TYPE":
            test = Self.numberTest(operatorName, value, &arena)
        case "BOOLEAN_CONSTRAINT_COMPARISON_TYPE":
            switch operatorName {
            case "present": test = .isNotEmpty
            case "notpresent": test = .isEmpty
            case "true": test = .boolean(true)
            case "false": test = .boolean(false)
            default: test = .never
            }
        case "DATETIME_CONSTRAINT_COMPARISON_TYPE":
            switch operatorName {
            case "present": test = .isNotEmpty
            case "notpresent": test = .isEmpty
            default:
                if let comparison = Comparison(operator: name), let instant = parseRFC3339Seconds(value) {
                    test = .dateTimeComparison(comparison, instant)
                } else {
                    test = .never
                }
            }
        default:
            test = .unknownType
        }
    }

    private static func stringTest(
        _ operatorName: ByteName,
        _ value: String,
        _ arena: inout ConstraintArena
    ) -> ConstraintTest {
        switch operatorName {
        case "empty": return .isEmpty
        case "notempty": return .isNotEmpty
        case "eq": return .equals(arena.add(value))
        case "neq": return .notEquals(arena.add(value))
        case "prefix": return .hasPrefix(arena.add(value))
        case "suffix": return .hasSuffix(arena.add(value))
        case "contains": return .contains(arena.add(value))
        case "notcontains": return .notContains(arena.add(value))
        case "isoneof":
            guard let list = arena.add(stringList: value) else { return .never }
            return .oneOf(list)
        case "isnotoneof":
            // A list that cannot be parsed makes `isoneof` false, so its negation is true for any non-empty value.
            guard let list = arena.add(stringList: value) else { return .isNotEmpty }
            return .notOneOf(list)
        default: return .never
        }
    }

    private static func numberTest(
        _ operatorName: ByteName,
        _ value: String,
        _ arena: inout ConstraintArena
    ) -> ConstraintTest {
        switch operatorName {
        case "present": return .isNotEmpty
        case "notpresent": return .isEmpty
        case "isoneof":
            guard let list = parseInt32List(value) else { return .never }
            return .numberOneOf(arena.add(numbers: list))
        case "isnotoneof":
            guard let list = parseInt32List(value) else { return .never }
            return .numberNotOneOf(arena.add(numbers: list))
        default:
            guard let comparison = Comparison(operator: operatorName.text), let number = parseInt32(value) else {
                return .never
            }
            return .numberComparison(comparison, number)
        }
    }
}

/// A constraint as the program stores it: plain numbers only, the operation as a one-byte code and its operand
/// packed into one word, so that reading and dispatching it is a load and a jump.
struct ConstraintRecord {
    enum Operation: UInt8 {
        case unknownType, never, isEmpty, isNotEmpty
        case equals, notEquals, hasPrefix, hasSuffix, contains, notContains, oneOf, notOneOf
        case numberComparison, numberOneOf, numberNotOneOf, boolean, dateTimeComparison
    }

    /// The context property the constraint reads (unused when `readsEntityID`).
    var property: ByteSpan
    /// A byte span or list (start in the low half, count in the high half), a number, or an instant.
    var operand: Int64
    var operation: Operation
    var comparison: Comparison
    /// Whether the constraint reads the entity id instead of a context property.
    var readsEntityID: Bool
    /// Boolean constraints: the value that matches `true`.
    var expected: Bool

    static let size = roundedUp(MemoryLayout<ConstraintRecord>.size)
    /// The bytes a constraint takes in a program: its record, then `propertyNameHash` of the property's name as a
    /// UInt32 (0 when it reads the entity id), which an indexed context finds the property with, then the name's
    /// index in `Program.propertyNames` as an Int32 (-1 when it reads the entity id), which a dictionary is
    /// searched with. Neither is a field of the record: a record is copied whole into `matchesNonEmpty`, and 4 more
    /// bytes cost ~3 instructions an evaluation there.
    static let stride = size + 8

    /// The record of a constraint whose spans already point into the program.
    init(_ constraint: CompiledConstraint) {
        property = constraint.property
        readsEntityID = constraint.readsEntityID
        operand = 0
        comparison = .equal
        expected = false
        func packed(_ start: Int32, _ count: Int32) -> Int64 {
            Int64(UInt32(bitPattern: start)) | Int64(count) << 32
        }
        switch constraint.test {
        case .unknownType: operation = .unknownType
        case .never: operation = .never
        case .isEmpty: operation = .isEmpty
        case .isNotEmpty: operation = .isNotEmpty
        case .equals(let span): (operation, operand) = (.equals, packed(span.start, span.count))
        case .notEquals(let span): (operation, operand) = (.notEquals, packed(span.start, span.count))
        case .hasPrefix(let span): (operation, operand) = (.hasPrefix, packed(span.start, span.count))
        case .hasSuffix(let span): (operation, operand) = (.hasSuffix, packed(span.start, span.count))
        case .contains(let span): (operation, operand) = (.contains, packed(span.start, span.count))
        case .notContains(let span): (operation, operand) = (.notContains, packed(span.start, span.count))
        case .oneOf(let list): (operation, operand) = (.oneOf, packed(list.start, list.count))
        case .notOneOf(let list): (operation, operand) = (.notOneOf, packed(list.start, list.count))
        case .numberComparison(let comparison, let number):
            (operation, operand) = (.numberComparison, Int64(number))
            self.comparison = comparison
        case .numberOneOf(let list): (operation, operand) = (.numberOneOf, packed(list.start, list.count))
        case .numberNotOneOf(let list): (operation, operand) = (.numberNotOneOf, packed(list.start, list.count))
        case .boolean(let value): (operation, expected) = (.boolean, value)
        case .dateTimeComparison(let comparison, let instant):
            (operation, operand) = (.dateTimeComparison, instant)
            self.comparison = comparison
        }
    }

    /// Moves every block offset the record holds by `distance` bytes (its property, its value's span or list,
    /// and a string list's element spans, which live in `block`): the record and its bytes were written by a
    /// builder whose block is appended `distance` bytes further on.
    mutating func move(by distance: Int32, listsIn block: UnsafeMutableRawPointer) {
        if !readsEntityID { property.start += distance }
        switch operation {
        case .unknownType, .never, .isEmpty, .isNotEmpty, .numberComparison, .boolean, .dateTimeComparison:
            return
        case .equals, .notEquals, .hasPrefix, .hasSuffix, .contains, .notContains, .numberOneOf, .numberNotOneOf:
            break
        case .oneOf, .notOneOf:
            let moved = Int(list.start) + Int(distance)
            for element in 0..<Int(list.count) {
                let offset = moved + element * MemoryLayout<ByteSpan>.stride
                var span = block.loadUnaligned(fromByteOffset: offset, as: ByteSpan.self)
                span.start += distance
                block.storeBytes(of: span, toByteOffset: offset, as: ByteSpan.self)
            }
        }
        let start = Int32(truncatingIfNeeded: operand) + distance
        operand = Int64(UInt32(bitPattern: start)) | (operand >> 32) << 32
    }

    @inline(__always)
    private var span: ByteSpan {
        ByteSpan(start: Int32(truncatingIfNeeded: operand), count: Int32(truncatingIfNeeded: operand >> 32))
    }

    @inline(__always)
    private var list: ElementSpan {
        ElementSpan(start: Int32(truncatingIfNeeded: operand), count: Int32(truncatingIfNeeded: operand >> 32))
    }

    /// Evaluates the constraint for a value (empty when the property is missing).
    @inline(__always)
    func matches(_ value: UnsafeBufferPointer<UInt8>, _ arena: ArenaView) -> Bool {
        switch operation {
        case .unknownType, .never: return false
        case .isEmpty: return value.isEmpty
        case .isNotEmpty: return !value.isEmpty
        default: break
        }
        if value.isEmpty { return false }
        return matchesNonEmpty(value, arena)
    }

    private func matchesNonEmpty(_ value: UnsafeBufferPointer<UInt8>, _ arena: ArenaView) -> Bool {
        switch operation {
        case .unknownType, .never, .isEmpty: return false
        case .isNotEmpty: return true
        case .equals: return bytesEqualBuffers(value, arena[span])
        case .notEquals: return !bytesEqualBuffers(value, arena[span])
        case .hasPrefix: return bytesHavePrefix(value, arena[span])
        case .hasSuffix: return bytesHaveSuffix(value, arena[span])
        case .contains: return bytesContain(value, arena[span])
        case .notContains: return !bytesContain(value, arena[span])
        case .oneOf: return Self.list(list, contains: value, arena)
        case .notOneOf: return !Self.list(list, contains: value, arena)
        case .numberComparison:
            guard let number = parseInt32(value) else { return false }
            return comparison.holds(number, Int32(truncatingIfNeeded: operand))
        case .numberOneOf:
            guard let number = parseInt32(value) else { return false }
            return Self.numbers(list, contain: number, arena)
        case .numberNotOneOf:
            guard let number = parseInt32(value) else { return false }
            return !Self.numbers(list, contain: number, arena)
        case .boolean:
            if bytesEqualLiteral(value, "true") { return expected }
            if bytesEqualLiteral(value, "false") { return !expected }
            return false
        case .dateTimeComparison:
            guard let instant = parseRFC3339Seconds(value) else { return false }
            return comparison.holds(instant, operand)
        }
    }

    private static func list(
        _ list: ElementSpan,
        contains value: UnsafeBufferPointer<UInt8>,
        _ arena: ArenaView
    )
        -> Bool
    {
        for index in 0..<Int(list.count) {
            let span = arena.stringSpan(list, index)
            if Int(span.count) == value.count && bytesEqualBuffers(value, arena[span]) { return true }
        }
        return false
    }

    private static func numbers(_ list: ElementSpan, contain number: Int32, _ arena: ArenaView) -> Bool {
        for index in 0..<Int(list.count) where arena.number(list, index) == number {
            return true
        }
        return false
    }
}

@inline(__always)
private func bytesEqualLiteral(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
    bytesEqualBuffers(bytes, UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
}

/// Parses a 32-bit signed integer as Rust's `str::parse::<i32>` does: an optional `+` or `-`, then one or more
/// ASCII digits (leading zeros allowed), within range. Nothing else: no spaces, no decimal point, no exponent.
func parseInt32(_ text: String) -> Int32? {
    text.withUTF8Bytes { parseInt32($0) }
}

/// `parseInt32(_:)` of UTF-8 bytes.
///
/// Up to 9 digits (the values contexts usually hold: ages, counts, versions) the number cannot overflow, so it is
/// read without range checks: a call with 1 or 2 digits costs ~50 instructions instead of ~60 (callgrind,
/// issue18-40 shape).
func parseInt32(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
    guard let start = bytes.baseAddress, bytes.count > 0 else { return nil }
    let first = start[0]
    let negative = first == UInt8(ascii: "-")
    var index = negative || first == UInt8(ascii: "+") ? 1 : 0
    guard index < bytes.count else { return nil }
    if bytes.count &- index <= 9 {
        var value: Int32 = 0
        while index < bytes.count {
            let digit = start[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value &* 10 &+ Int32(digit)
            index &+= 1
        }
        return negative ? 0 &- value : value
    }
    var magnitude: Int64 = 0
    while index < bytes.count {
        let byte = bytes[index]
        guard isDigit(byte) else { return nil }
        magnitude = magnitude * 10 + Int64(byte - UInt8(ascii: "0"))
        if magnitude > 2_147_483_648 { return nil }
        index += 1
    }
    let value = negative ? -magnitude : magnitude
    guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { return nil }
    return Int32(value)
}

/// Parses a constraint value as the engine's `Vec<i32>`: a strict JSON array of integer tokens within `Int32`
/// (`5.0`, `-0`, `1e3` and strings all fail, since JSON reads them as floats or strings). Nil when it does not
/// parse.
func parseInt32List(_ text: String) -> [Int32]? {
    text.withUTF8Bytes { bytes -> [Int32]? in
        var cursor = JSONCursor(bytes)
        // A list that does not parse is only refused, never reported: no path to record (it cost ~0.25 M
        // instructions of a cold boot at 1,000 flags, an array of path components per list).
        cursor.tracksPath = false
        var list: [Int32] = []
        do throws(DocumentError) {
            try cursor.readArray { cursor, _ throws(DocumentError) in
                switch try cursor.readNumber() {
                case .unsigned(let value) where value <= UInt64(Int32.max):
                    list.append(Int32(value))
                case .signed(let value) where value >= Int64(Int32.min) && value <= Int64(Int32.max):
                    list.append(Int32(value))
                default:
                    throw cursor.error("not an Int32")
                }
            }
            try cursor.expectEnd()
        } catch {
            return nil
        }
        return list
    }
}

/// Parses an RFC 3339 date-time as chrono's `parse_from_rfc3339` does and returns whole Unix seconds (floor),
/// with a leap second `:60` read as `:59`. Nil when it does not parse.
func parseRFC3339Seconds(_ text: String) -> Int64? {
    text.withUTF8Bytes { parseRFC3339Seconds($0) }
}

func parseRFC3339Seconds(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
    if bytes.count == 20, let seconds = parseCompactRFC3339Seconds(bytes) { return seconds }
    var index = 0
    func digits(_ count: Int) -> Int64? {
        guard index + count <= bytes.count else { return nil }
        var value: Int64 = 0
        for offset in 0..<count {
            let byte = bytes[index + offset]
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        index += count
        return value
    }
    func literal(_ expected: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == expected else { return false }
        index += 1
        return true
    }
    guard let year = digits(4), literal(UInt8(ascii: "-")), let month = digits(2), literal(UInt8(ascii: "-")),
        let day = digits(2)
    else { return nil }
    guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
    guard index < bytes.count,
        bytes[index] == UInt8(ascii: "T") || bytes[index] == UInt8(ascii: "t") || bytes[index] == UInt8(ascii: " ")
    else { return nil }
    index += 1
    guard let hour = digits(2), literal(UInt8(ascii: ":")), let minute = digits(2), literal(UInt8(ascii: ":")),
        let second = digits(2)
    else { return nil }
    guard hour <= 23, minute <= 59, second <= 60 else { return nil }
    if literal(UInt8(ascii: ".")) {
        let start = index
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        guard index > start else { return nil }
    }
    guard index < bytes.count else { return nil }
    var offsetSeconds: Int64 = 0
    switch bytes[index] {
    case UInt8(ascii: "Z"), UInt8(ascii: "z"):
        index += 1
    default:
        var negative: Bool
        if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        } else if index + 2 < bytes.count, bytes[index] == 0xE2, bytes[index + 1] == 0x88, bytes[index + 2] == 0x92 {
            negative = true  // U+2212 MINUS SIGN
            index += 3
        } else {
            return nil
        }
        guard let offsetHour = digits(2), literal(UInt8(ascii: ":")), let offsetMinute = digits(2),
            offsetHour <= 23, offsetMinute <= 59
        else { return nil }
        offsetSeconds = offsetHour * 3600 + offsetMinute * 60
        if negative { offsetSeconds = -offsetSeconds }
    }
    guard index == bytes.count else { return nil }
    let days = CivilDate(year: year, month: month, day: day).daysSince1970
    return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
}

/// The common spelling `YYYY-MM-DDTHH:MM:SSZ` (20 bytes), read without the general parser's bookkeeping; nil for
/// any other spelling or an out-of-range field, which the general parser then decides.
@inline(__always)
private func parseCompactRFC3339Seconds(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
    guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
        bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z")
    else { return nil }
    var invalid: UInt8 = 0
    @inline(__always)
    func number(_ start: Int, _ count: Int) -> Int64 {
        var value: Int64 = 0
        for index in start..<(start + count) {
            let digit = bytes[index] &- UInt8(ascii: "0")
            invalid |= digit > 9 ? 1 : 0
            value = value * 10 + Int64(digit)
        }
        return value
    }
    let year = number(0, 4)
    let month = number(5, 2)
    let day = number(8, 2)
    let hour = number(11, 2)
    let minute = number(14, 2)
    let second = number(17, 2)
    guard invalid == 0, (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
        hour <= 23, minute <= 59, second <= 60
    else { return nil }
    return CivilDate(year: year, month: month, day: day).daysSince1970 * 86_400 + hour * 3600 + minute * 60
        + min(second, 59)
}

private func daysInMonth(year: Int64, month: Int64) -> Int64 {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}
