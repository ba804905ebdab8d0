import Testing

@testable import FliptEngine

@Suite("Bucketing: CRC-32, boundaries and selection")
struct BucketingTests {
    @Test("CRC-32 check value")
    func checkValue() {
        #expect(CRC32.checksum("123456789", "") == 0xCBF4_3926)
        #expect(CRC32.checksum("1234", "56789") == 0xCBF4_3926)
    }

    @Test("CRC-32 in steps of eight, four and one byte equals the bit-by-bit definition, however the bytes are split")
    func slicesEqualDefinition() {
        // Bit by bit from the polynomial: independent of the tables under test.
        func reference(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        var random = SystemRandomNumberGenerator()
        for length in 0...80 {
            for _ in 0..<8 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                let split = Int.random(in: 0...length, using: &random)
                var crc = CRC32()
                bytes[..<split].withUnsafeBufferPointer { crc.update($0) }
                // Resumed from the saved state, as flags resume from their key's checksum.
                var resumed = CRC32(state: crc.state)
                bytes[split...].withUnsafeBufferPointer { resumed.update($0, tables: CRC32.tables.pointer) }
                #expect(resumed.value == reference(bytes), "length \(length), split at \(split): \(bytes)")
            }
        }
    }

    @Test(
        "Test vectors of evaluation-semantics §10",
        arguments: [
            ("flag1", "user-1", 0x48FB_7C7D as UInt32),
            ("user-1", "flag1", 0x35B4_398F),
            ("new-checkout", "12345", 0x2D08_2ADA),
            ("12345", "new-checkout", 0x3924_239C),
            ("my-flag", "\u{E9}", 0x55E0_04B3),
        ]
    )
    func vectors(first: String, second: String, expected: UInt32) {
        #expect(CRC32.checksum(first, second) == expected)
    }

    @Test(
        "Boundary table of evaluation-semantics §2.1",
        arguments: [
            ([50, 50] as [Float], [500, 1000] as [Int32]),
            ([33.33, 33.33, 33.34], [333, 667, 1000]),
            ([1, 2, 3, 4], [100, 300, 600, 1000]),
            ([50, 50], [500, 1000]),  // [0, 50, 50] once the 0 is dropped
            ([0.05, 99.95], [1, 1000]),
            ([50, 0.01, 49.99], [500, 500, 1000]),
            ([99.99, 0.01], [1000, 1000]),
            ([0.01, 0.01, 0.01, 99.97], [0, 0, 0, 1000]),
            ([Float(1e39), 1], [0, 1000]),
            ([6.85, 93.15], [69, 1000]),
        ]
    )
    func boundaries(rollouts: [Float], expected: [Int32]) {
        #expect(bucketBoundaries(rollouts) == expected)
    }

    @Test(
        "Selection: last tie wins, else first boundary above bucket+1",
        arguments: [
            ([500, 500, 1000] as [Int32], 499 as Int32, 1),
            ([500, 500, 1000], 498, 0),
            ([500, 500, 1000], 500, 2),
            ([1000, 1000], 999, 1),
            ([1000, 1000], 0, 0),
            ([0, 0, 0, 1000], 0, 3),
            ([500, 500, 500, 500, 500, 1000], 499, 4),
            ([100, 300, 600, 1000], 99, 0),
            ([100, 300, 600, 1000], 100, 1),
        ]
    )
    func selection(boundaries: [Int32], bucket: Int32, expected: Int) {
        #expect(rustBinarySearch(boundaries, bucket + 1) == expected)
    }

    /// §10: a split [b/10, 100−b/10] sends the entity to the 2nd variant, [(b+1)/10, …] to the 1st.
    @Test(
        "Variant vectors land where the official engine puts them",
        arguments: [("flag1", "user-1", 957), ("new-checkout", "12345", 978), ("my-flag", "\u{E9}", 627)]
    )
    func variantVectors(flagKey: String, entityID: String, bucket: Int) throws {
        for (first, expected) in [(Double(bucket) / 10, "second"), (Double(bucket + 1) / 10, "first")] {
            let rule = TestDocuments.rule(
                [],
                operator: "AND_SEGMENT_OPERATOR",
                distributions: [("first", "\(first)"), ("second", "\(100 - first)")]
            )
            let snapshot = try TestDocuments.snapshot(TestDocuments.variantFlag(flagKey, rules: "[\(rule)]"))
            let result = try Evaluator(snapshot: snapshot, namespace: "default")
                .variant(flagKey: flagKey, entityID: entityID, context: [:])
            #expect(result.variantKey == expected, "split \(first)")
        }
    }

    @Test("Boolean vector: user-1/flag1 has value 63", arguments: [("63", false), ("64", true)])
    func booleanVector(percentage: String, expected: Bool) throws {
        let flag = TestDocuments.booleanFlag(
            "flag1",
            enabled: false,
            rollouts: #"[{"threshold":{"percentage":\#(percentage),"value":true}}]"#
        )
        let result = try Evaluator(snapshot: try TestDocuments.snapshot(flag), namespace: "default")
            .boolean(flagKey: "flag1", entityID: "user-1", context: [:])
        #expect(result.isEnabled == expected)
        #expect(result.reason == (expected ? .match : .default))
    }

    @Test("Rust f32 → i32 conversion saturates and maps NaN to 0")
    func saturation() {
        #expect(saturatingInt32(.nan) == 0)
        #expect(saturatingInt32(.infinity) == Int32.max)
        #expect(saturatingInt32(-.infinity) == Int32.min)
        #expect(saturatingInt32(12.9) == 12)
    }
}
