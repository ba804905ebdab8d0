import Testing

@testable import FliptEngine

/// One row of an operator table: constraint type, operator, constraint value, context value (nil = missing),
/// expected result.
struct ConstraintCase: CustomTestStringConvertible, Sendable {
    let type: String
    let op: String
    let value: String
    let input: String?
    let expected: Bool

    init(_ type: String, _ op: String, _ value: String, _ input: String?, _ expected: Bool) {
        self.type = type
        self.op = op
        self.value = value
        self.input = input
        self.expected = expected
    }

    var testDescription: String {
        "\(type) \(op) \(value.debugDescription) on \(input.map(\.debugDescription) ?? "missing") → \(expected)"
    }
}

@Suite("Constraint operators (evaluation-semantics §4)")
struct ConstraintTests {
    /// Evaluates `row` through a whole document, so decoding, compiling and evaluation are all exercised.
    private func evaluate(_ row: ConstraintCase, entityID: String = "entity") throws -> Bool {
        let segment = TestDocuments.segment("s", type: row.type, operator: row.op, value: row.value)
        let flag = TestDocuments.variantFlag("f", rules: "[\(TestDocuments.rule([segment]))]")
        let evaluator = Evaluator(snapshot: try TestDocuments.snapshot(flag), namespace: "default")
        var context = EvaluationContext()
        if let input = row.input { context["p"] = input }
        return try evaluator.variant(flagKey: "f", entityID: entityID, context: context).isMatch
    }

    static let stringRows: [ConstraintCase] = [
        .init("STRING", "empty", "", nil, true),
        .init("STRING", "empty", "", "", true),
        .init("STRING", "empty", "", "x", false),
        .init("STRING", "notempty", "", "x", true),
        .init("STRING", "notempty", "", nil, false),
        .init("STRING", "eq", "pro", "pro", true),
        .init("STRING", "eq", "pro", "Pro", false),
        .init("STRING", "eq", "pro", " pro", false),
        .init("STRING", "eq", "", "", false),
        .init("STRING", "neq", "pro", "free", true),
        .init("STRING", "neq", "pro", "pro", false),
        .init("STRING", "neq", "pro", nil, false),
        .init("STRING", "neq", "", "x", true),
        .init("STRING", "prefix", "pr", "pro", true),
        .init("STRING", "prefix", "", "pro", true),
        .init("STRING", "prefix", "ro", "pro", false),
        .init("STRING", "suffix", "ro", "pro", true),
        .init("STRING", "suffix", "pr", "pro", false),
        .init("STRING", "contains", "r", "pro", true),
        .init("STRING", "contains", "", "pro", true),
        .init("STRING", "contains", "x", "pro", false),
        .init("STRING", "notcontains", "x", "pro", true),
        .init("STRING", "notcontains", "", "pro", false),
        .init("STRING", "notcontains", "x", nil, false),
        .init("STRING", "isoneof", #"["pro","free"]"#, "pro", true),
        .init("STRING", "isoneof", #" ["pro"] "#, "pro", true),
        .init("STRING", "isoneof", #"["pro","free"]"#, "team", false),
        .init("STRING", "isoneof", "pro,free", "pro", false),
        .init("STRING", "isoneof", "[1,2]", "1", false),
        .init("STRING", "isoneof", #"["pro",]"#, "pro", false),
        .init("STRING", "isoneof", #"["pro", "x\"y"]"#, "pro", false),
        .init("STRING", "isoneof", #"["\u00e9"]"#, "\u{E9}", false),
        .init("STRING", "isoneof", "[\"\u{E9}\"]", "\u{E9}", true),
        .init("STRING", "isnotoneof", #"["pro"]"#, "free", true),
        .init("STRING", "isnotoneof", #"["pro"]"#, "pro", false),
        .init("STRING", "isnotoneof", #"["pro", "x\"y"]"#, "pro", true),
        .init("STRING", "isnotoneof", "garbage", "pro", true),
        .init("STRING", "isnotoneof", "garbage", nil, false),
        .init("STRING", "present", "", "x", false),
        .init("STRING", "notpresent", "", nil, false),
        .init("STRING", "EQ", "pro", "pro", false),
        .init("STRING", "lt", "b", "a", false),
    ]

    static let numberRows: [ConstraintCase] = [
        .init("NUMBER", "present", "", "abc", true),
        .init("NUMBER", "present", "", nil, false),
        .init("NUMBER", "notpresent", "", nil, true),
        .init("NUMBER", "notpresent", "", "", true),
        .init("NUMBER", "eq", "5", "5", true),
        .init("NUMBER", "eq", "5", "+5", true),
        .init("NUMBER", "eq", "5", "005", true),
        .init("NUMBER", "eq", "-5", "-5", true),
        .init("NUMBER", "eq", "5", "5.0", false),
        .init("NUMBER", "neq", "5", "3.5", false),
        .init("NUMBER", "neq", "5", "1e3", false),
        .init("NUMBER", "neq", "5", " 5", false),
        .init("NUMBER", "neq", "5", "5 ", false),
        .init("NUMBER", "neq", "5", "0x10", false),
        .init("NUMBER", "neq", "5", "\u{665}", false),
        .init("NUMBER", "neq", "5", "2147483648", false),
        .init("NUMBER", "eq", "2147483647", "2147483647", true),
        .init("NUMBER", "eq", "-2147483648", "-2147483648", true),
        .init("NUMBER", "eq", "5.0", "5", false),
        .init("NUMBER", "neq", "5.0", "6", false),
        .init("NUMBER", "neq", "5", "6", true),
        .init("NUMBER", "neq", "5", "", false),
        .init("NUMBER", "lt", "5", "4", true),
        .init("NUMBER", "lt", "5", "5", false),
        .init("NUMBER", "lte", "5", "5", true),
        .init("NUMBER", "gt", "5", "6", true),
        .init("NUMBER", "gt", "5", "5", false),
        .init("NUMBER", "gte", "5", "5", true),
        .init("NUMBER", "isoneof", "[5, 6]", "6", true),
        .init("NUMBER", "isoneof", "[5, 6]", "7", false),
        .init("NUMBER", "isoneof", "[5.0]", "5", false),
        .init("NUMBER", "isnotoneof", "[5.0]", "5", false),
        .init("NUMBER", "isnotoneof", "[\"5\"]", "6", false),
        .init("NUMBER", "isnotoneof", "[2147483648]", "6", false),
        .init("NUMBER", "isnotoneof", "5", "6", false),
        .init("NUMBER", "isnotoneof", "[5,6", "7", false),
        .init("NUMBER", "isnotoneof", "[-0]", "7", false),
        .init("NUMBER", "isnotoneof", "[05]", "7", false),
        .init("NUMBER", "isoneof", "[-2147483648]", "-2147483648", true),
        .init("NUMBER", "isoneof", "[]", "5", false),
        .init("NUMBER", "isnotoneof", "[]", "5", true),
        .init("NUMBER", "isnotoneof", "[5, 6]", "7", true),
        .init("NUMBER", "isnotoneof", "[5, 6]", "abc", false),
        .init("NUMBER", "empty", "", nil, false),
    ]

    static let booleanRows: [ConstraintCase] = [
        .init("BOOLEAN", "true", "", "true", true),
        .init("BOOLEAN", "true", "", "false", false),
        .init("BOOLEAN", "false", "", "false", true),
        .init("BOOLEAN", "false", "", "true", false),
        .init("BOOLEAN", "true", "", "TRUE", false),
        .init("BOOLEAN", "false", "", "True", false),
        .init("BOOLEAN", "true", "", "1", false),
        .init("BOOLEAN", "false", "", "t", false),
        .init("BOOLEAN", "true", "", " true", false),
        .init("BOOLEAN", "false", "", "yes", false),
        .init("BOOLEAN", "present", "", "x", true),
        .init("BOOLEAN", "notpresent", "", nil, true),
        .init("BOOLEAN", "eq", "true", "true", false),
        .init("BOOLEAN", "true", "", nil, false),
    ]

    static let dateTimeRows: [ConstraintCase] = [
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.999Z", true),
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00", true),
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00Z", true),
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", true),
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00\u{2212}00:00", false),
        .init("DATETIME", "eq", "2024-01-01T02:00:00Z", "2024-01-01T01:00:00\u{2212}01:00", true),
        .init("DATETIME", "eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00-00:00", true),
        .init("DATETIME", "eq", "2016-12-31T23:59:59Z", "2016-12-31T23:59:60Z", true),
        .init("DATETIME", "eq", "2024-01-01T10:30:59Z", "2024-01-01T10:30:60Z", true),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+0000", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+01", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+5:00", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00,5Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00 UTC", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", " 2024-01-01T00:00:00Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z ", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T24:00:00Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2023-02-29T00:00:00Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-02-29T00:00:00Z", true),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-1-1T00:00:00Z", false),
        .init("DATETIME", "neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789123Z", false),
        .init("DATETIME", "neq", "2024-01-01", "2024-01-02T00:00:00Z", false),
        .init("DATETIME", "lt", "2024-01-01T00:00:01Z", "2024-01-01T00:00:00.999Z", true),
        .init("DATETIME", "lte", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", true),
        .init("DATETIME", "gt", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", true),
        .init("DATETIME", "gte", "2024-01-01T00:00:00Z", "1999-01-01T00:00:00Z", false),
        .init("DATETIME", "present", "", "garbage", true),
        .init("DATETIME", "notpresent", "", nil, true),
        .init("DATETIME", "eq", "0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", true),
        .init("DATETIME", "eq", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+23:59", false),
        .init("DATETIME", "prefix", "2024", "2024-01-01T00:00:00Z", false),
    ]

    @Test("STRING operator table", arguments: stringRows)
    func string(row: ConstraintCase) throws {
        #expect(try evaluate(row) == row.expected)
    }

    @Test("NUMBER operator table (int32 only)", arguments: numberRows)
    func number(row: ConstraintCase) throws {
        #expect(try evaluate(row) == row.expected)
    }

    @Test("BOOLEAN operator table", arguments: booleanRows)
    func boolean(row: ConstraintCase) throws {
        #expect(try evaluate(row) == row.expected)
    }

    @Test("DATETIME operator table (RFC 3339, whole seconds)", arguments: dateTimeRows)
    func dateTime(row: ConstraintCase) throws {
        #expect(try evaluate(row) == row.expected)
    }

    @Test(
        "ENTITY_ID uses the STRING table on the entity id",
        arguments: [
            ("eq", "user-1", "user-1", true), ("prefix", "user", "user-1", true), ("neq", "x", "", false),
            ("empty", "", "", true), ("notempty", "", "", false), ("present", "", "user-1", false),
            ("notpresent", "", "", false), ("isoneof", #"["a","user-1"]"#, "user-1", true),
        ]
    )
    func entityID(op: String, value: String, entityID: String, expected: Bool) throws {
        let row = ConstraintCase("ENTITY_ID", op, value, "ignored", expected)
        #expect(try evaluate(row, entityID: entityID) == expected)
    }

    @Test("Datetime parser returns floor Unix seconds")
    func dateTimeSeconds() {
        #expect(parseRFC3339Seconds("1970-01-01T00:00:00Z") == 0)
        #expect(parseRFC3339Seconds("1969-12-31T23:59:59.999Z") == -1)
        #expect(parseRFC3339Seconds("2024-01-01T00:00:00Z") == 1_704_067_200)
        let early: Int64 = 1_704_067_200 - 86_340
        #expect(parseRFC3339Seconds("2024-01-01T00:00:00+23:59") == early)
        #expect(parseRFC3339Seconds("2024-01-01T00:00:00+24:00") == nil)
        #expect(parseRFC3339Seconds("2024-01-01T00:00:00+00:60") == nil)
    }

    @Test("Int32 parser follows Rust's str::parse::<i32>")
    func int32Parser() {
        #expect(parseInt32("+0") == 0)
        #expect(parseInt32("-0") == 0)
        #expect(parseInt32("-") == nil)
        #expect(parseInt32("+") == nil)
        #expect(parseInt32("") == nil)
        #expect(parseInt32("+-1") == nil)
        #expect(parseInt32("00000000000000000000042") == 42)
        #expect(parseInt32("-2147483649") == nil)
        #expect(parseInt32("999999999") == 999_999_999)
        #expect(parseInt32("-999999999") == -999_999_999)
        #expect(parseInt32("2147483647") == Int32.max)
        #expect(parseInt32("-2147483648") == Int32.min)
        #expect(parseInt32("2147483648") == nil)
        #expect(parseInt32("4") == 4)
        #expect(parseInt32("4a") == nil)
        #expect(parseInt32(" 4") == nil)
        #expect(parseInt32("4/") == nil)
        #expect(parseInt32(":") == nil)
    }

    /// Swift's `Int32(String)` reads integers as Rust's `str::parse::<i32>` does (an optional sign, ASCII digits,
    /// leading zeros, no spaces, nil out of range), so it is the reference for random spellings of every length,
    /// on both sides of the 9-digit fast path.
    @Test("Int32 parser agrees with Int32(String) on random spellings")
    func int32ParserRandom() {
        var random = SeededGenerator(seed: 0x1A2B_3C4D)
        let alphabet = Array("0123456789000+- a/:9".utf8)
        for _ in 0..<50_000 {
            let count = Int(random.next() % 14)
            var bytes: [UInt8] = []
            for position in 0..<count {
                let pick = Int(random.next() % UInt64(alphabet.count))
                // Mostly digits after the first byte, so that many spellings parse.
                bytes.append(
                    position > 0 && random.next() % 4 != 0 ? UInt8(ascii: "0") + UInt8(pick % 10) : alphabet[pick]
                )
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(parseInt32(text) == Int32(text), "\(text)")
        }
    }
}
